//! Acceptance tests: mock documents verify, tampered or foreign ones are refused, hostile
//! bytes never panic, and a real AWS document verifies against the pinned root.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ciborium::Value;
use coset::{iana, Algorithm, RegisteredLabelWithPrivate};

use crate::cose::{sign_es384, sign_with_alg};
use crate::payload::Payload;
use crate::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pcr(fill: u8) -> [u8; PCR_LEN] {
    [fill; PCR_LEN]
}

fn request() -> AttestationRequest {
    AttestationRequest::new()
        .with_user_data(b"user data: sha256 of a handshake".to_vec())
        .with_nonce([7u8; 32])
        .with_public_key(b"0\x82 a DER public key stands here".to_vec())
}

/// A mock with fixed times so that validity tests are exact.
const T0: u64 = 1_800_000_000;

fn fixed_mock() -> MockNsm {
    MockNsm::with_config(MockNsmConfig {
        not_before_unix_secs: T0,
        timestamp_ms: Some(T0 * 1000 + 5),
        ..MockNsmConfig::default()
    })
    .unwrap()
}

/// Re-signs a (possibly doctored) payload with the mock's real leaf key, so that only the
/// doctored part can be what a verifier refuses.
fn resign(mock: &MockNsm, payload: &Payload) -> Vec<u8> {
    sign_es384(payload.encode().unwrap(), mock.leaf_key()).unwrap()
}

fn resign_value(mock: &MockNsm, value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).unwrap();
    sign_es384(bytes, mock.leaf_key()).unwrap()
}

fn payload_value(mock: &MockNsm) -> Vec<(Value, Value)> {
    let bytes = mock.payload(&request()).encode().unwrap();
    match ciborium::de::from_reader::<Value, _>(bytes.as_slice()).unwrap() {
        Value::Map(m) => m,
        _ => panic!("payload is a map"),
    }
}

fn set_field(map: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    for (k, v) in map.iter_mut() {
        if *k == Value::Text(key.into()) {
            *v = value;
            return;
        }
    }
    map.push((Value::Text(key.into()), value));
}

