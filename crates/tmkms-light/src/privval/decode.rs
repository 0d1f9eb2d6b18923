//! Raw protobuf → validated [`Request`].
//!
//! Peer bytes are decoded into the raw prost types of the connection's
//! dialect, then every field is checked before a domain value is built.
//! A request that decodes but is invalid yields [`DecodeError::Invalid`]
//! with its kind, so the session can answer in the matching response type;
//! anything else means the connection is unusable.

use prost::bytes::Buf;
use prost::Message as _;
use tendermint_proto::v0_38::privval as raw;
use tendermint_proto::v0_38::types as raw_types;
use thiserror::Error;

use super::frame::Body;
use super::{wire_v1, Dialect, Request};
use crate::types::{
    BlockId, Height, InvalidValue, PartSetHeader, Proposal, Round, Timestamp, Vote, VoteKind,
    ADDRESS_LEN, HASH_LEN, PROPOSAL_WIRE_TYPE,
};

/// What a request asked for, known even when its contents are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    PubKey,
    SignVote,
    SignProposal,
    SignBytes,
    Ping,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("message is not a valid privval protobuf: {0}")]
    Undecodable(#[from] prost::DecodeError),
    #[error("message has no known request type (unknown or empty oneof)")]
    UnknownMessage,
    #[error("node sent a {0}, which only a signer sends")]
    UnexpectedMessage(&'static str),
    #[error("{what} is not supported by protocol version {dialect}")]
    NotInDialect {
        what: &'static str,
        dialect: Dialect,
    },
    #[error("invalid {kind:?} request: {reason}")]
    Invalid {
        kind: RequestKind,
        reason: InvalidRequest,
    },
}

/// Why a decodable request is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidRequest {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error(transparent)]
    Value(#[from] InvalidValue),
    #[error(
        "vote extensions are not part of protocol version {0}; set protocol_version to v0.38 or v1"
    )]
    ExtensionInOldDialect(Dialect),
    #[error("a proposal must name a complete block id")]
    NilProposal,
}

fn invalid(kind: RequestKind) -> impl Fn(InvalidRequest) -> DecodeError {
    move |reason| DecodeError::Invalid { kind, reason }
}

/// Decode one message body received on a connection speaking `dialect`:
/// a byte slice, or a [`Frame`](super::frame::Frame) straight from the
/// reader (which lets a large message's buffer go before the request is
/// signed; see [`Body`]).
pub fn decode_request<'a>(
    dialect: Dialect,
    body: impl Into<Body<'a>>,
) -> Result<Request, DecodeError> {
    match body.into() {
        Body::Borrowed(bytes) => decode_buf(dialect, bytes),
        Body::Owned(bytes) => decode_buf(dialect, bytes),
    }
}

/// The body is moved in and dropped when prost is done with it: what the
/// request keeps (a vote extension) has been copied out by then, once.
fn decode_buf(dialect: Dialect, body: impl Buf) -> Result<Request, DecodeError> {
    match dialect {
        Dialect::V0_34 | Dialect::V0_37 | Dialect::V0_38 => decode_v0(dialect, body),
        Dialect::V1 => decode_v1(body),
    }
}

/// The match on a decoded `Sum` of either family (v0.38's or v1's, whose
/// shared messages have the same names), with the arms every dialect has
/// written once; `$arms` are the dialect's own.
macro_rules! match_message {
    ($sum:expr, $Sum:ident, { $($arms:tt)* }) => {
        match $sum {
            $Sum::PubKeyRequest(r) => Ok(Request::PubKey {
                chain_id: r.chain_id,
            }),
            $Sum::SignProposalRequest(r) => sign_proposal_request(r.chain_id, r.proposal),
            $Sum::PingRequest(_) => Ok(Request::Ping),
            $Sum::PubKeyResponse(_) => Err(DecodeError::UnexpectedMessage("PubKeyResponse")),
            $Sum::SignedVoteResponse(_) => {
                Err(DecodeError::UnexpectedMessage("SignedVoteResponse"))
            }
            $Sum::SignedProposalResponse(_) => {
                Err(DecodeError::UnexpectedMessage("SignedProposalResponse"))
            }
            $Sum::PingResponse(_) => Err(DecodeError::UnexpectedMessage("PingResponse")),
            $($arms)*
        }
    };
}

