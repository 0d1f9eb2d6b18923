//! The `tmkms-node-sim` binary against the in-test fake signer of `common/`
//! (plumbing only: argument parsing, the `listening on` line, output and
//! exit codes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use common::{FakeSigner, Misbehaviour, CHAIN};
use tmkms_node_sim::Dialect;

struct Sim {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    addr: String,
}

/// Starts `tmkms-node-sim <command>` listening on `listen` for chain
/// [`CHAIN`] in `protocol`, with `extra` arguments and a 10 s accept timeout.
fn start_command(command: &str, listen: &str, protocol: &str, extra: &[&str]) -> Sim {
    let mut args = vec![
        command,
        "--listen",
        listen,
        "--chain-id",
        CHAIN,
        "--protocol",
        protocol,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--accept-timeout", "10"]);
    start(&args)
}

/// Starts the binary and waits for its `listening on <addr>` line.
fn start(args: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tmkms-node-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Sim {
        child,
        stdout,
        addr,
    }
}

impl Sim {
    /// Lets the fake signer connect, then [`Sim::finish`]es.
    fn against_fake(self, dialect: Dialect, misbehaviour: Misbehaviour) -> (bool, String) {
        let _fake = FakeSigner::start(self.addr.clone(), dialect, misbehaviour);
        self.finish()
    }

    /// Waits for exit; returns success and the rest of stdout.
    fn finish(mut self) -> (bool, String) {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        eprintln!("stdout:\n{rest}\nstderr:\n{err}");
        (status.success(), rest)
    }
}

fn fake_pubkey_b64() -> String {
    let key = ed25519_consensus::SigningKey::from([42u8; 32]);
    base64::engine::general_purpose::STANDARD.encode(key.verification_key().to_bytes())
}

/// A listen address on a Unix socket in `dir`.
fn unix_listen(dir: &tempfile::TempDir, name: &str) -> String {
    format!("unix://{}", dir.path().join(name).display())
}

const TCP_ANY_PORT: &str = "tcp://127.0.0.1:0";

#[test]
fn run_signs_heights_and_checks_the_pubkey() {
    let dir = tempfile::tempdir().unwrap();
    let listen = unix_listen(&dir, "n.sock");
    let pk = fake_pubkey_b64();
    let extra = ["--heights", "120", "--expect-pubkey", &pk];
    let sim = start_command("run", &listen, "v0.38", &extra);
    assert_eq!(sim.addr, listen);
    let (ok, out) = sim.against_fake(Dialect::V0_38, Misbehaviour::None);
    assert!(ok);
    assert_eq!(out.lines().filter(|l| l.starts_with("height ")).count(), 2);
    assert!(out.contains("done: 120 heights 1..=120"), "{out}");
}

#[test]
fn run_fails_on_a_misbehaving_signer() {
    let sim = start_command("run", TCP_ANY_PORT, "v0.38", &["--heights", "5"]);
    assert!(sim.addr.starts_with("tcp://"));
    assert!(sim.addr.contains('@'));
    let (ok, out) = sim.against_fake(Dialect::V0_38, Misbehaviour::ExtensionSignatureEverywhere);
    assert!(!ok);
    assert!(out.contains("FAIL: prevote at height 1"), "{out}");
}

#[test]
fn run_fails_on_a_pubkey_mismatch() {
    let extra = ["--heights", "1", "--expect-pubkey", "AAAA"];
    let sim = start_command("run", TCP_ANY_PORT, "v0.37", &extra);
    let (ok, _) = sim.against_fake(Dialect::V0_37, Misbehaviour::None);
    assert!(!ok);
}

#[test]
fn bench_prints_json() {
    let sim = start_command("bench", TCP_ANY_PORT, "v1", &["-n", "300", "--json"]);
    let (ok, out) = sim.against_fake(Dialect::V1, Misbehaviour::None);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["requests"], 300);
    assert_eq!(v["protocol"], "v1");
    assert_eq!(v["transport"], "tcp");
    assert_eq!(v["last_height"], 100);
    assert!(v["p50_us"].as_u64().unwrap() <= v["p99_us"].as_u64().unwrap());
    assert!(v["throughput_rps"].as_f64().unwrap() > 0.0);
}

#[test]
fn scenarios_print_pass_per_case() {
    let dir = tempfile::tempdir().unwrap();
    let listen = unix_listen(&dir, "s.sock");
    let sim = start_command("scenarios", &listen, "v0.40", &[]);
    let (ok, out) = sim.against_fake(Dialect::V0_38, Misbehaviour::None);
    assert!(ok);
    assert!(out.contains("PASS replays"), "{out}");
    assert!(out.contains("PASS malformed frames"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("result: PASS"),
        "{out}"
    );
}

#[test]
fn rejects_an_unknown_protocol() {
    let out = Command::new(env!("CARGO_BIN_EXE_tmkms-node-sim"))
        .args([
            "run",
            "--listen",
            TCP_ANY_PORT,
            "--chain-id",
            CHAIN,
            "--protocol",
            "v0.33",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown protocol version"));
}