fn payload_err(e: VerifyError, needle: &str) {
    match &e {
        VerifyError::Payload(msg) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected a payload error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn mock_document_verifies_and_carries_the_request() {
    let mock = MockNsm::with_config(
        MockNsmConfig::default()
            .with_pcr(0, pcr(0xa0))
            .with_pcr(1, pcr(0xa1))
            .with_pcr(2, pcr(0xa2))
            .with_pcr(8, pcr(0xa8)),
    )
    .unwrap();
    let before_ms = u128::from(now()) * 1000;
    let doc_bytes = mock.attestation(&request()).unwrap();
    let doc = verify(&doc_bytes, mock.root_certificate_der(), now()).unwrap();

    let req = request();
    assert_eq!(doc.user_data(), req.user_data.as_deref());
    assert_eq!(doc.nonce(), req.nonce.as_deref());
    assert_eq!(doc.public_key(), req.public_key.as_deref());
    assert_eq!(doc.pcrs().len(), 16);
    assert_eq!(doc.pcr(0), Some(&pcr(0xa0)[..]));
    assert_eq!(doc.pcr(1), Some(&pcr(0xa1)[..]));
    assert_eq!(doc.pcr(2), Some(&pcr(0xa2)[..]));
    assert_eq!(doc.pcr(8), Some(&pcr(0xa8)[..]));
    assert_eq!(doc.pcr(3), Some(&[0u8; 48][..]));
    assert_eq!(doc.pcr(16), None);
    assert_eq!(doc.module_id(), MockNsmConfig::default().module_id);
    assert!(u128::from(doc.timestamp_ms()) >= before_ms);
    assert_eq!(doc.certificate(), mock.leaf_certificate_der());
    assert_eq!(
        doc.cabundle(),
        &[
            mock.root_certificate_der().to_vec(),
            mock.intermediate_certificate_der().to_vec()
        ]
    );
}

#[test]
fn empty_request_gives_a_document_without_optional_fields() {
    let mock = MockNsm::new().unwrap();
    let doc_bytes = mock.attestation(&AttestationRequest::new()).unwrap();
    let doc = verify(&doc_bytes, mock.root_certificate_der(), now()).unwrap();
    assert_eq!(
        (doc.user_data(), doc.nonce(), doc.public_key()),
        (None, None, None)
    );
}

#[test]
fn mock_envelope_is_the_aws_one() {
    let mock = fixed_mock();
    let doc = mock.attestation(&request()).unwrap();
    // Untagged array(4), protected bstr(4) = {1: -35}, unprotected {}, payload bstr(2-byte len).
    assert_eq!(&doc[..8], &[0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x59]);
    // The signature is the final bstr(96).
    assert_eq!(&doc[doc.len() - 98..doc.len() - 96], &[0x58, 0x60]);
    // Certificates are P-384 / ECDSA-SHA384 like AWS's and fit the format's 1024-byte cap.
    for der in [
        mock.root_certificate_der(),
        mock.intermediate_certificate_der(),
        mock.leaf_certificate_der(),
    ] {
        assert!(der.len() <= 1024);
    }
}

#[test]
fn tagged_document_also_verifies() {
    let mock = fixed_mock();
    let mut doc = vec![0xd2];
    doc.extend(mock.attestation(&request()).unwrap());
    verify(&doc, mock.root_certificate_der(), T0 + 10).unwrap();
}

#[test]
fn mock_document_is_refused_against_the_aws_root() {
    let mock = MockNsm::new().unwrap();
    let doc = mock.attestation(&request()).unwrap();
    let err = verify(&doc, &aws_root_der(), now()).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("does not lead to the trusted root"), "{msg}");
    assert!(msg.contains("aws.nitro-enclaves"), "{msg}");
}

#[test]
fn document_is_refused_against_another_mocks_root() {
    let a = fixed_mock();
    let b = fixed_mock();
    let doc = a.attestation(&request()).unwrap();
    let err = verify(&doc, b.root_certificate_der(), T0 + 10).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot(_)), "{err:?}");
}

#[test]
fn garbage_trusted_root_is_reported_as_such() {
    let mock = fixed_mock();
    let doc = mock.attestation(&request()).unwrap();
    let err = verify(&doc, b"not a certificate", T0 + 10).unwrap_err();
    assert!(matches!(err, VerifyError::TrustedRoot(_)), "{err:?}");
    assert!(matches!(
        verify(&doc, &[], T0 + 10),
        Err(VerifyError::TrustedRoot(_))
    ));
}

#[test]
fn bundle_issued_by_the_trusted_root_verifies_without_the_root_inside() {
    // "cabundle[0] is signed by the trusted root" rather than equal to it.
    verify_doctored(&fixed_mock(), |p| {
        p.cabundle.remove(0);
    })
    .unwrap();
}

/// `doc`'s chain verifies but its COSE signature does not (`what` names the change).
fn assert_fails_at_document_signature(doc: &[u8], root: &[u8], now: u64, what: &str) {
    assert_eq!(
        verify(doc, root, now).unwrap_err(),
        VerifyError::DocumentSignature,
        "{what}"
    );
}

#[test]
fn flipped_payload_byte_breaks_the_document_signature() {
    let mock = fixed_mock();
    let mut doc = mock.attestation(&request()).unwrap();
    let nonce_at = doc.windows(32).position(|w| w == [7u8; 32]).unwrap();
    doc[nonce_at + 3] ^= 0x01;
    assert_fails_at_document_signature(&doc, mock.root_certificate_der(), T0 + 10, "nonce byte");
}

#[test]
fn flipped_signature_byte_breaks_the_document_signature() {
    let mock = fixed_mock();
    for at in [1usize, 20, 48, 60, 96] {
        let mut doc = mock.attestation(&request()).unwrap();
        let len = doc.len();
        doc[len - at] ^= 0x80;
        let what = format!("flip at len-{at}");
        assert_fails_at_document_signature(&doc, mock.root_certificate_der(), T0 + 10, &what);
    }
}

