//! Test harness: signer homes made by the real `tmkms-light-sgx-runner`
//! binary in simulation mode, with the host build of the real enclave app
//! and SIGSTRUCTs signed with test keys.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tmkms_light::config::Config;
use tmkms_light::enclave::BoundPolicy;
use tmkms_light::state::file::FileStore;
use tmkms_light::types::SignState;
use tmkms_light_sgx_seal::testing::{
    other_test_signing_key, sign_test_sigstruct, test_signing_key, TEST_ENCLAVEHASH, TEST_ISVPRODID,
};
use tmkms_light_sgx_seal::{
    unseal_seed_bound, EnclaveIdentity, SimulatedCpu, SimulatedHardware, LABEL_CONSENSUS_KEY,
};

// Each test binary uses its own subset of the node side's process helpers.
#[allow(unused_imports)]
pub use tmkms_node_sim::harness::prelude::*;
use tmkms_node_sim::home::{logging_to, sibling_binary, SignerHome, SIGNER_LOG};

pub const RUNNER: &str = env!("CARGO_BIN_EXE_tmkms-light-sgx-runner");

/// The host build of the enclave app, next to the runner in target/.
pub fn app_path() -> PathBuf {
    sibling_binary(RUNNER, "tmkms-light-sgx-app", "tmkms-light-sgx-app")
}

/// The arguments that name the enclave: `--mode`, `--enclave` (the app)
/// and `--sigstruct`.
pub fn enclave_args<'a>(mode: &'a str, enclave: &'a Path, sigstruct: &'a Path) -> [&'a str; 6] {
    let enclave = enclave.to_str().unwrap();
    let sigstruct = sigstruct.to_str().unwrap();
    [
        "--mode",
        mode,
        "--enclave",
        enclave,
        "--sigstruct",
        sigstruct,
    ]
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

/// The CPUSVN of the simulated CPU in the enclave app's host build.
pub const SIM_CPUSVN: [u8; 16] = [1; 16];

fn toml_string(text: &str) -> String {
    let table: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
    table.get("v").unwrap().as_str().unwrap().to_owned()
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

/// A signer home made by `init --mode simulation` (the shared layout and
/// log helpers come from [`SignerHome`]).
pub struct Sgx {
    pub home: SignerHome,
}

tmkms_node_sim::derefs_to_home!(Sgx);

impl Sgx {
    pub fn init_in(
        dir: tempfile::TempDir,
        chain_id: &str,
        address: &str,
        dialect: &str,
        extra: &[&str],
    ) -> Sgx {
        Self::init_as(
            dir,
            (Signer::A, 1, false),
            chain_id,
            address,
            dialect,
            extra,
        )
        .0
    }

    /// `init` with the enclave identity `(signer, isvsvn, debug)`; also
    /// returns the runner's output.
    pub fn init_as(
        dir: tempfile::TempDir,
        (signer, isvsvn, debug): (Signer, u16, bool),
        chain_id: &str,
        address: &str,
        dialect: &str,
        extra: &[&str],
    ) -> (Sgx, Output) {
        let home = SignerHome::new(dir);
        let sig = sigstruct(home.dir.path(), signer, isvsvn, debug);
        let app = app_path();
        let mut args = home.init_args(chain_id, address, dialect);
        args.extend(enclave_args("simulation", &app, &sig));
        args.extend_from_slice(extra);
        let out = run_ok(&args);
        (Sgx { home }, out)
    }

    /// Point `[sgx] sigstruct_path` at another SIGSTRUCT (an upgraded or
    /// foreign enclave); returns its path.
    pub fn use_sigstruct(&self, signer: Signer, isvsvn: u16, debug: bool) -> PathBuf {
        let sig = sigstruct(self.dir.path(), signer, isvsvn, debug);
        self.set_sgx_field("sigstruct_path", sig.to_str().unwrap());
        sig
    }

    /// Replace the `field = …` line of the `[sgx]` section.
    pub fn set_sgx_field(&self, field: &str, value: &str) {
        let text = fs::read_to_string(&self.config).unwrap();
        let prefix = format!("{field} = ");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with(&prefix) {
                    found = true;
                    format!("{prefix}{}", toml::Value::String(value.to_owned()))
                } else {
                    line.to_owned()
                }
            })
            .collect();
        assert!(found, "no {field} line in the config:\n{text}");
        fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// The SIGSTRUCT the config names now.
    pub fn current_sigstruct(&self) -> PathBuf {
        let text = fs::read_to_string(&self.config).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("sigstruct_path = "))
            .expect("sigstruct_path line");
        let value: String = toml_string(line.trim_start_matches("sigstruct_path = "));
        PathBuf::from(value)
    }

    pub fn sim_cpu_secret_path(&self) -> PathBuf {
        self.path("secrets/sim-cpu-secret")
    }

    pub fn sim_cpu_secret(&self) -> [u8; 32] {
        let text = fs::read_to_string(self.sim_cpu_secret_path()).unwrap();
        hex::decode(text.trim()).unwrap().try_into().unwrap()
    }

    /// The simulated hardware the enclave runs on with the current config,
    /// rebuilt in the test from the same inputs (SIGSTRUCT + CPU secret),
    /// to look inside sealed files.
    pub fn sim_hardware(&self) -> SimulatedHardware {
        let sig = fs::read(self.current_sigstruct()).unwrap();
        SimulatedHardware::new(
            EnclaveIdentity::from_sigstruct(&sig).unwrap(),
            SimulatedCpu::new(self.sim_cpu_secret(), SIM_CPUSVN),
        )
    }

    /// The policy the config asks for (what `init` binds the key to).
    pub fn policy(&self) -> BoundPolicy {
        BoundPolicy::from_config(&Config::load(&self.config).unwrap())
    }

    /// Unseal a sealed seed file in the test (see [`Self::sim_hardware`]);
    /// the consensus key for the config's policy.
    pub fn unseal_seed(&self, rel: &str, label: &str) -> [u8; 32] {
        let blob = fs::read(self.path(rel)).unwrap();
        let bound = if label == LABEL_CONSENSUS_KEY {
            self.policy().encode()
        } else {
            Vec::new()
        };
        *unseal_seed_bound(&self.sim_hardware(), label, &blob, &bound).unwrap()
    }

    /// Run `start` in the foreground with a deadline; for starts that must fail.
    pub fn start_within(&self, within: Duration) -> Output {
        run_within(&["start", "-c", self.config_str()], within)
    }

    /// `start`; runner and enclave logs go to signer.log (appended).
    pub fn spawn(&self) -> Child {
        logging_to(
            Command::new(RUNNER)
                .args(["start", "-c", self.config_str()])
                .env("TMKMS_LOG", "info"),
            self,
            SIGNER_LOG,
        )
        .spawn()
        .expect("spawn runner")
    }

    /// The consensus public key, as `pubkey -p hex` prints it.
    pub fn pubkey(&self) -> [u8; 32] {
        let out = run_ok(&["pubkey", "-c", self.config_str(), "-p", "hex"]);
        let hex = String::from_utf8(out.stdout).unwrap();
        hex::decode(hex.trim()).unwrap().try_into().unwrap()
    }

    pub fn state(&self) -> SignState {
        FileStore::peek(self.state_path()).expect("state readable")
    }
}

