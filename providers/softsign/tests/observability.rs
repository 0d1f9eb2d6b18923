//! What an operator's tooling reads from a running `tmkms-softsign`: JSON
//! log lines (`--log-format json`) and the metrics and health endpoints
//! (`metrics_listen`), over the node simulator on a Unix socket.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmkms_node_sim::harness::{sign_heights, signed_json_lines};
use tmkms_node_sim::{BlockIdSpec, Dialect, NodeListener, VoteSpec};

const BIN: &str = env!("CARGO_BIN_EXE_tmkms-softsign");
const CHAIN: &str = "observed-chain";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `init` a home for `socket`, with `top` added to tmkms.toml's top level.
fn init(dir: &Path, socket: &Path, top: &str) -> std::path::PathBuf {
    let config = dir.join("tmkms.toml");
    let out = Command::new(BIN)
        .args(["init", "-c", config.to_str().unwrap(), "--chain-id", CHAIN])
        .args(["--address", &format!("unix://{}", socket.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{top}\n{text}")).unwrap();
    config
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// Polls `path` until the reply contains `wanted` (the server starts with
/// the signer, the node connection a little later).
fn await_reply(port: u16, path: &str, wanted: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(stream, "GET {path} HTTP/1.1\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.contains(wanted) {
                return reply;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path} never contained {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sign_three_heights(listener: &NodeListener) {
    let mut node = listener.accept(Duration::from_secs(20)).unwrap();
    sign_heights(&mut node, CHAIN, 1..=3, true);
    // A conflicting prevote at height 3: refused with code 2.
    let other = Some(BlockIdSpec::for_height(99));
    assert!(node
        .sign_vote(CHAIN, &VoteSpec::prevote(3, 0, other), false)
        .unwrap()
        .is_err());
    node.close();
}

/// Runs the signer with `top` in tmkms.toml and `args` after `start`, signs
/// three heights, and returns its stderr.
fn log_of_a_run(top: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let listener = NodeListener::bind_unix(&socket, Dialect::V0_38).unwrap();
    let config = init(dir.path(), &socket, top);
    let log = dir.path().join("signer.log");
    let signer = Killed(
        Command::new(BIN)
            .args(["start", "-c", config.to_str().unwrap()])
            .args(args)
            .env_remove("TMKMS_LOG")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    sign_three_heights(&listener);
    std::thread::sleep(Duration::from_millis(300));
    drop(signer);
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn json_logs_have_one_object_per_line_and_one_per_signature() {
    let mut expected = Vec::new();
    for h in 1..=3 {
        for step in ["proposal", "prevote", "precommit"] {
            expected.push((h, 0, step));
        }
    }
    // By flag, and by the config field.
    for (top, args) in [
        ("", &["--log-format", "json"][..]),
        ("log_format = \"json\"", &[][..]),
    ] {
        let text = log_of_a_run(top, args);
        let signed = signed_json_lines(&text);
        let positions: Vec<_> = signed
            .iter()
            .map(|(h, r, s, _)| (*h, *r, s.as_str()))
            .collect();
        assert_eq!(positions, expected, "{text}");
        assert!(signed.iter().all(|(.., latency)| *latency > 0), "{text}");
    }
    // The flag wins over the config.
    let text = log_of_a_run("log_format = \"json\"", &["--log-format", "text"]);
    assert!(text.contains(" signed at=3/0/precommit"), "{text}");
    assert!(!text.trim_start().starts_with('{'), "{text}");
}

#[test]
fn metrics_and_readiness_follow_the_signing() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let listener = NodeListener::bind_unix(&socket, Dialect::V0_38).unwrap();
    let port = free_port();
    let config = init(
        dir.path(),
        &socket,
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
    );
    let _signer = Killed(
        Command::new(BIN)
            .args(["start", "-c", config.to_str().unwrap()])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let node = format!("unix://{}", socket.display());
    // Up, with a series for the configured node (the signer may already
    // have connected: the listener's backlog accepts before we do).
    let metrics = await_reply(port, "/metrics", "tmkms_light_build_info");
    assert!(
        metrics.contains(&format!(
            "tmkms_light_node_connected{{chain_id=\"{CHAIN}\",address=\"{node}\"}}"
        )),
        "{metrics}"
    );
    assert!(http_get(port, "/healthz").starts_with("HTTP/1.1 200"));

    let mut conn = listener.accept(Duration::from_secs(20)).unwrap();
    await_reply(port, "/readyz", "ready\n");
    conn.ping().unwrap();
    conn.close();
    await_reply(port, "/readyz", "not ready: no node connection");
    sign_three_heights(&listener);

    let metrics = await_reply(
        port,
        "/metrics",
        &format!("tmkms_light_last_signed_height{{chain_id=\"{CHAIN}\"}} 3"),
    );
    for line in [
        format!("tmkms_light_signed_total{{chain_id=\"{CHAIN}\",type=\"prevote\"}} 3"),
        format!("tmkms_light_signed_total{{chain_id=\"{CHAIN}\",type=\"extension\"}} 3"),
        format!("tmkms_light_refused_total{{chain_id=\"{CHAIN}\",code=\"2\"}} 1"),
        format!("tmkms_light_last_signed_step{{chain_id=\"{CHAIN}\"}} 3"),
        format!("tmkms_light_sign_duration_seconds_count{{chain_id=\"{CHAIN}\"}} 9"),
        "tmkms_light_state_persist_duration_seconds_count 9".to_owned(),
        "tmkms_light_node_connects_total 2".to_owned(),
        "tmkms_light_build_info{version=\"0.1.0\",provider=\"softsign\"} 1".to_owned(),
    ] {
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));
}
