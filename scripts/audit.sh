#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (configuration: deny.toml):
#   ./scripts/audit.sh
# advisories (RustSec: vulnerabilities, unmaintained and unsound crates),
# licenses (allow-list), bans (duplicate versions warn, wildcards) and
# sources (crates.io only).
#
# The RustSec advisory database is a git repository on GitHub. When it cannot
# be fetched (no route to GitHub), a local copy is used if there is one; set
# ADVISORY_DB=/path/to/advisory-db (a clone of github.com/rustsec/advisory-db)
# to provide one. Without any copy the advisories check is skipped with a
# loud note and the other checks still run; REQUIRE_ADVISORIES=1 makes that an
# error instead.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-~0.20}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# `cargo install` puts tools here; a fresh CARGO_HOME is not on PATH yet.
export PATH="$cargo_home/bin:$PATH"

if ! command -v cargo-deny >/dev/null; then
    echo "== installing cargo-deny ($CARGO_DENY_VERSION)"
    cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi
cargo deny --version

# The checks below run offline, and `cargo metadata` then needs every package
# of the lock file in the local registry — also those only other platforms
# build (Windows console crates, wasm shims), which no build here downloads.
# Fetch them all first, so the audit passes on a machine with an empty cache.
echo "== cargo fetch --locked (every package of Cargo.lock, all platforms)"
cargo fetch --locked

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

advisories=yes
if cargo deny --locked fetch db >"$log" 2>&1; then
    :
else
    # cargo-deny names the directory it wanted to clone into.
    db_dir="$(grep -o '/[^" ]*/advisory-dbs/advisory-db-[0-9a-f]*' "$log" | head -n 1 || true)"
    if [[ -n "$db_dir" && ! -d "$db_dir/crates" && -n "${ADVISORY_DB:-}" ]]; then
        echo "== advisory database not reachable; seeding $db_dir from $ADVISORY_DB"
        rm -rf "$db_dir"
        git clone --quiet "$ADVISORY_DB" "$db_dir"
    fi
    if [[ -n "$db_dir" && -d "$db_dir/crates" ]]; then
        echo "== advisory database not reachable; using the local copy in $db_dir"
    else
        cat "$log" >&2
        if [[ "${REQUIRE_ADVISORIES:-0}" == 1 ]]; then
            echo "error: the advisory database cannot be fetched and there is no local copy (set ADVISORY_DB)" >&2
            exit 1
        fi
        advisories=no
    fi
fi

db=""
for dir in "$cargo_home"/advisory-dbs/advisory-db-*; do
    [[ -d "$dir/crates" ]] || continue
    db="$dir"
    echo "== advisory database $db: commit $(git -C "$db" log -1 --format='%h of %cs' 2>/dev/null || echo unknown)"
done

if [[ "$advisories" == yes ]]; then
    echo "== cargo deny check (advisories, bans, licenses, sources)"
    cargo deny --offline --locked check
    # cargo-audit reads the same database. It runs where it is installed;
    # this script does not install it, as cargo-deny's advisories check
    # covers the same ground.
    if command -v cargo-audit >/dev/null && [[ -n "$db" ]]; then
        echo "== cargo audit"
        # The same reasoned exceptions as deny.toml (one list, kept there).
        ignores=()
        while read -r id; do ignores+=(--ignore "$id"); done \
            < <(grep -o 'RUSTSEC-[0-9]*-[0-9]*' deny.toml | sort -u)
        cargo audit --no-fetch --db "$db" --file Cargo.lock "${ignores[@]}"
    fi
else
    echo "== cargo deny check bans licenses sources"
    echo "!! ADVISORIES NOT CHECKED: the RustSec database could not be fetched and no local copy exists" >&2
    cargo deny --offline --locked check bans licenses sources
fi
