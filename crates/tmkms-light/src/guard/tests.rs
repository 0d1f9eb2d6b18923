use super::*;
use crate::sign_bytes::{proposal_sign_bytes, vote_sign_bytes};
use crate::types::{BlockId, Height, PartSetHeader, Round, Step, VoteKind};

fn chain() -> ChainId {
    ChainId::try_from("guard-chain").unwrap()
}

fn block(tag: u8) -> Option<BlockId> {
    Some(BlockId {
        hash: [tag; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: [tag ^ 0xff; 32],
        },
    })
}

fn vote(kind: VoteKind, h: u32, r: u16, block_id: Option<BlockId>, secs: i64) -> Vote {
    Vote {
        kind,
        height: Height::from(h),
        round: Round::from(r),
        block_id,
        timestamp: Timestamp::new(secs, 0).unwrap(),
        validator_address: vec![7; 20],
        validator_index: 0,
        extension: Vec::new(),
    }
}

fn proposal(h: u32, r: u16, block_id: Option<BlockId>, secs: i64) -> Proposal {
    Proposal {
        height: Height::from(h),
        round: Round::from(r),
        pol_round: None,
        block_id,
        timestamp: Timestamp::new(secs, 0).unwrap(),
    }
}

const SIG: Signature = Signature([9; 64]);

/// The sign bytes of a request on [`chain`].
fn sign_bytes_of(request: Signable<'_>) -> Vec<u8> {
    match request {
        Signable::Vote(v) => vote_sign_bytes(&chain(), v),
        Signable::Proposal(p) => proposal_sign_bytes(&chain(), p),
    }
}

/// The state after `request` was signed (with [`SIG`]).
fn state_after(request: Signable<'_>) -> SignState {
    SignState {
        position: request.position(),
        sign_bytes: sign_bytes_of(request),
        signature: Some(SIG),
    }
}

fn state_after_vote(v: &Vote) -> SignState {
    state_after(Signable::Vote(v))
}

fn state_after_proposal(p: &Proposal) -> SignState {
    state_after(Signable::Proposal(p))
}

fn check_request(last: &SignState, request: Signable<'_>) -> Result<Verdict, Refusal> {
    check(last, &chain(), request, &sign_bytes_of(request))
}

fn check_vote(last: &SignState, v: &Vote) -> Result<Verdict, Refusal> {
    check_request(last, Signable::Vote(v))
}

fn check_proposal(last: &SignState, p: &Proposal) -> Result<Verdict, Refusal> {
    check_request(last, Signable::Proposal(p))
}

#[track_caller]
fn assert_conflict(result: Result<Verdict, Refusal>) {
    assert!(
        matches!(result, Err(Refusal::Conflict { .. })),
        "{result:?}"
    );
}

#[track_caller]
fn assert_regression(result: Result<Verdict, Refusal>) {
    assert!(
        matches!(result, Err(Refusal::Regression { .. })),
        "{result:?}"
    );
}

#[test]
fn signs_anything_above_a_fresh_state() {
    let fresh = SignState::default();
    assert_eq!(
        check_vote(&fresh, &vote(VoteKind::Prevote, 1, 0, block(1), 1)),
        Ok(Verdict::SignNew)
    );
    assert_eq!(
        check_proposal(&fresh, &proposal(1, 0, block(1), 1)),
        Ok(Verdict::SignNew)
    );
}

#[test]
fn signs_higher_height_round_and_step() {
    let last = state_after_vote(&vote(VoteKind::Prevote, 5, 1, block(1), 1));
    for v in [
        vote(VoteKind::Precommit, 5, 1, block(2), 1),
        vote(VoteKind::Prevote, 5, 2, None, 1),
        vote(VoteKind::Prevote, 6, 0, block(3), 1),
    ] {
        assert_eq!(check_vote(&last, &v), Ok(Verdict::SignNew), "{v:?}");
    }
}

#[test]
fn rejects_regressions_in_height_round_and_step() {
    let last = state_after_vote(&vote(VoteKind::Prevote, 5, 1, block(1), 1));
    for v in [
        vote(VoteKind::Prevote, 4, 9, block(1), 1),
        vote(VoteKind::Precommit, 5, 0, block(1), 1),
    ] {
        assert_regression(check_vote(&last, &v));
    }
    // A proposal is the lowest step of a round.
    assert_regression(check_proposal(&last, &proposal(5, 1, block(1), 1)));
}

