//! Domain [`Response`] → protobuf bytes in the connection's dialect.

use prost::Message as _;
use tendermint_proto::google::protobuf::Timestamp as RawTimestamp;
use tendermint_proto::v0_38::crypto::{public_key, PublicKey as RawPublicKey};
use tendermint_proto::v0_38::privval as raw;
use tendermint_proto::v0_38::types as raw_types;

use super::{wire_v1, Dialect, RemoteError, Response, SignedProposal, SignedVote};
use crate::types::{BlockId, PROPOSAL_WIRE_TYPE};

/// Key type name CometBFT v1 expects in `pub_key_type`.
const ED25519_KEY_TYPE: &str = "ed25519";

fn raw_error(error: &RemoteError) -> raw::RemoteSignerError {
    raw::RemoteSignerError {
        code: error.code as i32,
        description: error.description.clone(),
    }
}

fn raw_block_id(block_id: Option<&BlockId>) -> raw_types::BlockId {
    match block_id {
        None => raw_types::BlockId::default(),
        Some(id) => raw_types::BlockId {
            hash: id.hash.to_vec(),
            part_set_header: Some(raw_types::PartSetHeader {
                total: id.part_set_header.total,
                hash: id.part_set_header.hash.to_vec(),
            }),
        },
    }
}

/// The vote sent back. The extension itself is left out on purpose: the
/// node only reads the signatures and the timestamp, and echoing a large
/// extension would exceed the 10 KiB response cap of v0.38 nodes.
fn raw_signed_vote(dialect: Dialect, signed: &SignedVote) -> raw_types::Vote {
    let vote = signed.vote();
    let extension_signature = match (dialect.has_vote_extensions(), &signed.extension_signature()) {
        (true, Some(sig)) => sig.0.to_vec(),
        _ => Vec::new(),
    };
    raw_types::Vote {
        r#type: vote.kind.wire_type(),
        height: vote.height.as_i64(),
        round: vote.round.as_i32(),
        block_id: Some(raw_block_id(vote.block_id.as_ref())),
        timestamp: Some(RawTimestamp {
            seconds: vote.timestamp.seconds,
            nanos: vote.timestamp.nanos,
        }),
        validator_address: vote.validator_address.clone(),
        validator_index: i32::try_from(vote.validator_index).unwrap_or(i32::MAX),
        signature: signed.signature().0.to_vec(),
        extension: Vec::new(),
        extension_signature,
    }
}

fn raw_signed_proposal(signed: &SignedProposal) -> raw_types::Proposal {
    let p = signed.proposal();
    raw_types::Proposal {
        r#type: PROPOSAL_WIRE_TYPE,
        height: p.height.as_i64(),
        round: p.round.as_i32(),
        pol_round: p.pol_round.map_or(-1, |r| r.as_i32()),
        block_id: Some(raw_block_id(p.block_id.as_ref())),
        timestamp: Some(RawTimestamp {
            seconds: p.timestamp.seconds,
            nanos: p.timestamp.nanos,
        }),
        signature: signed.signature().0.to_vec(),
    }
}

/// Encode `response` as a message body (without the length prefix).
pub fn encode_response(dialect: Dialect, response: &Response) -> Vec<u8> {
    match dialect {
        Dialect::V0_34 | Dialect::V0_37 | Dialect::V0_38 => encode_v0(dialect, response),
        Dialect::V1 => encode_v1(response),
    }
}

/// A response's two optional halves: the value on success, the error
/// otherwise (every privval response carries both fields).
fn value_or_error<T, V>(
    result: &Result<T, RemoteError>,
    value: impl FnOnce(&T) -> V,
) -> (Option<V>, Option<raw::RemoteSignerError>) {
    match result {
        Ok(ok) => (Some(value(ok)), None),
        Err(e) => (None, Some(raw_error(e))),
    }
}

/// Wire-identical in every dialect (v1 reuses v0.38's type).
fn signed_vote_response(
    dialect: Dialect,
    result: &Result<SignedVote, RemoteError>,
) -> raw::SignedVoteResponse {
    let (vote, error) = value_or_error(result, |signed| raw_signed_vote(dialect, signed));
    raw::SignedVoteResponse { vote, error }
}

/// Wire-identical in every dialect (v1 reuses v0.38's type).
fn signed_proposal_response(
    result: &Result<SignedProposal, RemoteError>,
) -> raw::SignedProposalResponse {
    let (proposal, error) = value_or_error(result, raw_signed_proposal);
    raw::SignedProposalResponse { proposal, error }
}

fn encode_v0(dialect: Dialect, response: &Response) -> Vec<u8> {
    use raw::message::Sum;
    let sum = match response {
        Response::PubKey(result) => {
            let (pub_key, error) = value_or_error(result, |key| RawPublicKey {
                sum: Some(public_key::Sum::Ed25519(key.to_vec())),
            });
            Sum::PubKeyResponse(raw::PubKeyResponse { pub_key, error })
        }
        Response::SignedVote(result) => {
            Sum::SignedVoteResponse(signed_vote_response(dialect, result))
        }
        Response::SignedProposal(result) => {
            Sum::SignedProposalResponse(signed_proposal_response(result))
        }
        // Not part of v0.x; a session never produces it for these dialects.
        // Answer with an empty ping response rather than panicking.
        Response::Ping | Response::SignedBytes(_) => Sum::PingResponse(raw::PingResponse {}),
    };
    raw::Message { sum: Some(sum) }.encode_to_vec()
}

fn encode_v1(response: &Response) -> Vec<u8> {
    use wire_v1::Sum;
    let sum = match response {
        Response::PubKey(result) => {
            // On error both key fields stay empty.
            let (key, error) = value_or_error(result, |key| key.to_vec());
            let (pub_key_bytes, pub_key_type) = match key {
                Some(bytes) => (bytes, ED25519_KEY_TYPE.to_owned()),
                None => (Vec::new(), String::new()),
            };
            Sum::PubKeyResponse(wire_v1::PubKeyResponse {
                error,
                pub_key_bytes,
                pub_key_type,
            })
        }
        Response::SignedVote(result) => {
            Sum::SignedVoteResponse(signed_vote_response(Dialect::V1, result))
        }
        Response::SignedProposal(result) => {
            Sum::SignedProposalResponse(signed_proposal_response(result))
        }
        Response::SignedBytes(result) => {
            let (signature, error) = value_or_error(result, |sig| sig.0.to_vec());
            Sum::SignBytesResponse(wire_v1::SignBytesResponse {
                signature: signature.unwrap_or_default(),
                error,
            })
        }
        Response::Ping => Sum::PingResponse(wire_v1::PingResponse {}),
    };
    wire_v1::Message { sum: Some(sum) }.encode_to_vec()
}
