//! Command-line behaviour of the runner that needs no enclave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{app_path, run};

#[test]
fn init_with_a_missing_sigstruct_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tmkms.toml");
    let app = app_path();
    let out = run(&[
        "init",
        "-c",
        config.to_str().unwrap(),
        "--mode",
        "simulation",
        "--enclave",
        app.to_str().unwrap(),
        "--sigstruct",
        dir.path().join("missing.sig").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--sigstruct") && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(
        !config.exists(),
        "a failed init must not leave a config behind"
    );
}

#[test]
fn hardware_mode_without_sgx_support_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sig = common::sigstruct(dir.path(), common::Signer::A, 1, false);
    let config = dir.path().join("tmkms.toml");
    let fake_sgxs = dir.path().join("app.sgxs");
    std::fs::write(&fake_sgxs, b"not an enclave").unwrap();
    let out = run(&[
        "init",
        "-c",
        config.to_str().unwrap(),
        "--mode",
        "hardware",
        "--enclave",
        fake_sgxs.to_str().unwrap(),
        "--sigstruct",
        sig.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hardware") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("secrets/consensus-key.sealed").exists(),
        "no key written when the enclave cannot run"
    );
}
