#!/usr/bin/env bash
# LocalStack (KMS only, host mode, no Docker) for the Nitro KMS client's
# integration tests: it implements KMS `Decrypt` with an attestation
# `Recipient` (see shared notes/nitro-testing.md).
#
#   ./scripts/localstack.sh install   # venv in the cache dir (fast when cached)
#   ./scripts/localstack.sh start     # install if needed, run on 127.0.0.1:4566, wait for "Ready."
#   ./scripts/localstack.sh status    # running or not; prints the endpoint
#   ./scripts/localstack.sh stop      # stop the instance this script started
#   ./scripts/localstack.sh env       # print `export TMKMS_TEST_KMS_ENDPOINT=...`
#
# Then: TMKMS_TEST_KMS_ENDPOINT=http://127.0.0.1:4566 cargo test -p tmkms-nitro-kms
#
# Settings (environment):
#   LOCALSTACK_PORT           port on 127.0.0.1 (default 4566)
#   LOCALSTACK_START_TIMEOUT  seconds to wait for "Ready." (default 180)
#   LOCALSTACK_PYTHON         a Python >= 3.12 to use instead of searching
#   XDG_CACHE_HOME            venv goes to ${XDG_CACHE_HOME:-$HOME/.cache}/tmkms-localstack/
# The pid file and the log are in target/localstack/.
set -euo pipefail
cd "$(dirname "$0")/.."

# LocalStack declares Python >= 3.10 but uses PEP 695 syntax (3.12+). The
# `runtime` extra brings the gateway that host mode needs. The other pins are
# the combination measured to work in host mode: newer cbor2, pyOpenSSL and
# cryptography releases break its KMS or gateway code.
LOCALSTACK_VERSION=2026.3.0
PINS=(
  "localstack-core[runtime]==${LOCALSTACK_VERSION}"
  "cbor2==5.9.0"
  "pyopenssl==24.2.1"
  "cryptography==43.0.3"
  "service_identity"
)
PORT=${LOCALSTACK_PORT:-4566}
START_TIMEOUT=${LOCALSTACK_START_TIMEOUT:-180}
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tmkms-localstack"
VENV="$CACHE_DIR/venv-$LOCALSTACK_VERSION"
STAMP="$VENV/.tmkms-pins"
RUN_DIR="$PWD/target/localstack"
PID_FILE="$RUN_DIR/localstack.pid"
LOG_FILE="$RUN_DIR/localstack.log"

t0=$(date +%s.%N)
span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
elapsed() { span "$t0" "$(date +%s.%N)"; }
say() { printf 'localstack: %s\n' "$*"; }
die() { printf 'localstack: FAILED: %s\n' "$*" >&2; exit 2; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

# A Python >= 3.12: $LOCALSTACK_PYTHON, then pyenv's 3.13/3.12, then
# python3.13/python3.12/python3 on PATH. Installs one with pyenv only when
# pyenv is present but has neither.
find_python() {
  if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
    python_ok "$LOCALSTACK_PYTHON" || die "LOCALSTACK_PYTHON=$LOCALSTACK_PYTHON is not a Python >= 3.12"
    echo "$LOCALSTACK_PYTHON"; return
  fi
  local root="" p
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
  elif [[ -d "${PYENV_ROOT:-$HOME/.pyenv}/versions" ]]; then
    # pyenv installed but not on PATH (non-interactive CI shells).
    root="${PYENV_ROOT:-$HOME/.pyenv}"
  fi
  if [[ -n "$root" ]]; then
    for p in $(ls -d "$root"/versions/3.13* "$root"/versions/3.12* 2>/dev/null | sort -rV); do
      [[ -x "$p/bin/python3" ]] && python_ok "$p/bin/python3" && { echo "$p/bin/python3"; return; }
    done
  fi
  for p in python3.13 python3.12 python3; do
    command -v "$p" >/dev/null 2>&1 && python_ok "$(command -v "$p")" && { command -v "$p"; return; }
  done
  if [[ -n "$root" && -x "$root/bin/pyenv" ]] || command -v pyenv >/dev/null 2>&1; then
    local pyenv_bin
    pyenv_bin=$(command -v pyenv || echo "$root/bin/pyenv")
    say "no Python >= 3.12 found; installing 3.12 with pyenv (takes minutes)" >&2
    "$pyenv_bin" install -s 3.12 >&2 || die "'pyenv install 3.12' failed (it needs a C compiler and libssl/libffi/zlib headers)"
    for p in $(ls -d "$root"/versions/3.12* 2>/dev/null | sort -rV); do
      python_ok "$p/bin/python3" && { echo "$p/bin/python3"; return; }
    done
  fi
  die "LocalStack needs Python >= 3.12 (PEP 695 syntax) and none was found: install pyenv and run 'pyenv install 3.12', or put python3.12/python3.13 on PATH, or set LOCALSTACK_PYTHON"
}

cmd_install() {
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PINS[*]}" && -x "$VENV/bin/python" ]] \
    && "$VENV/bin/python" -c 'import localstack' >/dev/null 2>&1; then
    say "installed (cached) in $VENV [$(elapsed)s]"
    return
  fi
  local py
  py=$(find_python)
  say "installing localstack-core $LOCALSTACK_VERSION with $py ($("$py" -V 2>&1)) into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE_DIR"
  "$py" -m venv "$VENV" || die "could not create a venv with $py (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}" \
    || die "pip install of ${PINS[*]} failed (is PyPI reachable?)"
  echo "${PINS[*]}" >"$STAMP"
  say "installed in $VENV [$(elapsed)s]"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# KMS ListKeys against whatever listens on the port, with interpreter $1
# and a timeout of $2 seconds; fails unless it answers 200.
kms_list_keys() {
  "$1" - "$PORT" "$2" <<'PY'
import sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/", data=b"{}", method="POST",
    headers={"X-Amz-Target": "TrentService.ListKeys",
             "Content-Type": "application/x-amz-json-1.1",
             "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0"})
with urllib.request.urlopen(req, timeout=float(sys.argv[2])) as r:
    assert r.status == 200, r.status
PY
}

