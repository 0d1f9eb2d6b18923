#!/usr/bin/env bash
# Every test of the project, as CI runs it:
#   ./scripts/test.sh
# 1. format and lint checks, the declared rust-version, unused
#    dependencies (cargo-machete), and that the enclaves link no host-only
#    crate;
# 2. the workspace's tests: unit, property and exhaustive guard checks,
#    integration tests of the real binaries against the node simulator
#    (conformance per dialect, SIGKILL crash test, storage/network faults);
# 3. the real SGX enclave build for x86_64-fortanix-unknown-sgx, converted,
#    signed and built twice to check the MRENCLAVE is reproducible
#    (scripts/sgx-build.sh --check-reproducible);
# 4. the real-CometBFT end-to-end suite (scripts/e2e.sh);
# 5. a fuzzing smoke run of every fuzz target (scripts/fuzz.sh);
# 6. the dependency audit (scripts/audit.sh: advisories, licenses, bans);
# 7. right after the workspace tests: the high-availability chaos suite
#    (scripts/ha.sh, HA_SECONDS).
#
# The Nitro tests need the KMS emulator, which this script starts
# (scripts/localstack.sh); the HA tests need etcd, which it installs
# (scripts/install-etcd.sh).
# Skip slow parts locally with SKIP_SGX_BUILD=1, SKIP_E2E=1, SKIP_FUZZ=1,
# SKIP_AUDIT=1, SKIP_HA=1;
# FUZZ_SECONDS (default 30) is the fuzzing time per target.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n== [%4ds] %s\n' "$((SECONDS - started))" "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

# Tests only ever talk to loopback. The Nitro helper asks the instance
# metadata service for credentials when none are in its environment; its
# default address (169.254.169.254) is not loopback, so pin it to a closed
# loopback port for everything this script starts.
export AWS_EC2_METADATA_SERVICE_ENDPOINT="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://127.0.0.1:1}"
case "$AWS_EC2_METADATA_SERVICE_ENDPOINT" in
  http://127.0.0.1:*|http://localhost:*|http://\[::1\]:*) ;;
  *) echo "AWS_EC2_METADATA_SERVICE_ENDPOINT=$AWS_EC2_METADATA_SERVICE_ENDPOINT is not loopback; tests must not leave this machine" >&2; exit 1 ;;
esac

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy (sgx runner, --features hardware)"
# The SGX runner's real-enclave loader is off by default; lint it so it keeps
# compiling. aesm-client needs protoc to build.
command -v protoc >/dev/null || (apt-get update && apt-get install -y protobuf-compiler)
cargo clippy -p tmkms-light-sgx-runner --features hardware --all-targets --locked -- -D warnings

step "minimum supported Rust (rust-version of Cargo.toml)"
# The declared rust-version must build: check the libraries and binaries
# with exactly that toolchain (its own target directory, kept between runs).
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
rustup toolchain install "$msrv" --profile minimal >/dev/null
CARGO_TARGET_DIR=target/msrv cargo +"$msrv" check --workspace --locked

step "unused dependencies (cargo-machete)"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[[ -x "$cargo_bin/cargo-machete" ]] || cargo install cargo-machete --locked --version 0.9.2
"$cargo_bin/cargo-machete"

step "enclave binaries link no host-only crate"
./scripts/check-enclave-deps.sh
./scripts/ops-check.sh  # alert rules (promtool), dashboard metric names, systemd units

step "KMS emulator for the Nitro tests (LocalStack, host mode)"
# The Nitro tests call KMS Decrypt with an attested Recipient against it;
# installs into ~/.cache/tmkms-localstack on first use (~2-3 min).
./scripts/localstack.sh start
trap './scripts/localstack.sh stop >/dev/null 2>&1 || true' EXIT
export TMKMS_TEST_KMS_ENDPOINT="http://127.0.0.1:${LOCALSTACK_PORT:-4566}"
export TMKMS_REQUIRE_KMS=1

