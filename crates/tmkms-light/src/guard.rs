//! The double-sign guard: given the last signed state and a new request,
//! decide whether to sign, replay a stored signature, or refuse.
//!
//! Pure functions only — no I/O, no clock, no locking. The caller
//! ([`crate::chain`]) makes check-and-persist atomic.

use std::fmt;

use tendermint_proto::google::protobuf::Timestamp as RawTimestamp;
use tendermint_proto::v0_38::types::{CanonicalProposal, CanonicalVote};

use crate::sign_bytes::{
    canonical_proposal, canonical_vote, decode_canonical_proposal, decode_canonical_vote,
};
use crate::types::{ChainId, Position, Proposal, SignState, Signature, Timestamp, Vote};

/// The consensus message a sign request is about.
#[derive(Debug, Clone, Copy)]
pub enum Signable<'a> {
    Vote(&'a Vote),
    Proposal(&'a Proposal),
}

impl Signable<'_> {
    pub fn position(&self) -> Position {
        match self {
            Signable::Vote(v) => v.position(),
            Signable::Proposal(p) => p.position(),
        }
    }
}

/// What the guard allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sign the request's sign bytes; persist the new state before the
    /// signature leaves the process.
    SignNew,
    /// The same message was signed before: answer with this signature and,
    /// for votes, this timestamp (the one that was signed).
    Replay {
        signature: Signature,
        timestamp: Option<Timestamp>,
    },
    /// Same message as stored, but the stored state has no signature (an
    /// imported state): sign the *stored* sign bytes again. Ed25519 is
    /// deterministic, so this reproduces the original signature exactly.
    ResignStored { timestamp: Option<Timestamp> },
}

/// Why the guard refuses. Every refusal maps to `RemoteSignerError` code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is below the last signed height/round/step.
    Regression { last: Position, requested: Position },
    /// Another message was already signed at this height/round/step.
    Conflict { at: Position, detail: &'static str },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Regression { last, requested } => write!(
                f,
                "double-sign protection: request at {requested} is below the last signed {last}"
            ),
            Refusal::Conflict { at, detail } => {
                write!(
                    f,
                    "double-sign protection: conflicting data at {at}: {detail}"
                )
            }
        }
    }
}

/// Decide what to do with `request` given the `last` signed state.
/// `sign_bytes` are the request's canonical sign bytes for `chain_id`.
pub fn check(
    last: &SignState,
    chain_id: &ChainId,
    request: Signable<'_>,
    sign_bytes: &[u8],
) -> Result<Verdict, Refusal> {
    let requested = request.position();
    match requested.cmp(&last.position) {
        std::cmp::Ordering::Less => Err(Refusal::Regression {
            last: last.position,
            requested,
        }),
        std::cmp::Ordering::Greater => Ok(Verdict::SignNew),
        std::cmp::Ordering::Equal => same_position(last, chain_id, request, sign_bytes),
    }
}

fn replay_of(last: &SignState, timestamp: Option<Timestamp>) -> Verdict {
    match last.signature {
        Some(signature) => Verdict::Replay {
            signature,
            timestamp,
        },
        None => Verdict::ResignStored { timestamp },
    }
}

fn same_position(
    last: &SignState,
    chain_id: &ChainId,
    request: Signable<'_>,
    sign_bytes: &[u8],
) -> Result<Verdict, Refusal> {
    let at = last.position;
    if last.sign_bytes.is_empty() {
        return Err(Refusal::Conflict {
            at,
            detail: "a message was signed here but its sign bytes are unknown (imported state)",
        });
    }
    if last.sign_bytes == sign_bytes {
        return Ok(replay_of(last, None));
    }
    match request {
        Signable::Vote(vote) => {
            let stored = same_but_timestamp(
                at,
                decode_canonical_vote(&last.sign_bytes),
                canonical_vote(chain_id, vote),
            )?;
            // Only the timestamp differs: hand back the signed one.
            let timestamp = stored
                .timestamp
                .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
                .ok_or(Refusal::Conflict {
                    at,
                    detail: "stored vote has an invalid timestamp",
                })?;
            Ok(replay_of(last, Some(timestamp)))
        }
        Signable::Proposal(proposal) => {
            same_but_timestamp(
                at,
                decode_canonical_proposal(&last.sign_bytes),
                canonical_proposal(chain_id, proposal),
            )?;
            // The node ignores a returned proposal timestamp, so replaying the
            // old signature would yield an invalid proposal. Two proposals that
            // differ only in time are not slashable: sign the new one.
            Ok(Verdict::SignNew)
        }
    }
}

/// A canonical message the guard compares with the stored one while
/// setting the timestamp aside.
trait CanonicalMessage: PartialEq {
    /// Why a request of this kind is refused when the stored sign bytes are
    /// not one.
    const NOT_STORED: &'static str;
    /// Why it is refused when the stored one differs in more than its time.
    const DIFFERENT: &'static str;

    fn timestamp_mut(&mut self) -> &mut Option<RawTimestamp>;
}

impl CanonicalMessage for CanonicalVote {
    const NOT_STORED: &'static str = "stored sign bytes are not a vote";
    const DIFFERENT: &'static str = "a different vote was already signed";

    fn timestamp_mut(&mut self) -> &mut Option<RawTimestamp> {
        &mut self.timestamp
    }
}

impl CanonicalMessage for CanonicalProposal {
    const NOT_STORED: &'static str = "stored sign bytes are not a proposal";
    const DIFFERENT: &'static str = "a different proposal was already signed";

    fn timestamp_mut(&mut self) -> &mut Option<RawTimestamp> {
        &mut self.timestamp
    }
}

/// The `stored` message (decoded from the last sign bytes), if `requested`
/// equals it in everything but the timestamp; a conflict at `at` otherwise.
fn same_but_timestamp<M: CanonicalMessage>(
    at: Position,
    stored: Option<M>,
    mut requested: M,
) -> Result<M, Refusal> {
    let mut stored = stored.ok_or(Refusal::Conflict {
        at,
        detail: M::NOT_STORED,
    })?;
    *requested.timestamp_mut() = *stored.timestamp_mut();
    if requested != stored {
        return Err(Refusal::Conflict {
            at,
            detail: M::DIFFERENT,
        });
    }
    Ok(stored)
}

#[cfg(test)]
mod tests;
