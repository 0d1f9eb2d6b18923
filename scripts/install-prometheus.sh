#!/usr/bin/env bash
# Installs Debian's `prometheus` package (it ships `promtool`, which
# scripts/ops-check.sh uses to check and unit-test the alert rules) when
# promtool or prometheus is missing, and prints their versions:
#   ./scripts/install-prometheus.sh
# Idempotent: with both present it installs nothing.
#
# The package's own systemd service is NOT started: tests start their own
# prometheus with their own configuration, and a packaged server on :9090
# would collide with them. During the install a policy-rc.d that refuses
# every service start is in place (Debian's maintainer scripts ask it before
# starting anything), and on a host running systemd the packaged units are
# disabled afterwards so they do not start at the next boot either.
set -euo pipefail

print_versions() {
  promtool --version 2>&1 | head -1
  prometheus --version 2>&1 | head -1
}

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  print_versions
  exit 0
fi

as_root=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "install-prometheus: not root and no sudo; install Debian's prometheus package by hand" >&2; exit 1; }
  as_root=(sudo)
fi
command -v apt-get >/dev/null || { echo "install-prometheus: no apt-get; install prometheus (with promtool) from your distribution" >&2; exit 1; }

# Debian's invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d
# whether a service may start; exit 101 means "no". Keep an existing policy
# that already says no (container images ship one); otherwise put ours in
# place and restore whatever was there when done.
policy=/usr/sbin/policy-rc.d
saved_policy=""
restore_policy() {
  if [[ -n "$saved_policy" ]]; then
    "${as_root[@]}" mv -f "$saved_policy" "$policy"
  else
    "${as_root[@]}" rm -f "$policy"
  fi
}
if [[ -x "$policy" ]] && { "$policy" prometheus start >/dev/null 2>&1; [[ $? == 101 ]]; }; then
  echo "install-prometheus: $policy already refuses service starts"
else
  if [[ -e "$policy" ]]; then
    saved_policy=$(mktemp)
    "${as_root[@]}" cp -p "$policy" "$saved_policy"
  fi
  printf '#!/bin/sh\n# install-prometheus.sh: no service starts during this install\nexit 101\n' \
    | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 0755 "$policy"
  trap restore_policy EXIT
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends prometheus

# On a host booted with systemd the package enabled its unit: disable it
# (and stop it, should anything have started it anyway).
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  "${as_root[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

print_versions
