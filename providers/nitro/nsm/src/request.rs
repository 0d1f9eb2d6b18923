//! What an enclave may ask the NSM to put into an attestation document.

use crate::error::NsmError;

/// Largest `user_data` accepted, in bytes.
///
/// The AWS document grammar says `bytes .size (0..1024)` but its validation rules
/// (attestation_process.md §3.2.2.2) cap `user_data` and `nonce` at 512 bytes; a verifier that
/// follows the rules would refuse anything longer, so requests are held to 512.
pub const MAX_USER_DATA_LEN: usize = 512;
/// Largest `nonce` accepted, in bytes (see [`MAX_USER_DATA_LEN`] for why 512).
pub const MAX_NONCE_LEN: usize = 512;
/// Largest `public_key` accepted, in bytes (1..=1024 in the AWS validation rules).
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;

/// The optional, caller-chosen fields of an attestation document.
///
/// None of them is secret: they end up in a document that is sent to third parties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationRequest {
    /// Application data bound into the document (e.g. a digest of a handshake).
    pub user_data: Option<Vec<u8>>,
    /// A verifier's challenge, proving freshness.
    pub nonce: Option<Vec<u8>>,
    /// A DER public key the verifier (e.g. AWS KMS) should encrypt responses to.
    pub public_key: Option<Vec<u8>>,
}

impl AttestationRequest {
    /// An empty request (a document with only the module's own fields).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `user_data`.
    #[must_use]
    pub fn with_user_data(mut self, user_data: impl Into<Vec<u8>>) -> Self {
        self.user_data = Some(user_data.into());
        self
    }

    /// Sets `nonce`.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Sets `public_key`.
    #[must_use]
    pub fn with_public_key(mut self, public_key: impl Into<Vec<u8>>) -> Self {
        self.public_key = Some(public_key.into());
        self
    }

    /// Checks the NSM's size limits, so that the mock refuses what the device would refuse.
    pub fn validate(&self) -> Result<(), NsmError> {
        check_len("user_data", self.user_data.as_deref(), MAX_USER_DATA_LEN)?;
        check_len("nonce", self.nonce.as_deref(), MAX_NONCE_LEN)?;
        check_len("public_key", self.public_key.as_deref(), MAX_PUBLIC_KEY_LEN)?;
        if self.public_key.as_ref().is_some_and(Vec::is_empty) {
            return Err(NsmError::EmptyPublicKey);
        }
        Ok(())
    }
}

fn check_len(field: &'static str, value: Option<&[u8]>, max: usize) -> Result<(), NsmError> {
    match value {
        Some(v) if v.len() > max => Err(NsmError::FieldTooLong {
            field,
            len: v.len(),
            max,
        }),
        _ => Ok(()),
    }
}

/// The boundary to the Nitro Security Module: everything above it is the same on a real
/// enclave ([`crate::DeviceNsm`]) and in tests ([`crate::MockNsm`]).
pub trait Nsm: Send + Sync {
    /// Returns the raw COSE_Sign1 attestation document for `request`.
    fn attestation(&self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError>;

    /// Whether this is a test stand-in whose documents no real verifier (AWS
    /// KMS, the pinned AWS root) accepts. The enclave relaxes test-only rules
    /// (a plain-HTTP KMS emulator) only when this is true; the default, for
    /// anything that is not [`crate::MockNsm`], is false.
    fn is_test_stand_in(&self) -> bool {
        false
    }
}
