#!/usr/bin/env bash
# What metrics cost a signature: the node simulator sends N sequential sign
# requests to the release tmkms-softsign over a Unix socket (state on this
# disk, fdatasync per signature) in three interleaved modes per round:
#   off    — no metrics_listen;
#   on     — metrics served (nobody scrapes);
#   abuse  — metrics served while scripts/metrics_abuse.py holds IDLE idle
#            connections, sends malformed requests and trickles a slow
#            request, and a scraper reads /metrics every 100 ms.
# Prints every run, then the medians per mode (p50/p99 µs, throughput) and
# the signer's peak RSS; last, the in-process cost of recording one
# signature's events (examples/observe_cost.rs), which the end-to-end
# figures are too noisy to resolve.
#
#   N=3000 ROUNDS=5 IDLE=10000 ./scripts/bench-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE:-10000}
PROTOCOL=${PROTOCOL:-v0.38}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
BIN=$PWD/target/release
mkdir -p "$BENCH_DIR"
results="$BENCH_DIR/metrics-results.$$"
: >"$results"
echo "state on: $(df -h --output=source,fstype,target "$BENCH_DIR" | tail -1)"
ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one_run() {
  local mode=$1 work port helpers=()
  work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
  port=$(free_port)
  "$BIN/tmkms-softsign" init -c "$work/tmkms.toml" --chain-id bench-chain \
    --address "unix://$work/node.sock" --protocol-version "$PROTOCOL" >/dev/null 2>&1
  [[ $mode != off ]] && sed -i "1i metrics_listen = \"127.0.0.1:$port\"" "$work/tmkms.toml"
  TMKMS_LOG=warn "$BIN/tmkms-softsign" start -c "$work/tmkms.toml" 2>"$work/signer.log" &
  local signer=$!
  if [[ $mode == abuse ]]; then
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    python3 scripts/metrics_abuse.py "127.0.0.1:$port" --idle "$IDLE" >"$work/abuse.out" &
    helpers+=($!)
    (while :; do curl -s -m 2 "http://127.0.0.1:$port/metrics" >/dev/null || true; sleep 0.1; done) &
    helpers+=($!)
    sleep 3  # the idle connections are open before the first request
  fi
  "$BIN/tmkms-node-sim" bench --listen "unix://$work/node.sock" --chain-id bench-chain \
    --protocol "$PROTOCOL" -n "$N" --json >"$work/bench.out"
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$signer/status")
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${helpers[@]}"; do wait "$pid" 2>/dev/null || true; done
  kill "$signer" 2>/dev/null || true
  wait "$signer" 2>/dev/null || true
  if grep -q panicked "$work/signer.log"; then
    echo "the signer panicked ($mode):" >&2; cat "$work/signer.log" >&2; exit 1
  fi
  local json
  json=$(grep '^{' "$work/bench.out" | tail -1)
  echo "$mode $hwm $json" >>"$results"
  echo "$mode: $json peak_rss_kib=$hwm $(cat "$work/abuse.out" 2>/dev/null || true)"
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  for mode in off on abuse; do one_run "$mode"; done
done

python3 - "$results" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, hwm, js = line.split(" ", 2)
    runs.setdefault(mode, []).append((int(hwm), json.loads(js)))
print("\nmedians over %d runs per mode:" % len(runs.get("off", [])))
print("  mode    p50_us  p99_us  req/s    peak_rss_kib")
base = None
for mode in ("off", "on", "abuse"):
    if mode not in runs:
        continue
    r = runs[mode]
    p50 = statistics.median(j["p50_us"] for _, j in r)
    p99 = statistics.median(j["p99_us"] for _, j in r)
    rps = statistics.median(j["throughput_rps"] for _, j in r)
    rss = statistics.median(h for h, _ in r)
    base = base if base is not None else p50
    print(f"  {mode:<6} {p50:7.0f} {p99:7.0f} {rps:8.0f} {rss:10.0f}   (p50 {p50 - base:+.0f} us vs off)")
EOF
rm -f "$results"

echo
echo "what recording one signature's events costs, in process:"
cargo run --release -q -p tmkms-light-metrics --example observe_cost