/// Verifies the mock's document after `doctor` changed its payload, re-signed with the mock's
/// leaf key so that only the change can be what is refused.
fn verify_doctored(
    mock: &MockNsm,
    doctor: impl FnOnce(&mut Payload),
) -> Result<AttestationDoc, VerifyError> {
    let mut payload = mock.payload(&request());
    doctor(&mut payload);
    verify(
        &resign(mock, &payload),
        mock.root_certificate_der(),
        T0 + 10,
    )
}

#[test]
fn altered_certificates_break_the_chain() {
    fn flip_last(der: &mut [u8]) {
        *der.last_mut().unwrap() ^= 0x01;
    }
    type Case = (&'static str, fn(&mut Payload), fn(&VerifyError) -> bool);
    let cases: [Case; 4] = [
        // The last byte of a DER certificate is the last byte of its signature's s.
        (
            "leaf signature",
            |p| flip_last(&mut p.certificate),
            |e| matches!(e, VerifyError::ChainSignature { which, issuer } if which == "leaf certificate" && issuer == "cabundle[1]"),
        ),
        (
            "intermediate signature",
            |p| flip_last(&mut p.cabundle[1]),
            |e| matches!(e, VerifyError::ChainSignature { which, issuer } if which == "cabundle[1]" && issuer == "cabundle[0]"),
        ),
        // The leaf's first `TEST` is in its issuer name: still DER, but no longer the
        // intermediate's subject.
        (
            "leaf issuer name",
            |p| {
                let at = p.certificate.windows(4).position(|w| w == b"TEST").unwrap();
                p.certificate[at] = b'B';
            },
            |e| matches!(e, VerifyError::ChainSignature { which, issuer } if which.starts_with("leaf certificate (its issuer") && issuer == "cabundle[1]"),
        ),
        // Truncated: not DER any more.
        (
            "truncated leaf",
            |p| p.certificate.truncate(100),
            |e| matches!(e, VerifyError::Certificate { which, .. } if which == "leaf certificate"),
        ),
    ];
    let mock = fixed_mock();
    for (what, doctor, expected) in cases {
        let err = verify_doctored(&mock, doctor).unwrap_err();
        assert!(expected(&err), "{what}: {err:?}");
    }
}

#[test]
fn swapped_leaf_is_refused_even_when_the_document_is_signed_by_it() {
    let a = fixed_mock();
    let b = fixed_mock();
    let mut payload = a.payload(&request());
    payload.certificate = b.leaf_certificate_der().to_vec();
    // Signed by b's leaf key, so the COSE signature itself would be fine.
    let doc = sign_es384(payload.encode().unwrap(), b.leaf_key()).unwrap();
    let err = verify(&doc, a.root_certificate_der(), T0 + 10).unwrap_err();
    assert!(
        matches!(&err, VerifyError::ChainSignature { which, issuer } if which == "leaf certificate" && issuer == "cabundle[1]"),
        "{err:?}"
    );
    // And a's chain with a's leaf but signed by b's key fails at the document signature.
    let doc = sign_es384(a.payload(&request()).encode().unwrap(), b.leaf_key()).unwrap();
    assert_fails_at_document_signature(&doc, a.root_certificate_der(), T0 + 10, "b's key");
}

#[test]
fn other_algorithms_are_refused() {
    let mock = fixed_mock();
    let payload = mock.payload(&request()).encode().unwrap();
    for alg in [
        iana::Algorithm::ES256,
        iana::Algorithm::ES512,
        iana::Algorithm::EdDSA,
        iana::Algorithm::PS384,
    ] {
        let doc =
            sign_with_alg(payload.clone(), Algorithm::Assigned(alg), mock.leaf_key()).unwrap();
        let err = verify(&doc, mock.root_certificate_der(), T0 + 10).unwrap_err();
        assert!(
            matches!(err, VerifyError::UnsupportedAlgorithm(_)),
            "{alg:?}: {err:?}"
        );
        assert!(err.to_string().contains("only ES384"));
    }
    let doc = sign_with_alg(
        payload,
        RegisteredLabelWithPrivate::PrivateUse(-65600),
        mock.leaf_key(),
    )
    .unwrap();
    assert!(matches!(
        verify(&doc, mock.root_certificate_der(), T0 + 10),
        Err(VerifyError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn validity_is_checked_at_the_given_time() {
    let mock = fixed_mock();
    let doc = mock.attestation(&request()).unwrap();
    let root = mock.root_certificate_der();
    let leaf_end = T0 + MockNsmConfig::default().leaf_lifetime_secs;
    verify(&doc, root, T0).unwrap();
    verify(&doc, root, leaf_end).unwrap();

    let err = verify(&doc, root, leaf_end + 1).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Validity {
            which: "leaf certificate".into(),
            now: leaf_end + 1,
            not_before: T0,
            not_after: leaf_end,
        }
    );
    assert!(err.to_string().contains("check the clock"));

    let err = verify(&doc, root, T0 - 1).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Validity { which, .. } if which == "cabundle[0]"),
        "{err:?}"
    );
    let ca_end = T0 + MockNsmConfig::default().ca_lifetime_secs;
    let err = verify(&doc, root, ca_end + 1).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Validity { which, .. } if which == "cabundle[0]"),
        "{err:?}"
    );
}

