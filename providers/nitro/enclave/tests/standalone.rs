//! The enclave binary on a host: without an NSM device it says so at once
//! (it opens the device at the first request that needs an attestation, so
//! that every request is checked first), and a bad listen address is named.
//! (This integration test also makes `cargo test --workspace` build the
//! enclave binary the helper's tests start.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tmkms-nitro-enclave");

#[test]
fn without_an_nsm_device_it_warns_at_start() {
    if std::path::Path::new("/dev/nsm").exists() {
        return; // inside a real enclave
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix://{}", dir.path().join("e.sock").display());
    let mut child = Command::new(BIN)
        .args(["--listen", &listen])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let warned = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => {
                let hit = line.contains("/dev/nsm") && line.contains("not a Nitro Enclave");
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.join("\n");
    assert!(warned, "no warning naming /dev/nsm:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_malformed_listen_address_is_named() {
    let out = Command::new(BIN)
        .args(["--listen", "vsock:/oops", "--mock-nsm"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vsock:/oops"), "{stderr}");
}
