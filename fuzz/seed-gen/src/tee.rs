//! Seeds for the TEE-provider targets.
//!
//! Deterministic ones (HTTP responses, state-stream replies, control
//! messages) are rewritten on every run. The others hold fresh keys, nonces
//! and signatures — mock attestation documents, KMS envelopes for the
//! target's fixed RSA key, blobs sealed for the target's fixed simulated
//! enclave — so they are written, together with the key fixtures in
//! `fuzz/fixtures/` that the targets embed, only when their seed directory is
//! missing or when `--tee` is given; re-running would otherwise churn them.

use std::fs;
use std::path::Path;

use aes::cipher::{BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use cms::cert::x509::ext::pkix::SubjectKeyIdentifier;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
    RecipientInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Encode};
use rand_core::{OsRng, RngCore};
use spki::AlgorithmIdentifierOwned;
use tmkms_light::state::record::{encode_slot, encode_tagged_slot, StateTagKey, SLOT_LEN};
use tmkms_light::types::SignState;
use tmkms_light_sgx_seal::testing::{
    generate_sigstruct_key, sign_test_sigstruct, test_cpu, TEST_ENCLAVEHASH, TEST_ISVPRODID,
};
use tmkms_light_sgx_seal::{
    seal, EnclaveIdentity, SimulatedCpu, SimulatedHardware, LABEL_CLOUD_WRAP_KEY,
    LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};
use tmkms_nitro_kms::rsa::pkcs1::{EncodeRsaPrivateKey, RsaOaepParams};
use tmkms_nitro_kms::rsa::{Oaep, RsaPrivateKey};
use tmkms_nitro_nsm::{AttestationRequest, MockNsm, MockNsmConfig, Nsm};

use crate::Seeds;

/// Must match the `enclave_state_reply` target's key.
const STATE_TAG_SEED: [u8; 32] = [7; 32];
const STATE_TAG_CHAIN: &str = "fuzz-chain";

/// Must match `sgx_sealed_blob`: the target's CPU secret byte and ISVSVN.
pub const SGX_CPU_SECRET_BYTE: u8 = 0x42;
pub const SGX_ISVSVN: u16 = 2;

/// Same as the nsm crate's test vector (a real enclave's document).
const AWS_DOCUMENT_B64: &str =
    include_str!("../../../providers/nitro/nsm/src/testdata/aws_nitro_us-east-1_2024-09-17.b64");

/// A `CiphertextForRecipient` from real AWS KMS (BER: indefinite lengths,
/// segmented content), the one the kms crate's tests parse; its private key
/// is unknown, so it exercises the BER path up to the RSA step.
const REAL_KMS_ENVELOPE_B64URL: &str = "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFrMIIBZwIBAoAgcQ0zX-yOdGR8CYwov05XCbHVlfydT4HojTIC6-f7aZcwPAYJKoZIhvcNAQEHMC-gDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAASCAQApz_6xMi9PgrgYx6rvL-IP5U3G3b914l3A6Z3dxV72IoZN7bi5ILgBHJND5x1WzLCKuiLcNboY3v776NaZcCcXpD_Gtn-0X7BECFTdDkO58xKEP-24A9F8YUp2Aa6WDPR6Sf3-KAmaSy9aIiwgqLjT_gQTjYBP9AfRUtpiCZCxLTbARkTt0sArPiRef9-ltIxXKptWfbT8pOacD8orrQVZ433UajAtGOOTiAVAt8PcCBNLpCEisamJoSyPhW5peAkuulELN9bCr-2cvl62-cUsZOoPElV8kIc9b2eCnf15MD38oyX-j99xwCfZB4bpSo9cAuTftyD0kH3tva3ZIhEDMIAGCSqGSIb3DQEHATAdBglghkgBZQMEASoEEDc0PfFHDfYl7rb0v9LxrMOggAQQzHSt9l2XPItyzVHhuSfw8AAAAAAAAAAAAAA";

