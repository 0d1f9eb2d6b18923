//! Reads a signer response back with the wire types the node uses, so a
//! target can check what the node would see.

use prost::Message as _;
use tendermint_proto::v0_38::privval as raw;
use tendermint_proto::v0_38::types as raw_types;
use tmkms_light::privval::{wire_v1, Dialect, RequestKind};

/// A response as the checks need it, from either dialect's wire types: the
/// error code if any, and what was signed.
#[derive(Debug)]
pub enum Answer {
    PubKey(Option<i32>),
    Vote(Option<i32>, Option<raw_types::Vote>),
    Proposal(Option<i32>, Option<raw_types::Proposal>),
    Bytes(Option<i32>),
    Ping,
}

impl Answer {
    /// The kind of request this response answers.
    pub fn answers(&self) -> RequestKind {
        match self {
            Answer::PubKey(_) => RequestKind::PubKey,
            Answer::Vote(..) => RequestKind::SignVote,
            Answer::Proposal(..) => RequestKind::SignProposal,
            Answer::Bytes(_) => RequestKind::SignBytes,
            Answer::Ping => RequestKind::Ping,
        }
    }

    /// The `RemoteSignerError` code, `None` for a success or a ping.
    pub fn error_code(&self) -> Option<i32> {
        match self {
            Answer::PubKey(code)
            | Answer::Vote(code, _)
            | Answer::Proposal(code, _)
            | Answer::Bytes(code) => *code,
            Answer::Ping => None,
        }
    }
}

/// Decodes a response body of `dialect`; panics (a finding) if the node
/// could not read it as a response. A v0.x body must also read with the
/// v0.34 types, the oldest a node of those dialects uses.
pub fn decode_answer(dialect: Dialect, body: &[u8]) -> Answer {
    let code = |e: Option<raw::RemoteSignerError>| e.map(|e| e.code);
    if dialect == Dialect::V1 {
        use wire_v1::Sum;
        match wire_v1::Message::decode(body)
            .expect("v1 response decodes")
            .sum
        {
            Some(Sum::PubKeyResponse(r)) => Answer::PubKey(code(r.error)),
            Some(Sum::SignedVoteResponse(r)) => Answer::Vote(code(r.error), r.vote),
            Some(Sum::SignedProposalResponse(r)) => Answer::Proposal(code(r.error), r.proposal),
            Some(Sum::SignBytesResponse(r)) => Answer::Bytes(code(r.error)),
            Some(Sum::PingResponse(_)) => Answer::Ping,
            other => panic!("v1 response is not a response: {other:?}"),
        }
    } else {
        use raw::message::Sum;
        let message = raw::Message::decode(body).expect("v0 response decodes");
        tendermint_proto::v0_34::privval::Message::decode(body).expect("v0.34 types decode it");
        match message.sum {
            Some(Sum::PubKeyResponse(r)) => Answer::PubKey(code(r.error)),
            Some(Sum::SignedVoteResponse(r)) => Answer::Vote(code(r.error), r.vote),
            Some(Sum::SignedProposalResponse(r)) => Answer::Proposal(code(r.error), r.proposal),
            Some(Sum::PingResponse(_)) => Answer::Ping,
            other => panic!("v0 response is not a response: {other:?}"),
        }
    }
}
