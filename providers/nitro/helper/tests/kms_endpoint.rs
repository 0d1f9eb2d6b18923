//! A hostile host against the KMS connection of a production enclave.
//!
//! `init` sends the new seeds to KMS `Encrypt`; the only thing between them
//! and the host is TLS that ends inside the enclave. These tests run the real
//! `tmkms-nitro-enclave` binary *without* `--mock-nsm` — the production
//! enclave, whose NSM device is opened at the first attestation, so every
//! KMS rule is checked on this host exactly as in an enclave — and play the
//! host: they choose the KMS endpoint and own the proxy the enclave's KMS
//! traffic goes through, recording every byte it receives.
//!
//! What must hold:
//! * a plain-HTTP, foreign, look-alike, other-region or other-port endpoint
//!   is refused inside the enclave before any connection (the host's proxy
//!   never sees a byte), for `init`, `start` and `state import`, and through
//!   the real helper;
//! * a host that forwards the enclave's TLS to a server of its own (a
//!   certificate for the right name, from a CA the enclave does not trust)
//!   never completes a handshake, so it reads nothing — while the same
//!   server completes one with a client that trusts its CA (the control that
//!   shows the server would have read the traffic).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{command, enclave_bin, Guard, HELPER, REGION};
use tmkms_light::enclave::{BoundPolicy, EnclaveSettings, ValidatorSettings};
use tmkms_light::link::{recv_json, send_json};
use tmkms_nitro_kms::Credentials;
use tmkms_nitro_protocol::messages::{KmsAccess, Request, Response, MAX_CONTROL_MESSAGE};
use tmkms_nitro_transport::{Endpoint, Stream};
use zeroize::Zeroizing;

const KEY_ID: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const FORGED_CERT: &[u8] = include_bytes!("data/forged-kms-us-east-1.crt.der");
const FORGED_KEY: &[u8] = include_bytes!("data/forged-kms-us-east-1.key.der");

// ------------------------------------------------------------ the host's proxy

/// The host's KMS proxy: a TCP listener on loopback that records every
/// connection and every byte the enclave sends; with a certificate it also
/// answers as a TLS server (the host's own "KMS").
struct CapturingProxy {
    port: u16,
    seen: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    connections: usize,
    bytes: Vec<u8>,
    /// Handshakes the TLS server completed (it could then read the traffic).
    handshakes_completed: usize,
    /// Why the TLS server's handshakes ended.
    handshake_errors: Vec<String>,
}

/// A stream that copies what it reads into the capture.
struct Recording {
    inner: TcpStream,
    seen: Arc<Mutex<Captured>>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn forged_server_config() -> Arc<rustls::ServerConfig> {
    let cert = rustls::pki_types::CertificateDer::from(FORGED_CERT.to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(FORGED_KEY.to_vec()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

impl CapturingProxy {
    /// Records bytes and closes each connection after 5 s of silence.
    fn plain() -> Self {
        Self::start(None)
    }

    /// Answers TLS with a certificate for `kms.us-east-1.amazonaws.com`
    /// issued by a CA of the host's own.
    fn forged_kms() -> Self {
        Self::start(Some(forged_server_config()))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Captured::default()));
        let shared = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                shared.lock().unwrap().connections += 1;
                let seen = shared.clone();
                let tls = tls.clone();
                thread::spawn(move || serve(stream, seen, tls));
            }
        });
        Self { port, seen }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Tcp {
            host: "127.0.0.1".to_owned(),
            port: self.port,
        }
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }
}

fn serve(stream: TcpStream, seen: Arc<Mutex<Captured>>, tls: Option<Arc<rustls::ServerConfig>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut recording = Recording {
        inner: stream,
        seen: seen.clone(),
    };
    let Some(config) = tls else {
        let mut sink = [0u8; 4096];
        while matches!(recording.read(&mut sink), Ok(n) if n > 0) {}
        return;
    };
    let mut server = rustls::ServerConnection::new(config).unwrap();
    while server.is_handshaking() {
        if let Err(e) = server.complete_io(&mut recording) {
            seen.lock().unwrap().handshake_errors.push(e.to_string());
            return;
        }
    }
    seen.lock().unwrap().handshakes_completed += 1;
    // The host now reads whatever the client sends.
    let mut plain = [0u8; 4096];
    let _ = server.complete_io(&mut recording);
    let _ = server.reader().read(&mut plain);
}

// ------------------------------------------------------------ the enclave

