#!/usr/bin/env bash
# Checks of the monitoring and service files in deploy/ (run by
# scripts/test.sh; alone: ./scripts/ops-check.sh):
# 1. the Prometheus rules: `promtool check rules`, their unit tests
#    (`promtool test rules`: every alert fires on one series set and stays
#    quiet on another) and `promtool check config` of the example config;
# 2. the metric names: the dashboard, the rules and the rule tests name only
#    metrics of deploy/metrics.txt (scripts/check_metric_names.py), and a
#    copy with one misspelt name fails, naming the panel or alert; the
#    dashboard's queries parse with promtool;
# 3. the systemd units: the required directives, an ExecStart that names a
#    real binary and subcommand (run with --help when the binaries are
#    built), and `systemd-analyze verify` / `security` when they work here.
# promtool comes from Debian's prometheus package
# (scripts/install-prometheus.sh installs it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n-- [%4ds] ops-check: %s\n' "$((SECONDS - started))" "$*"; }
fail() { echo "ops-check: $*" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

rules=deploy/prometheus/tmkms-light.rules.yml
dashboard=deploy/grafana/tmkms-light.json
units=(deploy/systemd/tmkms-light-softsign.service deploy/systemd/tmkms-light-sgx.service deploy/systemd/tmkms-light-nitro.service)

step "promtool check and test rules"
command -v promtool >/dev/null || ./scripts/install-prometheus.sh
promtool check rules "$rules"
promtool check config deploy/prometheus/prometheus.example.yml
(cd deploy/prometheus && promtool test rules tmkms-light.rules.test.yml)

step "metric names of the dashboard and the rules (deploy/metrics.txt)"
python3 scripts/check_metric_names.py --self-test
python3 scripts/check_metric_names.py
# The dashboard's queries, parsed by Prometheus's own parser (as recording
# rules, which promtool checks).
python3 scripts/check_metric_names.py --export-dashboard-rules "$scratch/dashboard-queries.rules.json" --dashboard "$dashboard"
promtool check rules "$scratch/dashboard-queries.rules.json"

# A copy with a misspelt metric must fail, and say where.
expect_unknown() { # <what> <expected message> <checker args...>
  local what=$1 want=$2 out rc=0
  shift 2
  out=$(python3 scripts/check_metric_names.py "$@" 2>&1) || rc=$?
  [[ $rc == 1 ]] || fail "a $what with a misspelt metric passed the check (exit $rc): $out"
  grep -qF -- "$want" <<<"$out" || fail "a $what with a misspelt metric: want \"$want\", got: $out"
  echo "misspelt $what rejected: $(grep -F -- "$want" <<<"$out")"
}
sed 's/tmkms_light_refused_total/tmkms_light_refused_totl/g' "$dashboard" > "$scratch/dashboard.json"
expect_unknown dashboard 'panel "Refusals by code" (id 8), query A: unknown metric tmkms_light_refused_totl' \
  --dashboard "$scratch/dashboard.json"
sed 's/tmkms_light_node_connects_total\[/tmkms_light_node_conects_total[/' "$rules" > "$scratch/rules.yml"
expect_unknown "rule file" 'alert TmkmsLightReconnectStorm: unknown metric tmkms_light_node_conects_total' \
  --rules "$scratch/rules.yml"

step "systemd units: required directives"
# Each unit: one required setting per line, `Key=value` (value exact).
common=(Restart=always RestartSec=1 StartLimitIntervalSec=0 User=tmkms-light Group=tmkms-light
  NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/tmkms-light/state PrivateTmp=yes
  LimitCORE=0 ProtectHome=yes CapabilityBoundingSet= AmbientCapabilities= UMask=0077 Type=exec)
declare -A specific=(
  [deploy/systemd/tmkms-light-softsign.service]="PrivateDevices=yes RestrictAddressFamilies=AF_UNIX@AF_INET@AF_INET6"
  [deploy/systemd/tmkms-light-sgx.service]="DevicePolicy=closed DeviceAllow=/dev/sgx_enclave@rw DeviceAllow=/dev/sgx_provision@rw SupplementaryGroups=sgx"
  [deploy/systemd/tmkms-light-nitro.service]="DevicePolicy=closed DeviceAllow=/dev/nitro_enclaves@rw SupplementaryGroups=ne RestrictAddressFamilies=AF_UNIX@AF_INET@AF_INET6@AF_VSOCK KillMode=mixed"
)
for unit in "${units[@]}"; do
  [[ -f $unit ]] || fail "$unit is missing"
  # shellcheck disable=SC2206 # the list is space-separated on purpose; @ stands for a space
  wanted=("${common[@]}" ${specific[$unit]})
  for setting in "${wanted[@]}"; do
    setting=${setting//@/ }
    grep -qxF -- "$setting" "$unit" || fail "$unit: no line \"$setting\""
  done
  # Every ReadWritePaths= stays under the state directory or is one of the
  # paths nitro-cli writes.
  while read -r path; do
    case "$path" in
      /var/lib/tmkms-light/state|/var/log/nitro_enclaves|/run/nitro_enclaves) ;;
      *) fail "$unit: ReadWritePaths=$path: only the state directory may be writable" ;;
    esac
  done < <(sed -n 's/^ReadWritePaths=//p' "$unit" | tr ' ' '\n')
  echo "$unit: ${#wanted[@]} required settings present"
