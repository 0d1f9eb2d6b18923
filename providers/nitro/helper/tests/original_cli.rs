//! The original tmkms-light's Nitro command lines, typed the way its README
//! and `--help` give them. None is refused by the argument parser, and each
//! does what it did there:
//!
//! * `enclave run --eif-path/-p --enclave-cid/-i --memory-mib --cpu-count
//!   --cpu-ids --log-server-port --log-file --log-to-console/-l` runs
//!   `nitro-cli run-enclave` with those settings (no tmkms.toml needed), and
//!   without nitro-cli fails saying so;
//! * `enclave vsock-proxy --num-workers/-w --local-port --remote-port
//!   --remote-addr --config-file` relays `--local-port` to the remote
//!   address, at most `-w` connections at once;
//! * `enclave stop --cid` terminates that enclave;
//! * `init -a -k -p -b --cid`, with `-c` a directory (the original's
//!   meaning) or a file, writes the config, the enclave config, the
//!   encrypted key and the state, and prints the key as `-p`/`-b` say;
//! * `start -c ./tmkms.toml -v` and `start -c --cid` sign through the node
//!   simulator;
//! * `launch-all -t TMKMS_CONFIG -e ENCLAVE_CONFIG` runs the enclave of
//!   ENCLAVE_CONFIG.
//!
//! `nitro-cli` is a stand-in that records its calls (the vsock proxy and
//! every listener stay on loopback and Unix sockets). The lines that need an
//! enclave run against the real enclave binary with its mock NSM and the KMS
//! emulator (`scripts/localstack.sh start`).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    accept, command, kill, kms_endpoint, sign_checked_prevote, wait_exit, Guard, Nitro, HELPER,
    REGION,
};
use tmkms_light::keys::ConsensusKey;
use tmkms_node_sim::harness::{parsed_failure, parsed_ok};
use tmkms_node_sim::{Dialect, NodeListener};

const CHAIN: &str = "original-chain";
/// The bech32 prefix of the original README's example.
const PREFIX: &str = "crocnclconspub";
/// The enclave id the stand-in nitro-cli reports.
const ENCLAVE_ID: &str = "i-0123456789abcdef0-enc0123456789abcdef";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The helper with `args` in `cwd`, `nitro-cli` being `nitro_cli`.
fn helper_in(cwd: &Path, nitro_cli: &Path, args: &[&str]) -> std::process::Command {
    let mut c = command(Path::new(HELPER));
    c.args(args).current_dir(cwd).env("NITRO_CLI", nitro_cli);
    c
}

fn run_in(cwd: &Path, nitro_cli: &Path, args: &[&str]) -> Output {
    helper_in(cwd, nitro_cli, args).output().unwrap()
}

fn ok_in(cwd: &Path, nitro_cli: &Path, args: &[&str]) -> String {
    parsed_ok(args, &run_in(cwd, nitro_cli, args))
}

fn fails_in(cwd: &Path, nitro_cli: &Path, args: &[&str]) -> String {
    parsed_failure(args, &run_in(cwd, nitro_cli, args))
}

/// A stand-in `nitro-cli` in `dir` that appends each call to
/// `nitro-cli.calls` and answers like nitro-cli, with one enclave (CID 16)
/// always running; returns its path.
fn recording_nitro_cli(dir: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{calls}'
case "$1" in
run-enclave)
  echo '{{"EnclaveName": "tmkms", "EnclaveID": "{ENCLAVE_ID}", "ProcessID": 1, "EnclaveCID": 16, "NumberOfCPUs": 2, "CPUIDs": [1, 3], "MemoryMiB": 512}}' ;;
describe-enclaves)
  echo '[{{"EnclaveName": "tmkms", "EnclaveID": "{ENCLAVE_ID}", "ProcessID": 1, "EnclaveCID": 16, "NumberOfCPUs": 2, "CPUIDs": [1, 3], "MemoryMiB": 512, "State": "RUNNING", "Flags": "NONE"}}]' ;;
terminate-enclave)
  echo '{{"EnclaveName": "tmkms", "EnclaveID": "{ENCLAVE_ID}", "Terminated": true}}' ;;
*) echo "unsupported $1" >&2; exit 2 ;;
esac
"#,
        calls = dir.join("nitro-cli.calls").display(),
    );
    let path = dir.join("nitro-cli");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn calls(dir: &Path) -> String {
    fs::read_to_string(dir.join("nitro-cli.calls")).unwrap_or_default()
}

/// The stand-in nitro-cli in `dir` was asked to run `eif` with `settings`
/// (as nitro-cli spells them); `context` goes into the failure message.
fn assert_ran_enclave(dir: &Path, eif: &Path, settings: &str, context: &str) {
    let recorded = calls(dir);
    let expected = format!("run-enclave --eif-path {} {settings}", eif.display());
    assert!(recorded.contains(&expected), "{recorded}\n{context}");
}

