//! Malformed input: well-framed but invalid requests, and bytes that are not
//! a request at all.

use std::time::Duration;

use tendermint_proto::v0_38::types::{Proposal as RawProposal, Vote as RawVote};

use crate::codec::{decode_response, encode_frame, encode_uvarint};
use crate::conn::{Readiness, SignerConn};
use crate::error::SimError;
use crate::spec::{codes, BlockIdSpec, ProposalSpec, RemoteError, VoteSpec};

use super::report::{Case, Expect, Outcome};

/// A request that is well-framed but invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidRequest {
    NegativeHeight,
    NegativeRound,
    UnknownVoteType,
    ShortBlockHash,
    ShortPartSetHash,
    MissingVote,
    ProposalNegativeHeight,
    ProposalPolRoundBelowMinusOne,
    ProposalPolRoundNotBelowRound,
}

impl InvalidRequest {
    /// Every kind.
    pub const ALL: [InvalidRequest; 9] = [
        InvalidRequest::NegativeHeight,
        InvalidRequest::NegativeRound,
        InvalidRequest::UnknownVoteType,
        InvalidRequest::ShortBlockHash,
        InvalidRequest::ShortPartSetHash,
        InvalidRequest::MissingVote,
        InvalidRequest::ProposalNegativeHeight,
        InvalidRequest::ProposalPolRoundBelowMinusOne,
        InvalidRequest::ProposalPolRoundNotBelowRound,
    ];

    /// A short description, used as the case name.
    pub fn name(self) -> &'static str {
        match self {
            InvalidRequest::NegativeHeight => "vote with a negative height",
            InvalidRequest::NegativeRound => "vote with a negative round",
            InvalidRequest::UnknownVoteType => "vote of an unknown type",
            InvalidRequest::ShortBlockHash => "vote with a 31-byte block hash",
            InvalidRequest::ShortPartSetHash => "vote with a 31-byte part set hash",
            InvalidRequest::MissingVote => "SignVoteRequest without a vote",
            InvalidRequest::ProposalNegativeHeight => "proposal with a negative height",
            InvalidRequest::ProposalPolRoundBelowMinusOne => "proposal with pol_round -2",
            InvalidRequest::ProposalPolRoundNotBelowRound => "proposal with pol_round >= round",
        }
    }
}

/// The message an [`InvalidRequest`] sends.
enum InvalidMessage {
    /// A `SignVoteRequest` with this vote (or none).
    Vote(Option<RawVote>),
    /// A `SignProposalRequest` with this proposal.
    Proposal(RawProposal),
}

impl InvalidRequest {
    /// The message of this kind at `height`: a valid prevote or proposal for
    /// one block, then broken in one field.
    fn message(self, height: i64) -> InvalidMessage {
        let block = Some(BlockIdSpec::for_height(height));
        let vote = |break_it: fn(&mut RawVote)| {
            let mut v = VoteSpec::prevote(height, 0, block).to_raw();
            break_it(&mut v);
            InvalidMessage::Vote(Some(v))
        };
        let proposal = |p: ProposalSpec| InvalidMessage::Proposal(p.to_raw());
        match self {
            InvalidRequest::NegativeHeight => vote(|v| v.height = -1),
            InvalidRequest::NegativeRound => vote(|v| v.round = -1),
            InvalidRequest::UnknownVoteType => vote(|v| v.r#type = 3),
            InvalidRequest::ShortBlockHash => vote(|v| {
                if let Some(id) = v.block_id.as_mut() {
                    id.hash.truncate(31);
                }
            }),
            InvalidRequest::ShortPartSetHash => vote(|v| {
                if let Some(psh) = v
                    .block_id
                    .as_mut()
                    .and_then(|id| id.part_set_header.as_mut())
                {
                    psh.hash.truncate(31);
                }
            }),
            InvalidRequest::MissingVote => InvalidMessage::Vote(None),
            InvalidRequest::ProposalNegativeHeight => {
                let mut p = ProposalSpec::new(height, 0, block).to_raw();
                p.height = -1;
                InvalidMessage::Proposal(p)
            }
            InvalidRequest::ProposalPolRoundBelowMinusOne => {
                proposal(ProposalSpec::new(height, 0, block).with_pol_round(-2))
            }
            InvalidRequest::ProposalPolRoundNotBelowRound => {
                proposal(ProposalSpec::new(height, 1, block).with_pol_round(1))
            }
        }
    }
}

/// Sends one invalid request at `height` (a fresh height) and expects code 4
/// or a dropped connection.
pub fn invalid_request(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    kind: InvalidRequest,
) -> Result<Case, SimError> {
    let outcome = match kind.message(height) {
        InvalidMessage::Vote(vote) => refusal(
            conn.sign_vote_message(chain_id, vote, false),
            "an invalid vote",
        ),
        InvalidMessage::Proposal(proposal) => refusal(
            conn.sign_proposal_raw(chain_id, proposal),
            "an invalid proposal",
        ),
    };
    let expect = Expect::RefusedOrDropped(codes::MALFORMED);
    Ok(Case::new(kind.name(), expect, outcome))
}

/// What the signer did with a request it must not sign: a signature is a
/// violation.
fn refusal<T>(result: Result<Result<T, RemoteError>, SimError>, what: &str) -> Outcome {
    match result {
        Ok(Ok(_)) => Outcome::Violation(format!("signed {what}")),
        Ok(Err(e)) => Outcome::refused(e),
        Err(e) => Outcome::from_error(&e),
    }
}

/// Bytes that are not a well-formed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedFrame {
    /// A length prefix of 4 GiB followed by a few bytes.
    OversizeLength,
    /// Eleven `0xff` bytes: a uvarint that never ends.
    BadLengthPrefix,
    /// A well-framed body that is not a protobuf message.
    Garbage,
    /// A zero-length `Message` (no oneof set).
    EmptyMessage,
    /// A `PingResponse`, which only a signer may send.
    ResponseType,
    /// A frame declaring 100 bytes, 10 sent, then end of stream.
    Truncated,
    /// Bytes on the socket that are not SecretConnection frames (tcp only).
    CorruptCiphertext,
}

