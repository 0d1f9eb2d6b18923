#!/usr/bin/env bash
# A real Prometheus scrapes running signers while the node simulator drives
# them, and PromQL through Prometheus' HTTP API must return each signer's
# last signed height and a non-zero tmkms_light_signed_total:
#   * tmkms-softsign;
#   * tmkms-light-sgx-runner in SGX host simulation (the enclave process
#     forwards its events to the runner, which serves them) — needs the
#     real enclave's SIGSTRUCT (./scripts/sgx-build.sh; skipped with a
#     message when it is missing and REQUIRE_SGX is not 1).
#
#   BIN=target/debug HEIGHTS=150 ./scripts/metrics-e2e.sh
# Installs Debian's prometheus (scripts/install-prometheus.sh) if missing.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug}
HEIGHTS=${HEIGHTS:-150}
SIGSTRUCT=${SIGSTRUCT:-target/sgx/enclave/tmkms-light-sgx-app.sig}
CHAIN_ID=metrics-chain

./scripts/install-prometheus.sh >/dev/null
if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build -q -p tmkms-softsign -p tmkms-node-sim -p tmkms-light-sgx-runner -p tmkms-light-sgx-app
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tmkms-metrics.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ "${KEEP:-0}" == 1 ]] && echo "files kept in $work" || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

providers=(softsign)
if [[ -f "$SIGSTRUCT" ]]; then
  providers+=(sgx)
elif [[ "${REQUIRE_SGX:-0}" == 1 ]]; then
  echo "metrics-e2e: $SIGSTRUCT is missing; build it with ./scripts/sgx-build.sh" >&2
  exit 1
else
  echo "metrics-e2e: skipping the SGX simulation: $SIGSTRUCT is missing (./scripts/sgx-build.sh builds it)"
fi

declare -A metrics_port
for p in "${providers[@]}"; do metrics_port[$p]=$(free_port); done
prom_port=$(free_port)

# One scrape job per signer, every second.
{
  echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
  echo "scrape_configs:"
  for p in "${providers[@]}"; do
    echo "  - job_name: $p"
    echo "    static_configs: [{targets: ['127.0.0.1:${metrics_port[$p]}']}]"
  done
} >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

# The node simulator signs HEIGHTS heights through the signer, verifying
# every signature, then exits; the signer keeps running (and serving).
drive() {
  local p=$1 home="$work/$1"
  mkdir -p "$home"
  "$BIN/tmkms-node-sim" run --listen "unix://$home/node.sock" --chain-id "$CHAIN_ID" \
    --heights "$HEIGHTS" --progress-every 1000 >"$home/node-sim.out" 2>&1 &
  local sim=$!
  pids+=($sim)
  for _ in $(seq 200); do [[ -S "$home/node.sock" ]] && break; sleep 0.05; done
  case $p in
    softsign)
      "$BIN/tmkms-softsign" init -c "$home/tmkms.toml" --chain-id "$CHAIN_ID" \
        --address "unix://$home/node.sock" >"$home/init.log" 2>&1 ;;
    sgx)
      "$BIN/tmkms-light-sgx-runner" init -c "$home/tmkms.toml" --mode simulation \
        --enclave "$BIN/tmkms-light-sgx-app" --sigstruct "$SIGSTRUCT" \
        --chain-id "$CHAIN_ID" --address "unix://$home/node.sock" >"$home/init.log" 2>&1 ;;
  esac
  # Top-level keys go before the first table.
  sed -i "1i metrics_listen = \"127.0.0.1:${metrics_port[$p]}\"" "$home/tmkms.toml"
  local binary=tmkms-softsign
  [[ $p == sgx ]] && binary=tmkms-light-sgx-runner
  "$BIN/$binary" start -c "$home/tmkms.toml" >"$home/signer.log" 2>&1 &
  pids+=($!)
  if ! wait "$sim"; then
    echo "metrics-e2e: $p: the node simulator failed" >&2
    tail -20 "$home/node-sim.out" "$home/signer.log" >&2
    exit 1
  fi
  echo "metrics-e2e: $p signed $HEIGHTS heights for the node simulator"
}

# PromQL through the HTTP API; prints the first sample's value or nothing.
query() {
  python3 - "$prom_port" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, expr = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
try:
    with urllib.request.urlopen(url, timeout=5) as reply:
        result = json.load(reply)["data"]["result"]
except Exception:
    result = []
print(result[0]["value"][1] if result else "")
EOF
}

# Waits until `expr` has a value that `check` accepts; prints it.
await_value() {
  local expr=$1 check=$2 value=""
  for _ in $(seq 60); do
    value=$(query "$expr")
    if [[ -n "$value" ]] && python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if $check else 1)" "$value"; then
      echo "$value"
      return 0
    fi
    sleep 1
  done
  echo "metrics-e2e: $expr = '${value}' after 60 s (wanted $check)" >&2
  return 1
}

status=0
for p in "${providers[@]}"; do
  drive "$p"
  height=$(await_value "tmkms_light_last_signed_height{job=\"$p\",chain_id=\"$CHAIN_ID\"}" "v == $HEIGHTS") || status=1
  signed=$(await_value "sum(tmkms_light_signed_total{job=\"$p\",chain_id=\"$CHAIN_ID\"})" "v >= 3 * $HEIGHTS") || status=1
  refused=$(query "sum(tmkms_light_refused_total{job=\"$p\"}) or vector(0)")
  echo "metrics-e2e: $p via PromQL: last_signed_height=$height signed_total=$signed refused_total=$refused"
done
if [[ $status != 0 ]]; then
  tail -20 "$work/prometheus.log" >&2
  exit 1
fi
echo "metrics-e2e: ok (${providers[*]})"
