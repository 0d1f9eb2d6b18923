//! The signer's state and policy checks: replays answered from the stored
//! state, regressions and conflicts refused as double signs, foreign chains
//! and heights above `max_height` refused.

use crate::spec::{codes, BlockIdSpec, ProposalSpec, SignedVote};

use super::report::{Expect, Report};
use super::run::{same_signature, Run};

const NOT_THE_STORED_SIGNATURE: &str = "a new signature instead of the stored one";
const NOT_THE_STORED_VOTE_SIGNATURE: &str = "a new vote signature instead of the stored one";

/// [`Scripted::Replays`](super::Scripted::Replays).
pub(super) fn replays(mut run: Run<'_>, height: i64) -> Report {
    let block = Some(BlockIdSpec::for_height(height));

    let prevote = run.prevote(height, 0, block);
    if let Some(first) = run.sign("prevote", Expect::Ok, &prevote) {
        let same = same_signature(&first, NOT_THE_STORED_SIGNATURE);
        run.sign_checked("identical prevote", Expect::Ok, &prevote, &same);
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
        run.sign_checked(name, Expect::Ok, &moved, &stored);
    }

    let precommit = run.precommit(height, 0, block);
    if let Some(first) = run.sign("precommit", Expect::Ok, &precommit) {
        let same = same_signature(&first, NOT_THE_STORED_VOTE_SIGNATURE);
        run.sign_checked("identical precommit", Expect::Ok, &precommit, &same);
        if run.dialect().has_extensions() {
            let other = precommit
                .clone()
                .with_extension(b"another extension".to_vec());
            let name = "precommit with another extension";
            run.sign_checked(name, Expect::Ok, &other, &same);
        }
    }

    let proposal = ProposalSpec::new(height + 1, 0, Some(BlockIdSpec::for_height(height + 1)));
    if let Some(first) = run.sign("proposal", Expect::Ok, &proposal) {
        let same = same_signature(&first, "a different signature for identical sign bytes");
        run.sign_checked("identical proposal", Expect::Ok, &proposal, &same);
        let (secs, nanos) = proposal.timestamp;
        let moved = proposal.clone().with_timestamp(secs + 2, nanos);
        // verify_proposal checks the signature over the *new* timestamp.
        run.sign("proposal differing only in timestamp", Expect::Ok, &moved);
    }
    run.finish_with_ping()
}

/// [`Scripted::Regressions`](super::Scripted::Regressions).
pub(super) fn regressions(mut run: Run<'_>, height: i64) -> Report {
    let block = Some(BlockIdSpec::for_height(height));
    let top = run.precommit(height, 1, block);
    run.sign("precommit at H/1", Expect::Ok, &top);

    let refused = Expect::Refused(codes::DOUBLE_SIGN);
    let lower_height = run.prevote(height - 1, 0, Some(BlockIdSpec::for_height(height - 1)));
    run.sign("prevote at H-1 (lower height)", refused, &lower_height);
    let lower_round = run.precommit(height, 0, block);
    run.sign("precommit at H/0 (lower round)", refused, &lower_round);
    let lower_step = run.prevote(height, 1, block);
    run.sign("prevote at H/1 (lower step)", refused, &lower_step);
    let proposal = ProposalSpec::new(height, 1, block);
    run.sign("proposal at H/1 (lower step)", refused, &proposal);
    run.finish_with_ping()
}

/// [`Scripted::Conflicts`](super::Scripted::Conflicts).
pub(super) fn conflicts(mut run: Run<'_>, height: i64) -> Report {
    let a = Some(BlockIdSpec::from_seed(b"block A"));
    let b = Some(BlockIdSpec::from_seed(b"block B"));
    let refused = Expect::Refused(codes::DOUBLE_SIGN);

    let prevote_a = run.prevote(height, 0, a);
    run.sign("prevote for block A", Expect::Ok, &prevote_a);
    let prevote_b = run.prevote(height, 0, b);
    run.sign("prevote for block B at the same H/R/S", refused, &prevote_b);
    let prevote_nil = run.prevote(height, 0, None);
    run.sign("nil prevote at the same H/R/S", refused, &prevote_nil);

    // Both precommits carry the extension of `height`, whatever their block.
    let precommit_a = run.precommit(height, 0, a);
    run.sign("precommit for block A", Expect::Ok, &precommit_a);
    let precommit_b = run.precommit(height, 0, b);
    let name = "precommit for block B at the same H/R/S";
    run.sign(name, refused, &precommit_b);

    let next = height + 1;
    let proposal_a = ProposalSpec::new(next, 0, a);
    run.sign("proposal for block A", Expect::Ok, &proposal_a);
    let proposal_b = ProposalSpec::new(next, 0, b);
    run.sign("proposal for block B at the same H/R", refused, &proposal_b);
    let with_pol = ProposalSpec::new(next, 1, a).with_pol_round(0);
    run.sign(
        "proposal at round 1 with POL round 0",
        Expect::Ok,
        &with_pol,
    );
    let without_pol = ProposalSpec::new(next, 1, a);
    let name = "the same proposal without POL round";
    run.sign(name, refused, &without_pol);
    run.finish_with_ping()
}

/// [`Scripted::WrongChainId`](super::Scripted::WrongChainId).
pub(super) fn wrong_chain_id(mut run: Run<'_>, height: i64) -> Report {
    let configured = run.chain_id;
    run.chain_id = if configured == "other-chain" {
        "another-chain"
    } else {
        "other-chain"
    };
    let block = Some(BlockIdSpec::for_height(height));
    let prevote = run.prevote(height, 0, block);
    let proposal = ProposalSpec::new(height, 0, block);
    let refused = Expect::Refused(codes::WRONG_CHAIN_ID);

    run.sign("proposal for another chain", refused, &proposal);
    run.sign("prevote for another chain", refused, &prevote);
    run.chain_id = configured;
    let name = "the same proposal on the configured chain";
    run.sign(name, Expect::Ok, &proposal);
    let name = "the same prevote on the configured chain";
    run.sign(name, Expect::Ok, &prevote);
    run.finish()
}

/// [`Scripted::AboveMaxHeight`](super::Scripted::AboveMaxHeight).
pub(super) fn above_max_height(mut run: Run<'_>, height: i64) -> Report {
    let block = Some(BlockIdSpec::for_height(height));
    let refused = Expect::Refused(codes::ABOVE_MAX_HEIGHT);
    let proposal = ProposalSpec::new(height, 0, block);
    run.sign("proposal above max_height", refused, &proposal);
    let prevote = run.prevote(height, 0, block);
    run.sign("prevote above max_height", refused, &prevote);
    run.finish_with_ping()
}
