//! Error types: one enum for talking to an NSM, one for verifying what an NSM produced.
//!
//! They are separate because they have different audiences: an [`NsmError`] is a local failure
//! of the enclave (no device, request too large), a [`VerifyError`] says why a document from an
//! untrusted source was refused.

/// Failure to obtain an attestation document from a Nitro Security Module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsmError {
    /// A request field exceeds what the NSM accepts.
    #[error("attestation request field `{field}` is {len} bytes; the NSM accepts at most {max} bytes — shorten it or pass a digest of the data instead")]
    FieldTooLong {
        /// Name of the field (`user_data`, `nonce`, `public_key`).
        field: &'static str,
        /// Length that was requested.
        len: usize,
        /// Largest length the NSM accepts.
        max: usize,
    },
    /// An empty `public_key` was given; the document format requires at least one byte.
    #[error("attestation request field `public_key` is empty; leave it out (None) instead of passing an empty key")]
    EmptyPublicKey,
    /// The NSM device cannot be opened (not inside a Nitro Enclave).
    #[error("cannot open the Nitro Security Module device {path}: {reason}; this only exists inside a Nitro Enclave — run the enclave image there, or use MockNsm in tests")]
    DeviceUnavailable {
        /// Device path that was tried.
        path: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The NSM answered the request with an error code.
    #[error("the Nitro Security Module refused the attestation request: {0}")]
    Device(String),
    /// The NSM answered with something other than an attestation document.
    #[error(
        "the Nitro Security Module returned an unexpected response to an attestation request: {0}"
    )]
    UnexpectedResponse(String),
    /// The mock NSM could not build its test chain or sign a document.
    #[error("mock NSM failed: {0}")]
    Mock(String),
}

/// Why an attestation document was refused.
///
/// Messages name the failing part (which certificate, which field) so that an operator can tell
/// a wrong trust anchor from a tampered document or a clock problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The input is larger than any document an NSM produces.
    #[error("attestation document is {len} bytes, larger than the {max}-byte maximum; this is not an NSM document")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Accepted maximum.
        max: usize,
    },
    /// The outer COSE_Sign1 structure is malformed.
    #[error("attestation document is not a well-formed COSE_Sign1 structure: {0}")]
    Cose(String),
    /// The protected header names an algorithm other than ES384.
    #[error("attestation document is signed with {0}; only ES384 (ECDSA P-384 with SHA-384) is accepted")]
    UnsupportedAlgorithm(String),
    /// The payload (the attestation document proper) breaks the AWS format.
    #[error("attestation payload is malformed: {0}")]
    Payload(String),
    /// The trusted root passed by the caller is not a usable certificate.
    #[error("the trusted root certificate is unusable: {0}; pass the DER of a CA certificate (aws_root_der() for real enclaves)")]
    TrustedRoot(String),
    /// A certificate in the document cannot be parsed or uses an unsupported key or algorithm.
    #[error("{which} is malformed or unsupported: {reason}")]
    Certificate {
        /// Which certificate (`leaf certificate`, `cabundle[1]`, `trusted root`).
        which: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The chain does not lead to the trusted root.
    #[error("the document's certificate chain does not lead to the trusted root: {0}; a MockNsm document only verifies against MockNsm::root_certificate_der(), a real one against aws_root_der()")]
    UntrustedRoot(String),
    /// A certificate signature does not verify with its issuer's key.
    #[error("signature of {which} does not verify with the key of {issuer}: the chain was tampered with or mis-assembled")]
    ChainSignature {
        /// The certificate whose signature failed.
        which: String,
        /// The certificate whose key was used.
        issuer: String,
    },
    /// A certificate is outside its validity period at the given time.
    #[error("{which} is not valid at {now} (unix seconds): valid from {not_before} to {not_after}; check the clock, or ask for a fresh document")]
    Validity {
        /// Which certificate.
        which: String,
        /// Time the check used.
        now: u64,
        /// Start of validity (unix seconds).
        not_before: u64,
        /// End of validity (unix seconds).
        not_after: u64,
    },
    /// A CA or leaf certificate violates the basic-constraints / key-usage rules.
    #[error("{which} violates certificate constraints: {reason}")]
    Constraint {
        /// Which certificate.
        which: String,
        /// Which rule.
        reason: String,
    },
    /// The COSE signature over the payload does not verify with the leaf certificate's key.
    #[error("the attestation document's signature does not verify with the leaf certificate's key: the payload or signature was altered")]
    DocumentSignature,
}
