//! Why a request from the node gets no signature, and what the node sees.
//!
//! Every cause is its own variant with its own message, grouped by whose
//! fault it is: the peer sent garbage, the peer asked for something the
//! policy forbids, or we failed locally. [`Rejection::remote_error`] is the
//! one table from cause to `RemoteSignerError` code, and
//! [`RequestError::answer`] the one place that decides between answering
//! with that code (the connection stays open) and dropping the connection.
//! The codes' meaning: 1 wrong chain id, 2 double sign / conflicting data /
//! regression, 3 above `max_height`, 4 malformed or not allowed, 5 could not
//! persist state or sign (nothing was signed).

use thiserror::Error;

use crate::guard;
use crate::privval::{DecodeError, ErrorCode, InvalidRequest, RemoteError};
use crate::signer::SignError;
use crate::state::StateError;
use crate::types::Height;

/// A request that is answered with a `RemoteSignerError`.
#[derive(Debug, Error)]
pub enum Rejection {
    // The peer sent garbage.
    /// A decodable request with a missing or invalid field.
    #[error("invalid request: {0}")]
    InvalidRequest(InvalidRequest),

    // The peer asked for something the policy forbids.
    /// The request names another chain. `requested` is already quoted and
    /// cut to a length the node can read back.
    #[error("this signer serves chain {expected:?}, not {requested}")]
    WrongChainId { expected: String, requested: String },
    #[error("height {height} is above max_height {max_height}")]
    AboveMaxHeight { height: Height, max_height: Height },
    /// The double-sign guard refuses (regression or conflicting data).
    #[error("{0}")]
    Conflict(guard::Refusal),
    #[error("sign-bytes requests are disabled on this signer (danger_allow_sign_bytes = false)")]
    SignBytesDisabled,
    /// A sign-bytes request carrying a canonical consensus message, which
    /// would bypass the guard.
    #[error("refusing to sign a canonical {kind} through sign-bytes")]
    ConsensusMessageThroughSignBytes { kind: &'static str },

    // We failed locally; nothing was signed.
    #[error("could not persist signing state, nothing signed: {0}")]
    PersistFailed(StateError),
    #[error("could not sign: {0}")]
    SignFailed(SignError),
    /// High availability: the shared reservation could not be read or
    /// made, or its outcome is unknown.
    #[error("could not reserve the position with the other signers, nothing signed: {0}")]
    SharedUnavailable(crate::ha::WatermarkError),
    /// High availability: other signers kept moving the shared reservation.
    #[error("the shared reservation changed {attempts} times during this request, nothing signed; the node will ask again")]
    SharedContended { attempts: usize },
    /// A thread died while holding the signing state: the in-memory state
    /// can no longer be trusted until a restart.
    #[error("internal error: signing state unavailable; restart the signer")]
    StateLockPoisoned,
}

impl Rejection {
    /// The code and description sent back to the node.
    pub fn remote_error(&self) -> RemoteError {
        let code = match self {
            Rejection::WrongChainId { .. } => ErrorCode::WrongChainId,
            Rejection::Conflict(_) | Rejection::ConsensusMessageThroughSignBytes { .. } => {
                ErrorCode::DoubleSign
            }
            Rejection::AboveMaxHeight { .. } => ErrorCode::AboveMaxHeight,
            Rejection::InvalidRequest(_) | Rejection::SignBytesDisabled => ErrorCode::Malformed,
            Rejection::PersistFailed(_)
            | Rejection::SignFailed(_)
            | Rejection::SharedUnavailable(_)
            | Rejection::SharedContended { .. }
            | Rejection::StateLockPoisoned => ErrorCode::PersistFailed,
        };
        RemoteError {
            code,
            description: self.to_string(),
        }
    }
}

/// Anything that ends a request without a signature.
#[derive(Debug, Error)]
pub enum RequestError {
    /// Not a request we can answer: undecodable, of no known type, a
    /// signer-side message, outside the dialect.
    #[error(transparent)]
    Undecodable(DecodeError),
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

impl From<DecodeError> for RequestError {
    /// An identifiable request with a bad field is refused (code 4); any
    /// other decoding failure leaves nothing to answer.
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Invalid { reason, .. } => {
                RequestError::Rejected(Rejection::InvalidRequest(reason))
            }
            other => RequestError::Undecodable(other),
        }
    }
}

/// What the node gets for a failed request.
#[derive(Debug)]
pub enum Answer {
    /// A `RemoteSignerError` inside the matching response; the connection
    /// stays open.
    Refuse(RemoteError),
    /// Nothing: the message cannot be answered, so the connection is
    /// closed, for this reason.
    DropConnection(DecodeError),
}

impl RequestError {
    /// The one mapping from a failed request to what the node sees.
    pub fn answer(self) -> Answer {
        match self {
            RequestError::Undecodable(reason) => Answer::DropConnection(reason),
            RequestError::Rejected(rejection) => Answer::Refuse(rejection.remote_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_failures_have_their_own_messages_and_code_5() {
        let failures = [
            Rejection::SignFailed(SignError("device gone".into())),
            Rejection::StateLockPoisoned,
        ];
        let descriptions: Vec<_> = failures
            .iter()
            .map(|f| {
                let remote = f.remote_error();
                assert_eq!(remote.code, ErrorCode::PersistFailed);
                remote.description
            })
            .collect();
        assert!(descriptions[0].starts_with("could not sign"));
        assert!(descriptions[1].contains("restart the signer"));
        assert!(descriptions
            .iter()
            .all(|d| !d.contains("could not persist")));
    }

    #[test]
    fn undecodable_messages_drop_the_connection() {
        let error = RequestError::from(DecodeError::UnknownMessage);
        assert!(matches!(
            error.answer(),
            Answer::DropConnection(DecodeError::UnknownMessage)
        ));
        let refused = RequestError::from(Rejection::SignBytesDisabled).answer();
        let Answer::Refuse(remote) = refused else {
            unreachable!("expected a refusal, got {refused:?}");
        };
        assert_eq!(remote.code, ErrorCode::Malformed);
    }
}
