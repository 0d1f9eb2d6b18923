//! Errors of the KMS client, split by cause: the transport failed, the
//! service refused (with its error code), or the response was not what KMS
//! sends.

use tmkms_light_http::HttpError;

/// KMS error codes the enclave reacts to differently; the rest are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KmsErrorKind {
    /// `NotFoundException`: no such key (wrong key id or region).
    NotFound,
    /// `AccessDeniedException`: the key policy/IAM denies the call (e.g. the
    /// attestation's PCRs do not match the policy's conditions).
    AccessDenied,
    /// `InvalidCiphertextException`: the blob is corrupt or was encrypted under
    /// a different encryption context.
    InvalidCiphertext,
    /// `IncorrectKeyException`: the blob was encrypted under another key.
    IncorrectKey,
    /// `DisabledException`, `KMSInvalidStateException`: the key is not usable now.
    KeyUnusable,
    /// `ValidationException`, `InvalidKeyUsageException`, `SerializationException`, …:
    /// the request was malformed for this key.
    InvalidRequest,
    /// `UnrecognizedClientException`, `InvalidSignatureException`,
    /// `IncompleteSignature`, `ExpiredTokenException`, …: credentials problem.
    Authentication,
    /// `ThrottlingException`, `LimitExceededException`: retry later.
    Throttled,
    /// `KMSInternalException`, `DependencyTimeoutException`, `KeyUnavailableException`.
    ServiceUnavailable,
    /// Anything else.
    Other,
}

impl KmsErrorKind {
    /// Classifies a KMS `__type` (with any `namespace#` prefix removed).
    pub fn from_code(code: &str) -> Self {
        match code {
            "NotFoundException" => Self::NotFound,
            "AccessDeniedException" => Self::AccessDenied,
            "InvalidCiphertextException" => Self::InvalidCiphertext,
            "IncorrectKeyException" => Self::IncorrectKey,
            "DisabledException" | "KMSInvalidStateException" => Self::KeyUnusable,
            "ValidationException"
            | "InvalidKeyUsageException"
            | "SerializationException"
            | "InvalidGrantTokenException"
            | "InvalidArnException"
            | "UnsupportedOperationException" => Self::InvalidRequest,
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken"
            | "SignatureDoesNotMatch" => Self::Authentication,
            "ThrottlingException" | "LimitExceededException" => Self::Throttled,
            "KMSInternalException" | "DependencyTimeoutException" | "KeyUnavailableException" => {
                Self::ServiceUnavailable
            }
            _ => Self::Other,
        }
    }
}

/// What failed in a KMS call.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The connector could not open a stream.
    #[error("could not connect to the KMS endpoint {endpoint}: {source} (is the vsock proxy / endpoint running?)")]
    Connect {
        /// The endpoint the client was configured with.
        endpoint: String,
        /// The connector's error.
        source: std::io::Error,
    },
    /// The endpoint host is not a valid TLS server name.
    #[error("{0:?} is not a valid TLS server name; configure the endpoint by DNS name")]
    InvalidServerName(String),
    /// TLS setup failed.
    #[error("TLS setup failed: {0}")]
    Tls(rustls::Error),
    /// The HTTP exchange failed (I/O, TLS alert, malformed or oversize response).
    #[error("{op}: {source}")]
    Http {
        /// The KMS operation.
        op: &'static str,
        /// What failed.
        source: HttpError,
    },
    /// KMS answered with an error.
    #[error("KMS {op} failed with {code} (HTTP {status}): {message}")]
    Service {
        /// The KMS operation.
        op: &'static str,
        /// The classification of `code`.
        kind: KmsErrorKind,
        /// KMS's error code, e.g. `NotFoundException`.
        code: String,
        /// KMS's message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// A non-2xx response that is not a KMS JSON error (a proxy, a load balancer).
    #[error("KMS {op} returned HTTP {status} without a KMS error body: {snippet:?}")]
    HttpStatus {
        /// The KMS operation.
        op: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for diagnosis.
        snippet: String,
    },
    /// A 2xx response whose body is not what the operation returns.
    #[error("KMS {op} returned a malformed response: {reason}")]
    MalformedResponse {
        /// The KMS operation.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// `Decrypt` with a `Recipient` came back with `Plaintext`: the endpoint
    /// ignored the attestation document, so the secret crossed the untrusted
    /// host in the clear. It is dropped, not returned.
    #[error("KMS Decrypt returned Plaintext instead of CiphertextForRecipient: the endpoint ignored the attestation Recipient and the secret crossed the host in the clear; refusing it (use real AWS KMS or a stand-in that implements Recipient, such as LocalStack)")]
    PlaintextReturned,
    /// The caller's input cannot be sent.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl KmsError {
    /// The KMS error classification, if KMS answered with an error.
    pub fn kind(&self) -> Option<KmsErrorKind> {
        match self {
            Self::Service { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
