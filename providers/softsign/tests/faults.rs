//! Storage faults on the real binary: when the state cannot be written the
//! signer answers code 5, releases nothing, logs what to fix, keeps serving,
//! and signs again once the storage is back.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{accept, listen, Guard, Kms};
use tmkms_node_sim::{codes, verify_vote, BlockIdSpec, Dialect, SignerConn, VoteSpec};

const CHAIN: &str = "fault-chain";

/// Build the LD_PRELOAD shim with the system C compiler.
fn build_shim(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fault_shim.c");
    let out = dir.join("fault_shim.so");
    common::build_preload_shim(&src, &out);
    out
}

fn prevote(h: i64) -> VoteSpec {
    VoteSpec::prevote(h, 0, Some(BlockIdSpec::for_height(h)))
}

fn sign(conn: &mut SignerConn, v: &VoteSpec) -> Result<tmkms_node_sim::SignedVote, i32> {
    conn.sign_vote(CHAIN, v, false)
        .expect("connection stays open")
        .map_err(|e| e.code)
}

#[test]
fn unwritable_state_answers_code_5_and_recovers() {
    let kms = Kms::init_in(
        tempfile::tempdir().unwrap(),
        CHAIN,
        "unix:///placeholder.sock",
        "v0.38",
        &[],
    );
    let listener = listen(kms.dir.path(), false, Dialect::V0_38).unwrap();
    // Point the config at the real socket.
    let text = fs::read_to_string(&kms.config)
        .unwrap()
        .replace("unix:///placeholder.sock", &listener.local_addr());
    fs::write(&kms.config, text).unwrap();
    let shim = build_shim(kms.dir.path());
    let fault = kms.path("fault");
    let mut guard = Guard(kms.spawn_with_env(&[
        ("LD_PRELOAD", shim.to_str().unwrap()),
        ("TMKMS_FAULT_FILE", fault.to_str().unwrap()),
    ]));
    let mut conn =
        accept(&listener, &mut guard.0, Duration::from_secs(10)).expect("signer connects");
    let pubkey = kms.pubkey();

    for h in 1..=3 {
        let signed = sign(&mut conn, &prevote(h)).expect("signs while storage is fine");
        verify_vote(&pubkey, CHAIN, &prevote(h), &signed, Dialect::V0_38, false).unwrap();
    }
    assert_eq!(kms.state().position.height.value(), 3);

    for errno in ["EROFS", "ENOSPC", "EIO"] {
        fs::write(&fault, errno).unwrap();
        assert_eq!(
            sign(&mut conn, &prevote(4)).unwrap_err(),
            codes::PERSIST_FAILED,
            "{errno}"
        );
        fs::remove_file(&fault).unwrap();
        assert_eq!(
            kms.state().position.height.value(),
            3,
            "{errno}: nothing persisted"
        );
    }
    // Pings and pubkey still work while the disk is bad.
    fs::write(&fault, "EROFS").unwrap();
    conn.ping().unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), pubkey);
    fs::remove_file(&fault).unwrap();

    // Storage back: the same request is signed normally.
    let signed = sign(&mut conn, &prevote(4)).expect("signs once storage is back");
    verify_vote(&pubkey, CHAIN, &prevote(4), &signed, Dialect::V0_38, false).unwrap();
    assert_eq!(kms.state().position.height.value(), 4);

    let log = kms.log();
    assert!(
        log.contains("could not persist the new state; nothing was signed"),
        "log: {log}"
    );
    assert!(
        log.contains("Read-only file system"),
        "log names the OS error: {log}"
    );
    assert!(log.contains("No space left on device"), "log: {log}");
    assert!(
        log.contains(kms.state_path().to_str().unwrap()),
        "log names the state file: {log}"
    );
}

/// Run `mount` and report whether it worked (needs root; CI runs as root).
fn mount(args: &[&str]) -> bool {
    Command::new("mount")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn state_on_read_only_filesystem_refuses_to_start_with_a_clear_error() {
    let kms = Kms::init(CHAIN, "unix:///nonexistent/node.sock", "v0.38");
    let state_dir = kms.path("state");
    let dir = state_dir.to_str().unwrap();
    if !(mount(&["--bind", dir, dir]) && mount(&["-o", "remount,ro,bind", dir])) {
        let _ = Command::new("umount").arg(dir).status();
        panic!("this test needs root to make a read-only bind mount (mount --bind); run the suite as root");
    }
    let out = Command::new(common::BIN)
        .args(["start", "-c", kms.config.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(dir).status();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("consensus.state"),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains("Read-only file system"),
        "names the cause: {stderr}"
    );
}
