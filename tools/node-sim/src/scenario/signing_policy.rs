//! The signer's state and policy checks: replays answered from the stored
//! state, regressions and conflicts refused as double signs, foreign chains
//! and heights above `max_height` refused.

use crate::conn::SignerConn;
use crate::error::SimError;
use crate::spec::{codes, BlockIdSpec, ProposalSpec, SignedVote};

use super::report::{Expect, Report};
use super::run::{same_signature, Run};

const NOT_THE_STORED_SIGNATURE: &str = "a new signature instead of the stored one";
const NOT_THE_STORED_VOTE_SIGNATURE: &str = "a new vote signature instead of the stored one";

/// Same-H/R/S requests that must be answered from the stored state. Uses
/// `height` and `height + 1`.
///
/// * an identical vote → the same signature;
/// * a vote differing only in its timestamp → the stored signature **and**
///   the stored timestamp;
/// * a precommit replay → the same vote signature and a valid extension
///   signature, also over a changed extension (extension signatures are
///   never cached);
/// * a proposal differing only in its timestamp → a valid signature over the
///   new proposal (the node ignores a returned proposal timestamp).
pub fn replays(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "replays");
    let block = Some(BlockIdSpec::for_height(height));

    let prevote = run.prevote(height, 0, block);
    if let Some(first) = run.vote("prevote", Expect::Ok, &prevote) {
        let same = same_signature(&first, NOT_THE_STORED_SIGNATURE);
        run.vote_checked("identical prevote", Expect::Ok, &prevote, &same);
        let (secs, nanos) = prevote.timestamp;
        let moved = prevote.clone().with_timestamp(secs + 5, nanos + 1000);
        let stored = |s: &SignedVote| {
            same(s)?;
            if s.timestamp == first.timestamp {
                Ok(())
            } else {
                Err(format!(
                    "returned timestamp {:?}, expected the stored {:?}",
                    s.timestamp, first.timestamp
                ))
            }
        };
        let name = "prevote differing only in timestamp";
        run.vote_checked(name, Expect::Ok, &moved, &stored);
    }

    let precommit = run.precommit(height, 0, block);
    if let Some(first) = run.vote("precommit", Expect::Ok, &precommit) {
        let same = same_signature(&first, NOT_THE_STORED_VOTE_SIGNATURE);
        run.vote_checked("identical precommit", Expect::Ok, &precommit, &same);
        if run.dialect().has_extensions() {
            let other = precommit
                .clone()
                .with_extension(b"another extension".to_vec());
            let name = "precommit with another extension";
            run.vote_checked(name, Expect::Ok, &other, &same);
        }
    }

    let proposal = ProposalSpec::new(height + 1, 0, Some(BlockIdSpec::for_height(height + 1)));
    if let Some(first) = run.proposal("proposal", Expect::Ok, &proposal) {
        let same = same_signature(&first, "a different signature for identical sign bytes");
        run.proposal_checked("identical proposal", Expect::Ok, &proposal, &same);
        let (secs, nanos) = proposal.timestamp;
        let moved = proposal.clone().with_timestamp(secs + 2, nanos);
        // verify_proposal checks the signature over the *new* timestamp.
        run.proposal("proposal differing only in timestamp", Expect::Ok, &moved);
    }
    Ok(run.finish_with_ping())
}

/// Requests below the last signed H/R/S must be refused with code 2 and the
/// connection must stay open. Uses `height - 1` and `height`.
pub fn regressions(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "regressions");
    let block = Some(BlockIdSpec::for_height(height));
    let top = run.precommit(height, 1, block);
    run.vote("precommit at H/1", Expect::Ok, &top);

    let refused = Expect::Refused(codes::DOUBLE_SIGN);
    let lower_height = run.prevote(height - 1, 0, Some(BlockIdSpec::for_height(height - 1)));
    run.vote("prevote at H-1 (lower height)", refused, &lower_height);
    let lower_round = run.precommit(height, 0, block);
    run.vote("precommit at H/0 (lower round)", refused, &lower_round);
    let lower_step = run.prevote(height, 1, block);
    run.vote("prevote at H/1 (lower step)", refused, &lower_step);
    let proposal = ProposalSpec::new(height, 1, block);
    run.proposal("proposal at H/1 (lower step)", refused, &proposal);
    Ok(run.finish_with_ping())
}

/// Different data at an already signed H/R/S must be refused with code 2.
/// Uses `height` and `height + 1`.
pub fn conflicts(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "conflicts");
    let a = Some(BlockIdSpec::from_seed(b"block A"));
    let b = Some(BlockIdSpec::from_seed(b"block B"));
    let refused = Expect::Refused(codes::DOUBLE_SIGN);

    let prevote_a = run.prevote(height, 0, a);
    run.vote("prevote for block A", Expect::Ok, &prevote_a);
    let prevote_b = run.prevote(height, 0, b);
    run.vote("prevote for block B at the same H/R/S", refused, &prevote_b);
    let prevote_nil = run.prevote(height, 0, None);
    run.vote("nil prevote at the same H/R/S", refused, &prevote_nil);

    // Both precommits carry the extension of `height`, whatever their block.
    let precommit_a = run.precommit(height, 0, a);
    run.vote("precommit for block A", Expect::Ok, &precommit_a);
    let precommit_b = run.precommit(height, 0, b);
    let name = "precommit for block B at the same H/R/S";
    run.vote(name, refused, &precommit_b);

    let next = height + 1;
    let proposal_a = ProposalSpec::new(next, 0, a);
    run.proposal("proposal for block A", Expect::Ok, &proposal_a);
    let proposal_b = ProposalSpec::new(next, 0, b);
    run.proposal("proposal for block B at the same H/R", refused, &proposal_b);
    let with_pol = ProposalSpec::new(next, 1, a).with_pol_round(0);
    run.proposal(
        "proposal at round 1 with POL round 0",
        Expect::Ok,
        &with_pol,
    );
    let without_pol = ProposalSpec::new(next, 1, a);
    let name = "the same proposal without POL round";
    run.proposal(name, refused, &without_pol);
    Ok(run.finish_with_ping())
}

/// Requests for another chain must be refused with code 1 without moving the
/// signer's state. Uses `height`.
pub fn wrong_chain_id(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let other = if chain_id == "other-chain" {
        "another-chain"
    } else {
        "other-chain"
    };
    let mut run = Run::new(conn, other, pubkey, "wrong chain id");
    let block = Some(BlockIdSpec::for_height(height));
    let prevote = run.prevote(height, 0, block);
    let proposal = ProposalSpec::new(height, 0, block);
    let refused = Expect::Refused(codes::WRONG_CHAIN_ID);

    run.proposal("proposal for another chain", refused, &proposal);
    run.vote("prevote for another chain", refused, &prevote);
    run.chain_id = chain_id;
    let name = "the same proposal on the configured chain";
    run.proposal(name, Expect::Ok, &proposal);
    let name = "the same prevote on the configured chain";
    run.vote(name, Expect::Ok, &prevote);
    Ok(run.finish())
}

/// Requests above the signer's configured `max_height` must be refused with
/// code 3. `height` must be above it.
pub fn above_max_height(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "above max height");
    let block = Some(BlockIdSpec::for_height(height));
    let refused = Expect::Refused(codes::ABOVE_MAX_HEIGHT);
    let proposal = ProposalSpec::new(height, 0, block);
    run.proposal("proposal above max_height", refused, &proposal);
    let prevote = run.prevote(height, 0, block);
    run.vote("prevote above max_height", refused, &prevote);
    Ok(run.finish_with_ping())
}