/// One change to the mock's payload map, for a payload rule test.
enum Edit {
    /// Replace (or add) a field.
    Set(&'static str, Value),
    /// Drop a field.
    Remove(&'static str),
    /// Add an entry after the others, whatever its key.
    Append(Value, Value),
}

impl Edit {
    fn apply(self, map: &mut Vec<(Value, Value)>) {
        match self {
            Edit::Set(key, value) => set_field(map, key, value),
            Edit::Remove(key) => map.retain(|(k, _)| *k != Value::Text(key.into())),
            Edit::Append(key, value) => map.push((key, value)),
        }
    }
}

#[test]
fn payload_rules_are_enforced() {
    use Edit::{Append, Remove, Set};
    let pcrs = |index: u8, len: usize| {
        Value::Map(vec![(
            Value::Integer(index.into()),
            Value::Bytes(vec![0; len]),
        )])
    };
    let cases = [
        (Set("digest", Value::Text("SHA256".into())), "only `SHA384`"),
        (Remove("module_id"), "`module_id` is missing"),
        (Set("module_id", Value::Text(String::new())), "non-empty"),
        (Set("timestamp", Value::Integer(0.into())), "positive"),
        (
            Set("timestamp", Value::Text("yesterday".into())),
            "`timestamp` must be an integer",
        ),
        (Set("pcrs", pcrs(0, 47)), "32, 48 or 64"),
        (Set("pcrs", pcrs(32, 48)), "outside 0..32"),
        (Set("pcrs", Value::Map(vec![])), "`pcrs` has 0 entries"),
        (Set("cabundle", Value::Array(vec![])), "`cabundle` has 0"),
        (
            Set("cabundle", Value::Array(vec![Value::Bytes(vec![0; 1025])])),
            "cabundle[0]",
        ),
        (
            Set("user_data", Value::Bytes(vec![0; 513])),
            "`user_data` is 513 bytes",
        ),
        (
            Set("public_key", Value::Bytes(vec![])),
            "`public_key` is 0 bytes",
        ),
        (
            Set("nonce", Value::Integer(1.into())),
            "`nonce` must be a byte string",
        ),
        (Set("extra", Value::Bytes(vec![1])), "unknown field `extra`"),
        (
            Append(Value::Text("nonce".into()), Value::Null),
            "appears twice",
        ),
        (
            Append(Value::Integer(1.into()), Value::Null),
            "not a text string",
        ),
    ];
    let mock = fixed_mock();
    let root = mock.root_certificate_der().to_vec();
    for (edit, needle) in cases {
        let mut map = payload_value(&mock);
        edit.apply(&mut map);
        let doc = resign_value(&mock, &Value::Map(map));
        payload_err(verify(&doc, &root, T0 + 10).unwrap_err(), needle);
    }

    let doc = resign_value(&mock, &Value::Array(vec![]));
    payload_err(verify(&doc, &root, T0 + 10).unwrap_err(), "not a CBOR map");
}

#[test]
fn indefinite_length_payload_is_accepted() {
    // Some NSM versions emit the payload map with indefinite length (0xbf ... 0xff).
    let mock = fixed_mock();
    let definite = mock.payload(&request()).encode().unwrap();
    assert_eq!(definite[0], 0xa9); // map(9)
    let mut indefinite = vec![0xbf];
    indefinite.extend_from_slice(&definite[1..]);
    indefinite.push(0xff);
    let doc = sign_es384(indefinite, mock.leaf_key()).unwrap();
    let doc = verify(&doc, mock.root_certificate_der(), T0 + 10).unwrap();
    assert_eq!(doc.nonce(), Some(&[7u8; 32][..]));
}

#[test]
fn request_limits_match_the_nsm() {
    let mock = fixed_mock();
    let ok = AttestationRequest::new()
        .with_user_data(vec![1; MAX_USER_DATA_LEN])
        .with_nonce(vec![2; MAX_NONCE_LEN])
        .with_public_key(vec![3; MAX_PUBLIC_KEY_LEN]);
    let doc = mock.attestation(&ok).unwrap();
    let verified = verify(&doc, mock.root_certificate_der(), T0 + 10).unwrap();
    assert_eq!(verified.public_key().unwrap().len(), MAX_PUBLIC_KEY_LEN);

    let too_long = AttestationRequest::new().with_user_data(vec![1; MAX_USER_DATA_LEN + 1]);
    let err = mock.attestation(&too_long).unwrap_err();
    assert!(
        matches!(
            err,
            NsmError::FieldTooLong {
                field: "user_data",
                len: 513,
                max: 512
            }
        ),
        "{err:?}"
    );
    let too_long = AttestationRequest::new().with_nonce(vec![1; MAX_NONCE_LEN + 1]);
    assert!(matches!(
        mock.attestation(&too_long),
        Err(NsmError::FieldTooLong { field: "nonce", .. })
    ));
    let too_long = AttestationRequest::new().with_public_key(vec![1; MAX_PUBLIC_KEY_LEN + 1]);
    assert!(matches!(
        mock.attestation(&too_long),
        Err(NsmError::FieldTooLong {
            field: "public_key",
            ..
        })
    ));
    let empty_key = AttestationRequest::new().with_public_key(Vec::new());
    assert!(matches!(
        mock.attestation(&empty_key),
        Err(NsmError::EmptyPublicKey)
    ));
}

#[test]
fn mock_rejects_out_of_range_pcr_index() {
    let err = MockNsm::with_config(MockNsmConfig::default().with_pcr(32, pcr(1))).unwrap_err();
    assert!(matches!(err, NsmError::Mock(_)), "{err:?}");
}

#[test]
fn mock_debug_does_not_show_the_key() {
    let mock = fixed_mock();
    let dbg = format!("{mock:?}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
}

#[test]
fn garbage_and_oversized_input_is_refused() {
    let root = aws_root_der();
    for input in [
        &b""[..],
        b"\x84",
        b"\xd2",
        b"\xd2\xd2\xd2",
        b"\xff\xff\xff\xff",
    ] {
        assert!(
            matches!(verify(input, &root, now()), Err(VerifyError::Cose(_))),
            "{input:?}"
        );
    }
    // Well-formed COSE_Sign1 with an empty protected header: no algorithm.
    assert!(matches!(
        verify(b"\x84\x40\xa0\xf6\x40", &root, now()),
        Err(VerifyError::UnsupportedAlgorithm(_))
    ));
    let big = vec![0u8; MAX_DOCUMENT_LEN + 1];
    assert!(matches!(
        verify(&big, &root, now()),
        Err(VerifyError::TooLarge { .. })
    ));
    // Deep nesting must not blow the stack.
    let deep = vec![0x81u8; 10_000];
    assert!(verify(&deep, &root, now()).is_err());
}

#[test]
fn every_truncation_and_many_single_byte_flips_are_refused() {
    let mock = fixed_mock();
    let root = mock.root_certificate_der().to_vec();
    let doc = mock.attestation(&request()).unwrap();
    verify(&doc, &root, T0 + 10).unwrap();
    for len in 0..doc.len() {
        assert!(
            verify(&doc[..len], &root, T0 + 10).is_err(),
            "truncated to {len}"
        );
    }
    let mut extended = doc.clone();
    extended.push(0);
    assert!(verify(&extended, &root, T0 + 10).is_err());
    // Every byte of the framing and the signature, and every 5th byte of the payload.
    let n = doc.len();
    let positions = (0..n).filter(|i| *i < 16 || *i >= n - 100 || i % 5 == 0);
    let mut flips = 0;
    for i in positions {
        for mask in [0x01u8, 0x80] {
            let mut bad = doc.clone();
            bad[i] ^= mask;
            assert!(
                verify(&bad, &root, T0 + 10).is_err(),
                "flip {mask:#04x} at {i} accepted"
            );
            flips += 1;
        }
    }
    assert!(flips > 500, "{flips}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_verify_nor_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let root = aws_root_der();
            prop_assert!(verify(&bytes, &root, 1_700_000_000).is_err());
        }

        #[test]
        fn random_cose_shaped_bytes_never_verify_nor_panic(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = vec![0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0];
            bytes.extend(body);
            let root = aws_root_der();
            prop_assert!(verify(&bytes, &root, 1_700_000_000).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mutated_mock_documents_never_verify_nor_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        ) {
            let mock = fixed_mock();
            let mut doc = mock.attestation(&request()).unwrap();
            for (at, mask) in edits {
                let i = at.index(doc.len());
                doc[i] ^= mask;
            }
            prop_assert!(verify(&doc, mock.root_certificate_der(), T0 + 10).is_err());
        }
    }
}

/// A document from a real enclave in us-east-1 (2024-09-17), as published in public verifier
/// test suites: four-certificate bundle starting with the G1 root, user_data, nonce, a
/// placeholder public_key, PCR3/PCR4 set.
fn real_aws_document() -> Vec<u8> {
    let b64 = include_str!("testdata/aws_nitro_us-east-1_2024-09-17.b64");
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

#[test]
fn real_aws_document_verifies_against_the_pinned_root_at_its_time() {
    let bytes = real_aws_document();
    // Leaf valid 2024-09-17 00:47:56 .. 03:47:59 UTC; the document was made inside it.
    let at = 1_726_534_100;
    let doc = verify(&bytes, &aws_root_der(), at).unwrap();
    assert_eq!(doc.module_id(), "i-0bbf1bfe232b8c2ce-enc0191fc27458c1d41");
    assert_eq!(doc.timestamp_ms(), 0x0191_fd73_54cf);
    assert_eq!(doc.pcrs().len(), 16);
    assert!(doc.pcrs().values().all(|v| v.len() == 48));
    assert_ne!(doc.pcr(3), Some(&[0u8; 48][..]));
    assert_eq!(doc.public_key(), Some(&b"dummy"[..]));
    assert_eq!(doc.nonce().map(<[u8]>::len), Some(20));
    assert_eq!(doc.cabundle().len(), 4);
    assert_eq!(doc.cabundle()[0], aws_root_der());

    let text = describe(&doc);
    assert!(
        text.contains("i-0bbf1bfe232b8c2ce-enc0191fc27458c1d41"),
        "{text}"
    );
    assert!(text.contains("2024-09-17T"), "{text}");
    assert!(
        text.contains(&format!("PCR3  {}", hex::encode(doc.pcr(3).unwrap()))),
        "{text}"
    );
    assert!(text.contains("all-zero:  0,1,2,5,"), "{text}");
}

#[test]
fn real_aws_document_is_refused_later_and_against_a_mock_root() {
    let bytes = real_aws_document();
    let err = verify(&bytes, &aws_root_der(), 1_726_534_100 + 4 * 3600).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Validity { which, .. } if which == "leaf certificate"),
        "{err:?}"
    );
    let mock = fixed_mock();
    let err = verify(&bytes, mock.root_certificate_der(), 1_726_534_100).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot(_)), "{err:?}");
    let mut tampered = bytes.clone();
    let nonce_end = tampered.len() - 98 - 1;
    tampered[nonce_end] ^= 0x01;
    assert_fails_at_document_signature(&tampered, &aws_root_der(), 1_726_534_100, "nonce byte");
}

