#!/usr/bin/env bash
# Build a release image with the base images pinned in deploy/base-images.env:
#   ./scripts/docker-build.sh nitro [docker build options…]
#   ./scripts/docker-build.sh sgx --secret id=sgx_signing_key,src=key.pem \
#       --build-arg SGX_ISVPRODID=1 --build-arg SGX_ISVSVN=1 --output type=local,dest=out
# Refuses a base image given by tag only: a tag can move, and the enclave's
# measurements depend on the base image's bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:?usage: scripts/docker-build.sh sgx|nitro [docker build options]}
shift
case "$which" in
  sgx|nitro) ;;
  *) echo "docker-build: unknown image '$which' (sgx or nitro)" >&2; exit 2 ;;
esac
args=()
while IFS= read -r line; do
  [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
  if [[ ! "$line" =~ ^[A-Z_]+=[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]]; then
    echo "docker-build: deploy/base-images.env: '$line' is not pinned by digest (name:tag@sha256:<64 hex>); run scripts/pin-base-images.sh on a machine that reaches the registry, review and commit the result" >&2
    exit 1
  fi
  args+=(--build-arg "$line")
done < deploy/base-images.env
exec env DOCKER_BUILDKIT=1 docker build -f "Dockerfile.$which" "${args[@]}" "$@" .