/// The production enclave binary (no `--mock-nsm`) listening on a Unix
/// socket in `dir`; stderr to `dir/enclave.log`.
fn spawn_production_enclave(dir: &Path) -> (Guard, Endpoint) {
    let sock = dir.join("enclave.sock");
    let log = fs::File::create(dir.join("enclave.log")).unwrap();
    let child: Child = command(&enclave_bin())
        .args(["--listen", &format!("unix://{}", sock.display())])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    (Guard(child), Endpoint::Unix { path: sock })
}

fn control(endpoint: &Endpoint, enclave: &mut Guard) -> Stream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match endpoint.connect(Duration::from_secs(2)) {
            Ok(stream) => return stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline && matches!(enclave.0.try_wait(), Ok(None)),
                    "the enclave never listened: {e}"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn access(endpoint_url: Option<&str>, proxy: Endpoint) -> KmsAccess {
    KmsAccess {
        region: REGION.to_owned(),
        key_id: KEY_ID.to_owned(),
        endpoint_url: endpoint_url.map(str::to_owned),
        proxy,
        credentials: Credentials {
            access_key_id: "AKIDHOSTILE".to_owned(),
            secret_access_key: Zeroizing::new("hostile".to_owned()),
            session_token: None,
        },
    }
}

fn policy() -> BoundPolicy {
    BoundPolicy {
        chain_id: "kms-chain".to_owned(),
        danger_allow_sign_bytes: false,
        protocol_versions: BTreeSet::from(["v0.38".to_owned()]),
        node_ids: BTreeSet::new(),
    }
}

/// A loopback port nothing listens on (the host's streams are not the
/// point here; the KMS proxy is).
fn closed_port() -> Endpoint {
    Endpoint::Tcp {
        host: "127.0.0.1".to_owned(),
        port: 1,
    }
}

/// What the enclave answered to `request`, and its log.
fn ask(request: &Request) -> (Response, String) {
    let dir = tempfile::tempdir().unwrap();
    let (mut enclave, endpoint) = spawn_production_enclave(dir.path());
    let mut stream = control(&endpoint, &mut enclave);
    send_json(&mut stream, request).unwrap();
    let answer = recv_json(&mut stream, MAX_CONTROL_MESSAGE);
    let log = fs::read_to_string(dir.path().join("enclave.log")).unwrap_or_default();
    let answer = answer.unwrap_or_else(|e| panic!("no answer: {e}\n{log}"));
    (answer, log)
}

fn error_of(answer: Response, log: &str) -> String {
    match answer {
        Response::Error { message } => message,
        other => panic!("the enclave did not refuse: {other:?}\n{log}"),
    }
}

/// Endpoints a production enclave must refuse, and a word its error names.
fn hostile_endpoints(proxy_port: u16) -> Vec<(String, &'static str)> {
    vec![
        (format!("http://127.0.0.1:{proxy_port}"), "plain HTTP"),
        (
            "http://kms.us-east-1.amazonaws.com".to_owned(),
            "plain HTTP",
        ),
        (
            "https://kms.attacker.example".to_owned(),
            "not an AWS KMS endpoint",
        ),
        (
            "https://kms.us-east-1.amazonaws.com.attacker.example".to_owned(),
            "not an AWS KMS endpoint",
        ),
        (
            "https://kms.eu-west-1.amazonaws.com".to_owned(),
            "us-east-1",
        ),
        (
            "https://kms.us-east-1.amazonaws.com:8443".to_owned(),
            "8443",
        ),
        ("https://127.0.0.1".to_owned(), "not an AWS KMS endpoint"),
    ]
}

#[test]
fn init_refuses_every_endpoint_but_aws_kms_of_the_region_before_connecting() {
    let proxy = CapturingProxy::plain();
    for (url, names) in hostile_endpoints(proxy.port) {
        let (answer, log) = ask(&Request::Init {
            kms: access(Some(&url), proxy.endpoint()),
            policy: policy(),
        });
        let message = error_of(answer, &log);
        assert!(
            message.contains(names),
            "{url}: the refusal does not say why ({names}): {message}"
        );
        assert_eq!(
            proxy.connections(),
            0,
            "{url}: the host's proxy was reached"
        );
    }
    assert!(proxy.seen.lock().unwrap().bytes.is_empty());
}

#[test]
fn start_and_state_import_refuse_a_foreign_endpoint_before_connecting() {
    let proxy = CapturingProxy::plain();
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let settings = EnclaveSettings {
        chain_id: "kms-chain".to_owned(),
        max_height: None,
        max_frame_bytes: 1 << 20,
        danger_allow_sign_bytes: false,
        validators: vec![ValidatorSettings {
            address: "unix:///nonexistent/node.sock".to_owned(),
            protocol_version: "v0.38".to_owned(),
            timeout_secs: 3,
            reconnect_max_backoff_secs: 1,
        }],
    };
    let (answer, log) = ask(&Request::Start {
        kms: access(Some(&url), proxy.endpoint()),
        settings,
        encrypted_consensus_key: vec![1; 64],
        encrypted_identity_key: None,
        host: closed_port(),
        logs: closed_port(),
    });
    assert!(error_of(answer, &log).contains("plain HTTP"));
    let (answer, log) = ask(&Request::ImportState {
        kms: access(Some("https://kms.attacker.example"), proxy.endpoint()),
        policy: policy(),
        encrypted_consensus_key: vec![1; 64],
        current_slots: None,
        state: r#"{"height":"5","round":0,"step":0}"#.to_owned(),
        allow_regression: false,
    });
    assert!(error_of(answer, &log).contains("not an AWS KMS endpoint"));
    assert_eq!(proxy.connections(), 0, "the host's proxy was reached");
}

#[test]
fn a_host_forwarding_kms_tls_to_its_own_server_completes_no_handshake() {
    let proxy = CapturingProxy::forged_kms();
    // The default endpoint: kms.us-east-1.amazonaws.com, which the forged
    // certificate names.
    let (answer, log) = ask(&Request::Init {
        kms: access(None, proxy.endpoint()),
        policy: policy(),
    });
    let message = error_of(answer, &log);
    assert!(
        message.to_lowercase().contains("certificate") || message.contains("TLS"),
        "the refusal does not name the TLS failure: {message}"
    );
    let seen = proxy.seen.lock().unwrap();
    assert!(
        seen.connections >= 1,
        "the enclave never tried KMS: {message}"
    );
    assert_eq!(
        seen.handshakes_completed, 0,
        "the host's server completed a TLS handshake with the enclave"
    );
    // What the host got is a ClientHello (and an alert): a TLS handshake
    // record naming the KMS host, never an HTTP request.
    assert_eq!(seen.bytes.first(), Some(&0x16), "not a TLS record");
    let text = String::from_utf8_lossy(&seen.bytes);
    assert!(text.contains("kms.us-east-1.amazonaws.com"), "no SNI");
    assert!(!text.contains("TrentService") && !text.contains("Plaintext"));
    drop(seen);

    // Control: a client that trusts the host's CA completes the handshake
    // with the same server, so the server would have read the traffic.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            FORGED_CERT.to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("kms.us-east-1.amazonaws.com").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    while client.is_handshaking() {
        client.complete_io(&mut tcp).unwrap();
    }
    client
        .writer()
        .write_all(b"POST / HTTP/1.1\r\n\r\n")
        .unwrap();
    client.complete_io(&mut tcp).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.seen.lock().unwrap().handshakes_completed == 0 {
        assert!(
            Instant::now() < deadline,
            "the control handshake never completed"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_helpers_init_with_a_plain_http_endpoint_is_refused_by_a_production_enclave() {
    let proxy = CapturingProxy::plain();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let sock = |name: &str| format!("unix://{}", home.join(format!("{name}.sock")).display());
    let config = home.join("tmkms.toml");
    fs::write(
        &config,
        format!(
            r#"chain_id = "kms-chain"
consensus_key_path = "secrets/unused"
id_key_path = "secrets/unused-id"
state_file_path = "state/consensus.state"

[[validator]]
address = "{node}"
protocol_version = "v0.38"

[nitro]
region = "{REGION}"
kms_key_id = "{KEY_ID}"
kms_endpoint = "http://127.0.0.1:{port}"
enclave = "{enclave}"
host_listen = "{host}"
host_for_enclave = "{host}"
logs_listen = "{logs}"
logs_for_enclave = "{logs}"
kms_proxy_listen = "{kms_proxy}"
kms_proxy_for_enclave = "{kms_proxy}"
kms_proxy_target = "tcp://127.0.0.1:{port}"
"#,
            node = sock("node"),
            port = proxy.port,
            enclave = sock("enclave"),
            host = sock("host"),
            logs = sock("logs"),
            kms_proxy = sock("kms-proxy"),
        ),
    )
    .unwrap();
    let (_enclave, _) = spawn_production_enclave(home);
    let out = command(Path::new(HELPER))
        .args(["init", "-c", config.to_str().unwrap(), "-p", "hex"])
        .args(["-a", REGION, "-k", KEY_ID])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "init succeeded:\n{stderr}");
    assert!(stderr.contains("plain HTTP"), "{stderr}");
    assert!(out.stdout.is_empty(), "init printed a key");
    assert!(!home.join("secrets/secret.key").exists());
    assert_eq!(proxy.connections(), 0, "the host's proxy was reached");
}
