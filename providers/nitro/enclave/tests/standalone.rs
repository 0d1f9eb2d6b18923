//! The enclave binary on a host: without an NSM device it must refuse to
//! run with a clear error, and a bad listen address is named. (This
//! integration test also makes `cargo test --workspace` build the enclave
//! binary the helper's tests start.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tmkms-nitro-enclave");

#[test]
fn without_an_nsm_device_it_refuses_to_run() {
    if std::path::Path::new("/dev/nsm").exists() {
        return; // inside a real enclave
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix://{}", dir.path().join("e.sock").display());
    let out = Command::new(BIN)
        .args(["--listen", &listen])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/dev/nsm"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
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
