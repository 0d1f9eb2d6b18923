//! The signer's state and policy checks: replays answered from the stored
//! state, regressions and conflicts refused as double signs, foreign chains
//! and heights above `max_height` refused.

use crate::conn::SignerConn;
use crate::error::SimError;
use crate::spec::{
    codes, validator_address, BlockIdSpec, ProposalSpec, SignedProposal, SignedVote, VoteSpec,
};

use super::report::{Expect, Report};
use super::run::{any, extension_for, node_skips_extension, Run};

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
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));

    let prevote = VoteSpec::prevote(height, 0, block).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote);
    if let Some(first) = run.vote("prevote", Expect::Ok, &prevote, skip, &any) {
        let same = |s: &SignedVote| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a new signature instead of the stored one".to_owned())
            }
        };
        run.vote("identical prevote", Expect::Ok, &prevote, skip, &same);
        let (secs, nanos) = prevote.timestamp;
        let moved = prevote.clone().with_timestamp(secs + 5, nanos + 1000);
        let stored = |s: &SignedVote| {
            if s.signature != first.signature {
                Err("a new signature instead of the stored one".to_owned())
            } else if s.timestamp != first.timestamp {
                Err(format!(
                    "returned timestamp {:?}, expected the stored {:?}",
                    s.timestamp, first.timestamp
                ))
            } else {
                Ok(())
            }
        };
        run.vote(
            "prevote differing only in timestamp",
            Expect::Ok,
            &moved,
            skip,
            &stored,
        );
    }

    let precommit = VoteSpec::precommit(height, 0, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    if let Some(first) = run.vote("precommit", Expect::Ok, &precommit, false, &any) {
        let same = |s: &SignedVote| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a new vote signature instead of the stored one".to_owned())
            }
        };
        run.vote("identical precommit", Expect::Ok, &precommit, false, &same);
        if dialect.has_extensions() {
            let other = precommit
                .clone()
                .with_extension(b"another extension".to_vec());
            run.vote(
                "precommit with another extension",
                Expect::Ok,
                &other,
                false,
                &same,
            );
        }
    }

    let proposal = ProposalSpec::new(height + 1, 0, Some(BlockIdSpec::for_height(height + 1)));
    if let Some(first) = run.proposal("proposal", Expect::Ok, &proposal, &any) {
        let same = |s: &SignedProposal| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a different signature for identical sign bytes".to_owned())
            }
        };
        run.proposal("identical proposal", Expect::Ok, &proposal, &same);
        let (secs, nanos) = proposal.timestamp;
        let moved = proposal.clone().with_timestamp(secs + 2, nanos);
        // verify_proposal checks the signature over the *new* timestamp.
        run.proposal(
            "proposal differing only in timestamp",
            Expect::Ok,
            &moved,
            &any,
        );
    }
    run.ping("connection still open");
    Ok(run.report)
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
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));
    let top = VoteSpec::precommit(height, 1, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    run.vote("precommit at H/1", Expect::Ok, &top, false, &any);

    let refused = Expect::Refused(codes::DOUBLE_SIGN);
    let lower_height = VoteSpec::prevote(height - 1, 0, Some(BlockIdSpec::for_height(height - 1)))
        .with_validator(address, 0);
    run.vote(
        "prevote at H-1 (lower height)",
        refused,
        &lower_height,
        node_skips_extension(dialect, &lower_height),
        &any,
    );
    let lower_round = VoteSpec::precommit(height, 0, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    run.vote(
        "precommit at H/0 (lower round)",
        refused,
        &lower_round,
        false,
        &any,
    );
    let lower_step = VoteSpec::prevote(height, 1, block).with_validator(address, 0);
    run.vote(
        "prevote at H/1 (lower step)",
        refused,
        &lower_step,
        node_skips_extension(dialect, &lower_step),
        &any,
    );
    run.proposal(
        "proposal at H/1 (lower step)",
        refused,
        &ProposalSpec::new(height, 1, block),
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
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
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let a = Some(BlockIdSpec::from_seed(b"block A"));
    let b = Some(BlockIdSpec::from_seed(b"block B"));
    let refused = Expect::Refused(codes::DOUBLE_SIGN);

    let prevote_a = VoteSpec::prevote(height, 0, a).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote_a);
    run.vote("prevote for block A", Expect::Ok, &prevote_a, skip, &any);
    let prevote_b = VoteSpec::prevote(height, 0, b).with_validator(address, 0);
    run.vote(
        "prevote for block B at the same H/R/S",
        refused,
        &prevote_b,
        skip,
        &any,
    );
    let prevote_nil = VoteSpec::prevote(height, 0, None).with_validator(address, 0);
    run.vote(
        "nil prevote at the same H/R/S",
        refused,
        &prevote_nil,
        skip,
        &any,
    );

    let ext = extension_for(dialect, height);
    let precommit_a = VoteSpec::precommit(height, 0, a)
        .with_validator(address, 0)
        .with_extension(ext.clone());
    run.vote(
        "precommit for block A",
        Expect::Ok,
        &precommit_a,
        false,
        &any,
    );
    let precommit_b = VoteSpec::precommit(height, 0, b)
        .with_validator(address, 0)
        .with_extension(ext);
    run.vote(
        "precommit for block B at the same H/R/S",
        refused,
        &precommit_b,
        false,
        &any,
    );

    let next = height + 1;
    run.proposal(
        "proposal for block A",
        Expect::Ok,
        &ProposalSpec::new(next, 0, a),
        &any,
    );
    run.proposal(
        "proposal for block B at the same H/R",
        refused,
        &ProposalSpec::new(next, 0, b),
        &any,
    );
    let with_pol = ProposalSpec::new(next, 1, a).with_pol_round(0);
    run.proposal(
        "proposal at round 1 with POL round 0",
        Expect::Ok,
        &with_pol,
        &any,
    );
    let without_pol = ProposalSpec::new(next, 1, a);
    run.proposal(
        "the same proposal without POL round",
        refused,
        &without_pol,
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
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
    let dialect = conn.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));
    let prevote = VoteSpec::prevote(height, 0, block).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote);
    let proposal = ProposalSpec::new(height, 0, block);
    let refused = Expect::Refused(codes::WRONG_CHAIN_ID);

    let mut wrong = Run::new(conn, other, pubkey, "wrong chain id");
    wrong.proposal("proposal for another chain", refused, &proposal, &any);
    wrong.vote("prevote for another chain", refused, &prevote, skip, &any);
    let mut report = wrong.report;
    if report.connection_lost() {
        return Ok(report);
    }
    let mut right = Run::new(conn, chain_id, pubkey, "wrong chain id");
    right.proposal(
        "the same proposal on the configured chain",
        Expect::Ok,
        &proposal,
        &any,
    );
    right.vote(
        "the same prevote on the configured chain",
        Expect::Ok,
        &prevote,
        skip,
        &any,
    );
    report.cases.append(&mut right.report.cases);
    Ok(report)
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
    let dialect = run.dialect();
    let block = Some(BlockIdSpec::for_height(height));
    let refused = Expect::Refused(codes::ABOVE_MAX_HEIGHT);
    run.proposal(
        "proposal above max_height",
        refused,
        &ProposalSpec::new(height, 0, block),
        &any,
    );
    let prevote = VoteSpec::prevote(height, 0, block).with_validator(validator_address(pubkey), 0);
    run.vote(
        "prevote above max_height",
        refused,
        &prevote,
        node_skips_extension(dialect, &prevote),
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
}