done

step "systemd units: ExecStart names a real binary and subcommand"
# The binary must be a [[bin]] of this workspace and the subcommand a
# variant of its clap `enum Command` (LaunchAll -> launch-all); with the
# binaries built, clap itself parses the command line (`... --help`).
bin_dir=${TMKMS_BIN_DIR:-target/debug}
for unit in "${units[@]}"; do
  read -r -a exec_start < <(sed -n 's/^ExecStart=//p' "$unit")
  binary=$(basename "${exec_start[0]}")
  subcommand=${exec_start[1]}
  manifest=$(grep -lx "name = \"$binary\"" providers/*/Cargo.toml providers/*/*/Cargo.toml 2>/dev/null | head -1) \
    || fail "$unit: $binary is not a binary of this workspace"
  main_rs=$(dirname "$manifest")/src/main.rs
  variants=$(sed -n '/^enum Command {/,/^}/p' "$main_rs" | sed -n 's/^    \([A-Z][A-Za-z]*\).*/\1/p' \
    | sed 's/\([a-z]\)\([A-Z]\)/\1-\2/g' | tr 'A-Z' 'a-z')
  grep -qx -- "$subcommand" <<<"$variants" || fail "$unit: $binary has no subcommand $subcommand (it has: $(tr '\n' ' ' <<<"$variants"))"
  if [[ -x $bin_dir/$binary ]]; then
    "$bin_dir/$binary" "${exec_start[@]:1}" --help >/dev/null || fail "$unit: $binary rejects \"${exec_start[*]:1}\""
    echo "$unit: $binary ${exec_start[*]:1} (parsed by $bin_dir/$binary)"
  else
    echo "$unit: $binary ${exec_start[*]:1} (subcommand found in $main_rs; $bin_dir/$binary not built, command line not parsed)"
  fi
done

step "systemd units: systemd-analyze verify and security"
# Verify copies whose ExecStart points at stand-in executables of the same
# names (verify requires the program to exist) and with stand-ins for the
# units they require from other packages.
skip_reason=""
if ! command -v systemd-analyze >/dev/null; then
  skip_reason="systemd-analyze is not installed"
else
  mkdir -p "$scratch/probe"
  printf '[Service]\nExecStart=/bin/true\n' > "$scratch/probe/probe.service"
  if ! probe=$(systemd-analyze verify "$scratch/probe/probe.service" 2>&1) || [[ -n $probe ]]; then
    skip_reason="systemd-analyze verify does not work here: $(head -1 <<<"$probe")"
  fi
fi
if [[ -n $skip_reason ]]; then
  echo "skipped: $skip_reason (the static checks above ran)"
else
  mkdir -p "$scratch/bin" "$scratch/units" "$scratch/other"
  printf '[Unit]\nDescription=stand-in for the check\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    > "$scratch/other/nitro-enclaves-allocator.service"
  for unit in "${units[@]}"; do
    binary=$(sed -n 's|^ExecStart=\(/[^ ]*\).*|\1|p' "$unit")
    printf '#!/bin/sh\n' > "$scratch/bin/$(basename "$binary")"
    chmod +x "$scratch/bin/$(basename "$binary")"
    sed "s|^ExecStart=$(dirname "$binary")/|ExecStart=$scratch/bin/|" "$unit" > "$scratch/units/$(basename "$unit")"
  done
  # verify exits 0 on unknown keys and unparsable values (it only warns):
  # any output is a failure.
  out=$(cd "$scratch/units" && SYSTEMD_UNIT_PATH="$scratch/other:" systemd-analyze verify ./*.service 2>&1) \
    || fail "systemd-analyze verify: $out"
  [[ -z $out ]] || fail "systemd-analyze verify: $out"
  echo "systemd-analyze verify: ${#units[@]} units OK"
  # Exposure score (0 best, 10 worst): fail above 2.5.
  (cd "$scratch/units" && SYSTEMD_UNIT_PATH="$scratch/other:" \
    systemd-analyze security --offline=yes --threshold=25 ./*.service 2>&1 | grep 'Overall exposure') \
    || fail "systemd-analyze security: a unit's exposure is above 2.5 (run it on the unit to see why)"
fi

step "ops checks passed"