impl MalformedFrame {
    /// Every kind.
    pub const ALL: [MalformedFrame; 7] = [
        MalformedFrame::OversizeLength,
        MalformedFrame::BadLengthPrefix,
        MalformedFrame::Garbage,
        MalformedFrame::EmptyMessage,
        MalformedFrame::ResponseType,
        MalformedFrame::Truncated,
        MalformedFrame::CorruptCiphertext,
    ];

    /// A short description, used as the case name.
    pub fn name(self) -> &'static str {
        match self {
            MalformedFrame::OversizeLength => "oversize length prefix (4 GiB)",
            MalformedFrame::BadLengthPrefix => "unterminated length prefix",
            MalformedFrame::Garbage => "body that is not protobuf",
            MalformedFrame::EmptyMessage => "empty Message",
            MalformedFrame::ResponseType => "PingResponse sent to the signer",
            MalformedFrame::Truncated => "truncated frame, then end of stream",
            MalformedFrame::CorruptCiphertext => "bytes that are not SecretConnection frames",
        }
    }
}

/// Sends one malformed input and waits up to `wait` for the signer to answer
/// with an error or drop the connection. Expects either; a signer that stays
/// silent (e.g. waiting for 4 GiB) or answers normally fails. The connection
/// is not usable afterwards unless the outcome is a refusal.
pub fn malformed_frame(
    conn: &mut SignerConn,
    kind: MalformedFrame,
    wait: Duration,
) -> Result<Case, SimError> {
    let sent = match kind {
        MalformedFrame::OversizeLength => {
            let mut bytes = encode_uvarint(1 << 32);
            bytes.extend_from_slice(&[0u8; 16]);
            conn.send_raw(&bytes)
        }
        MalformedFrame::BadLengthPrefix => conn.send_raw(&[0xff; 11]),
        // Field 1, wire type 2, with a length running past the end.
        MalformedFrame::Garbage => {
            conn.send_raw(&encode_frame(&[0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
        }
        MalformedFrame::EmptyMessage => conn.send_raw(&encode_frame(&[])),
        // Message { ping_response (8) {} }
        MalformedFrame::ResponseType => conn.send_raw(&encode_frame(&[0x42, 0x00])),
        MalformedFrame::Truncated => {
            let mut bytes = encode_uvarint(100);
            bytes.extend_from_slice(&[0x3a; 10]);
            conn.send_raw(&bytes).and_then(|()| conn.shutdown_write())
        }
        MalformedFrame::CorruptCiphertext => {
            if conn.remote_identity_key().is_none() {
                return Err(SimError::Unsupported(
                    "plaintext connection: no ciphertext to corrupt".into(),
                ));
            }
            conn.send_unencrypted(&[0x5a; 1044])
        }
    };
    let outcome = match sent {
        Err(e) => Outcome::from_error(&e),
        Ok(()) => match conn.wait_readable(wait) {
            Readiness::Closed => Outcome::Dropped,
            Readiness::Idle => Outcome::NoAnswer,
            Readiness::Data => match conn.read_message_raw() {
                Err(e) => Outcome::from_error(&e),
                Ok(body) => match decode_response(conn.dialect(), &body) {
                    Err(e) => Outcome::Violation(format!("undecodable answer: {e}")),
                    Ok(r) => match r.error() {
                        Some(e) => Outcome::refused(e.clone()),
                        None => Outcome::Violation(format!("answered with {}", r.name())),
                    },
                },
            },
        },
    };
    Ok(Case::new(kind.name(), Expect::ErrorOrDropped, outcome))
}
