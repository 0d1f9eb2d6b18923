//! Attestation and the attested decrypt path, with the real binaries.
//!
//! * `verify` accepts init's attestation against the mock NSM's root and
//!   shows init's consensus key and the KMS key id; it refuses the same
//!   document against the pinned AWS root, and any tampered copy.
//! * `start` decrypts the keys only through KMS `Decrypt` with an attested
//!   `Recipient`: an HTTP-aware man in the middle between the helper's KMS
//!   proxy and the emulator shows every Decrypt carries a verifying
//!   attestation, and that a tampered attestation, a tampered envelope or a
//!   `Plaintext` answer each stop `start` with a clear error before the node
//!   gets anything. A corrupted ciphertext file is a clear KMS error.
//! * No secret (the consensus seed) appears in any log.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{
    accept, kill, kms_endpoint, listen, sign_checked_prevote, wait_exit, Guard, Nitro, HELPER,
};
use tmkms_light::keys::PublicKey;
use tmkms_node_sim::Dialect;

const CHAIN: &str = "attest-chain";

fn setup(kms: &str) -> (Nitro, tmkms_node_sim::NodeListener) {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro = Nitro::configured(dir, kms, CHAIN, &listener.local_addr(), "v0.38", "").init();
    (nitro, listener)
}

fn verify_cmd(doc: &std::path::Path, root: Option<&std::path::Path>) -> std::process::Output {
    let mut c = std::process::Command::new(HELPER);
    c.arg("verify").arg(doc);
    if let Some(root) = root {
        c.arg("--root").arg(root);
    }
    c.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_attestation_verifies_against_its_root_only_and_names_the_key() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, _listener) = setup(&kms);
    let doc_path = nitro.path("secrets/init-attestation.cbor");
    // Init's enclave process wrote this root; no other enclave started since.
    let root = nitro.path("mock-root.der");

    let out = verify_cmd(&doc_path, Some(&root));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "verify --root failed: {}{}",
        stdout,
        text(&out.stderr)
    );
    let bech32 = PublicKey(nitro.pubkey())
        .to_bech32("cosmosvalconspub")
        .unwrap();
    assert!(
        stdout.contains(&format!("consensus public key: {bech32}")),
        "init's key {bech32} not shown:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("KMS key id: {}", nitro.kms_key_id)),
        "KMS key id {} not shown:\n{stdout}",
        nitro.kms_key_id
    );
    assert!(stdout.contains("attestation document verified against the given root"));

    // The pinned AWS root does not sign the mock chain.
    let out = verify_cmd(&doc_path, None);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "mock document accepted by the AWS root"
    );
    assert!(
        stderr.contains("does not verify") && stderr.contains("does not lead to the trusted root"),
        "unclear refusal: {stderr}"
    );
    assert!(!text(&out.stdout).contains("consensus public key"));

    // Tampered copies: the consensus key inside the signed payload, and
    // bytes spread over the whole document (structure, certificates,
    // signature). Every one must fail.
    let doc = std::fs::read(&doc_path).unwrap();
    let key_at = doc
        .windows(32)
        .position(|w| w == nitro.pubkey())
        .expect("the consensus key is in the document's user data");
    let mut positions = vec![key_at + 7];
    positions.extend((1..=12).map(|i| i * doc.len() / 13));
    positions.push(doc.len() - 1);
    let tampered = nitro.path("tampered.cbor");
    for at in positions {
        let mut bad = doc.clone();
        bad[at] ^= 0x01;
        std::fs::write(&tampered, &bad).unwrap();
        let out = verify_cmd(&tampered, Some(&root));
        assert!(
            !out.status.success(),
            "document with byte {at} of {} flipped verified:\n{}",
            doc.len(),
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains("does not verify"),
            "byte {at}: {}",
            text(&out.stderr)
        );
    }
    // The key-carrying byte specifically breaks the signature, not parsing.
    let mut bad = doc.clone();
    bad[key_at + 7] ^= 0x01;
    std::fs::write(&tampered, &bad).unwrap();
    let err = text(&verify_cmd(&tampered, Some(&root)).stderr);
    assert!(
        err.contains("signature does not verify"),
        "a changed key must fail the signature: {err}"
    );
}

/// What the man in the middle does to KMS `Decrypt` traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    /// Forward unchanged (and record).
    None,
    /// Flip a bit in the RSA modulus of the attestation document's public key.
    AttestationKey,
    /// Flip a bit in the middle of `CiphertextForRecipient`.
    Envelope,
    /// Replace `CiphertextForRecipient` with a `Plaintext`.
    Plaintext,
}

/// Decrypt requests and responses seen, as JSON.
#[derive(Default)]
struct Seen {
    requests: Vec<serde_json::Value>,
    responses: Vec<serde_json::Value>,
}

struct Mitm {
    addr: String,
    tampered: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
}