#[test]
fn describe_lists_pcrs_and_digests() {
    let mock = MockNsm::with_config(MockNsmConfig::default().with_pcr(0, pcr(0xab))).unwrap();
    let doc = verify(
        &mock.attestation(&request()).unwrap(),
        mock.root_certificate_der(),
        now(),
    )
    .unwrap();
    let text = describe(&doc);
    assert!(
        text.contains(&format!("PCR0  {}", "ab".repeat(48))),
        "{text}"
    );
    assert!(!text.contains("PCR1 "), "{text}");
    assert!(
        text.contains("all-zero:  1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"),
        "{text}"
    );
    use sha2::{Digest, Sha256};
    let ud = request().user_data.unwrap();
    assert!(
        text.contains(&format!(
            "user_data:   {} bytes, sha256 {}",
            ud.len(),
            hex::encode(Sha256::digest(&ud))
        )),
        "{text}"
    );
    assert!(text.contains("public_key:  "), "{text}");
}

mod constraints {
    //! Chain rules through `verify_chain`, on chains built here: which certificate breaks
    //! which rule, and that P-256 issuers are accepted.

    use der::Decode;
    use p384::ecdsa::{DerSignature, SigningKey};
    use x509_cert::builder::Profile;
    use x509_cert::name::Name;
    use x509_cert::Certificate;

