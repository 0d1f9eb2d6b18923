#!/usr/bin/env bash
# Resolve the tags in deploy/base-images.env to their current digests and
# write them back as tag@sha256:digest (review and commit the change):
#   ./scripts/pin-base-images.sh
# Needs registry access and one of: docker buildx, crane, skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."
file=deploy/base-images.env

digest_of() {
  local ref=$1
  if command -v crane >/dev/null; then
    crane digest "$ref"
  elif command -v skopeo >/dev/null; then
    skopeo inspect --format '{{.Digest}}' "docker://$ref"
  elif docker buildx version >/dev/null 2>&1; then
    docker buildx imagetools inspect "$ref" | awk '$1 == "Digest:" { print $2; exit }'
  else
    echo "pin-base-images: install crane, skopeo or docker buildx" >&2
    return 1
  fi
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line; do
  if [[ "$line" =~ ^([A-Z_]+)=([^@]+)(@sha256:[0-9a-f]{64})?$ ]]; then
    name=${BASH_REMATCH[1]} tag=${BASH_REMATCH[2]}
    digest=$(digest_of "$tag")
    [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-base-images: no digest for $tag (got '$digest')" >&2; exit 1; }
    echo "$name=$tag@$digest" >> "$tmp"
    echo "$name=$tag@$digest"
  else
    echo "$line" >> "$tmp"
  fi
done < "$file"
mv "$tmp" "$file"
trap - EXIT
