//! Against a running LocalStack (host mode), which implements KMS `Decrypt`
//! with an attestation `Recipient` by encrypting to the document's
//! `public_key` (it checks no signature, certificate chain or PCR).
//!
//!   ./scripts/localstack.sh start
//!   TMKMS_TEST_KMS_ENDPOINT=http://127.0.0.1:4566 cargo test -p tmkms-nitro-kms --test localstack
//!
//! Without `TMKMS_TEST_KMS_ENDPOINT` every test prints SKIPPED and passes,
//! unless `TMKMS_REQUIRE_KMS=1` (CI), which turns a missing or unreachable
//! endpoint into a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use ciborium::Value;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::EncodePublicKey;
use rsa::RsaPrivateKey;
use tmkms_nitro_kms::{
    open_enveloped_data, tcp_connector, CmsError, Credentials, KmsClient, KmsConfig, KmsError,
    KmsErrorKind,
};

const REGION: &str = "us-east-1";

/// The endpoint URL, or None (after printing SKIPPED) when tests should be skipped.
fn endpoint() -> Option<KmsConfig> {
    let required = std::env::var("TMKMS_REQUIRE_KMS").is_ok_and(|v| v == "1");
    let Ok(url) = std::env::var("TMKMS_TEST_KMS_ENDPOINT") else {
        if required {
            panic!("TMKMS_REQUIRE_KMS=1 but TMKMS_TEST_KMS_ENDPOINT is unset: run `scripts/localstack.sh start` and export TMKMS_TEST_KMS_ENDPOINT=http://127.0.0.1:4566");
        }
        eprintln!("\n*** SKIPPED: LocalStack not running (TMKMS_TEST_KMS_ENDPOINT unset; see scripts/localstack.sh) ***\n");
        return None;
    };
    let config = KmsConfig::with_endpoint_url(REGION, &url)
        .unwrap_or_else(|e| panic!("TMKMS_TEST_KMS_ENDPOINT: {e}"));
    let addr = (config.endpoint.host.as_str(), config.endpoint.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next());
    let reachable =
        addr.is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !reachable {
        if required {
            panic!("TMKMS_REQUIRE_KMS=1 but {url} is unreachable: start LocalStack with `scripts/localstack.sh start`");
        }
        eprintln!("\n*** SKIPPED: LocalStack not running ({url} unreachable; see scripts/localstack.sh) ***\n");
        return None;
    }
    Some(config)
}

fn client(config: KmsConfig) -> KmsClient {
    let addr = format!("{}:{}", config.endpoint.host, config.endpoint.port);
    // LocalStack accepts any credentials; a session token exercises that path.
    let creds = Credentials::new("test", "test", Some("test-session-token".into()));
    KmsClient::new(config, creds, tcp_connector(addr, Duration::from_secs(30))).unwrap()
}

