//! `launch-all` with a stand-in `nitro-cli` (NITRO_CLI) whose `run-enclave`
//! starts the real `tmkms-nitro-enclave` (mock NSM) in the background,
//! `describe-enclaves` reports it RUNNING while its process lives and
//! `terminate-enclave` kills it.
//!
//! * launch-all brings up enclave + KMS proxy + signer; the node simulator
//!   gets valid signatures;
//! * SIGINT stops all of them (nothing left in /proc) and exits 0;
//! * killing the enclave makes launch-all stop the others and exit non-zero
//!   naming the component that stopped.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    accept, command, enclave_bin, error_line, is_alive, kms_endpoint, left_after, listen,
    sign_checked_prevote, wait_exit, Guard, Nitro, HELPER,
};
use tmkms_node_sim::{Dialect, NodeListener};

const CHAIN: &str = "launch-chain";

/// Write the stand-in `nitro-cli` into the home; returns its path.
fn write_nitro_cli(nitro: &Nitro) -> std::path::PathBuf {
    let dir = nitro.dir.path();
    let script = format!(
        r#"#!/bin/sh
# Stand-in for nitro-cli: the "enclave" is the real enclave binary as a process.
set -eu
DIR='{dir}'
PIDFILE="$DIR/enclave.pid"
alive() {{
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -r "/proc/$pid/stat" ] || return 1
  # A killed process stays a zombie until reaped: that is not running.
  state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$state" != Z ]
}}
echo "$*" >> "$DIR/nitro-cli.calls"
case "$1" in
run-enclave)
  rm -f "$DIR/enclave.sock"
  '{enclave}' --listen "unix://$DIR/enclave.sock" --mock-nsm \
    </dev/null >>"$DIR/enclave.log" 2>&1 &
  echo $! > "$PIDFILE"
  echo "Start allocating memory..."
  cat <<EOF
{{
  "EnclaveName": "tmkms",
  "EnclaveID": "i-0123456789abcdef0-enc0123456789abcdef",
  "ProcessID": $!,
  "EnclaveCID": 16,
  "NumberOfCPUs": 2,
  "CPUIDs": [1, 3],
  "MemoryMiB": 512
}}
EOF
  ;;
describe-enclaves)
  if alive; then
    cat <<EOF
[
  {{
    "EnclaveName": "tmkms",
    "EnclaveID": "i-0123456789abcdef0-enc0123456789abcdef",
    "ProcessID": $(cat "$PIDFILE"),
    "EnclaveCID": 16,
    "NumberOfCPUs": 2,
    "CPUIDs": [1, 3],
    "MemoryMiB": 512,
    "State": "RUNNING",
    "Flags": "NONE"
  }}
]
EOF
  else
    echo "[]"
  fi
  ;;
terminate-enclave)
  if alive; then kill -9 "$(cat "$PIDFILE")"; fi
  echo '{{"EnclaveName": "tmkms", "EnclaveID": "i-0123456789abcdef0-enc0123456789abcdef", "Terminated": true}}'
  ;;
*)
  echo "stand-in nitro-cli: unsupported $1" >&2
  exit 2
  ;;
esac
"#,
        dir = dir.display(),
        enclave = enclave_bin().display(),
    );
    let path = dir.join("nitro-cli");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn setup(kms: &str) -> (Nitro, NodeListener) {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro = Nitro::configured(dir, kms, CHAIN, &listener.local_addr(), "v0.38", "").init();
    (nitro, listener)
}

fn spawn_launch_all(nitro: &Nitro) -> Child {
    let cli = write_nitro_cli(nitro);
    let log = fs::File::create(nitro.path("launch.log")).unwrap();
    command(Path::new(HELPER))
        .args(["launch-all", "-c", nitro.config.to_str().unwrap()])
        .env("NITRO_CLI", &cli)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn launch_log(nitro: &Nitro) -> String {
    fs::read_to_string(nitro.path("launch.log")).unwrap_or_default()
}

/// Parent pid of `pid`.
fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// `root` and every live process below it.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<u32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|&&p| ppid(p) == Some(parent)));
        i += 1;
    }
    out
}