/// Run the runner, killing it after `within` (a command that should have
/// ended: the output then says so).
pub fn run_within(args: &[&str], within: Duration) -> Output {
    run_env_within(args, &[], within)
}

pub fn run_env_within(args: &[&str], env: &[(&str, &str)], within: Duration) -> Output {
    use std::io::Read;
    let mut child = Command::new(RUNNER)
        .args(args)
        .env("TMKMS_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tmkms-light-sgx-runner");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            kill(&mut child);
            panic!(
                "{args:?} still running after {within:?} (it should have ended)\nstderr so far: {}",
                String::from_utf8_lossy(&err_reader.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Run a command that must fail; returns its stderr.
pub fn run_fails(args: &[&str]) -> String {
    let out = run_within(args, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{args:?} succeeded but should have failed:\n{stderr}"
    );
    stderr
}

/// Every text form a secret could leak in: hex (both cases) and base64
/// (standard and URL-safe, with and without padding).
pub fn secret_forms(secret: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    vec![
        hex::encode(secret),
        hex::encode_upper(secret),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ]
}

/// Assert that no form of `secret` appears in `text`.
pub fn assert_no_secret(text: &str, secret: &[u8], what: &str) {
    for form in secret_forms(secret) {
        assert!(
            !text.contains(&form),
            "{what} appears in the logs/output ({form})"
        );
    }
}

/// The mode bits of a file or directory.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}