fn fixtures_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

fn write_fixture(name: &str, bytes: &[u8]) {
    let path = fixtures_dir().join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Length-prefixed (u32 LE) concatenation, the fixture format for lists.
fn length_prefixed(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&u32::try_from(item.len()).unwrap().to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Writes every TEE seed set; the randomized ones only if missing or forced.
pub fn tee_seeds(root: &Path, force: bool) {
    http_seeds(root);
    state_reply_seeds(root);
    control_seeds(root);
    let wanted = |target: &str| force || !root.join(target).exists();
    if wanted("nitro_attestation") {
        nitro_seeds(root);
    }
    if wanted("kms_envelope") {
        kms_seeds(root);
    }
    if wanted("sgx_sealed_blob") {
        sgx_seeds(root);
    }
}

// ---------------------------------------------------------------- nitro

/// `nitro_attestation` input: mode byte (0 mock root, 1 AWS root, 2 edits to
/// the target's own mock document, 3 a request to the target's mock) + rest.
fn nitro_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "nitro_attestation");
    let mock = MockNsm::with_config(MockNsmConfig {
        not_before_unix_secs: 1_800_000_000,
        timestamp_ms: Some(1_800_000_000_005),
        ..MockNsmConfig::default()
    })
    .unwrap();
    let requests = [
        ("empty", AttestationRequest::new()),
        (
            "all-fields",
            AttestationRequest::new()
                .with_user_data(b"tmkms-light init v1\0".to_vec())
                .with_nonce([7u8; 32])
                .with_public_key(vec![0x30; 294]),
        ),
        (
            "max-fields",
            AttestationRequest::new()
                .with_user_data(vec![1; 512])
                .with_nonce(vec![2; 512])
                .with_public_key(vec![3; 1024]),
        ),
    ];
    for (name, request) in &requests {
        let doc = mock.attestation(request).unwrap();
        seeds.add(&format!("mock-{name}"), &[&[0u8][..], &doc].concat());
    }
    let aws = STANDARD.decode(AWS_DOCUMENT_B64.trim()).unwrap();
    seeds.add("aws-real-vs-aws-root", &[&[1u8][..], &aws].concat());
    seeds.add("aws-real-vs-mock-root", &[&[0u8][..], &aws].concat());
    // Mode 2: no edit (the untouched document verifies), one flip in the
    // signature, one in the payload, a truncation.
    seeds.add("edit-none", &[2]);
    seeds.add("edit-flip-end", &[2, 0, 0xff, 0xff, 1]);
    seeds.add("edit-flip-payload", &[2, 0, 0x40, 0, 0x10]);
    seeds.add("edit-truncate", &[2, 3, 0x00, 0x02, 0]);
    // Mode 3: flags, split points, field bytes.
    seeds.add(
        "request-all",
        &[
            3, 7, 8, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
            20,
        ],
    );
    seeds.add("request-none", &[3, 0]);
    println!("nitro_attestation: {} seeds", seeds.count);
}

// ---------------------------------------------------------------- kms

const ID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_RSAES_OAEP: &str = "1.2.840.113549.1.1.7";
const ID_AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";