#[test]
fn replays_identical_vote_with_stored_signature() {
    let v = vote(VoteKind::Precommit, 3, 0, block(1), 100);
    let last = state_after_vote(&v);
    assert_eq!(
        check_vote(&last, &v),
        Ok(Verdict::Replay {
            signature: SIG,
            timestamp: None
        })
    );
}

#[test]
fn replays_vote_differing_only_in_timestamp_with_stored_timestamp() {
    let v = vote(VoteKind::Prevote, 3, 0, block(1), 100);
    let last = state_after_vote(&v);
    let later = vote(VoteKind::Prevote, 3, 0, block(1), 200);
    assert_eq!(
        check_vote(&last, &later),
        Ok(Verdict::Replay {
            signature: SIG,
            timestamp: Some(Timestamp::new(100, 0).unwrap())
        })
    );
}

#[test]
fn rejects_conflicting_vote_at_same_position() {
    let last = state_after_vote(&vote(VoteKind::Precommit, 3, 0, block(1), 100));
    for v in [
        vote(VoteKind::Precommit, 3, 0, block(2), 100),
        vote(VoteKind::Precommit, 3, 0, None, 100),
    ] {
        assert_conflict(check_vote(&last, &v));
    }
    let mut other_validator = vote(VoteKind::Precommit, 3, 0, block(1), 100);
    other_validator.validator_index = 3;
    // Validator index/address are not part of the sign bytes: same message.
    assert!(matches!(
        check_vote(&last, &other_validator),
        Ok(Verdict::Replay { .. })
    ));
}

#[test]
fn signs_proposal_differing_only_in_timestamp_afresh() {
    let p = proposal(8, 2, block(1), 100);
    let last = state_after_proposal(&p);
    assert_eq!(
        check_proposal(&last, &proposal(8, 2, block(1), 101)),
        Ok(Verdict::SignNew)
    );
    assert_eq!(
        check_proposal(&last, &p),
        Ok(Verdict::Replay {
            signature: SIG,
            timestamp: None
        })
    );
}

#[test]
fn rejects_conflicting_proposal() {
    let last = state_after_proposal(&proposal(8, 2, block(1), 100));
    assert_conflict(check_proposal(&last, &proposal(8, 2, block(2), 100)));
    let mut pol = proposal(8, 2, block(1), 100);
    pol.pol_round = Some(Round::from(1u16));
    assert_conflict(check_proposal(&last, &pol));
}

#[test]
fn rejects_same_position_when_stored_sign_bytes_are_unknown() {
    let v = vote(VoteKind::Prevote, 10, 0, block(1), 1);
    let imported = SignState {
        position: v.position(),
        sign_bytes: Vec::new(),
        signature: None,
    };
    assert_conflict(check_vote(&imported, &v));
}

#[test]
fn resigns_stored_bytes_when_signature_is_unknown() {
    let v = vote(VoteKind::Prevote, 10, 0, block(1), 1);
    let mut imported = state_after_vote(&v);
    imported.signature = None;
    assert_eq!(
        check_vote(&imported, &v),
        Ok(Verdict::ResignStored { timestamp: None })
    );
    let later = vote(VoteKind::Prevote, 10, 0, block(1), 5);
    assert_eq!(
        check_vote(&imported, &later),
        Ok(Verdict::ResignStored {
            timestamp: Some(Timestamp::new(1, 0).unwrap())
        })
    );
}

#[test]
fn state_at_height_allows_every_step_of_that_height() {
    let last = SignState::at_height(Height::from(7u32));
    assert_eq!(last.position.step, Step::None);
    assert_eq!(
        check_proposal(&last, &proposal(7, 0, block(1), 1)),
        Ok(Verdict::SignNew)
    );
    assert_regression(check_vote(
        &last,
        &vote(VoteKind::Prevote, 6, 0, block(1), 1),
    ));
}

#[test]
fn votes_of_other_kind_stored_at_same_position_never_replay() {
    // A state whose sign bytes are a proposal but whose step says prevote
    // (only reachable through a corrupted or forged state) must refuse.
    let p = proposal(4, 0, block(1), 1);
    let mut forged = state_after_proposal(&p);
    forged.position.step = Step::Prevote;
    assert!(check_vote(&forged, &vote(VoteKind::Prevote, 4, 0, block(1), 1)).is_err());
}
