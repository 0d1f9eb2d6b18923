#!/usr/bin/env bash
# Benchmark: the node simulator sends N sequential sign requests to the real
# release signer. Per run it prints the end-to-end p50/p90/p99/max latency
# and throughput, the signer's own per-phase breakdown (read+decrypt,
# decode, guard, durable write, signing, encode+encrypt+write; from its JSON
# log line per signature), and the floor measured in the same run by
# examples/floor.rs (a loopback round trip over the same transport, one
# signature, one state write) with the ratio to it; then the medians.
#
# The state file lives under BENCH_DIR (default: a directory on the same
# disk as the repository, not tmpfs), so every request pays a real flush.
#
#   N=3000 TRANSPORT=unix PROTOCOL=v0.38 RUNS=5 ./scripts/bench.sh
#   TRANSPORT=tcp ./scripts/bench.sh        # SecretConnection over loopback
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
RUNS=${RUNS:-5}
TRANSPORT=${TRANSPORT:-unix}
PROTOCOL=${PROTOCOL:-v0.38}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
FLOOR_N=${FLOOR_N:-$N}

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
cargo build --release -q -p tmkms-light --example floor
BIN=$PWD/target/release
mkdir -p "$BENCH_DIR"
echo "state on: $(df -h --output=source,fstype,target "$BENCH_DIR" | tail -1)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

runs=()
for run in $(seq "$RUNS"); do
  work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
  runs+=("$work")
  "$BIN/examples/floor" "$work" "$FLOOR_N" >"$work/floor.txt"
  if [[ $TRANSPORT == unix ]]; then listen="unix://$work/node.sock"; else listen="tcp://127.0.0.1:0"; fi
  "$BIN/tmkms-node-sim" bench --listen "$listen" --chain-id bench-chain --protocol "$PROTOCOL" \
    -n "$N" --json >"$work/bench.out" 2>"$work/sim.err" &
  sim=$!
  pids=("$sim")
  for _ in $(seq 100); do grep -q '^listening on ' "$work/bench.out" 2>/dev/null && break; sleep 0.05; done
  addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/bench.out" | head -1)
  "$BIN/tmkms-softsign" init -c "$work/tmkms.toml" --chain-id bench-chain --address "$addr" \
    --protocol-version "$PROTOCOL" >/dev/null 2>&1
  TMKMS_LOG=${TMKMS_LOG:-info} "$BIN/tmkms-softsign" start -c "$work/tmkms.toml" \
    --log-format json 2>"$work/signer.log" &
  signer=$!
  pids+=("$signer")
  if ! wait "$sim"; then
    echo "run $run: the node simulator failed:" >&2
    cat "$work/bench.out" "$work/signer.log" >&2
    exit 1
  fi
  kill "$signer" 2>/dev/null || true
  wait "$signer" 2>/dev/null || true
  grep '^{' "$work/bench.out" >"$work/bench.json"
done
python3 scripts/bench_report.py "$TRANSPORT" "${runs[@]}"
[[ -n "${KEEP:-}" ]] || rm -rf "${runs[@]}"