/// An HTTP/1.1 (Connection: close) man in the middle in front of `upstream`.
fn mitm(upstream: &str, mode: Tamper) -> Mitm {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tampered = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let upstream = upstream.to_owned();
    {
        let (tampered, seen) = (Arc::clone(&tampered), Arc::clone(&seen));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (upstream, tampered, seen) =
                    (upstream.clone(), Arc::clone(&tampered), Arc::clone(&seen));
                std::thread::spawn(move || {
                    let _ = relay(client, &upstream, mode, &tampered, &seen);
                });
            }
        });
    }
    Mitm {
        addr,
        tampered,
        seen,
    }
}

/// Split an HTTP message into its head (without the blank line) and body.
fn split_message(raw: &[u8]) -> Option<(String, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8(raw[..end].to_vec()).ok()?;
    let mut body = raw[end + 4..].to_vec();
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// The message with `body`, its length header rewritten.
fn join_message(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.lines().enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0
            && (name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [out.into_bytes(), body.to_vec()].concat()
}

/// Read one request: head, then `Content-Length` bytes of body.
fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let len: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                return Ok(raw);
            }
        }
    }
}

/// Flip a bit in the modulus of the RSA-2048 SubjectPublicKeyInfo inside an
/// attestation document (the key KMS encrypts the envelope to).
fn flip_attested_key(doc: &mut [u8]) -> bool {
    // SPKI of an RSA-2048 key up to the modulus' leading zero byte.
    const PREFIX: [u8; 33] = [
        0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82,
        0x01, 0x01, 0x00,
    ];
    let Some(at) = doc.windows(PREFIX.len()).position(|w| w == PREFIX) else {
        return false;
    };
    doc[at + PREFIX.len() + 100] ^= 0x10;
    true
}

fn relay(
    mut client: TcpStream,
    upstream: &str,
    mode: Tamper,
    tampered: &AtomicUsize,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    let raw = read_request(&mut client)?;
    let Some((head, body)) = split_message(&raw) else {
        return Ok(());
    };
    let is_decrypt = header(&head, "x-amz-target") == Some("TrentService.Decrypt");
    let mut request_body = body;
    if is_decrypt {
        let mut json: serde_json::Value = serde_json::from_slice(&request_body).unwrap();
        seen.lock().unwrap().requests.push(json.clone());
        if mode == Tamper::AttestationKey {
            let field = &mut json["Recipient"]["AttestationDocument"];
            if let Some(text) = field.as_str() {
                let mut doc = B64.decode(text).unwrap();
                if flip_attested_key(&mut doc) {
                    *field = serde_json::Value::String(B64.encode(&doc));
                    tampered.fetch_add(1, Ordering::SeqCst);
                }
            }
            request_body = serde_json::to_vec(&json).unwrap();
        }
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&join_message(&head, &request_body))?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    if is_decrypt {
        if let Some((head, body)) = split_message(&response) {
            if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&body) {
                seen.lock().unwrap().responses.push(json.clone());
                let envelope = json["CiphertextForRecipient"].as_str().map(str::to_owned);
                match (mode, envelope) {
                    (Tamper::Envelope, Some(text)) => {
                        let mut env = B64.decode(text).unwrap();
                        let mid = env.len() / 2;
                        env[mid] ^= 0x01;
                        json["CiphertextForRecipient"] = B64.encode(&env).into();
                        tampered.fetch_add(1, Ordering::SeqCst);
                    }
                    (Tamper::Plaintext, Some(_)) => {
                        let map = json.as_object_mut().unwrap();
                        map.remove("CiphertextForRecipient");
                        map.insert("Plaintext".into(), B64.encode([0x42u8; 32]).into());
                        tampered.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                response = join_message(&head, &serde_json::to_vec(&json).unwrap());
            }
        }
    }
    client.write_all(&response)?;
    Ok(())
}

/// Route the enclave's KMS traffic (through the helper's KMS proxy) via a
/// man in the middle.
fn route_through(nitro: &Nitro, kms: &str, mode: Tamper) -> Mitm {
    let upstream = kms.trim_start_matches("http://").trim_end_matches('/');
    let m = mitm(upstream, mode);
    nitro.set_setting("kms_proxy_target", &format!("\"tcp://{}\"", m.addr));
    m
}

/// `start` must fail on its own, before the node is ever dialled; returns
/// the helper's log.
fn start_must_fail(nitro: &Nitro, listener: &tmkms_node_sim::NodeListener) -> String {
    let _enclave = Guard(nitro.spawn_enclave());
    let _proxy = Guard(nitro.spawn_proxy());
    let mut helper = nitro.spawn_helper();
    let conn = accept(listener, &mut helper, Duration::from_secs(60));
    assert!(
        conn.is_none(),
        "the signer reached the node:\n{}",
        nitro.log()
    );
    let status = wait_exit(&mut helper, Duration::from_secs(10));
    kill(&mut helper);
    assert!(
        matches!(status, Some(s) if !s.success()),
        "start must exit with an error, got {status:?}:\n{}",
        nitro.log()
    );
    assert!(
        listener.accept(Duration::from_millis(300)).is_err(),
        "the node got a connection"
    );
    let log = nitro.log();
    for line in log.lines().filter(|l| l.contains("error")) {
        eprintln!("start refused: {line}");
    }
    log
}

fn assert_no_secret(nitro: &Nitro, kms: &str) {
    let seed = nitro.consensus_seed(kms);
    assert_eq!(seed.len(), 32);
    let logs = nitro.all_logs() + &nitro.init_stdout;
    for shown in [
        hex::encode(&seed),
        hex::encode_upper(&seed),
        B64.encode(&seed),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&seed),
    ] {
        assert!(
            !logs.contains(&shown),
            "the consensus seed appears in a log"
        );
    }
}