/// v0.34 and v0.37 speak a strict subset of v0.38's wire (no vote fields 9
/// and 10), so one set of raw types serves the three; the dialect still
/// decides what is accepted.
fn decode_v0(dialect: Dialect, body: impl Buf) -> Result<Request, DecodeError> {
    use raw::message::Sum;
    let message = raw::Message::decode(body)?;
    match_message!(message.sum.ok_or(DecodeError::UnknownMessage)?, Sum, {
        Sum::SignVoteRequest(r) => sign_vote_request(dialect, r.chain_id, r.vote, false),
    })
}

fn decode_v1(body: impl Buf) -> Result<Request, DecodeError> {
    use wire_v1::Sum;
    let message = wire_v1::Message::decode(body)?;
    match_message!(message.sum.ok_or(DecodeError::UnknownMessage)?, Sum, {
        Sum::SignVoteRequest(r) => {
            sign_vote_request(Dialect::V1, r.chain_id, r.vote, r.skip_extension_signing)
        }
        Sum::SignBytesRequest(r) => Ok(Request::SignBytes { value: r.value }),
        Sum::SignBytesResponse(_) => Err(DecodeError::UnexpectedMessage("SignBytesResponse")),
    })
}

/// A sign-vote request of any dialect, from its raw parts.
fn sign_vote_request(
    dialect: Dialect,
    chain_id: String,
    vote: Option<raw_types::Vote>,
    skip_extension_signing: bool,
) -> Result<Request, DecodeError> {
    let vote = vote
        .ok_or(InvalidRequest::Missing("vote"))
        .and_then(|v| vote_from_raw(dialect, v))
        .map_err(invalid(RequestKind::SignVote))?;
    Ok(Request::SignVote {
        chain_id,
        vote,
        skip_extension_signing,
    })
}

/// A sign-proposal request of any dialect, from its raw parts.
fn sign_proposal_request(
    chain_id: String,
    proposal: Option<raw_types::Proposal>,
) -> Result<Request, DecodeError> {
    let proposal = proposal
        .ok_or(InvalidRequest::Missing("proposal"))
        .and_then(proposal_from_raw)
        .map_err(invalid(RequestKind::SignProposal))?;
    Ok(Request::SignProposal { chain_id, proposal })
}

fn hash32(field: &'static str, bytes: &[u8]) -> Result<[u8; HASH_LEN], InvalidValue> {
    <[u8; HASH_LEN]>::try_from(bytes).map_err(|_| InvalidValue::HashLength {
        field,
        len: bytes.len(),
    })
}

/// A raw block id is nil when it is absent or all-zero (CometBFT sends an
/// empty `BlockID{}` for nil votes); otherwise it must be complete.
fn block_id_from_raw(raw: Option<raw_types::BlockId>) -> Result<Option<BlockId>, InvalidValue> {
    let Some(raw) = raw else { return Ok(None) };
    let psh = raw.part_set_header.unwrap_or_default();
    let psh_zero = psh.total == 0 && psh.hash.is_empty();
    if raw.hash.is_empty() && psh_zero {
        return Ok(None);
    }
    if raw.hash.is_empty() || psh.hash.is_empty() || psh.total == 0 {
        // Validate lengths first so the error names the real problem.
        if !raw.hash.is_empty() {
            hash32("block", &raw.hash)?;
        }
        if !psh.hash.is_empty() {
            hash32("part-set", &psh.hash)?;
        }
        return Err(InvalidValue::PartialBlockId);
    }
    Ok(Some(BlockId {
        hash: hash32("block", &raw.hash)?,
        part_set_header: PartSetHeader {
            total: psh.total,
            hash: hash32("part-set", &psh.hash)?,
        },
    }))
}

fn timestamp_from_raw(
    raw: Option<tendermint_proto::google::protobuf::Timestamp>,
) -> Result<Timestamp, InvalidValue> {
    let raw = raw.ok_or(InvalidValue::MissingTimestamp)?;
    Timestamp::new(raw.seconds, raw.nanos)
}

fn request_height(raw: i64) -> Result<Height, InvalidValue> {
    let height = Height::try_from(raw)?;
    if height == Height::ZERO {
        return Err(InvalidValue::ZeroHeight);
    }
    Ok(height)
}

