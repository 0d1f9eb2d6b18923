#!/usr/bin/env bash
# Side by side: tmkms-light's tmkms-softsign against tmkms 0.15 (softsign
# provider). Each round runs ours, then tmkms, each against a fresh
# `tmkms-node-sim bench` over TCP + SecretConnection with N sequential sign
# requests, every signature verified; both keep their state files under
# BENCH_DIR (on this disk, not tmpfs). Prints every run, then the medians of
# p50/p99/throughput per signer and the ratios tmkms / ours.
#
# Not the same work, and the output says so:
#   * ours writes its state durably (fdatasync) before every signature;
#     tmkms 0.15 writes a temporary file and renames it, with no fsync at all;
#   * tmkms 0.15 logs one info line per signature (its default; here to a
#     file), ours runs at TMKMS_LOG=warn as in scripts/bench.sh.
#
# Protocol: tmkms 0.15 decodes v0.38 votes with the v0.34 Vote message and
# never returns an extension signature (not even with the chain's
# sign_extensions = true), so the simulator's v0.38 bench, which checks the
# extension signature of every non-nil precommit, rejects its first one.
# Both signers therefore speak v0.34 here, where both are verified in full.
#
# tmkms 0.15 is installed once into TMKMS_ROOT (outside this repository and
# its workspace, kept between runs; the first build takes about 5 minutes on
# 2 cores).
#
#   N=3000 ROUNDS=5 ./scripts/bench-tmkms.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
ROUNDS=${ROUNDS:-5}
PROTOCOL=${PROTOCOL:-v0.34}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
TMKMS_ROOT=${TMKMS_ROOT:-$HOME/.cache/tmkms-light/tmkms-0.15}
TMKMS=$TMKMS_ROOT/bin/tmkms
CHAIN=bench-chain

fail() {
  echo "bench-tmkms: $*" >&2
  exit 1
}

if [[ $("$TMKMS" version 2>/dev/null) != 0.15.0 ]]; then
  echo "installing tmkms 0.15.0 into $TMKMS_ROOT"
  # --locked: tmkms's own Cargo.lock, which builds as it is with Rust 1.95.
  cargo install tmkms --version 0.15.0 --features softsign --locked --root "$TMKMS_ROOT"
fi

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
BIN=$PWD/target/release
mkdir -p "$BENCH_DIR"
results=$(mktemp "$BENCH_DIR/tmkms-results.XXXXXX")

# Processes of the run in progress, ended on any exit; its directory is
# removed when the benchmark is interrupted (kept when a run fails, for its
# logs).
running=()
current=''
cleanup() {
  for pid in "${running[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${running[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$results"
}
trap cleanup EXIT
trap 'echo "bench-tmkms: a command failed at line $LINENO" >&2' ERR
trap '[[ -z $current || -n "${KEEP:-}" ]] || rm -rf "$current"; exit 130' INT TERM

# configure_<signer> WORK ADDR: keys, empty state and config under WORK for
# a signer that connects to the node at ADDR.
configure_ours() {
  "$BIN/tmkms-softsign" init -c "$1/tmkms.toml" --chain-id "$CHAIN" --address "$2" \
    --protocol-version "$PROTOCOL" >"$1/init.log" 2>&1 || fail "tmkms-softsign init failed: $(cat "$1/init.log")"
}

configure_tmkms() {
  mkdir -p "$1/secrets" "$1/state"
  "$TMKMS" softsign keygen -t consensus "$1/secrets/consensus.key" >"$1/init.log" 2>&1 &&
    "$TMKMS" softsign keygen "$1/secrets/identity.key" >>"$1/init.log" 2>&1 ||
    fail "tmkms softsign keygen failed: $(cat "$1/init.log")"
  cat >"$1/tmkms.toml" <<EOF
[[chain]]
id = "$CHAIN"
key_format = { type = "bech32", account_key_prefix = "cosmospub", consensus_key_prefix = "cosmosvalconspub" }
state_file = "$1/state/consensus.json"

[[providers.softsign]]
chain_ids = ["$CHAIN"]
key_type = "consensus"
path = "$1/secrets/consensus.key"

[[validator]]
chain_id = "$CHAIN"
addr = "$2"
secret_key = "$1/secrets/identity.key"
protocol_version = "$PROTOCOL"
EOF
}

