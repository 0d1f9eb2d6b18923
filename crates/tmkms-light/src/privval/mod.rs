//! The privval wire protocol: framing, the per-release dialects, and the
//! conversion between raw protobuf messages and validated domain requests
//! and responses. Pure: no sockets, files or clocks.

mod decode;
mod dialect;
mod encode;
pub mod frame;
pub mod wire_v1;

pub use decode::{decode_request, DecodeError, InvalidRequest, RequestKind};
pub use dialect::{Dialect, UnknownDialect};
pub use encode::encode_response;

use crate::state::ReleasedSignature;
use crate::types::{Proposal, Signature, Vote};

/// A validated request from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    PubKey {
        chain_id: String,
    },
    SignVote {
        chain_id: String,
        vote: Vote,
        /// v1 only: the node does not want the extension signed.
        skip_extension_signing: bool,
    },
    SignProposal {
        chain_id: String,
        proposal: Proposal,
    },
    /// v1 only: sign arbitrary bytes with the consensus key.
    SignBytes {
        value: Vec<u8>,
    },
    Ping,
}

impl Request {
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::PubKey { .. } => RequestKind::PubKey,
            Request::SignVote { .. } => RequestKind::SignVote,
            Request::SignProposal { .. } => RequestKind::SignProposal,
            Request::SignBytes { .. } => RequestKind::SignBytes,
            Request::Ping => RequestKind::Ping,
        }
    }
}

/// `RemoteSignerError` codes understood by operators' tooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request names another chain than the one configured.
    WrongChainId = 1,
    /// Double sign, conflicting data at one height/round/step, or a regression.
    DoubleSign = 2,
    /// The request is above the configured `max_height`.
    AboveMaxHeight = 3,
    /// The request is malformed or not allowed by configuration.
    Malformed = 4,
    /// The new state could not be persisted; nothing was signed.
    PersistFailed = 5,
}

/// An error sent back to the node inside the matching response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub code: ErrorCode,
    pub description: String,
}

/// A signed vote ready to go back to the node. Built only from a
/// [`ReleasedSignature`], i.e. after the state naming it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    /// The vote as requested, with the timestamp that was signed. Its
    /// extension is never echoed back (the node ignores it and caps
    /// response sizes).
    vote: Vote,
    signature: ReleasedSignature,
    extension_signature: Option<Signature>,
}

impl SignedVote {
    pub fn new(
        mut vote: Vote,
        signature: ReleasedSignature,
        extension_signature: Option<Signature>,
    ) -> Self {
        vote.extension = Vec::new();
        Self {
            vote,
            signature,
            extension_signature,
        }
    }

    pub fn vote(&self) -> &Vote {
        &self.vote
    }

    pub fn signature(&self) -> Signature {
        self.signature.signature()
    }

    pub fn extension_signature(&self) -> Option<Signature> {
        self.extension_signature
    }
}

/// A signed proposal ready to go back to the node (see [`SignedVote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProposal {
    proposal: Proposal,
    signature: ReleasedSignature,
}

impl SignedProposal {
    pub fn new(proposal: Proposal, signature: ReleasedSignature) -> Self {
        Self {
            proposal,
            signature,
        }
    }

    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }

    pub fn signature(&self) -> Signature {
        self.signature.signature()
    }
}

/// A response to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    PubKey(Result<[u8; 32], RemoteError>),
    SignedVote(Result<SignedVote, RemoteError>),
    SignedProposal(Result<SignedProposal, RemoteError>),
    SignedBytes(Result<Signature, RemoteError>),
    Ping,
}

impl Response {
    /// The error response matching a request kind. `None` for pings, which
    /// cannot fail.
    pub fn error_for(kind: RequestKind, error: RemoteError) -> Option<Response> {
        match kind {
            RequestKind::PubKey => Some(Response::PubKey(Err(error))),
            RequestKind::SignVote => Some(Response::SignedVote(Err(error))),
            RequestKind::SignProposal => Some(Response::SignedProposal(Err(error))),
            RequestKind::SignBytes => Some(Response::SignedBytes(Err(error))),
            RequestKind::Ping => None,
        }
    }
}
