#!/usr/bin/env bash
# The enclave binaries link no host-only code: fails if the normal
# dependency tree of an enclave crate holds a host crate.
#   ./scripts/check-enclave-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Host-only: our host crates, process supervision and signals, the SGX
# loader stack, async runtimes and HTTP stacks an enclave never needs.
host_only='^(tmkms-nitro-host|tmkms-nitro-helper|tmkms-light-sgx-runner|tmkms-light-cli|tmkms-softsign|tmkms-node-sim|signal-hook|signal-hook-registry|aesm-client|sgxs-loaders|sgxs|tokio|hyper|reqwest|mio)$'

status=0
for crate in tmkms-nitro-enclave tmkms-light-sgx-app; do
  deps=$(cargo tree --locked -p "$crate" -e normal --prefix none --no-dedupe | awk '{print $1}' | sort -u)
  bad=$(grep -E "$host_only" <<<"$deps" || true)
  if [[ -n "$bad" ]]; then
    echo "check-enclave-deps: $crate links host-only crates:" >&2
    sed 's/^/  /' <<<"$bad" >&2
    for b in $bad; do cargo tree --locked -p "$crate" -e normal -i "$b" >&2 || true; done
    status=1
  else
    echo "check-enclave-deps: $crate: $(wc -l <<<"$deps") crates, none host-only"
  fi
done
exit $status