#[test]
fn start_decrypts_only_through_an_attested_recipient() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener) = setup(&kms);
    let m = route_through(&nitro, &kms, Tamper::None);
    let started = std::time::Instant::now();
    let (mut running, mut conn) = nitro.start_connected(&listener, Duration::from_secs(60));
    let connect_time = started.elapsed();
    sign_checked_prevote(&mut conn, CHAIN, &nitro.pubkey(), Dialect::V0_38, 5);
    eprintln!("start to first node connection: {connect_time:?}");

    // What crossed the host: one Decrypt (Unix node: no identity key),
    // with an attestation from this enclave that binds an RSA key, answered
    // with an envelope, never a plaintext.
    let seen = m.seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 1, "Decrypt requests");
    let root = std::fs::read(nitro.path("mock-root.der")).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for request in &seen.requests {
        let recipient = &request["Recipient"];
        assert_eq!(recipient["KeyEncryptionAlgorithm"], "RSAES_OAEP_SHA_256");
        let doc = B64
            .decode(recipient["AttestationDocument"].as_str().unwrap())
            .unwrap();
        let verified = tmkms_nitro_nsm::verify(&doc, &root, now).unwrap();
        let public_key = verified.public_key().expect("attested recipient key");
        assert!(public_key.len() > 256, "an RSA-2048 SPKI");
        let mut probe = doc.clone();
        assert!(
            flip_attested_key(&mut probe),
            "the man in the middle finds the key"
        );
        assert_eq!(request["EncryptionContext"]["tmkms-light"], "consensus-key");
    }
    for response in &seen.responses {
        assert!(response.get("Plaintext").is_none(), "{response}");
        assert!(response["CiphertextForRecipient"].is_string(), "{response}");
    }
    drop(seen);
    assert_eq!(m.tampered.load(Ordering::SeqCst), 0);
    drop(conn);
    kill(&mut running.helper.0);
    assert_no_secret(&nitro, &kms);
}

/// `start` with the KMS traffic through a man in the middle that tampers
/// as `tamper` says: the start must fail after something was tampered
/// with, its log saying each of `says`. Returns the home and the log.
fn start_with_tampered_kms(kms: &str, tamper: Tamper, says: &[&str]) -> (Nitro, String) {
    let (nitro, listener) = setup(kms);
    let m = route_through(&nitro, kms, tamper);
    let log = start_must_fail(&nitro, &listener);
    assert!(m.tampered.load(Ordering::SeqCst) >= 1, "nothing tampered");
    for what in says {
        assert!(log.contains(what), "unclear error, no {what:?}:\n{log}");
    }
    (nitro, log)
}

#[test]
fn start_refuses_when_the_attested_key_was_changed_on_the_way() {
    let Some(kms) = kms_endpoint() else { return };
    // KMS (the emulator reads the key without checking the document's
    // signature; real KMS refuses the document outright) encrypts to a key
    // the enclave does not hold: the envelope cannot be opened (the error
    // names KMS, or the KMS envelope).
    let says = ["cannot decrypt the keys", "KMS"];
    let (nitro, _) = start_with_tampered_kms(&kms, Tamper::AttestationKey, &says);
    assert_no_secret(&nitro, &kms);
}

#[test]
fn start_refuses_a_tampered_envelope() {
    let Some(kms) = kms_endpoint() else { return };
    let says = ["cannot decrypt the keys", "opening the KMS envelope"];
    let (nitro, _) = start_with_tampered_kms(&kms, Tamper::Envelope, &says);
    assert_no_secret(&nitro, &kms);
}

#[test]
fn start_refuses_plaintext_in_place_of_the_envelope() {
    let Some(kms) = kms_endpoint() else { return };
    let says = [
        "returned Plaintext instead of CiphertextForRecipient",
        "crossed the host",
    ];
    let (_nitro, log) = start_with_tampered_kms(&kms, Tamper::Plaintext, &says);
    // The substituted "key" must not have been used for anything.
    assert!(!log.contains("enclave started; signing"), "{log}");
}

#[test]
fn start_reports_a_corrupted_ciphertext_as_a_kms_error() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener) = setup(&kms);
    let path = nitro.path("secrets/secret.key");
    let mut blob = std::fs::read(&path).unwrap();
    let mid = blob.len() / 2;
    blob[mid] ^= 0x01;
    std::fs::write(&path, &blob).unwrap();
    let log = start_must_fail(&nitro, &listener);
    assert!(
        log.contains("cannot decrypt the keys") && log.contains("KMS Decrypt failed"),
        "unclear error:\n{log}"
    );
}