fn vote_from_raw(dialect: Dialect, raw: raw_types::Vote) -> Result<Vote, InvalidRequest> {
    let kind = match raw.r#type {
        1 => VoteKind::Prevote,
        2 => VoteKind::Precommit,
        other => return Err(InvalidValue::UnknownMessageType(other).into()),
    };
    if !raw.validator_address.is_empty() && raw.validator_address.len() != ADDRESS_LEN {
        return Err(InvalidValue::AddressLength(raw.validator_address.len()).into());
    }
    let validator_index = u32::try_from(raw.validator_index)
        .map_err(|_| InvalidValue::NegativeValidatorIndex(raw.validator_index))?;
    let vote = Vote {
        kind,
        height: request_height(raw.height)?,
        round: Round::try_from(i64::from(raw.round))?,
        block_id: block_id_from_raw(raw.block_id)?,
        timestamp: timestamp_from_raw(raw.timestamp)?,
        validator_address: raw.validator_address,
        validator_index,
        extension: raw.extension,
    };
    if !dialect.has_vote_extensions()
        && (!vote.extension.is_empty() || !raw.extension_signature.is_empty())
    {
        return Err(InvalidRequest::ExtensionInOldDialect(dialect));
    }
    if !vote.extension.is_empty() && !vote.is_non_nil_precommit() {
        let what = match kind {
            VoteKind::Prevote => "prevote",
            VoteKind::Precommit => "nil precommit",
        };
        return Err(InvalidValue::UnexpectedExtension(what).into());
    }
    Ok(vote)
}

fn proposal_from_raw(raw: raw_types::Proposal) -> Result<Proposal, InvalidRequest> {
    if raw.r#type != PROPOSAL_WIRE_TYPE {
        return Err(InvalidValue::UnknownMessageType(raw.r#type).into());
    }
    let round = Round::try_from(i64::from(raw.round))?;
    let pol_round = match raw.pol_round {
        -1 => None,
        r if r >= 0 => {
            let pol = Round::try_from(i64::from(r))?;
            if pol >= round {
                return Err(InvalidValue::PolRoundNotBelowRound {
                    pol_round: i64::from(r),
                    round: round.value(),
                }
                .into());
            }
            Some(pol)
        }
        r => return Err(InvalidValue::InvalidPolRound(i64::from(r)).into()),
    };
    let block_id = block_id_from_raw(raw.block_id)?;
    if block_id.is_none() {
        return Err(InvalidRequest::NilProposal);
    }
    Ok(Proposal {
        height: request_height(raw.height)?,
        round,
        pol_round,
        block_id,
        timestamp: timestamp_from_raw(raw.timestamp)?,
    })
}

#[cfg(test)]
mod tests {
    use prost::bytes::Bytes;

    use super::*;

    fn sign_vote_body(extension_len: usize) -> Vec<u8> {
        let vote = raw_types::Vote {
            r#type: 2,
            height: 5,
            round: 1,
            block_id: Some(raw_types::BlockId {
                hash: vec![0xaa; HASH_LEN],
                part_set_header: Some(raw_types::PartSetHeader {
                    total: 1,
                    hash: vec![0xbb; HASH_LEN],
                }),
            }),
            timestamp: Some(tendermint_proto::google::protobuf::Timestamp {
                seconds: 1_700_000_000,
                nanos: 7,
            }),
            validator_address: vec![0x11; ADDRESS_LEN],
            extension: (0..extension_len).map(|i| i as u8).collect(),
            ..Default::default()
        };
        raw::Message {
            sum: Some(raw::message::Sum::SignVoteRequest(raw::SignVoteRequest {
                vote: Some(vote),
                chain_id: "test-chain".into(),
            })),
        }
        .encode_to_vec()
    }

    /// A body handed over by the frame reader (owned, shared by what prost
    /// decodes from it) decodes exactly as the same bytes borrowed, in every
    /// dialect, truncated or whole.
    #[test]
    fn owned_and_borrowed_bodies_decode_alike() {
        for extension_len in [0, 3, 300_000] {
            let body = sign_vote_body(extension_len);
            for cut in [body.len(), body.len() / 2] {
                let bytes = body.get(..cut).unwrap();
                for dialect in Dialect::ALL {
                    let borrowed = decode_request(dialect, bytes);
                    let owned = decode_request(dialect, Body::Owned(Bytes::copy_from_slice(bytes)));
                    assert_eq!(format!("{borrowed:?}"), format!("{owned:?}"));
                }
            }
            let Ok(Request::SignVote { vote, .. }) = decode_request(Dialect::V0_38, &body[..])
            else {
                panic!("a valid v0.38 vote");
            };
            assert_eq!(vote.extension.len(), extension_len);
        }
    }
}
