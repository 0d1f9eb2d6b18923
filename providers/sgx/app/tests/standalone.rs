//! The enclave app started by hand instead of by the runner: it must say so
//! and exit, not hang or panic. (This integration test also makes
//! `cargo test --workspace` build the app binary the runner's tests start.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn started_without_the_runner_it_explains_and_exits() {
    let out = Command::new(env!("CARGO_BIN_EXE_tmkms-light-sgx-app"))
        .env_remove("TMKMS_SGX_HOST_SOCKET")
        .env_remove("TMKMS_SGX_SIM_SIGSTRUCT")
        .env_remove("TMKMS_SGX_SIM_CPU_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not set: this program is started by tmkms-light-sgx-runner"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
