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
# PROVIDERS (default softsign) may also name sgx-sim: the SGX runner and
# its enclave in host simulation (needs the signed enclave's SIGSTRUCT from
# scripts/sgx-build.sh); the providers take turns within each round, so
# their figures come from the same conditions. BUSY_POLL_US sets softsign's
# busy_poll_us. softsign-ha is softsign with [ha] on a 3-member etcd
# cluster with TLS on loopback (one compare-and-swap per new position;
# installs etcd with scripts/install-etcd.sh).
#
#   N=3000 TRANSPORT=unix PROTOCOL=v0.38 RUNS=5 ./scripts/bench.sh
#   TRANSPORT=tcp ./scripts/bench.sh        # SecretConnection over loopback
#   PROVIDERS="softsign sgx-sim" ./scripts/bench.sh
#   PROVIDERS="softsign softsign-ha" ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
RUNS=${RUNS:-5}
TRANSPORT=${TRANSPORT:-unix}
PROTOCOL=${PROTOCOL:-v0.38}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
FLOOR_N=${FLOOR_N:-$N}

PROVIDERS=${PROVIDERS:-softsign}
BUSY_POLL_US=${BUSY_POLL_US:-0}

cargo build --release -q -p tmkms-softsign -p tmkms-node-sim
cargo build --release -q -p tmkms-light --example floor
[[ " $PROVIDERS " != *" softsign-ha "* ]] || cargo build --release -q -p tmkms-light-etcd --example txn_floor
if [[ " $PROVIDERS " == *" sgx-sim "* ]]; then
  cargo build --release -q -p tmkms-light-sgx-runner -p tmkms-light-sgx-app
  SIGSTRUCT=${SIGSTRUCT:-$PWD/target/sgx/enclave/tmkms-light-sgx-app.sig}
  [[ -f $SIGSTRUCT ]] || { echo "bench: $SIGSTRUCT missing; build it with ./scripts/sgx-build.sh" >&2; exit 1; }
fi
BIN=$PWD/target/release
mkdir -p "$BENCH_DIR"
echo "state on: $(df -h --output=source,fstype,target "$BENCH_DIR" | tail -1)"

pids=()
cluster_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Closing its stdin stops the etcd cluster (it kills its members).
  if [[ -n $cluster_pid ]]; then exec 7>&-; wait "$cluster_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

if [[ " $PROVIDERS " == *" softsign-ha "* ]]; then
  TMKMS_ETCD_BIN_DIR=$(./scripts/install-etcd.sh | tail -1)
  export TMKMS_ETCD_BIN_DIR
  cluster_dir=$(mktemp -d "$BENCH_DIR/etcd.XXXXXX")
  mkfifo "$cluster_dir/control"
  "$BIN/tmkms-node-sim" etcd-cluster --dir "$cluster_dir" --members 3 \
    <"$cluster_dir/control" >"$cluster_dir/cluster.out" 2>"$cluster_dir/cluster.err" &
  cluster_pid=$!
  exec 7>"$cluster_dir/control"
  for _ in $(seq 600); do grep -q '^ready ' "$cluster_dir/cluster.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^ready ' "$cluster_dir/cluster.out" || { echo "bench: the etcd cluster did not start:" >&2; cat "$cluster_dir/cluster.err" >&2; exit 1; }
  echo "etcd: 3 members with TLS on loopback ($cluster_dir)"
fi

# ha_table: the [ha] table for the cluster started above.
ha_table() {
  python3 - "$cluster_dir/cluster.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
print("\n[ha]\nbackend = \"etcd\"")
print("endpoints = [" + ", ".join(json.dumps(e) for e in info["endpoints"]) + "]")
for field in ("ca_file", "cert_file", "key_file"):
    print(f"{field} = {json.dumps(info[field])}")
print('signer_id = "bench"')
PY
}

# init_signer PROVIDER WORK ADDR: a signer home in WORK for the simulator at ADDR.
init_signer() {
  case $1 in
    softsign|softsign-ha)
      "$BIN/tmkms-softsign" init -c "$2/tmkms.toml" --chain-id bench-chain --address "$3" \
        --protocol-version "$PROTOCOL" >/dev/null 2>&1
      [[ $BUSY_POLL_US == 0 ]] || sed -i "1i busy_poll_us = $BUSY_POLL_US" "$2/tmkms.toml"
      [[ $1 == softsign ]] || ha_table >>"$2/tmkms.toml" ;;
    sgx-sim)
      "$BIN/tmkms-light-sgx-runner" init -c "$2/tmkms.toml" --mode simulation \
        --enclave "$BIN/tmkms-light-sgx-app" --sigstruct "$SIGSTRUCT" --chain-id bench-chain \
        --address "$3" --protocol-version "$PROTOCOL" >/dev/null 2>"$2/init.log" ;;
    *) echo "bench: unknown provider $1 (softsign, softsign-ha, sgx-sim)" >&2; exit 2 ;;
  esac
}

start_signer() {
  local bin=tmkms-softsign
  [[ $1 == sgx-sim ]] && bin=tmkms-light-sgx-runner
  TMKMS_LOG=${TMKMS_LOG:-info} "$BIN/$bin" start -c "$2/tmkms.toml" --log-format json \
    2>"$2/signer.log" &
  signer=$!
}

declare -A runs
for run in $(seq "$RUNS"); do
  for provider in $PROVIDERS; do
    work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
    runs[$provider]+=" $work"
    "$BIN/examples/floor" "$work" "$FLOOR_N" >"$work/floor.txt"
    if [[ $TRANSPORT == unix ]]; then listen="unix://$work/node.sock"; else listen="tcp://127.0.0.1:0"; fi
    "$BIN/tmkms-node-sim" bench --listen "$listen" --chain-id bench-chain --protocol "$PROTOCOL" \
      -n "$N" --json >"$work/bench.out" 2>"$work/sim.err" &
    sim=$!
    pids=("$sim")
    for _ in $(seq 100); do grep -q '^listening on ' "$work/bench.out" 2>/dev/null && break; sleep 0.05; done
    addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/bench.out" | head -1)
    init_signer "$provider" "$work" "$addr"
    start_signer "$provider" "$work"
    pids+=("$signer")
    if ! wait "$sim"; then
      echo "run $run ($provider): the node simulator failed:" >&2
      cat "$work/bench.out" "$work/sim.err" "$work/signer.log" >&2
      exit 1
    fi
    kill "$signer" 2>/dev/null || true
    wait "$signer" 2>/dev/null || true
    grep '^{' "$work/bench.out" >"$work/bench.json"
    if [[ $provider == softsign-ha ]]; then
      # The etcd part of the floor: one compare-and-swap as the signer makes it.
      "$BIN/examples/txn_floor" "$cluster_dir/cluster.json" "$FLOOR_N" >"$work/etcd_floor.json"
    fi
  done
done
for provider in $PROVIDERS; do
  echo
  echo "== $provider over $TRANSPORT ($PROTOCOL, $N requests per run, busy_poll_us=$BUSY_POLL_US)"
  # shellcheck disable=SC2086
  python3 scripts/bench_report.py "$TRANSPORT" ${runs[$provider]}
done
if [[ -z "${KEEP:-}" ]]; then
  for provider in $PROVIDERS; do
    # shellcheck disable=SC2086
    rm -rf ${runs[$provider]}
  done
fi
