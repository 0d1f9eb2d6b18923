#!/usr/bin/env bash
# Runs a command as it would run on a machine that never built this project:
# every cache the project's scripts read or install into points at a new,
# empty temporary directory, so a step that silently relies on something an
# earlier build left behind fails here instead of on a user's fresh machine.
#
#   ./scripts/fresh-caches.sh                      # ./scripts/audit.sh
#   ./scripts/fresh-caches.sh ./scripts/test.sh    # everything (slow: installs all tools)
#   KEEP=1 ./scripts/fresh-caches.sh ...           # keep the directories for a look
#   KEEP_TOOLS=1 ./scripts/fresh-caches.sh ...     # empty caches, but reuse installed
#                                                  # cargo tools (cargo-deny, ...)
#
# scripts/test.sh runs its audit step this way (KEEP_TOOLS=1), so CI checks
# on every run that the audit needs nothing a previous build downloaded.
# For the whole suite, run it on a clean clone (the checkout's target/ is
# used as is, as test.sh reads binaries from target/debug).
#
# Emptied: CARGO_HOME (registry, git checkouts, installed tools, advisory
# database), GOPATH / GOMODCACHE / GOCACHE (CometBFT
# builds), XDG_CACHE_HOME (the KMS emulator's venv, node binaries, SGX
# libunwind), PIP_CACHE_DIR. Kept: the toolchains themselves (rustup's
# RUSTUP_HOME with its components, the Go and Python installations), as a
# fresh machine has them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -eq 0 ]]; then
  set -- ./scripts/audit.sh
fi

fresh=$(mktemp -d "${TMPDIR:-/tmp}/tmkms-fresh.XXXXXX")
if [[ "${KEEP:-0}" != 1 ]]; then
  # Go marks its module cache read-only; make it removable first.
  trap 'chmod -R u+w "$fresh" 2>/dev/null; rm -rf "$fresh"' EXIT
fi
mkdir -p "$fresh"/{cargo,go,gocache,cache,pip}

# rustup's proxies (cargo, rustc) live in the old CARGO_HOME/bin; keep them
# reachable, but put the new CARGO_HOME/bin first so tools installed during
# the run are the ones used. Tools the old CARGO_HOME holds (cargo-deny,
# cargo-fuzz, ...) are hidden: only the rustup proxies are linked in.
old_cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
proxies="$fresh/proxies"
mkdir -p "$proxies"
for tool in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  [[ -x "$old_cargo_bin/$tool" ]] && ln -s "$old_cargo_bin/$tool" "$proxies/$tool"
done
if [[ "${KEEP_TOOLS:-0}" == 1 ]]; then
  path_without_old_bin=$PATH
else
  path_without_old_bin=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$old_cargo_bin" | paste -sd: -)
fi

export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export CARGO_HOME="$fresh/cargo"
export GOPATH="$fresh/go"
export GOMODCACHE="$fresh/go/pkg/mod"
export GOCACHE="$fresh/gocache"
export XDG_CACHE_HOME="$fresh/cache"
export PIP_CACHE_DIR="$fresh/pip"
export E2E_CACHE="$fresh/cache/tmkms-e2e"
export PATH="$CARGO_HOME/bin:$proxies:$path_without_old_bin"

echo "== fresh caches under $fresh (CARGO_HOME, GOPATH, GOCACHE, XDG_CACHE_HOME, PIP_CACHE_DIR)"
echo "== running: $*"
started=$SECONDS
status=0
"$@" || status=$?
echo "== $* exited $status after $((SECONDS - started)) s with empty caches"
exit "$status"