/// A free loopback TCP port (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tmkms.toml in `dir` (no key yet) whose KMS proxy listens on loopback
/// port `port`: what a vsock port is on the parent instance.
fn proxy_config(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("tmkms.toml");
    fs::write(
        &path,
        format!(
            r#"chain_id = "{CHAIN}"
consensus_key_path = "secrets/unused"
state_file_path = "state/consensus.state"

[[validator]]
address = "unix://{node}"
protocol_version = "v0.38"

[nitro]
region = "ap-southeast-1"
kms_key_id = "alias/tmkms"
kms_proxy_listen = "tcp://127.0.0.1:{port}"
"#,
            node = dir.join("node.sock").display(),
        ),
    )
    .unwrap();
    path
}

/// Spawn the helper with `args` in `cwd`, stderr piped.
fn spawn_in(cwd: &Path, nitro_cli: &Path, args: &[&str]) -> Child {
    helper_in(cwd, nitro_cli, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGINT `child`, wait for it and return its stderr.
fn interrupt(mut child: Child) -> String {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_exit(&mut child, Duration::from_secs(15));
    if status.is_none() {
        kill(&mut child);
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.is_some(), "did not stop on SIGINT:\n{stderr}");
    stderr
}

/// Connect to `port`, retrying while the process comes up.
fn connect(port: u16, child: &mut Child) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                return stream;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline && matches!(child.try_wait(), Ok(None)),
                    "nothing listens on 127.0.0.1:{port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `ping` through `stream` comes back (from the echo server behind the proxy).
fn echoes(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"ping").is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

/// An echo server on loopback; returns its port.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn enclave_run_passes_the_original_flags_to_nitro_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let eif = cwd.join("tmkms.eif");
    let log_file = cwd.join("enclave.log");
    let readme = ["enclave", "run", "--cpu-count", "2"];
    let full = [
        "enclave",
        "run",
        "-p",
        s(&eif),
        "-i",
        "17",
        "--memory-mib",
        "1024",
        "--cpu-count",
        "2",
        "--log-server-port",
        "6050",
        "--log-file",
        s(&log_file),
        "-l",
        "-v",
    ];
    // No nitro-cli on this host: that is the error.
    let missing = cwd.join("no-nitro-cli");
    for args in [&readme[..], &full[..]] {
        let err = fails_in(cwd, &missing, args);
        assert!(err.contains("nitro-cli not found"), "{args:?}: {err}");
    }
    let cli = recording_nitro_cli(cwd);
    ok_in(cwd, &cli, &full);
    assert_ran_enclave(
        cwd,
        &eif,
        "--cpu-count 2 --memory 1024 --enclave-cid 17",
        "",
    );
    let short = [
        "enclave",
        "run",
        "--eif-path",
        s(&eif),
        "--enclave-cid",
        "18",
        "--cpu-ids",
        "1",
        "3",
    ];
    ok_in(cwd, &cli, &short);
    let last = calls(cwd).lines().last().unwrap().to_owned();
    assert!(
        last.contains("--cpu-ids 1 3")
            && last.contains("--enclave-cid 18")
            && !last.contains("--cpu-count"),
        "{last}"
    );
}

#[test]
fn enclave_stop_terminates_the_enclave_named_by_cid() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let cli = recording_nitro_cli(cwd);
    // The original took the enclave id after --cid; a number is a CID.
    ok_in(cwd, &cli, &["enclave", "stop", "--cid", ENCLAVE_ID]);
    assert!(
        calls(cwd).contains(&format!("terminate-enclave --enclave-id {ENCLAVE_ID}")),
        "{}",
        calls(cwd)
    );
    fs::remove_file(cwd.join("nitro-cli.calls")).unwrap();
    ok_in(cwd, &cli, &["enclave", "stop", "--cid", "16"]);
    assert!(
        calls(cwd).contains(&format!("terminate-enclave --enclave-id {ENCLAVE_ID}")),
        "{}",
        calls(cwd)
    );
}

#[test]
fn vsock_proxy_relays_the_local_port_with_at_most_num_workers_connections() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let cli = cwd.join("no-nitro-cli");
    // The README's line: the listener of tmkms.toml (loopback here), the
    // remote address on port 443. Nothing connects: it would go out.
    let config_port = free_port();
    proxy_config(cwd, config_port);
    let readme = [
        "enclave",
        "vsock-proxy",
        "--remote-addr",
        "kms.ap-southeast-1.amazonaws.com",
    ];
    let child = spawn_in(cwd, &cli, &readme);
    std::thread::sleep(Duration::from_millis(500));
    let stderr = interrupt(child);
    assert!(
        stderr.contains(&format!("tcp://127.0.0.1:{config_port}"))
            && stderr.contains("tcp://kms.ap-southeast-1.amazonaws.com:443"),
        "{stderr}"
    );

    // Every flag: --local-port replaces the listener's port, -w caps the
    // relayed connections, --remote-* name the target.
    let local_port = free_port();
    let echo = echo_server();
    let (local, remote) = (local_port.to_string(), echo.to_string());
    let yaml = cwd.join("vsock-proxy.yaml");
    let full = [
        "enclave",
        "vsock-proxy",
        "-w",
        "2",
        "--local-port",
        &local,
        "--remote-port",
        &remote,
        "--remote-addr",
        "127.0.0.1",
        "--config-file",
        s(&yaml),
    ];
    let mut child = spawn_in(cwd, &cli, &full);
    let mut first = connect(local_port, &mut child);
    let mut second = connect(local_port, &mut child);
    assert!(
        echoes(&mut first) && echoes(&mut second),
        "relayed to the echo server"
    );
    let mut third = connect(local_port, &mut child);
    assert!(!echoes(&mut third), "a third connection is over -w 2");
    drop((first, second, third));
    let stderr = interrupt(child);
    assert!(
        stderr.contains(&format!("tcp://127.0.0.1:{local_port}"))
            && stderr.contains(&format!("tcp://127.0.0.1:{echo}")),
        "{stderr}"
    );
}

