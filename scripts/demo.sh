#!/usr/bin/env bash
# Quick start: build the signer and the node simulator, create a signer home,
# and let the simulator (playing a CometBFT v0.38 node over TCP +
# SecretConnection) drive a few hundred heights through the real signer.
#
#   HEIGHTS=300 PROTOCOL=v0.38 ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HEIGHTS=${HEIGHTS:-300}
PROTOCOL=${PROTOCOL:-v0.38}
CHAIN_ID=${CHAIN_ID:-demo-chain}

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
BIN=target/release

work=$(mktemp -d "${TMPDIR:-/tmp}/tmkms-demo.XXXXXX")
sim_out="$work/node-sim.out"
cleanup() {
  [[ -n "${signer_pid:-}" ]] && kill "$signer_pid" 2>/dev/null || true
  [[ -n "${sim_pid:-}" ]] && kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT

echo "== node simulator: listening for the signer ($PROTOCOL, chain $CHAIN_ID)"
"$BIN/tmkms-node-sim" run --listen tcp://127.0.0.1:0 --chain-id "$CHAIN_ID" \
  --protocol "$PROTOCOL" --heights "$HEIGHTS" >"$sim_out" &
sim_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$sim_out" 2>/dev/null && break
  sleep 0.05
done
addr=$(sed -n 's/^listening on \(tcp:[^ ]*\).*/\1/p' "$sim_out" | head -1)
[[ -n "$addr" ]] || { echo "node simulator did not start" >&2; cat "$sim_out" >&2; exit 1; }

echo "== tmkms-softsign init (home: $work/kms)"
"$BIN/tmkms-softsign" init -c "$work/kms/tmkms.toml" --chain-id "$CHAIN_ID" \
  --address "$addr" --protocol-version "$PROTOCOL"

echo "== tmkms-softsign start (log: $work/kms/signer.log)"
"$BIN/tmkms-softsign" start -c "$work/kms/tmkms.toml" 2>"$work/kms/signer.log" &
signer_pid=$!

tail -n +2 -f "$sim_out" --pid "$sim_pid" &
tail_pid=$!
status=0
wait "$sim_pid" || status=$?
sim_pid=
sleep 0.2
kill "$tail_pid" 2>/dev/null || true

echo "== signer state after the run"
"$BIN/tmkms-softsign" state show -c "$work/kms/tmkms.toml"
if [[ $status -ne 0 ]]; then
  echo "demo FAILED (node simulator exit $status); signer log: $work/kms/signer.log" >&2
  exit "$status"
fi
echo "demo OK; files kept in $work"