/// A DER ContentInfo(EnvelopedData) for `to`, built the way KMS builds a
/// `CiphertextForRecipient`: RSAES-OAEP-SHA256 key transport of a fresh
/// AES-256 key, AES-256-CBC content.
fn envelope(plaintext: &[u8], to: &RsaPrivateKey) -> Vec<u8> {
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut key);
    OsRng.fill_bytes(&mut iv);
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv)
        .unwrap()
        .encrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(plaintext);
    let enc_key = to
        .to_public_key()
        .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), &key)
        .unwrap();
    let oid = |s: &str| ObjectIdentifier::new_unwrap(s);
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V2,
        rid: RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(vec![7u8; 32]).unwrap(),
        )),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: oid(ID_RSAES_OAEP),
            parameters: Some(Any::encode_from(&RsaOaepParams::new::<sha2::Sha256>()).unwrap()),
        },
        enc_key: OctetString::new(enc_key).unwrap(),
    };
    let enveloped = EnvelopedData {
        version: CmsVersion::V2,
        originator_info: None,
        recip_infos: RecipientInfos(SetOfVec::try_from(vec![RecipientInfo::Ktri(ktri)]).unwrap()),
        encrypted_content: EncryptedContentInfo {
            content_type: oid(ID_DATA),
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: oid(ID_AES256_CBC),
                parameters: Some(
                    Any::encode_from(&OctetString::new(iv.to_vec()).unwrap()).unwrap(),
                ),
            },
            encrypted_content: Some(OctetString::new(ciphertext).unwrap()),
        },
        unprotected_attrs: None,
    };
    ContentInfo {
        content_type: oid(ID_ENVELOPED_DATA),
        content: Any::encode_from(&enveloped).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// Re-encodes DER as BER the way KMS sends it: every constructed element
/// with an indefinite length, and the `[0]` encrypted content (primitive
/// `0x80` in DER, after an OID and a SEQUENCE) as a constructed `[0]` of
/// 8-byte OCTET STRING segments. (The recipient's `[0]` key identifier stays
/// primitive, as in KMS output.)
fn der_to_kms_ber(der: &[u8], out: &mut Vec<u8>) {
    let mut pos = 0;
    let mut previous = Vec::new();
    while pos < der.len() {
        let tag = der[pos];
        let (len, header) = match der[pos + 1] {
            b if b < 0x80 => (usize::from(b), 2),
            b => {
                let n = usize::from(b & 0x7f);
                let len = der[pos + 2..pos + 2 + n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, 2 + n)
            }
        };
        let body = &der[pos + header..pos + header + len];
        if tag & 0x20 != 0 {
            out.extend_from_slice(&[tag, 0x80]);
            der_to_kms_ber(body, out);
            out.extend_from_slice(&[0, 0]);
        } else if tag == 0x80 && previous.ends_with(&[0x06, 0x30]) {
            out.extend_from_slice(&[0xa0, 0x80]);
            for segment in body.chunks(8) {
                out.extend_from_slice(&[0x04, segment.len() as u8]);
                out.extend_from_slice(segment);
            }
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&der[pos..pos + header + len]);
        }
        previous.push(tag);
        pos += header + len;
    }
}

/// `kms_envelope` input: the envelope itself, for the fixed key in
/// `fixtures/kms_recipient_rsa2048.der` (written here with the seeds).
fn kms_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "kms_envelope");
    let key = RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    write_fixture(
        "kms_recipient_rsa2048.der",
        key.to_pkcs1_der().unwrap().as_bytes(),
    );
    for len in [1usize, 16, 32, 64, 100] {
        let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let der = envelope(&plaintext, &key);
        let mut ber = Vec::new();
        der_to_kms_ber(&der, &mut ber);
        assert_eq!(
            tmkms_nitro_kms::ber_to_der(&ber).unwrap(),
            der,
            "BER seed does not convert back"
        );
        assert_eq!(
            &tmkms_nitro_kms::open_enveloped_data(&ber, &key).unwrap()[..],
            &plaintext[..]
        );
        seeds.add(&format!("der-{len}"), &der);
        seeds.add(&format!("ber-{len}"), &ber);
    }
    seeds.add(
        "aws-real-ber",
        &URL_SAFE_NO_PAD.decode(REAL_KMS_ENVELOPE_B64URL).unwrap(),
    );
    println!("kms_envelope: {} seeds", seeds.count);
}

// ---------------------------------------------------------------- http

