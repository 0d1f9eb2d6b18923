//! The COSE_Sign1 envelope of an attestation document (RFC 9052 §4.2), ES384 only.
//!
//! `coset` does the CBOR framing and builds the `Sig_structure` from the protected header
//! bytes exactly as received; the signature itself is checked with `p384`.

use coset::{
    iana, Algorithm, CborSerializable, CoseSign1, CoseSign1Builder, Header,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use p384::ecdsa::signature::{Signer, Verifier};

use crate::error::VerifyError;

/// CBOR tag 18 (COSE_Sign1) as the first byte of a tagged message.
const TAG_COSE_SIGN1: u8 = 0xd2;
/// An ES384 signature is r ‖ s, 48 bytes each.
const ES384_SIGNATURE_LEN: usize = 96;

/// A decoded, not yet verified COSE_Sign1 with an ES384 protected header.
pub(crate) struct Sign1 {
    message: CoseSign1,
}

impl Sign1 {
    /// Decodes `bytes` (tagged or untagged; the NSM emits untagged) and checks the algorithm.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, VerifyError> {
        let message = if bytes.first() == Some(&TAG_COSE_SIGN1) {
            CoseSign1::from_tagged_slice(bytes)
        } else {
            CoseSign1::from_slice(bytes)
        }
        .map_err(|e| VerifyError::Cose(e.to_string()))?;

        match &message.protected.header.alg {
            Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) => {}
            Some(other) => return Err(VerifyError::UnsupportedAlgorithm(format!("{other:?}"))),
            None => {
                return Err(VerifyError::UnsupportedAlgorithm(
                    "no algorithm in the protected header".into(),
                ))
            }
        }
        if message.unprotected.alg.is_some() {
            return Err(VerifyError::Cose(
                "an algorithm in the unprotected header is not allowed".into(),
            ));
        }
        if !message.protected.header.crit.is_empty() {
            return Err(VerifyError::Cose(
                "critical header parameters are not supported".into(),
            ));
        }
        if message.payload.is_none() {
            return Err(VerifyError::Cose("the payload is detached (nil)".into()));
        }
        if message.signature.len() != ES384_SIGNATURE_LEN {
            return Err(VerifyError::Cose(format!(
                "an ES384 signature is {ES384_SIGNATURE_LEN} bytes, this one is {}",
                message.signature.len()
            )));
        }
        Ok(Self { message })
    }

    /// The payload (the CBOR attestation document), not yet authenticated.
    pub(crate) fn payload(&self) -> &[u8] {
        self.message.payload.as_deref().unwrap_or_default()
    }

    /// Verifies the signature over `Sig_structure("Signature1", protected, b"", payload)`.
    pub(crate) fn verify(&self, key: &p384::ecdsa::VerifyingKey) -> Result<(), VerifyError> {
        let signature = p384::ecdsa::Signature::from_slice(&self.message.signature)
            .map_err(|_| VerifyError::DocumentSignature)?;
        // `payload` was checked to be present in `decode`, so `tbs_data` cannot panic here.
        let tbs = self.message.tbs_data(b"");
        key.verify(&tbs, &signature)
            .map_err(|_| VerifyError::DocumentSignature)
    }
}

/// Signs `payload` into an untagged COSE_Sign1 with protected header `{1: -35}`, as the NSM does.
pub(crate) fn sign_es384(
    payload: Vec<u8>,
    key: &p384::ecdsa::SigningKey,
) -> Result<Vec<u8>, String> {
    sign_with_alg(payload, Algorithm::Assigned(iana::Algorithm::ES384), key)
}

/// Like [`sign_es384`] but with any algorithm label (tests forge wrong-algorithm documents).
pub(crate) fn sign_with_alg(
    payload: Vec<u8>,
    alg: Algorithm,
    key: &p384::ecdsa::SigningKey,
) -> Result<Vec<u8>, String> {
    let protected = Header {
        alg: Some(alg),
        ..Header::default()
    };
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| {
            let signature: p384::ecdsa::Signature = key.sign(tbs);
            signature.to_bytes().to_vec()
        })
        .build()
        .to_vec()
        .map_err(|e| format!("cannot encode COSE_Sign1: {e}"))
}