    use super::*;
    use crate::chain::verify_chain;
    use crate::mock::{issue, validity};

    fn key() -> SigningKey {
        SigningKey::random(&mut rand_core::OsRng)
    }

    fn subject_of(der: &[u8]) -> Name {
        Certificate::from_der(der).unwrap().tbs_certificate.subject
    }

    fn leaf_profile(issuer: Name) -> Profile {
        Profile::Leaf {
            issuer,
            enable_key_agreement: false,
            enable_key_encipherment: false,
        }
    }

    fn sub_ca_profile(issuer: Name, path_len_constraint: Option<u8>) -> Profile {
        Profile::SubCA {
            issuer,
            path_len_constraint,
        }
    }

    /// A CA of a chain built here (P-384, valid from `T0` for a day) and its key.
    struct TestCa {
        der: Vec<u8>,
        key: SigningKey,
    }

    impl TestCa {
        fn root() -> Self {
            let key = key();
            let der = issue_p384(Profile::Root, "CN=root", &key, &key);
            Self { der, key }
        }

        /// A CA issued by this one.
        fn sub_ca(&self, subject: &str, path_len_constraint: Option<u8>) -> Self {
            let key = key();
            let profile = sub_ca_profile(subject_of(&self.der), path_len_constraint);
            let der = issue_p384(profile, subject, &key, &self.key);
            Self { der, key }
        }

