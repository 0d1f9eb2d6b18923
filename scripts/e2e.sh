#!/usr/bin/env bash
# Real CometBFT end-to-end suite: for every release line in e2e/lines.toml, a
# local one-validator chain signed only by tmkms-softsign. See e2e/README.md.
#
#   ./scripts/e2e.sh                      # all lines
#   E2E_LINES="v0.38 v1" ./scripts/e2e.sh # some lines
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

if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -q -p tmkms-softsign
fi

export PYTHONDONTWRITEBYTECODE=1
# Self-test of the independent signature checker before trusting it.
python3 -m unittest discover -q -s e2e -p 'test_*.py'
exec python3 e2e/run.py