fn command_line(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// launch-all is up: the node gets a verified signature. Returns every
/// process of the unit (launch-all, its children, the enclave).
fn wait_up(nitro: &Nitro, listener: &NodeListener, launch: &mut Child) -> Vec<u32> {
    let mut conn = accept(listener, launch, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "launch-all never reached the node:\n{}\nenclave:\n{}",
            launch_log(nitro),
            nitro.enclave_log()
        )
    });
    sign_checked_prevote(&mut conn, CHAIN, &nitro.pubkey(), Dialect::V0_38, 7);
    let enclave: u32 = fs::read_to_string(nitro.path("enclave.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(enclave), "the enclave process runs");
    let mut pids = descendants(launch.id());
    pids.push(enclave);
    let lines: Vec<String> = pids.iter().map(|&p| command_line(p)).collect();
    for what in [
        "enclave run --wait",
        "enclave vsock-proxy",
        "start -c",
        "--mock-nsm",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(what)),
            "no process `{what}` among {lines:#?}"
        );
    }
    pids
}

fn assert_all_gone(pids: &[u32], log: &str) {
    let left = left_after(Duration::from_secs(5), Duration::from_millis(50), || {
        pids.iter()
            .filter(|&&p| is_alive(p))
            .map(|&p| (p, command_line(p)))
            .collect()
    });
    assert!(left.is_empty(), "processes left running: {left:?}\n{log}");
}

#[test]
fn sigint_stops_enclave_proxy_and_signer_and_exits_zero() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener) = setup(&kms);
    let started = Instant::now();
    let mut launch = Guard(spawn_launch_all(&nitro));
    let pids = wait_up(&nitro, &listener, &mut launch.0);
    eprintln!(
        "launch-all to first signature: {:?}; {} processes",
        started.elapsed(),
        pids.len()
    );
    let stop = Instant::now();
    assert!(send_signal(launch.0.id(), "INT"));
    let status = wait_exit(&mut launch.0, Duration::from_secs(20));
    let log = launch_log(&nitro);
    assert!(
        matches!(status, Some(s) if s.success()),
        "launch-all after SIGINT: {status:?}\n{log}"
    );
    eprintln!("SIGINT to exit: {:?}", stop.elapsed());
    assert_all_gone(&pids, &log);
    assert!(log.contains("shutdown requested"), "{log}");
    // The enclave was ended through nitro-cli or its process group, and
    // launch-all's children were all reaped.
    let calls = fs::read_to_string(nitro.path("nitro-cli.calls")).unwrap();
    assert!(calls.starts_with("run-enclave --eif-path"), "{calls}");
    assert!(calls.contains("describe-enclaves"), "{calls}");
}

#[test]
fn enclave_death_stops_the_unit_and_names_the_component() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener) = setup(&kms);
    let mut launch = Guard(spawn_launch_all(&nitro));
    let pids = wait_up(&nitro, &listener, &mut launch.0);
    let enclave = *pids.last().unwrap();
    assert!(send_signal(enclave, "KILL"));
    let status = wait_exit(&mut launch.0, Duration::from_secs(20));
    let log = launch_log(&nitro);
    assert!(
        matches!(status, Some(s) if !s.success()),
        "launch-all after the enclave died: {status:?}\n{log}"
    );
    let error = error_line(&log).unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        (error.contains("`signer` exited") || error.contains("`enclave` exited"))
            && error.contains("stopped the other processes"),
        "the error must name the component: {error}"
    );
    // The signer usually notices first (its control connection closes at
    // once; `enclave run --wait` polls nitro-cli); its forwarded error then
    // says why.
    if error.contains("`signer` exited") {
        assert!(
            log.contains("[signer] error: the enclave closed its control connection"),
            "the signer's reason is missing:\n{log}"
        );
    }
    eprintln!("launch-all said: {error}");
    assert_all_gone(&pids, &log);
}

/// `kill -<signal> <pid>`; whether it was delivered.
fn send_signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success()
}
