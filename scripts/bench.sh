#!/usr/bin/env bash
# Benchmark: the node simulator sends N sequential sign requests to the real
# release signer and prints p50/p90/p99/max latency and throughput. The state
# file lives under BENCH_DIR (default: a directory on the same disk as the
# repository, not tmpfs), so every request pays a real fdatasync.
#
#   N=2000 TRANSPORT=unix PROTOCOL=v0.38 RUNS=5 ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
RUNS=${RUNS:-5}
TRANSPORT=${TRANSPORT:-unix}
PROTOCOL=${PROTOCOL:-v0.38}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
BIN=$PWD/target/release
mkdir -p "$BENCH_DIR"
echo "state on: $(df -h --output=source,fstype,target "$BENCH_DIR" | tail -1)"

for run in $(seq "$RUNS"); do
  work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
  if [[ $TRANSPORT == unix ]]; then listen="unix://$work/node.sock"; else listen="tcp://127.0.0.1:0"; fi
  "$BIN/tmkms-node-sim" bench --listen "$listen" --chain-id bench-chain --protocol "$PROTOCOL" \
    -n "$N" >"$work/bench.out" &
  sim=$!
  for _ in $(seq 100); do grep -q '^listening on ' "$work/bench.out" 2>/dev/null && break; sleep 0.05; done
  addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/bench.out" | head -1)
  "$BIN/tmkms-softsign" init -c "$work/tmkms.toml" --chain-id bench-chain --address "$addr" \
    --protocol-version "$PROTOCOL" >/dev/null 2>&1
  TMKMS_LOG=${TMKMS_LOG:-warn} "$BIN/tmkms-softsign" start -c "$work/tmkms.toml" 2>"$work/signer.log" &
  signer=$!
  wait "$sim"
  kill "$signer" 2>/dev/null || true
  wait "$signer" 2>/dev/null || true
  echo "run $run: $(grep -v '^listening' "$work/bench.out" | tr '\n' ' ')"
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
done
