//! Errors of the simulated node: transport and protocol failures of the
//! signer connection. A signer's deliberate refusal is not an error here; it
//! comes back as [`RemoteError`] inside the `Ok` of each request.

use std::io;

use crate::codec::{CodecError, FrameError};
use crate::sign_bytes::SpecError;
use crate::spec::RemoteError;
use crate::verify::VerifyError;

/// What went wrong while talking to the signer.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// Nothing arrived (or could be sent) within the deadline.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The signer closed the connection.
    #[error("the signer closed the connection")]
    Closed,
    /// The SecretConnection handshake failed.
    #[error("SecretConnection handshake failed: {0}")]
    Handshake(String),
    /// The byte stream does not split into messages.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message does not encode or decode in this dialect.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The request cannot be built (invalid spec).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The signer answered with another message type than the request calls for.
    #[error("expected {expected}, the signer sent {got}")]
    UnexpectedResponse {
        expected: &'static str,
        got: &'static str,
    },
    /// The response is larger than the node would read.
    #[error("response of {len} bytes exceeds the node's read cap of {cap} bytes")]
    ResponseTooLarge { len: usize, cap: usize },
    /// A field of the response is missing or malformed.
    #[error("invalid {what} in the response: {reason}")]
    InvalidResponse { what: &'static str, reason: String },
    /// The signer refused where the caller required a signature.
    #[error("the signer refused: {0}")]
    Remote(RemoteError),
    /// A signature or extension-signature rule failed.
    #[error("{context}: {source}")]
    Verify {
        context: String,
        #[source]
        source: VerifyError,
    },
    /// The operation needs something this connection or dialect lacks.
    #[error("{0}")]
    Unsupported(String),
}

impl SimError {
    /// Maps an I/O error, separating timeouts and a peer that went away.
    pub(crate) fn io(context: &'static str, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SimError::Timeout(context),
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => SimError::Closed,
            _ => SimError::Io { context, source: e },
        }
    }

    /// Whether the connection this came from is gone (closed, reset, broken
    /// SecretConnection), as opposed to a protocol-level complaint.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            SimError::Io { .. } | SimError::Closed | SimError::Timeout(_) | SimError::Frame(_)
        )
    }
}