# Whether whatever listens on the port answers KMS ListKeys (an emulator
# started from another checkout, for instance).
kms_answers() {
  kms_list_keys python3 10 >/dev/null 2>&1
}

cmd_start() {
  local pid
  if pid=$(running_pid); then
    say "already running (pid $pid) at http://127.0.0.1:$PORT"
    return
  fi
  if port_open; then
    if kms_answers; then
      say "reusing the KMS endpoint already listening at http://127.0.0.1:$PORT (started elsewhere; 'stop' here leaves it running)"
      return
    fi
    die "127.0.0.1:$PORT is already in use by another process that is not a KMS endpoint (set LOCALSTACK_PORT)"
  fi
  cmd_install
  mkdir -p "$RUN_DIR/data"
  : >"$LOG_FILE"
  local t_start
  t_start=$(date +%s.%N)
  # setsid: its own process group, so `stop` ends LocalStack and its children only.
  env DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    SERVICES=kms EAGER_SERVICE_LOADING=1 GATEWAY_LISTEN="127.0.0.1:$PORT" \
    LOCALSTACK_HOST="127.0.0.1:$PORT" PERSISTENCE=0 FILESYSTEM_ROOT="$RUN_DIR/data" \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    setsid "$VENV/bin/python" -m localstack.runtime.main >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until grep -q '^Ready\.' "$LOG_FILE" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 30 "$LOG_FILE" >&2 || true
      die "LocalStack exited during start-up (log: $LOG_FILE)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      cmd_stop >/dev/null
      die "LocalStack did not print 'Ready.' within ${START_TIMEOUT}s (log: $LOG_FILE; raise LOCALSTACK_START_TIMEOUT)"
    fi
    sleep 0.2
  done
  local t_ready
  t_ready=$(date +%s.%N)
  say "ready (pid $pid) at http://127.0.0.1:$PORT; start took $(span "$t_start" "$t_ready")s; log $LOG_FILE"
  # LocalStack loads the KMS provider on the first request (seconds on a busy
  # machine); pay that here rather than in the first test's timeout.
  kms_list_keys "$VENV/bin/python" 120 || die "LocalStack is up but KMS ListKeys failed (log: $LOG_FILE)"
  say "KMS answered ListKeys (warm-up $(span "$t_ready" "$(date +%s.%N)")s) [total $(elapsed)s]"
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PID_FILE"
    say "not running"
    return
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid) [$(elapsed)s]"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    say "running (pid $pid) at http://127.0.0.1:$PORT; log $LOG_FILE"
  else
    say "not running"
    return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export TMKMS_TEST_KMS_ENDPOINT=http://127.0.0.1:$PORT" ;;
  *)
    echo "usage: $0 install|start|stop|status|env" >&2
    exit 64
    ;;
esac
