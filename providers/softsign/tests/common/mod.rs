//! Shared harness for tests that run the real `tmkms-softsign` binary
//! against the node simulator. Each test gets its own temp directory, its own
//! socket or port 0, so tests run in parallel.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tmkms_light::state::file::FileStore;
use tmkms_light::types::SignState;

/// The node side's process helpers, shared by every provider's tests
/// (`accept` gives up early when the child exits; `Guard` kills its child
/// when dropped). Each test binary uses its own subset of them.
#[allow(unused_imports)]
pub use tmkms_node_sim::harness::{accept_or_exit as accept, kill, listen, ChildGuard as Guard};

pub const BIN: &str = env!("CARGO_BIN_EXE_tmkms-softsign");

/// A signer home: config, keys and state made by `tmkms-softsign init`.
pub struct Kms {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tmkms-softsign")
}

impl Kms {
    /// `init` a signer home for `address` (tcp://… or unix://…).
    pub fn init(chain_id: &str, address: &str, dialect: &str) -> Kms {
        Self::init_in(
            tempfile::tempdir().unwrap(),
            chain_id,
            address,
            dialect,
            &[],
        )
    }

    pub fn init_in(
        dir: tempfile::TempDir,
        chain_id: &str,
        address: &str,
        dialect: &str,
        extra: &[&str],
    ) -> Kms {
        let config = dir.path().join("tmkms.toml");
        let mut args = vec![
            "init",
            "-c",
            config.to_str().unwrap(),
            "--chain-id",
            chain_id,
            "--address",
            address,
            "--protocol-version",
            dialect,
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Kms { dir, config }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn log_path(&self) -> PathBuf {
        self.path("signer.log")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path("state/consensus.state")
    }

    /// Add a top-level setting (e.g. `max_height = 10`) at the top of tmkms.toml.
    pub fn set_top_level(&self, line: &str) {
        let text = fs::read_to_string(&self.config).unwrap();
        let text = format!("{line}\n{text}");
        fs::write(&self.config, text).unwrap();
    }

    /// Start the signer; its log goes to signer.log (appended).
    pub fn spawn(&self) -> Child {
        self.spawn_with_env(&[])
    }

    /// Start the signer with extra `start` arguments (e.g.
    /// `--allow-empty-state`); its log goes to signer.log (appended).
    pub fn spawn_with_args(&self, extra: &[&str]) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        Command::new(BIN)
            .args(["start", "-c", self.config.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tmkms-softsign start")
    }

    pub fn spawn_with_env(&self, env: &[(&str, &str)]) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["start", "-c", self.config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn tmkms-softsign start")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pubkey(&self) -> [u8; 32] {
        use base64::Engine as _;
        let out = run(&[
            "pubkey",
            "-c",
            self.config.to_str().unwrap(),
            "-p",
            "base64",
        ]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let first = text.lines().next().unwrap().trim();
        base64::engine::general_purpose::STANDARD
            .decode(first)
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// The durable state, read the way `state show` reads it.
    pub fn state(&self) -> SignState {
        FileStore::peek(self.state_path()).expect("state readable")
    }
}

/// Compile a C file into a shared object for LD_PRELOAD fault injection, with
/// the system C compiler.
pub fn build_preload_shim(src: &Path, out: &Path) {
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(out)
        .arg(src)
        .arg("-ldl")
        .status()
        .expect("a C compiler (cc) is needed to build the fault-injection shims");
    assert!(status.success(), "building {} failed", src.display());
}
