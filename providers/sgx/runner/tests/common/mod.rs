//! Test harness: signer homes made by the real `tmkms-light-sgx-runner`
//! binary in simulation mode, with the host build of the real enclave app
//! and SIGSTRUCTs signed with test keys.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tmkms_light::state::file::FileStore;
use tmkms_light::types::SignState;
use tmkms_light_sgx_seal::testing::{
    other_test_signing_key, sign_test_sigstruct, test_signing_key, TEST_ENCLAVEHASH, TEST_ISVPRODID,
};
use tmkms_node_sim::{Dialect, NodeListener, SignerConn};

pub const RUNNER: &str = env!("CARGO_BIN_EXE_tmkms-light-sgx-runner");

/// The host build of the enclave app, next to the runner in target/.
pub fn app_path() -> PathBuf {
    Path::new(RUNNER).with_file_name("tmkms-light-sgx-app")
}

/// Which test signer signs a SIGSTRUCT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    A,
    B,
}

/// A SIGSTRUCT file for the test enclave, signed by `signer` at `isvsvn`.
pub fn sigstruct(dir: &Path, signer: Signer, isvsvn: u16, debug: bool) -> PathBuf {
    type Signed = Vec<((Signer, u16, bool), Vec<u8>)>;
    static CACHE: OnceLock<std::sync::Mutex<Signed>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (signer, isvsvn, debug);
    let bytes = {
        let mut cache = cache.lock().unwrap();
        match cache.iter().find(|(k, _)| *k == key) {
            Some((_, bytes)) => bytes.clone(),
            None => {
                let signing_key = match signer {
                    Signer::A => test_signing_key(),
                    Signer::B => other_test_signing_key(),
                };
                let bytes = sign_test_sigstruct(
                    signing_key,
                    TEST_ENCLAVEHASH,
                    TEST_ISVPRODID,
                    isvsvn,
                    debug,
                )
                .unwrap();
                cache.push((key, bytes.clone()));
                bytes
            }
        }
    };
    let path = dir.join(format!("app-{signer:?}-svn{isvsvn}-debug{debug}.sig"));
    fs::write(&path, bytes).unwrap();
    path
}

pub fn run(args: &[&str]) -> Output {
    Command::new(RUNNER)
        .args(args)
        .env("TMKMS_LOG", "info")
        .output()
        .expect("run tmkms-light-sgx-runner")
}

pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A signer home made by `init --mode simulation`.
pub struct Sgx {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Sgx {
    pub fn init_in(
        dir: tempfile::TempDir,
        chain_id: &str,
        address: &str,
        dialect: &str,
        extra: &[&str],
    ) -> Sgx {
        let config = dir.path().join("tmkms.toml");
        let sig = sigstruct(dir.path(), Signer::A, 1, false);
        let app = app_path();
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
            "--mode",
            "simulation",
            "--enclave",
            app.to_str().unwrap(),
            "--sigstruct",
            sig.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
        Sgx { dir, config }
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

    pub fn set_top_level(&self, line: &str) {
        let text = fs::read_to_string(&self.config).unwrap();
        fs::write(&self.config, format!("{line}\n{text}")).unwrap();
    }

    /// `start`; runner and enclave logs go to signer.log (appended).
    pub fn spawn(&self) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        Command::new(RUNNER)
            .args(["start", "-c", self.config.to_str().unwrap()])
            .env("TMKMS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn runner")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The consensus public key, as `pubkey -p hex` prints it.
    pub fn pubkey(&self) -> [u8; 32] {
        let out = run_ok(&["pubkey", "-c", self.config.to_str().unwrap(), "-p", "hex"]);
        let hex = String::from_utf8(out.stdout).unwrap();
        hex::decode(hex.trim()).unwrap().try_into().unwrap()
    }

    pub fn state(&self) -> SignState {
        FileStore::peek(self.state_path()).expect("state readable")
    }
}

pub fn listen(dir: &Path, tcp: bool, dialect: Dialect) -> NodeListener {
    if tcp {
        NodeListener::bind_tcp("127.0.0.1:0", dialect).unwrap()
    } else {
        NodeListener::bind_unix(dir.join("node.sock"), dialect).unwrap()
    }
}

pub fn accept(listener: &NodeListener, child: &mut Child, within: Duration) -> Option<SignerConn> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match listener.accept(Duration::from_millis(200)) {
            Ok(conn) => return Some(conn),
            Err(_) => {
                if child.try_wait().unwrap().is_some() {
                    return None;
                }
            }
        }
    }
    None
}

pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        kill(&mut self.0);
    }
}