        /// A document signer's certificate issued by this one.
        fn leaf(&self) -> Vec<u8> {
            let profile = leaf_profile(subject_of(&self.der));
            issue_p384(profile, "CN=leaf", &key(), &self.key)
        }
    }

    fn issue_p384(
        profile: Profile,
        subject: &str,
        key: &SigningKey,
        issuer: &SigningKey,
    ) -> Vec<u8> {
        let validity = validity(T0, 24 * 3600).unwrap();
        issue::<DerSignature, _, _>(profile, 9, validity, subject.parse().unwrap(), key, issuer)
            .unwrap()
    }

    fn constraint_err(err: &VerifyError, cert: &str, needle: &str) {
        assert!(
            matches!(err, VerifyError::Constraint { which, reason } if which == cert && reason.contains(needle)),
            "expected {cert} to break {needle:?}, got {err:?}"
        );
    }

    #[test]
    fn leaf_cannot_act_as_ca() {
        let mock = fixed_mock();
        let mock_leaf = TestCa {
            der: mock.leaf_certificate_der().to_vec(),
            key: mock.leaf_key().clone(),
        };
        let below_leaf = mock_leaf.leaf();
        let bundle = [
            mock.root_certificate_der().to_vec(),
            mock.intermediate_certificate_der().to_vec(),
            mock.leaf_certificate_der().to_vec(),
        ];
        let err =
            verify_chain(&below_leaf, &bundle, mock.root_certificate_der(), T0 + 10).unwrap_err();
        constraint_err(&err, "cabundle[2]", "cA=false");
    }