/// `kms_http_response` input: cap byte, chunk-size count n, n sizes, stream.
fn http_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "kms_http_response");
    let json = br#"{"KeyId":"arn:aws:kms:us-east-1:000000000000:key/1234","CiphertextForRecipient":"MIAGCSqGSIb3DQEHA6CAMIACAQIx"}"#;
    let mut add = |name: &str, stream: &[u8]| {
        seeds.add(name, &[&[3u8, 3, 1, 7, 200][..], stream].concat());
    };
    add(
        "content-length",
        &[
            format!(
                "HTTP/1.1 200 OK\r\nx-amzn-RequestId: 1\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
                json.len()
            )
            .as_bytes(),
            json,
        ]
        .concat(),
    );
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in json.chunks(40) {
        chunked.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
    add("chunked", &chunked);
    add(
        "continue-then-close-delimited",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}",
    );
    add(
        "identity-chunked",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    add(
        "gzip",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    add(
        "too-long",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    );
    add(
        "truncated",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    );
    println!("kms_http_response: {} seeds", seeds.count);
}

// ---------------------------------------------------------------- state reply

/// `enclave_state_reply` input: flags byte + slot 0 + slot 1 (512 each).
/// Flags: bits 0/1 slot present, 2/3 fix its checksum, 4/5 re-tag it with
/// the enclave's key, 6 use the rest of the input as the raw stream reply.
fn state_reply_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "enclave_state_reply");
    let key = StateTagKey::derive(&STATE_TAG_SEED, STATE_TAG_CHAIN);
    let states = crate::sample_states();
    let pick = |name: &str| -> SignState {
        states
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| states[0].1.clone())
    };
    let (first, last) = (&states[0].1, &states[states.len() - 1].1);
    let untagged = |seq: u64, s: &SignState| encode_slot(seq, s).unwrap();
    let tagged = |seq: u64, s: &SignState| encode_tagged_slot(seq, s, &key).unwrap();
    let cases: Vec<(&str, u8, [u8; SLOT_LEN], [u8; SLOT_LEN])> = vec![
        (
            "tagged-consecutive",
            0b11,
            tagged(4, first),
            tagged(5, last),
        ),
        ("tagged-gap", 0b11, tagged(2, last), tagged(9, first)),
        ("untagged-both", 0b11, untagged(0, first), untagged(1, last)),
        ("untagged-ahead", 0b11, tagged(7, first), untagged(0, last)),
        (
            "retag-both",
            0b11_0011,
            untagged(3, first),
            untagged(4, last),
        ),
        ("one-missing", 0b01, tagged(1, last), [0; SLOT_LEN]),
        (
            "same-position",
            0b11,
            tagged(1, &pick("precommit")),
            tagged(2, &pick("precommit")),
        ),
    ];
    for (name, flags, a, b) in &cases {
        seeds.add(&format!("slots-{name}"), &[&[*flags][..], a, b].concat());
        // The same slots as a raw reply: frame(S, present, slot, present, slot).
        let mut body = vec![b'S'];
        for (present, slot) in [(flags & 1, a), ((flags >> 1) & 1, b)] {
            body.push(present);
            body.extend_from_slice(slot);
        }
        let mut raw = vec![0b100_0000];
        raw.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        raw.extend_from_slice(&body);
        seeds.add(&format!("raw-{name}"), &raw);
    }
    seeds.add(
        "raw-error",
        &[
            0b100_0000, 9, 0, 0, 0, b'E', b'n', b'o', b' ', b'd', b'i', b's', b'k', b'!',
        ],
    );
    seeds.add("raw-closed", &[0b100_0000]);
    println!("enclave_state_reply: {} seeds", seeds.count);
}

// ---------------------------------------------------------------- control

