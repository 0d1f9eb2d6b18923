#!/usr/bin/env bash
# Real CometBFT end-to-end suite: for every release line in e2e/lines.toml,
# local one-validator chains signed only by our signer: tmkms-softsign, and on
# v0.38 and v1 also the SGX provider (host simulation) and the Nitro provider
# (mock NSM, KMS emulator), and a high-availability pair of softsign signers
# on one etcd cluster (softsign-ha). See e2e/README.md.
#
#   ./scripts/e2e.sh                            # all lines, all providers
#   E2E_LINES="v0.38 v1" ./scripts/e2e.sh       # some lines
#   E2E_PROVIDERS="softsign sgx-sim" ./scripts/e2e.sh  # some providers
#   E2E_LINES="v0.38 v1" E2E_PROVIDERS=softsign-ha ./scripts/e2e.sh  # the HA runs
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
  echo "e2e: FAILED: \`go\` is not on PATH. The real-node suite installs CometBFT with" >&2
  echo "     \`go install\` (Go 1.25 or newer; v0.40 needs it). Install Go and retry." >&2
  exit 2
fi
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [[ -n "$go_minor" && "$go_minor" -lt 25 && "$(go env GOTOOLCHAIN)" == local ]]; then
  echo "e2e: FAILED: $(go env GOVERSION) is too old (CometBFT v0.40 needs Go 1.25);" >&2
  echo "     install a newer Go or set GOTOOLCHAIN=auto." >&2
  exit 2
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "e2e: FAILED: python3 (3.11 or newer, for tomllib) is required." >&2
  exit 2
fi

# The Nitro helper falls back to the instance metadata service
# (169.254.169.254) when it has no credentials; keep every run on loopback.
export AWS_EC2_METADATA_SERVICE_ENDPOINT="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://127.0.0.1:1}"

providers=" ${E2E_PROVIDERS:-softsign sgx-sim nitro-sim softsign-ha} "
providers=${providers//,/ }

if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  # tmkms-softsign is always needed: it also reads the TEE providers' state files.
  pkgs=(-p tmkms-softsign)
  [[ "$providers" == *" sgx-sim "* ]] && pkgs+=(-p tmkms-light-sgx-runner -p tmkms-light-sgx-app)
  [[ "$providers" == *" nitro-sim "* ]] && pkgs+=(-p tmkms-nitro-helper -p tmkms-nitro-enclave)
  # softsign-ha: the etcd test cluster comes from `tmkms-node-sim etcd-cluster`.
  [[ "$providers" == *" softsign-ha "* ]] && pkgs+=(-p tmkms-node-sim)
  cargo build --release -q "${pkgs[@]}"
fi

if [[ "$providers" == *" sgx-sim "* ]]; then
  sig=${E2E_SGX_SIGSTRUCT:-target/sgx/enclave/tmkms-light-sgx-app.sig}
  if [[ ! -f "$sig" ]]; then
    echo "e2e: ************************************************************************" >&2
    echo "e2e: WARNING: $sig is missing: the sgx-sim runs will be SKIPPED." >&2
    echo "e2e: The SGX simulation takes its identity from the real signed enclave;" >&2
    echo "e2e: build it with ./scripts/sgx-build.sh (CI does, before this step)." >&2
    echo "e2e: ************************************************************************" >&2
  fi
fi

if [[ "$providers" == *" softsign-ha "* ]] && ! ./scripts/install-etcd.sh >/dev/null 2>&1; then
  echo "e2e: WARNING: etcd is not installed and ./scripts/install-etcd.sh failed:" >&2
  echo "e2e: the softsign-ha runs will be SKIPPED." >&2
fi

if [[ "$providers" == *" nitro-sim "* ]]; then
  # The Nitro runs need the KMS emulator. Reuse a running one (scripts/test.sh
  # starts it first); otherwise start it here and stop it on exit.
  export E2E_KMS_ENDPOINT=${E2E_KMS_ENDPOINT:-http://127.0.0.1:${LOCALSTACK_PORT:-4566}}
  kms_port=${E2E_KMS_ENDPOINT##*:}
  kms_port=${kms_port%%/*}
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$kms_port") 2>/dev/null; then
    ./scripts/localstack.sh start
    trap './scripts/localstack.sh stop >/dev/null 2>&1 || true' EXIT
  fi
fi

export PYTHONDONTWRITEBYTECODE=1
# Self-test of the independent signature checker before trusting it.
python3 -m unittest discover -q -s e2e -p 'test_*.py'
python3 e2e/run.py
