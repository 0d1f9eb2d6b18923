#!/usr/bin/env bash
# Builds a pinned etcd release (server and etcdctl) from the Go module proxy
# into a per-user cache, for the high-availability tests that run a real
# etcd cluster (tools/node-sim's `etcd` harness):
#   ./scripts/install-etcd.sh                  # install if missing; stdout: the bin dir
#   ./scripts/install-etcd.sh --print-bin-dir  # only print the bin dir (no install)
#   TMKMS_ETCD_BIN_DIR="$(./scripts/install-etcd.sh | tail -1)" cargo test ...
# Idempotent: with both binaries present at the pinned version it builds
# nothing and takes well under a second.
#
# Why a build module of our own: etcd's server module carries `replace`
# directives (to its sibling modules), so `go install module@version` refuses
# it. A throwaway main module that requires the pinned server and etcdctl
# modules resolves the same sibling versions (all tagged together) and lets
# `go install` build both main packages. Go names them after their import
# paths (`server`, `etcdctl`); the server is renamed `etcd`.
#
# Respects GOPATH, GOMODCACHE, GOCACHE, GOPROXY and GOTOOLCHAIN from the
# environment (scripts/fresh-caches.sh points them at empty directories).
set -euo pipefail

ETCD_VERSION=v3.6.16
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tmkms-light/etcd-${ETCD_VERSION}"
bin_dir="$cache_root/bin"

case "${1:-}" in
  --print-bin-dir) echo "$bin_dir"; exit 0 ;;
  "") ;;
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-etcd: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

# The version line both binaries print; anything else (a partial or older
# build in the cache) is rebuilt.
# (Output captured whole first: `grep -q` closing a pipe early would SIGPIPE
# the binary and, under pipefail, fail the check.)
installed_ok() {
  [[ -x "$bin_dir/etcd" && -x "$bin_dir/etcdctl" ]] || return 1
  local server ctl
  server=$("$bin_dir/etcd" --version 2>/dev/null) || return 1
  ctl=$("$bin_dir/etcdctl" version 2>/dev/null) || return 1
  grep -qx "etcd Version: ${ETCD_VERSION#v}" <<<"$server" || return 1
  grep -qx "etcdctl version: ${ETCD_VERSION#v}" <<<"$ctl" || return 1
}

if installed_ok; then
  echo "install-etcd: etcd ${ETCD_VERSION} already installed" >&2
  echo "$bin_dir"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-etcd: FAILED: \`go\` is not on PATH. etcd ${ETCD_VERSION} is built with" >&2
  echo "     \`go install\` (Go 1.26 or newer). Install Go and retry, or point" >&2
  echo "     TMKMS_ETCD_BIN_DIR at a directory holding etcd and etcdctl ${ETCD_VERSION}." >&2
  exit 2
fi
# etcd v3.6.16's modules declare `go 1.26.0`.
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [[ -n "$go_minor" && "$go_minor" -lt 26 && "$(go env GOTOOLCHAIN)" == local ]]; then
  echo "install-etcd: FAILED: $(go env GOVERSION) is too old (etcd ${ETCD_VERSION} needs Go 1.26);" >&2
  echo "     install a newer Go or set GOTOOLCHAIN=auto." >&2
  exit 2
fi

started=$SECONDS
build_mod="$cache_root/build-module"
staging="$cache_root/bin.partial"
rm -rf "$build_mod" "$staging"
mkdir -p "$build_mod" "$staging"
cat >"$build_mod/go.mod" <<'EOF'
module tmkms-light.local/etcd-build

go 1.24
EOF

echo "install-etcd: building etcd ${ETCD_VERSION} with $(go env GOVERSION) (a few minutes from cold)" >&2
(
  cd "$build_mod"
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" "go.etcd.io/etcd/etcdctl/v3@${ETCD_VERSION}"
  GOBIN="$staging" go install go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3
) >&2

mv -f "$staging/server" "$staging/etcd"
# Swap the finished pair in only now, so an interrupted build never leaves a
# half-populated bin dir that looks installed.
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
rm -rf "$build_mod"

if ! installed_ok; then
  echo "install-etcd: FAILED: the built binaries do not report version ${ETCD_VERSION#v}:" >&2
  "$bin_dir/etcd" --version >&2 || true
  exit 1
fi
echo "install-etcd: built etcd ${ETCD_VERSION} in $((SECONDS - started)) s" >&2
echo "install-etcd: etcd ${ETCD_VERSION} installed in $bin_dir" >&2
echo "$bin_dir"