/// The signer's consensus public key, from the seed the KMS emulator
/// decrypts for the test.
fn consensus_public_key(nitro: &Nitro, kms: &str) -> [u8; 32] {
    let seed: [u8; 32] = nitro.consensus_seed(kms).try_into().unwrap();
    *ConsensusKey::from_seed(&seed).public_key().as_bytes()
}

/// `init` as the original README has it (in the home, `-c` left out), and
/// with `-c` naming the directory; then `start -c ./tmkms.toml -v` and
/// `start -c <file> --cid`, and `launch-all -t -e`.
#[test]
fn init_start_and_launch_all_take_the_original_lines() {
    let Some(kms) = kms_endpoint() else { return };
    let no_cli = Path::new("/nonexistent/nitro-cli");
    let mut homes = Vec::new();
    for dir_form in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let listener =
            NodeListener::bind_unix(dir.path().join("node.sock"), Dialect::V0_38).unwrap();
        let nitro = Nitro::configured(dir, &kms, CHAIN, &listener.local_addr(), "v0.38", "");
        let home = nitro.dir.path().to_owned();
        let mut enclave = Guard(nitro.spawn_enclave());
        let mut args = vec![
            "init",
            "-a",
            REGION,
            "-k",
            &nitro.kms_key_id,
            "-p",
            "bech32",
            "-b",
            PREFIX,
            "--cid",
            "16",
        ];
        if dir_form {
            args.extend(["-c", s(&home)]);
        }
        let printed = ok_in(&home, no_cli, &args);
        kill(&mut enclave.0);
        for rel in [
            "tmkms.toml",
            "enclave.toml",
            "secrets/secret.key",
            "state/consensus.state",
        ] {
            assert!(home.join(rel).is_file(), "init wrote {rel}");
        }
        let enclave_toml = fs::read_to_string(home.join("enclave.toml")).unwrap();
        assert!(enclave_toml.contains("enclave_cid = 16"), "{enclave_toml}");
        let pubkey = consensus_public_key(&nitro, &kms);
        let bech32 = tmkms_light::keys::PublicKey(pubkey)
            .to_bech32(PREFIX)
            .unwrap();
        assert_eq!(printed.trim(), bech32, "-p bech32 with the -b prefix");
        homes.push((nitro, listener, pubkey));
    }

    // start, each original form, with the enclave and the KMS proxy running.
    for ((nitro, listener, pubkey), start) in homes.iter().zip([
        vec!["start", "-c", "./tmkms.toml", "-v"],
        vec!["start", "-c", "CONFIG", "--cid", "16"],
    ]) {
        let home = nitro.dir.path();
        let start: Vec<&str> = start
            .into_iter()
            .map(|a| if a == "CONFIG" { nitro.config_str() } else { a })
            .collect();
        let _enclave = Guard(nitro.spawn_enclave());
        let _proxy = Guard(nitro.spawn_proxy());
        let mut signer = Guard(
            tmkms_node_sim::home::logging_to(
                &mut helper_in(home, no_cli, &start),
                nitro,
                tmkms_node_sim::home::SIGNER_LOG,
            )
            .spawn()
            .unwrap(),
        );
        let mut conn = accept(listener, &mut signer.0, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{start:?} never connected:\n{}", nitro.all_logs()));
        sign_checked_prevote(&mut conn, CHAIN, pubkey, Dialect::V0_38, 1);
    }

    // launch-all -t -e: the enclave it runs is the one of ENCLAVE_CONFIG.
    let (nitro, _, _) = &homes[0];
    let home = nitro.dir.path();
    let cli = recording_nitro_cli(home);
    let other_eif = home.join("other.eif");
    let enclave_config = home.join("other-enclave.toml");
    fs::write(
        &enclave_config,
        format!(
            "eif_path = \"{}\"\ncpu_count = 4\nmemory_mib = 2048\nenclave_cid = 16\n",
            other_eif.display()
        ),
    )
    .unwrap();
    let launch = [
        "launch-all",
        "-t",
        "tmkms.toml",
        "-e",
        "other-enclave.toml",
        "-v",
    ];
    let child = spawn_in(home, &cli, &launch);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !calls(home).contains("run-enclave") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = interrupt(child);
    assert_ran_enclave(
        home,
        &other_eif,
        "--cpu-count 4 --memory 2048 --enclave-cid 16",
        &stderr,
    );
}