/// `enclave_control` input: JSON requests as the enclaves receive them, bare
/// and in a link frame. Each is parsed with the real type first.
fn control_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "enclave_control");
    let settings = r#"{"chain_id":"test-chain","max_height":1000000,"max_frame_bytes":1048576,"danger_allow_sign_bytes":false,"validators":[{"address":"tcp://f2673103417334a839f5c20096909c3023ba4903@127.0.0.1:26658","protocol_version":"v0.38","timeout_secs":5,"reconnect_max_backoff_secs":10}]}"#;
    let b64 = |b: &[u8]| STANDARD.encode(b);
    // Both enclaves take the same signing policy.
    let policy = r#"{"chain_id":"test-chain","danger_allow_sign_bytes":false,"protocol_versions":["v0.38"],"node_ids":["f2673103417334a839f5c20096909c3023ba4903"]}"#;
    let sgx = [
        (
            "sgx-generate",
            format!(r#"{{"generate":{{"backup":null,"policy":{policy}}}}}"#),
        ),
        (
            "sgx-generate-backup",
            format!(
                r#"{{"generate":{{"backup":{{"sealed_wrap_key":"{}","payload":"{}"}},"policy":{policy}}}}}"#,
                b64(&[1; 40]),
                b64(&[2; 300])
            ),
        ),
        (
            "sgx-cloud-wrap",
            format!(
                r#"{{"cloud_wrap":{{"target_info":"{}","allow_debug":false}}}}"#,
                b64(&[0; 512])
            ),
        ),
        (
            "sgx-recover",
            format!(
                r#"{{"recover":{{"backup":{{"sealed_wrap_key":"{}","payload":"{}"}},"consensus_backup":"{}","identity_backup":null,"policy":{policy}}}}}"#,
                b64(&[1; 40]),
                b64(&[2; 40]),
                b64(&[3; 80])
            ),
        ),
        (
            "sgx-public-keys",
            format!(
                r#"{{"public_keys":{{"sealed_consensus_key":"{}","policy":{policy}}}}}"#,
                b64(b"TMKLSEAL")
            ),
        ),
        (
            "sgx-import-state",
            format!(
                r#"{{"import_state":{{"sealed_consensus_key":"{}","policy":{policy},"current_slots":["{}",null],"state":"{{\"height\": \"5\", \"round\": 0, \"step\": 3}}","allow_regression":false}}}}"#,
                b64(b"TMKLSEAL"),
                b64(&[9; 512])
            ),
        ),
        (
            "sgx-start",
            format!(
                r#"{{"start":{{"settings":{settings},"sealed_consensus_key":"{}","sealed_identity_key":"{}"}}}}"#,
                b64(&[4; 160]),
                b64(&[5; 160])
            ),
        ),
    ];
    let kms = r#"{"region":"us-east-1","key_id":"arn:aws:kms:us-east-1:000000000000:key/1","endpoint_url":"https://kms.us-east-1.amazonaws.com","proxy":"vsock://3:8000","credentials":{"access_key_id":"ASIA","secret_access_key":"secret","session_token":"token"}}"#;
    let nitro = [
        (
            "nitro-init",
            format!(r#"{{"init":{{"kms":{kms},"policy":{policy}}}}}"#),
        ),
        (
            "nitro-import-state",
            format!(
                r#"{{"import_state":{{"kms":{kms},"policy":{policy},"encrypted_consensus_key":"{}","current_slots":["{}",null],"state":"{{\"height\": \"5\", \"round\": 0, \"step\": 3}}","allow_regression":false}}}}"#,
                b64(&[8; 200]),
                b64(&[9; 512])
            ),
        ),
        (
            "nitro-import-state-new-file",
            format!(
                r#"{{"import_state":{{"kms":{kms},"policy":{policy},"encrypted_consensus_key":"{}","current_slots":null,"state":"{{}}","allow_regression":true}}}}"#,
                b64(&[8; 200])
            ),
        ),
        (
            "nitro-start",
            format!(
                r#"{{"start":{{"kms":{kms},"settings":{settings},"encrypted_consensus_key":"{}","encrypted_identity_key":"{}","host":"vsock://3:5000","logs":"unix:///run/tmkms/logs.sock"}}}}"#,
                b64(&[6; 200]),
                b64(&[7; 200])
            ),
        ),
    ];
    let mut add = |name: &str, json: &str| {
        seeds.add(name, json.as_bytes());
        let mut framed = u32::try_from(json.len()).unwrap().to_le_bytes().to_vec();
        framed.extend_from_slice(json.as_bytes());
        seeds.add(&format!("{name}-framed"), &framed);
    };
    for (name, json) in &sgx {
        let request: tmkms_light_sgx_app::protocol::Request = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("seed {name} is not an SGX request: {e}"));
        add(name, &serde_json::to_string(&request).unwrap());
    }
    for (name, json) in &nitro {
        let request: tmkms_nitro_enclave::protocol::Request = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("seed {name} is not a Nitro request: {e}"));
        add(name, &serde_json::to_string(&request).unwrap());
    }
    println!("enclave_control: {} seeds", seeds.count);
}

