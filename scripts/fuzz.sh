#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time (the CI fuzz smoke).
#
#   scripts/fuzz.sh [seconds_per_target]      # default 60
#
# Environment:
#   FUZZ_TARGETS="session guard_sequence"     only these targets (default: all)
#   FUZZ_SANITIZER=address                    cargo-fuzz sanitizer (default: none)
#
# The code under test is safe Rust (the core crate denies `unsafe`), so the
# default builds without AddressSanitizer: about six times more executions
# per second, and panics, failed assertions, overflows (overflow-checks are
# on), hangs and memory growth are found all the same. FUZZ_SANITIZER=address
# additionally checks the unsafe code inside dependencies.
#
# Each target starts from fuzz/seeds/<target>/ (generated from real requests
# and files, see fuzz/seed-gen) plus fuzz/regressions/<target>/ (inputs that
# once crashed, kept so they keep passing), merged into the target's working
# corpus fuzz/corpus/<target>/ (not committed). A crash, a timeout (an input
# taking over 10 s) or running out of memory (2 GiB; with AddressSanitizer
# also a single allocation above 64 MiB) is a finding: its input is
# kept under fuzz/artifacts/<target>/, the script says how to reproduce it,
# carries on with the other targets and exits 1 at the end.
#
# cargo-fuzz's sanitizers need a nightly compiler flag (-Z sanitizer);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept it. The default build
# (no sanitizer) uses stable flags only.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [seconds_per_target]  (a positive whole number, default 60)" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"

all_targets=(privval_frame privval_decode session guard_sequence state_record state_json config_toml key_file
             nitro_attestation kms_envelope kms_http_response sgx_sealed_blob enclave_state_reply enclave_control
             etcd_answer)
read -r -a targets <<< "${FUZZ_TARGETS:-${all_targets[*]}}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

# One line per target: name, status, execs, exec/s, cov, ft, corpus, peak RSS.
summary=()
failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    for dir in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
        if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
            cp -f "$dir"/* "$corpus"/
        fi
    done
    log="$(mktemp -t "fuzz-$target.XXXXXX.log")"
    marker="$(mktemp -t "fuzz-$target.XXXXXX.start")"
    echo "== $target: ${seconds}s (log: $log)"
    status=ok
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" \
        -timeout=10 \
        -malloc_limit_mb=64 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$log" 2>&1; then
        status=FAILED
    fi

    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)"
    last="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")"
    corp="$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<< "$last")"
    summary+=("$(printf '%-20s %-7s %12s %8s %7s %7s %10s %6s' \
        "$target" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}")")

    if [ "$status" != ok ]; then
        failed+=("$target")
        echo "!! $target found a problem; end of its log:"
        tail -n 40 "$log" | sed 's/^/   | /'
        found="$(find "$artifacts" -type f -newer "$marker" | head -n1)"
        if [ -n "$found" ]; then
            echo "!! input kept at $found"
            if [ "$(stat -c %s "$found")" -le 4096 ]; then
                echo "!! (base64, to recreate it from a CI log: base64 -d > input)"
                base64 -w 76 "$found" | sed 's/^/   /'
            fi
            echo "!! reproduce:  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $target $found"
            echo "!! once fixed, keep it:  mkdir -p fuzz/regressions/$target && cp $found fuzz/regressions/$target/"
        else
            echo "!! no crash input was written (see the log above: build failure or libFuzzer error)"
        fi
    fi
    rm -f "$marker"
done

echo
echo "== fuzz summary (${seconds}s per target)"
printf '%-20s %-7s %12s %8s %7s %7s %10s %6s\n' target status execs exec/s cov ft corpus rss_mb
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "no findings"