/// A minimal attestation document shaped like the NSM's: an untagged
/// COSE_Sign1 `[protected, unprotected, payload, signature]` whose payload map
/// carries `public_key` (DER SubjectPublicKeyInfo). The signature is zeros:
/// LocalStack reads only `public_key`.
fn attestation_document(public_key_der: Option<&[u8]>) -> Vec<u8> {
    let mut payload = vec![
        (
            Value::Text("module_id".into()),
            Value::Text("i-test-enc0123456789".into()),
        ),
        (Value::Text("digest".into()), Value::Text("SHA384".into())),
        (
            Value::Text("timestamp".into()),
            Value::Integer(1_700_000_000_000u64.into()),
        ),
        (
            Value::Text("pcrs".into()),
            Value::Map(
                (0..3)
                    .map(|i| (Value::Integer(i.into()), Value::Bytes(vec![0; 48])))
                    .collect(),
            ),
        ),
        (
            Value::Text("certificate".into()),
            Value::Bytes(vec![0x30, 0x00]),
        ),
        (
            Value::Text("cabundle".into()),
            Value::Array(vec![Value::Bytes(vec![0x30, 0x00])]),
        ),
        (Value::Text("user_data".into()), Value::Null),
        (Value::Text("nonce".into()), Value::Null),
    ];
    if let Some(pk) = public_key_der {
        payload.push((Value::Text("public_key".into()), Value::Bytes(pk.to_vec())));
    }
    let mut payload_bytes = Vec::new();
    ciborium::into_writer(&Value::Map(payload), &mut payload_bytes).unwrap();
    // Protected header {1 (alg): -35 (ES384)}.
    let mut protected = Vec::new();
    ciborium::into_writer(
        &Value::Map(vec![(
            Value::Integer(1.into()),
            Value::Integer((-35).into()),
        )]),
        &mut protected,
    )
    .unwrap();
    let cose = Value::Array(vec![
        Value::Bytes(protected),
        Value::Map(vec![]),
        Value::Bytes(payload_bytes),
        Value::Bytes(vec![0; 96]),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&cose, &mut out).unwrap();
    out
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!("  {what}: {:.1} ms", start.elapsed().as_secs_f64() * 1000.0);
    out
}

#[test]
fn decrypt_for_recipient_round_trip() {
    let Some(config) = endpoint() else { return };
    let mut kms = client(config);
    let key_id = timed("CreateKey", || {
        kms.create_key("tmkms-nitro-kms test").unwrap()
    });
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let mut context = BTreeMap::new();
    context.insert("tmkms:purpose".to_owned(), "validator-key".to_owned());
    let blob = timed("Encrypt (32 B)", || {
        kms.encrypt(&key_id, &secret, Some(&context)).unwrap()
    });
    eprintln!("  CiphertextBlob: {} bytes", blob.len());

    let enclave_key = timed("RSA-2048 keygen", || {
        RsaPrivateKey::new(&mut OsRng, 2048).unwrap()
    });
    let spki = enclave_key.to_public_key().to_public_key_der().unwrap();
    let doc = attestation_document(Some(spki.as_bytes()));
    let envelope = timed("Decrypt with Recipient", || {
        kms.decrypt_for_recipient_with_context(&blob, Some(&key_id), Some(&context), &doc)
            .unwrap()
    });
    eprintln!(
        "  CiphertextForRecipient: {} bytes, starts {:02x?} ({})",
        envelope.len(),
        &envelope[..4],
        if envelope[1] == 0x80 {
            "BER indefinite"
        } else {
            "DER"
        }
    );
    let opened = timed("open_enveloped_data", || {
        open_enveloped_data(&envelope, &enclave_key).unwrap()
    });
    assert_eq!(&opened[..], &secret[..]);

    // The envelope is useless to anyone without the enclave's private key.
    let other = RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    assert!(matches!(
        open_enveloped_data(&envelope, &other),
        Err(CmsError::KeyTransport)
    ));
}

#[test]
fn plain_decrypt_round_trip_for_host_tools() {
    let Some(config) = endpoint() else { return };
    let mut kms = client(config);
    let key_id = kms.create_key("tmkms-nitro-kms plain").unwrap();
    let blob = kms.encrypt(&key_id, b"host-side secret", None).unwrap();
    assert_eq!(&kms.decrypt(&blob).unwrap()[..], b"host-side secret");
}

#[test]
fn refuses_plaintext_when_the_endpoint_ignores_the_recipient() {
    let Some(config) = endpoint() else { return };
    let mut kms = client(config);
    let key_id = kms.create_key("tmkms-nitro-kms no recipient").unwrap();
    let blob = kms.encrypt(&key_id, &[7u8; 32], None).unwrap();
    // No public_key in the document: LocalStack falls back to returning Plaintext.
    let doc = attestation_document(None);
    let err = kms
        .decrypt_for_recipient(&blob, Some(&key_id), &doc)
        .unwrap_err();
    assert!(matches!(err, KmsError::PlaintextReturned), "{err}");
}

#[test]
fn maps_kms_errors() {
    let Some(config) = endpoint() else { return };
    let mut kms = client(config);
    let missing = "11111111-2222-3333-4444-555555555555";
    let err = kms.encrypt(missing, b"x", None).unwrap_err();
    eprintln!("  Encrypt with an unknown key: {err}");
    assert_eq!(err.kind(), Some(KmsErrorKind::NotFound), "{err}");

    let key_id = kms.create_key("tmkms-nitro-kms errors").unwrap();
    let mut context = BTreeMap::new();
    context.insert("a".to_owned(), "b".to_owned());
    let blob = kms.encrypt(&key_id, b"secret", Some(&context)).unwrap();
    let err = kms.decrypt(&blob).unwrap_err();
    eprintln!("  Decrypt without the encryption context: {err}");
    assert_eq!(err.kind(), Some(KmsErrorKind::InvalidCiphertext), "{err}");

    let err = kms
        .decrypt(b"definitely not a ciphertext blob")
        .unwrap_err();
    eprintln!("  Decrypt of garbage: {err}");
    assert!(matches!(err, KmsError::Service { .. }), "{err}");
}
