#!/usr/bin/env bash
# High-availability chaos suite: 2-3 tmkms-softsign signers of one validator
# on a 3-member etcd cluster (TLS, client certificates, loopback), driven by
# the node simulator (one node, then two sentries), with faults at random
# moments: signers SIGKILLed and SIGSTOPped/SIGCONTed, a signer's clock
# jumped (libfaketime), the etcd leader SIGKILLed, a member cut off from its
# clients, the quorum lost and regained. The judge is a ledger of every
# signature any signer returned; one conflict at a height/round/step fails.
#
#   ./scripts/ha.sh                       # HA_SECONDS=240 split over two runs
#   HA_SECONDS=600 HA_SEED=42 ./scripts/ha.sh
#   HA_RUNS="2:1 3:2 3:1" ./scripts/ha.sh  # signers:sentries per run
#
# HA_SEED fixes the fault schedule (printed; the same seed gives the same
# schedule); without it every run draws one. HA_MIN_FAULTS (default
# HA_SECONDS/2) is the floor of faults injected over all runs; fewer fails.
# HA_PROFILE=release builds release binaries (default: the dev profile the
# workspace tests build, reused). HA_OUT keeps the homes, logs and
# summary.json of each run (default target/ha-chaos). SIGNER_BIN overrides
# the signer binary (e.g. a mutated build to see the suite fail).
set -euo pipefail
cd "$(dirname "$0")/.."

HA_SECONDS=${HA_SECONDS:-240}
HA_RUNS=${HA_RUNS:-"2:1 3:2"}
HA_MIN_FAULTS=${HA_MIN_FAULTS:-$((HA_SECONDS / 2))}
HA_PROFILE=${HA_PROFILE:-dev}
HA_OUT=${HA_OUT:-$PWD/target/ha-chaos}

TMKMS_ETCD_BIN_DIR=$(./scripts/install-etcd.sh | tail -1)
export TMKMS_ETCD_BIN_DIR

have_faketime() { compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || [[ -f /usr/lib/faketime/libfaketime.so.1 ]]; }
if ! have_faketime && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "ha: installing libfaketime (Debian package faketime) for the clock jumps"
  apt-get install -y -q faketime >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q faketime >/dev/null; } || true
fi
if ! have_faketime; then
  if [[ "${HA_REQUIRE_FAKETIME:-0}" == 1 ]]; then
    echo "ha: FAILED: libfaketime missing (apt-get install faketime)" >&2; exit 2
  fi
  echo "ha: WARNING: libfaketime missing: runs without clock jumps" >&2
fi

profile_dir=debug
cargo_profile=()
if [[ $HA_PROFILE == release ]]; then profile_dir=release; cargo_profile=(--release); fi
cargo build -q "${cargo_profile[@]}" -p tmkms-softsign -p tmkms-node-sim --bin tmkms-softsign --bin tmkms-ha-chaos
SIGNER_BIN=${SIGNER_BIN:-$PWD/target/$profile_dir/tmkms-softsign}
DRIVER=$PWD/target/$profile_dir/tmkms-ha-chaos

read -r -a runs <<<"$HA_RUNS"
per_run=$((HA_SECONDS / ${#runs[@]}))
(( per_run >= 10 )) || { echo "ha: HA_SECONDS=$HA_SECONDS is too short for ${#runs[@]} runs" >&2; exit 2; }
base_seed=${HA_SEED:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}
echo "ha: seed $base_seed, ${#runs[@]} runs of $per_run s, fault floor $HA_MIN_FAULTS"

rm -rf "$HA_OUT"
mkdir -p "$HA_OUT"
total_faults=0
status=0
i=0
for run in "${runs[@]}"; do
  signers=${run%%:*}
  sentries=${run##*:}
  seed=$((base_seed + i))
  out="$HA_OUT/run-$i-s$signers-n$sentries"
  echo
  echo "== ha run $i: $signers signers, $sentries node(s), $per_run s, seed $seed"
  rc=0
  "$DRIVER" --signer-bin "$SIGNER_BIN" --signers "$signers" --sentries "$sentries" \
    --seconds "$per_run" --seed "$seed" --out "$out" || rc=$?
  if [[ -f $out/summary.json ]]; then
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["faults_total"])' "$out/summary.json")
    total_faults=$((total_faults + n))
  fi
  if (( rc != 0 )); then
    echo "ha: run $i FAILED (exit $rc); logs in $out" >&2
    status=1
  fi
  i=$((i + 1))
done

echo
echo "ha: $total_faults faults injected over ${#runs[@]} runs (floor $HA_MIN_FAULTS)"
if (( status != 0 )); then
  echo "ha: FAILED: conflicting or invalid signatures, or a run could not start (see above)" >&2
  exit 1
fi
if (( total_faults < HA_MIN_FAULTS )); then
  echo "ha: FAILED: fewer faults than the floor" >&2
  exit 1
fi
echo "ha: PASSED: no conflicting signature"
