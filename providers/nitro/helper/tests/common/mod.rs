//! Test harness: the real `tmkms-nitro-helper` and `tmkms-nitro-enclave`
//! binaries as two host processes over Unix sockets (standing in for
//! vsock), the enclave with its mock NSM, KMS from the local emulator
//! (LocalStack, `scripts/localstack.sh start`) reached through the helper's
//! KMS proxy, and the node simulator.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use tmkms_light::state::file::FileStore;
use tmkms_light::types::SignState;
use tmkms_nitro_kms::{tcp_connector, Credentials, KmsClient, KmsConfig};
use tmkms_node_sim::{NodeListener, SignerConn};

// Each test binary uses its own subset of the node side's process helpers.
#[allow(unused_imports)]
pub use tmkms_node_sim::harness::prelude::*;
use tmkms_node_sim::home::{logging_to, sibling_binary, SignerHome, SIGNER_LOG};

pub const HELPER: &str = env!("CARGO_BIN_EXE_tmkms-nitro-helper");

pub fn enclave_bin() -> PathBuf {
    sibling_binary(HELPER, "tmkms-nitro-enclave", "tmkms-nitro-enclave")
}

/// The KMS emulator's endpoint (`http://127.0.0.1:4566`), or `None` when it
/// is not running; with TMKMS_REQUIRE_KMS=1 its absence fails the test.
pub fn kms_endpoint() -> Option<String> {
    let endpoint = std::env::var("TMKMS_TEST_KMS_ENDPOINT").ok();
    let reachable = endpoint.as_deref().is_some_and(|url| {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        std::net::TcpStream::connect(addr).is_ok()
    });
    if reachable {
        return endpoint;
    }
    if std::env::var("TMKMS_REQUIRE_KMS").as_deref() == Ok("1") {
        panic!("TMKMS_REQUIRE_KMS=1 but the KMS emulator is not reachable at TMKMS_TEST_KMS_ENDPOINT={endpoint:?}; run scripts/localstack.sh start");
    }
    eprintln!("*** SKIPPED: KMS emulator not running (scripts/localstack.sh start; TMKMS_TEST_KMS_ENDPOINT) ***");
    None
}

pub const REGION: &str = "us-east-1";

fn credentials() -> Credentials {
    Credentials::new("test", "test", None)
}

/// A host-side client of the emulator (for setting up and checking tests).
pub fn kms_client(endpoint: &str) -> KmsClient {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    KmsClient::new(
        KmsConfig::with_endpoint_url(REGION, endpoint).unwrap(),
        credentials(),
        tcp_connector(addr, Duration::from_secs(30)),
    )
    .unwrap()
}

/// A new KMS key in the emulator.
pub fn create_key(endpoint: &str) -> String {
    kms_client(endpoint)
        .create_key("tmkms-light nitro test")
        .unwrap()
}

/// `bin` with the test's AWS credentials and log level, kept on loopback.
pub fn command(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    tmkms_node_sim::harness::loopback_only(&mut c);
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_SESSION_TOKEN", "test-session")
        .env("TMKMS_LOG", "info");
    c
}

/// The processes of a started signer, each killed when dropped.
pub struct Running {
    pub enclave: Guard,
    pub proxy: Guard,
    pub helper: Guard,
}

/// A signer home: tmkms.toml with Unix-socket endpoints, an enclave process
/// and `init` done (the shared layout and log helpers come from
/// [`SignerHome`]).
pub struct Nitro {
    pub home: SignerHome,
    pub kms_key_id: String,
    pub init_stdout: String,
}

tmkms_node_sim::derefs_to_home!(Nitro);

impl Nitro {
    pub fn sock(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.sock"))
    }

    /// Run `init` (`-p hex`) in this configured home against a fresh
    /// enclave process.
    pub fn init(self) -> Nitro {
        let mut enclave = Guard(self.spawn_enclave());
        let out = self.helper(&[
            "init",
            "-c",
            self.config_str(),
            "-a",
            REGION,
            "-k",
            &self.kms_key_id,
            "-p",
            "hex",
        ]);
        assert!(
            out.status.success(),
            "init failed:\n{}\nenclave log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.enclave_log()
        );
        kill(&mut enclave.0);
        Nitro {
            init_stdout: String::from_utf8(out.stdout).unwrap(),
            ..self
        }
    }

    /// A home with tmkms.toml written (Unix-socket endpoints, a new KMS
    /// key) and no `init` run yet.
    pub fn configured(
        dir: tempfile::TempDir,
        kms: &str,
        chain_id: &str,
        address: &str,
        dialect: &str,
        top_level: &str,
    ) -> Nitro {
        let kms_key_id = create_key(kms);
        let home = SignerHome::new(dir);
        let sock = |name: &str| format!("unix://{}", home.path(&format!("{name}.sock")).display());
        let kms_target = format!(
            "tcp://{}",
            kms.trim_start_matches("http://").trim_end_matches('/')
        );
        let text = format!(
            r#"{top_level}
chain_id = "{chain_id}"
consensus_key_path = "secrets/unused"
id_key_path = "secrets/unused-id"
state_file_path = "state/consensus.state"

[[validator]]
address = "{address}"
protocol_version = "{dialect}"

[nitro]
region = "{REGION}"
kms_key_id = "{kms_key_id}"
kms_endpoint = "{kms}"
enclave = "{enclave}"
host_listen = "{host}"
host_for_enclave = "{host}"
logs_listen = "{logs}"
logs_for_enclave = "{logs}"
kms_proxy_listen = "{proxy}"
kms_proxy_for_enclave = "{proxy}"
kms_proxy_target = "{kms_target}"
"#,
            enclave = sock("enclave"),
            host = sock("host"),
            logs = sock("logs"),
            proxy = sock("kms-proxy"),
        );
        fs::write(&home.config, text).unwrap();
        Nitro {
            home,
            kms_key_id,
            init_stdout: String::new(),
        }
    }