# start_<signer> WORK: runs the signer in the foreground.
start_ours() { TMKMS_LOG=warn exec "$BIN/tmkms-softsign" start -c "$1/tmkms.toml"; }
start_tmkms() { exec "$TMKMS" start -c "$1/tmkms.toml"; }

# bench_one SIGNER LABEL: one simulator run against a fresh SIGNER; appends
# "SIGNER JSON" to the results.
bench_one() {
  local signer=$1 label=$2 work sim pid addr='' ended='' status=0
  work=$(mktemp -d "$BENCH_DIR/$signer.XXXXXX")
  current=$work
  : >"$work/bench.out"  # exists before the simulator opens it, for the wait below
  "$BIN/tmkms-node-sim" bench --listen tcp://127.0.0.1:0 --chain-id "$CHAIN" \
    --protocol "$PROTOCOL" -n "$N" --accept-timeout 30 --json >"$work/bench.out" 2>"$work/bench.err" &
  sim=$!
  running=("$sim")
  for _ in $(seq 200); do
    addr=$(sed -n 's/^listening on \(tcp:[^ ]*\).*/\1/p' "$work/bench.out")
    [[ -n $addr ]] && break
    kill -0 "$sim" 2>/dev/null || fail "the simulator did not start: $(cat "$work/bench.err")"
    sleep 0.05
  done
  [[ -n $addr ]] || fail "the simulator printed no address within 10 s"
  "configure_$signer" "$work" "$addr"
  "start_$signer" "$work" >"$work/signer.log" 2>&1 &
  pid=$!
  running+=("$pid")
  # Whichever ends first: the simulator (done) or the signer (it died).
  wait -n -p ended "$sim" "$pid" || status=$?
  if [[ $ended == "$pid" ]]; then
    fail "$signer died during the run; its log ($work/signer.log) ends:
$(tail -20 "$work/signer.log")"
  fi
  ((status == 0)) || fail "the simulator failed against $signer ($work):
$(cat "$work/bench.err")
signer log ends:
$(tail -20 "$work/signer.log")"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  running=()
  current=''
  local json
  json=$(grep '^{' "$work/bench.out" | tail -1)
  [[ -n $json ]] || fail "the simulator gave no result against $signer ($work)"
  echo "$signer $json" >>"$results"
  python3 -c 'import json, sys; print("{0:<22} p50 {1[p50_us]:>5} us  p99 {1[p99_us]:>5} us  max {1[max_us]:>6} us  {1[throughput_rps]:>6.0f} req/s".format(sys.argv[1], json.loads(sys.argv[2])))' \
    "$label" "$json"
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}

echo "state on: $(df -h --output=source,fstype,target "$BENCH_DIR" | tail -1)"
echo "ours built from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')"
echo "protocol $PROTOCOL for both (tmkms 0.15 cannot pass a v0.38 bench: no extension signatures)"
echo "ours: fdatasync before every signature; tmkms 0.15: no fsync of its state file"
echo "$N requests per run over TCP + SecretConnection, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  bench_one ours "round $round ours"
  bench_one tmkms "round $round tmkms 0.15"
done

python3 - "$results" <<'EOF'
import json, statistics, sys

runs = {"ours": [], "tmkms": []}
for line in open(sys.argv[1]):
    signer, result = line.split(" ", 1)
    runs[signer].append(json.loads(result))

def median(signer, field):
    return statistics.median(r[field] for r in runs[signer])

print(f"\nmedians of {len(runs['ours'])} runs each:")
for signer, name in (("ours", "tmkms-softsign"), ("tmkms", "tmkms 0.15")):
    print(f"  {name:<15} p50 {median(signer, 'p50_us'):>6.0f} us  "
          f"p99 {median(signer, 'p99_us'):>6.0f} us  "
          f"{median(signer, 'throughput_rps'):>6.0f} req/s")
for field in ("p50_us", "p99_us"):
    ratio = median("tmkms", field) / median("ours", field)
    print(f"  tmkms {field[:3]} / ours {field[:3]}: {ratio:.2f}x")
ratio = median("ours", "throughput_rps") / median("tmkms", "throughput_rps")
print(f"  ours req/s / tmkms req/s: {ratio:.2f}x")
EOF
