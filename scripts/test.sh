#!/usr/bin/env bash
# Every test of the project, as CI runs it:
#   ./scripts/test.sh
# Format and lint checks, then the whole workspace's tests (unit, property,
# integration against the real binaries, crash and fault injection).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-2}"

step "all tests passed"
