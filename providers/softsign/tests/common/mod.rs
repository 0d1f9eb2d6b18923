//! Shared harness for tests that run the real `tmkms-softsign` binary
//! against the node simulator. Each test gets its own temp directory, its own
//! socket or port 0, so tests run in parallel.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use tmkms_light::state::file::FileStore;
use tmkms_light::types::SignState;

// Each test binary uses its own subset of the node side's process helpers.
#[allow(unused_imports)]
pub use tmkms_node_sim::harness::prelude::*;
use tmkms_node_sim::home::{SignerHome, SIGNER_LOG};

pub const BIN: &str = env!("CARGO_BIN_EXE_tmkms-softsign");

/// A signer home: config, keys and state made by `tmkms-softsign init`
/// (the shared layout and log helpers come from [`SignerHome`]).
pub struct Kms {
    pub home: SignerHome,
}

tmkms_node_sim::derefs_to_home!(Kms);

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
        let home = SignerHome::new(dir);
        let mut args = home.init_args(chain_id, address, dialect);
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Kms { home }
    }

    /// Start the signer; its log goes to signer.log (appended).
    pub fn spawn(&self) -> Child {
        self.spawn_with(&[], &[])
    }

    /// Start the signer with extra `start` arguments (e.g.
    /// `--allow-empty-state`); its log goes to signer.log (appended).
    pub fn spawn_with_args(&self, extra: &[&str]) -> Child {
        self.spawn_with(extra, &[])
    }

    pub fn spawn_with_env(&self, env: &[(&str, &str)]) -> Child {
        self.spawn_with(&[], env)
    }

    fn spawn_with(&self, extra: &[&str], env: &[(&str, &str)]) -> Child {
        Command::new(BIN)
            .args(["start", "-c", self.config_str()])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.append_log(SIGNER_LOG))
            .spawn()
            .expect("spawn tmkms-softsign start")
    }

    pub fn pubkey(&self) -> [u8; 32] {
        use base64::Engine as _;
        let out = run(&["pubkey", "-c", self.config_str(), "-p", "base64"]);
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