step "etcd for the high-availability tests"
# A pinned etcd 3.6 release, built with go install into the cache on first
# use (~2 min); the HA tests start their own TLS clusters on loopback and
# fail (instead of skipping) when it is missing.
TMKMS_ETCD_BIN_DIR=$(./scripts/install-etcd.sh | tail -1)
export TMKMS_ETCD_BIN_DIR
export TMKMS_REQUIRE_ETCD=1

step "cargo test (workspace)"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-2}"

if [[ "${SKIP_HA:-0}" != 1 ]]; then
  step "high-availability chaos suite (${HA_SECONDS:-240} s)"
  # Signers killed, paused, clock-jumped; the etcd leader killed, a member
  # cut off, the quorum lost and regained; no two conflicting signatures.
  ./scripts/ha.sh
fi

step "exhaustive guard check (sequence counts)"
# Re-run the binary the workspace tests built (a `cargo test -p` here would
# rebuild dependencies with other features) to print its counts.
guard_bin=$(find target/debug/deps -maxdepth 1 -type f -executable -name 'exhaustive_guard-*' -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2)
"$guard_bin" --nocapture 2>&1 | grep -E "exhaustive guard check|test result"

if [[ "${SKIP_SGX_BUILD:-0}" != 1 ]]; then
  step "real SGX enclave build"
  # Builds, converts and signs the enclave for x86_64-fortanix-unknown-sgx
  # twice, in two target directories, and fails unless the MRENCLAVE matches.
  ./scripts/sgx-build.sh --check-reproducible
  step "SGX host simulation with the real enclave's SIGSTRUCT"
  # The simulation takes its identity (MRENCLAVE, MRSIGNER, ISVSVN) from the
  # enclave just built and signed: init, then unseal with pubkey.
  sim_home=$(mktemp -d)
  target/debug/tmkms-light-sgx-runner init -c "$sim_home/tmkms.toml" --mode simulation \
    --enclave target/debug/tmkms-light-sgx-app --sigstruct target/sgx/enclave/tmkms-light-sgx-app.sig \
    --address "unix://$sim_home/node.sock" -p hex > "$sim_home/init.out" 2> "$sim_home/init.log"
  target/debug/tmkms-light-sgx-runner pubkey -c "$sim_home/tmkms.toml" -p hex > "$sim_home/pubkey.out" 2> "$sim_home/pubkey.log"
  cmp "$sim_home/init.out" "$sim_home/pubkey.out"
  grep -o "mrenclave=[0-9a-f]*" "$sim_home/pubkey.log" | head -1
  rm -rf "$sim_home"
fi

step "metrics scraped by a real Prometheus (softsign and the SGX simulation)"
# Uses the debug binaries of the workspace tests; the SGX part needs the
# SIGSTRUCT of the enclave build above.
require_sgx=1
[[ "${SKIP_SGX_BUILD:-0}" == 1 ]] && require_sgx=0
E2E_SKIP_BUILD=1 BIN=target/debug REQUIRE_SGX=$require_sgx ./scripts/metrics-e2e.sh

if [[ "${SKIP_E2E:-0}" != 1 ]]; then
  step "end to end with real CometBFT nodes"
  # Reuse the signer the workspace tests just built (dev profile, optimised)
  # instead of a second, release build.
  E2E_SKIP_BUILD=1 TMKMS_BIN_DIR="$PWD/target/debug" ./scripts/e2e.sh
fi

if [[ "${SKIP_FUZZ:-0}" != 1 ]]; then
  step "fuzzing smoke run (${FUZZ_SECONDS:-30} s per target)"
  ./scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi

if [[ "${SKIP_AUDIT:-0}" != 1 ]]; then
  step "dependency audit (with an empty cargo registry, as on a fresh machine)"
  # scripts/fresh-caches.sh points CARGO_HOME at an empty directory, so the
  # audit proves on every run that it fetches what it needs itself.
  KEEP_TOOLS=1 ./scripts/fresh-caches.sh ./scripts/audit.sh
fi

step "all tests passed"