    #[test]
    fn ca_cannot_sign_documents() {
        let mock = fixed_mock();
        let root = mock.root_certificate_der();
        let bundle = [root.to_vec()];
        for ca in [mock.intermediate_certificate_der(), root] {
            let err = verify_chain(ca, &bundle, root, T0 + 10).unwrap_err();
            constraint_err(&err, "leaf certificate", "must not be a CA");
        }
    }

    #[test]
    fn path_length_constraint_is_enforced() {
        let root = TestCa::root();
        // Like the mock's intermediate: no CA may follow it.
        let inter = root.sub_ca("CN=inter", Some(0));
        let bundle = vec![root.der.clone(), inter.der.clone()];
        verify_chain(&inter.leaf(), &bundle, &root.der, T0 + 10).unwrap();

        let sub = inter.sub_ca("CN=sub", None);
        let bundle = [bundle, vec![sub.der.clone()]].concat();
        let err = verify_chain(&sub.leaf(), &bundle, &root.der, T0 + 10).unwrap_err();
        constraint_err(&err, "cabundle[1]", "path length");
    }

    #[test]
    fn bundle_is_one_chain_in_order_even_where_a_shorter_path_exists() {
        // b's root has a's root's name but b's key. A path builder alone would accept
        // leaf ← a's intermediate ← a's root and skip cabundle[0]; the format says the bundle
        // is the chain, root first, so a's intermediate must be issued by cabundle[0].
        let a = fixed_mock();
        let b = fixed_mock();
        let bundle = [
            b.root_certificate_der().to_vec(),
            a.intermediate_certificate_der().to_vec(),
        ];
        let err = verify_chain(
            a.leaf_certificate_der(),
            &bundle,
            a.root_certificate_der(),
            T0 + 10,
        )
        .unwrap_err();
        assert_eq!(
            err,
            VerifyError::ChainSignature {
                which: "cabundle[1]".into(),
                issuer: "cabundle[0]".into()
            }
        );
    }

    #[test]
    fn p256_sha256_issuers_are_accepted() {
        let validity = validity(T0, 3600).unwrap();
        let root_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let inter_key = key();
        let leaf_key = key();
        let root_name: Name = "CN=p256 root".parse().unwrap();
        let inter_name: Name = "CN=p384 intermediate".parse().unwrap();
        let root = issue::<p256::ecdsa::DerSignature, _, _>(
            Profile::Root,
            1,
            validity,
            root_name.clone(),
            &root_key,
            &root_key,
        )
        .unwrap();
        let inter = issue::<p256::ecdsa::DerSignature, _, _>(
            sub_ca_profile(root_name, None),
            2,
            validity,
            inter_name.clone(),
            &inter_key,
            &root_key,
        )
        .unwrap();
        let leaf = issue::<DerSignature, _, _>(
            leaf_profile(inter_name),
            3,
            validity,
            "CN=leaf".parse().unwrap(),
            &leaf_key,
            &inter_key,
        )
        .unwrap();
        let key = verify_chain(&leaf, &[root.clone(), inter], &root, T0 + 10).unwrap();
        assert_eq!(key, *leaf_key.verifying_key());
    }
}
