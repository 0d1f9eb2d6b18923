//! Verification of attestation documents: the one way to get an [`AttestationDoc`].

use std::collections::BTreeMap;

use crate::chain::verify_chain;
use crate::cose::Sign1;
use crate::error::VerifyError;
use crate::payload::{Payload, MAX_PAYLOAD_LEN};

/// Largest document accepted: the format's largest payload plus the COSE framing
/// (protected header, 96-byte signature, a few length prefixes).
pub const MAX_DOCUMENT_LEN: usize = MAX_PAYLOAD_LEN + 256;

/// An attestation document whose signature, certificate chain and format were verified.
///
/// Only [`verify`] creates one, so holding an `AttestationDoc` means "this came from a module
/// that chains to the trust anchor the caller chose". What the PCRs must be is the caller's
/// policy, not checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDoc {
    payload: Payload,
}

impl AttestationDoc {
    /// Identifier of the issuing NSM (the enclave id on real hardware).
    #[must_use]
    pub fn module_id(&self) -> &str {
        &self.payload.module_id
    }

    /// Creation time, milliseconds since the UNIX epoch (as in the document).
    #[must_use]
    pub fn timestamp_ms(&self) -> u64 {
        self.payload.timestamp_ms
    }

    /// All PCRs in the document, index → value (48 bytes with SHA-384).
    #[must_use]
    pub fn pcrs(&self) -> &BTreeMap<u16, Vec<u8>> {
        &self.payload.pcrs
    }

    /// One PCR value, if present.
    #[must_use]
    pub fn pcr(&self, index: u16) -> Option<&[u8]> {
        self.payload.pcrs.get(&index).map(Vec::as_slice)
    }

    /// The DER public key the enclave asked to be bound, if any.
    #[must_use]
    pub fn public_key(&self) -> Option<&[u8]> {
        self.payload.public_key.as_deref()
    }

    /// The application data bound into the document, if any.
    #[must_use]
    pub fn user_data(&self) -> Option<&[u8]> {
        self.payload.user_data.as_deref()
    }

    /// The verifier's nonce, if any.
    #[must_use]
    pub fn nonce(&self) -> Option<&[u8]> {
        self.payload.nonce.as_deref()
    }

    /// The DER leaf certificate that signed the document.
    #[must_use]
    pub fn certificate(&self) -> &[u8] {
        &self.payload.certificate
    }

    /// The DER CA bundle, root first.
    #[must_use]
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.payload.cabundle
    }
}

/// Verifies a raw NSM attestation document against `trusted_root_der` at `now_unix_secs`.
///
/// Steps, each failing with its own [`VerifyError`]: size bound; COSE_Sign1 decoding (tagged
/// or untagged) with ES384 in the protected header; the payload against the AWS format
/// rules; the chain leaf ← cabundle ← trusted root (signatures, names, validity at
/// `now_unix_secs`, CA constraints, leaf key usage); finally the COSE signature with the leaf
/// key. Never panics on any input.
///
/// Use [`crate::aws_root_der`] for documents from real enclaves and
/// [`crate::MockNsm::root_certificate_der`] in tests.
pub fn verify(
    document: &[u8],
    trusted_root_der: &[u8],
    now_unix_secs: u64,
) -> Result<AttestationDoc, VerifyError> {
    if document.len() > MAX_DOCUMENT_LEN {
        return Err(VerifyError::TooLarge {
            len: document.len(),
            max: MAX_DOCUMENT_LEN,
        });
    }
    let sign1 = Sign1::decode(document)?;
    let payload = Payload::decode(sign1.payload())?;
    let leaf_key = verify_chain(
        &payload.certificate,
        &payload.cabundle,
        trusted_root_der,
        now_unix_secs,
    )?;
    sign1.verify(&leaf_key)?;
    Ok(AttestationDoc { payload })
}