// ---------------------------------------------------------------- sgx

/// `sgx_sealed_blob` input: the blob. The target's enclave identity comes
/// from `fixtures/sgx_sigstruct.bin` (ISVSVN [`SGX_ISVSVN`], not debug) on a
/// CPU with secret byte [`SGX_CPU_SECRET_BYTE`]; every seed blob is also
/// listed in `fixtures/sgx_sealed_blobs.bin`, the only blobs that may unseal.
fn sgx_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "sgx_sealed_blob");
    let signer = generate_sigstruct_key().unwrap();
    let sigstruct = |isvsvn: u16, debug: bool| {
        sign_test_sigstruct(&signer, TEST_ENCLAVEHASH, TEST_ISVPRODID, isvsvn, debug).unwrap()
    };
    let own = sigstruct(SGX_ISVSVN, false);
    write_fixture("sgx_sigstruct.bin", &own);
    let hw = |sig: &[u8], cpu: SimulatedCpu| {
        SimulatedHardware::new(EnclaveIdentity::from_sigstruct(sig).unwrap(), cpu)
    };
    let this = hw(&own, test_cpu(SGX_CPU_SECRET_BYTE));
    let older = hw(
        &sigstruct(SGX_ISVSVN - 1, false),
        test_cpu(SGX_CPU_SECRET_BYTE),
    );
    let newer = hw(
        &sigstruct(SGX_ISVSVN + 1, false),
        test_cpu(SGX_CPU_SECRET_BYTE),
    );
    let debug = hw(&sigstruct(SGX_ISVSVN, true), test_cpu(SGX_CPU_SECRET_BYTE));
    let other_cpu = hw(&own, test_cpu(SGX_CPU_SECRET_BYTE ^ 1));
    let newer_cpu = hw(&own, SimulatedCpu::new([SGX_CPU_SECRET_BYTE; 32], [3; 16]));

    let wrap_key = vec![0x30u8; 1190];
    let mut blobs = Vec::new();
    let mut add = |name: &str, hw: &SimulatedHardware, label: &str, secret: &[u8]| {
        let blob = seal(hw, label, secret).unwrap();
        seeds.add(name, &blob);
        blobs.push(blob);
    };
    add("consensus", &this, LABEL_CONSENSUS_KEY, &[1; 32]);
    add("identity", &this, LABEL_IDENTITY_KEY, &[2; 32]);
    add("cloud-wrap", &this, LABEL_CLOUD_WRAP_KEY, &wrap_key);
    add("custom-label", &this, "fuzz-label.v1", &[3; 5]);
    add("older-enclave", &older, LABEL_CONSENSUS_KEY, &[4; 32]);
    add("newer-enclave", &newer, LABEL_CONSENSUS_KEY, &[5; 32]);
    add("debug-enclave", &debug, LABEL_CONSENSUS_KEY, &[6; 32]);
    add("other-cpu", &other_cpu, LABEL_CONSENSUS_KEY, &[7; 32]);
    add("newer-cpu", &newer_cpu, LABEL_CONSENSUS_KEY, &[8; 32]);
    write_fixture("sgx_sealed_blobs.bin", &length_prefixed(&blobs));
    println!("sgx_sealed_blob: {} seeds", seeds.count);
}