    pub fn helper(&self, args: &[&str]) -> Output {
        command(Path::new(HELPER)).args(args).output().unwrap()
    }

    /// Spawns `cmd` with its output appended to the home's log file `log`.
    fn spawn_logged(&self, cmd: &mut Command, log: &str) -> Child {
        logging_to(cmd, self, log).spawn().unwrap()
    }

    /// The enclave process (mock NSM); its stderr goes to enclave.log.
    pub fn spawn_enclave(&self) -> Child {
        let _ = fs::remove_file(self.sock("enclave"));
        let mut enclave = command(&enclave_bin());
        enclave
            .args([
                "--listen",
                &format!("unix://{}", self.sock("enclave").display()),
            ])
            .arg("--mock-nsm")
            .arg("--mock-nsm-root-out")
            .arg(self.path("mock-root.der"));
        self.spawn_logged(&mut enclave, "enclave.log")
    }

    /// `enclave vsock-proxy` (the KMS proxy for `start`).
    pub fn spawn_proxy(&self) -> Child {
        let mut proxy = command(Path::new(HELPER));
        proxy.args(["enclave", "vsock-proxy", "-c", self.config_str()]);
        self.spawn_logged(&mut proxy, "proxy.log")
    }

    /// `start`; helper log (with the enclave's forwarded lines) in signer.log.
    pub fn spawn_helper(&self) -> Child {
        let mut helper = command(Path::new(HELPER));
        helper.args(["start", "-c", self.config_str()]);
        self.spawn_logged(&mut helper, SIGNER_LOG)
    }

    /// Starts the signer: enclave, KMS proxy and helper.
    pub fn start(&self) -> Running {
        Running {
            enclave: Guard(self.spawn_enclave()),
            proxy: Guard(self.spawn_proxy()),
            helper: Guard(self.spawn_helper()),
        }
    }

    /// Starts the signer and accepts its connection on `node` within
    /// `within`; fails the test, with the helper's log, when it never
    /// connects.
    pub fn start_connected(&self, node: &NodeListener, within: Duration) -> (Running, SignerConn) {
        let mut running = self.start();
        let conn = accept(node, &mut running.helper.0, within)
            .unwrap_or_else(|| panic!("no connection:\n{}", self.log()));
        (running, conn)
    }

    pub fn enclave_log(&self) -> String {
        self.read_log("enclave.log")
    }

    pub fn pubkey(&self) -> [u8; 32] {
        hex::decode(self.init_stdout.trim())
            .unwrap()
            .try_into()
            .unwrap()
    }

    pub fn state(&self) -> SignState {
        FileStore::peek(self.state_path()).expect("state readable")
    }

    /// Set `key = value` (value as TOML) in tmkms.toml, replacing the line
    /// that sets it.
    pub fn set_setting(&self, key: &str, value: &str) {
        let text = fs::read_to_string(&self.config).unwrap();
        let prefix = format!("{key} = ");
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "{key} not in tmkms.toml"
        );
        let new: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    format!("{prefix}{value}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        fs::write(&self.config, new.join("\n") + "\n").unwrap();
    }

    /// The consensus key's seed, obtained the way only a test can: a plain
    /// KMS Decrypt of `secrets/secret.key` from the emulator, with the
    /// encryption context of the policy init bound (`secrets/policy.json`).
    /// For checking that the secret never shows up where it must not.
    pub fn consensus_seed(&self, kms: &str) -> Vec<u8> {
        let blob = fs::read(self.path("secrets/secret.key")).unwrap();
        let context = tmkms_nitro_protocol::encryption_context::context(
            tmkms_nitro_protocol::encryption_context::CONTEXT_CONSENSUS,
            &self.bound_policy(),
        );
        let plaintext = kms_client(kms)
            .decrypt_with_context(&blob, None, Some(&context))
            .unwrap();
        // seed ‖ policy digest (hex)
        plaintext.get(..32).unwrap().to_vec()
    }

    /// The policy init bound to the key (its copy in `secrets/policy.json`).
    pub fn bound_policy(&self) -> tmkms_light::enclave::BoundPolicy {
        serde_json::from_slice(&fs::read(self.path("secrets/policy.json")).unwrap()).unwrap()
    }

    /// Every log this home's processes wrote.
    pub fn all_logs(&self) -> String {
        [SIGNER_LOG, "enclave.log", "proxy.log"]
            .iter()
            .map(|name| self.read_log(name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
