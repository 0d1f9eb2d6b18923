//! `tmkms_nitro_nsm::verify` on attestation documents: what the helper and
//! any third party verify, and what an attacker between them can shape.
//!
//! Input: one mode byte, then
//! * 0 — a document, verified against the root of a mock NSM made once per
//!   process;
//! * 1 — a document, verified against the pinned AWS root at the time the
//!   real AWS test document was made;
//! * 2 — edits (4 bytes each: op, offset LE u16, value) applied to a document
//!   the process's mock made, verified against the mock root: bytes flipped,
//!   inserted, deleted, or the document truncated, so that the mutations land
//!   inside a well-formed COSE/CBOR/X.509 structure whose chain verifies;
//! * 3 — a request (flags byte, two split points, field bytes) the mock
//!   answers; the document must verify and carry exactly the requested fields.
//!
//! Invariants besides "never panics": a successful verification always
//! yields a `describe()` text naming the module; the fuzzer holds no signing
//! key, so a document that verifies against the AWS root is the real test
//! document, one that verifies against the mock root was signed by the
//! mock's leaf, and an edited mock document that verifies carries the same
//! attested contents as the original (the signature covers all of them).
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use tmkms_nitro_nsm::{
    aws_root_der, describe, verify, AttestationDoc, AttestationRequest, MockNsm, MockNsmConfig,
    Nsm, MAX_NONCE_LEN, MAX_PUBLIC_KEY_LEN, MAX_USER_DATA_LEN,
};

/// Fixed validity start of the mock's chain, and the verification time.
const T0: u64 = 1_800_000_000;
const MOCK_NOW: u64 = T0 + 60;
/// Inside the real AWS document's leaf validity (2024-09-17 00:47:56..03:47:59 UTC).
const AWS_NOW: u64 = 1_726_534_100;

struct Fixture {
    mock: MockNsm,
    mock_root: Vec<u8>,
    mock_document: Vec<u8>,
    mock_doc: AttestationDoc,
    aws_root: Vec<u8>,
    aws_doc: AttestationDoc,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mock = MockNsm::with_config(MockNsmConfig {
            not_before_unix_secs: T0,
            timestamp_ms: Some(T0 * 1000 + 5),
            ..MockNsmConfig::default()
        })
        .expect("mock NSM");
        let request = AttestationRequest::new()
            .with_user_data(b"tmkms-light init v1\0".to_vec())
            .with_nonce([7u8; 32])
            .with_public_key(vec![0x30; 64]);
        let mock_document = mock.attestation(&request).expect("mock document");
        let mock_root = mock.root_certificate_der().to_vec();
        let mock_doc =
            verify(&mock_document, &mock_root, MOCK_NOW).expect("mock document verifies");
        let aws_root = aws_root_der();
        let aws_document = base64::engine::general_purpose::STANDARD
            .decode(
                include_str!(
                    "../../providers/nitro/nsm/src/testdata/aws_nitro_us-east-1_2024-09-17.b64"
                )
                .trim(),
            )
            .expect("base64 test document");
        let aws_doc = verify(&aws_document, &aws_root, AWS_NOW).expect("AWS document verifies");
        Fixture {
            mock,
            mock_root,
            mock_document,
            mock_doc,
            aws_root,
            aws_doc,
        }
    })
}

fn check_described(doc: &AttestationDoc) {
    let text = describe(doc);
    assert!(
        text.contains(doc.module_id()),
        "describe() omits the module id: {text}"
    );
}

/// Applies 4-byte edit records to `doc`.
fn edit(doc: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut out = doc.to_vec();
    for e in edits.chunks_exact(4) {
        let offset = usize::from(u16::from_le_bytes([e[1], e[2]]));
        let value = e[3];
        match e[0] % 4 {
            0 if !out.is_empty() => {
                let i = offset % out.len();
                out[i] ^= value.max(1);
            }
            1 => {
                let i = offset % (out.len() + 1);
                out.insert(i, value);
            }
            2 if !out.is_empty() => {
                let i = offset % out.len();
                out.remove(i);
            }
            3 => out.truncate(offset),
            _ => {}
        }
    }
    out
}

/// Mode 3: flags (bit 0 user_data, 1 nonce, 2 public_key), two u16 split
/// points, then the bytes the three fields are cut from.
fn request(input: &[u8]) -> Option<AttestationRequest> {
    let (&flags, rest) = input.split_first()?;
    let (a, rest) = rest.split_at_checked(2)?;
    let (b, bytes) = rest.split_at_checked(2)?;
    let a = usize::from(u16::from_le_bytes([a[0], a[1]])).min(bytes.len());
    let b = usize::from(u16::from_le_bytes([b[0], b[1]]))
        .min(bytes.len())
        .max(a);
    let (user_data, nonce, public_key) = (&bytes[..a], &bytes[a..b], &bytes[b..]);
    let mut request = AttestationRequest::new();
    if flags & 1 != 0 {
        request = request.with_user_data(user_data.to_vec());
    }
    if flags & 2 != 0 {
        request = request.with_nonce(nonce.to_vec());
    }
    if flags & 4 != 0 {
        request = request.with_public_key(public_key.to_vec());
    }
    Some(request)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    match mode % 4 {
        0 => {
            if let Ok(doc) = verify(rest, &f.mock_root, MOCK_NOW) {
                check_described(&doc);
                assert_eq!(
                    doc.certificate(),
                    f.mock.leaf_certificate_der(),
                    "a document verified against the mock root without the mock's leaf"
                );
            }
        }
        1 => {
            if let Ok(doc) = verify(rest, &f.aws_root, AWS_NOW) {
                check_described(&doc);
                assert_eq!(
                    doc, f.aws_doc,
                    "a second document verified against the AWS root"
                );
            }
        }
        2 => {
            let document = edit(&f.mock_document, rest);
            if let Ok(doc) = verify(&document, &f.mock_root, MOCK_NOW) {
                check_described(&doc);
                assert_eq!(
                    doc, f.mock_doc,
                    "an edited document verified with other contents"
                );
            }
        }
        _ => {
            let Some(request) = request(rest) else {
                return;
            };
            let within_limits = request
                .user_data
                .as_ref()
                .is_none_or(|v| v.len() <= MAX_USER_DATA_LEN)
                && request
                    .nonce
                    .as_ref()
                    .is_none_or(|v| v.len() <= MAX_NONCE_LEN)
                && request
                    .public_key
                    .as_ref()
                    .is_none_or(|v| !v.is_empty() && v.len() <= MAX_PUBLIC_KEY_LEN);
            match f.mock.attestation(&request) {
                Ok(document) => {
                    assert!(within_limits, "the mock accepted an over-long request");
                    let doc = verify(&document, &f.mock_root, MOCK_NOW)
                        .expect("a mock document for a valid request verifies");
                    check_described(&doc);
                    assert_eq!(doc.user_data(), request.user_data.as_deref());
                    assert_eq!(doc.nonce(), request.nonce.as_deref());
                    assert_eq!(doc.public_key(), request.public_key.as_deref());
                    assert!(verify(&document, &f.aws_root, MOCK_NOW).is_err());
                }
                Err(_) => assert!(!within_limits, "the mock refused a valid request"),
            }
        }
    }
});
