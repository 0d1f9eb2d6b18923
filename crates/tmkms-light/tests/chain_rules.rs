//! Request-level rules of the chain signer: chain id, max height, extension
//! signatures per dialect, persistence failures, sign-bytes policy.

// Test helpers outside #[test] fns unwrap and expect too (clippy.toml
// covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signature as DalekSignature, SigningKey, Verifier};
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::privval::{Dialect, ErrorCode, Request, Response, SignedVote};
use tmkms_light::sign_bytes::{proposal_sign_bytes, vote_extension_sign_bytes, vote_sign_bytes};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::*;

/// A store whose writes can be made to fail, shared with the test.
#[derive(Clone, Default)]
struct SharedStore {
    state: Arc<Mutex<Option<SignState>>>,
    fail: Arc<Mutex<bool>>,
}

impl StateStore for SharedStore {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(self.state.lock().unwrap().clone())
    }
    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        if *self.fail.lock().unwrap() {
            return Err(StateError::Unavailable("disk full (injected)".into()));
        }
        *self.state.lock().unwrap() = Some(state.clone());
        Ok(())
    }
}

fn chain_id() -> ChainId {
    ChainId::try_from("rules-chain").unwrap()
}

fn signer(
    max_height: Option<u32>,
    sign_bytes: bool,
) -> (ChainSigner<SigningKey>, SharedStore, SigningKey) {
    let key = SigningKey::from_bytes(&[42; 32]);
    let store = SharedStore::default();
    let policy = ChainPolicy {
        chain_id: chain_id(),
        max_height: max_height.map(Height::from),
        danger_allow_sign_bytes: sign_bytes,
    };
    let chain = ChainSigner::open(policy, key.clone(), Box::new(store.clone())).unwrap();
    (chain, store, key)
}

fn block(tag: u8) -> Option<BlockId> {
    Some(BlockId {
        hash: [tag; 32],
        part_set_header: PartSetHeader {
            total: 2,
            hash: [tag.wrapping_add(1); 32],
        },
    })
}

fn vote(kind: VoteKind, h: u32, block_id: Option<BlockId>, extension: &[u8]) -> Vote {
    Vote {
        kind,
        height: Height::from(h),
        round: Round::from(0u16),
        block_id,
        timestamp: Timestamp::new(1_700_000_000 + i64::from(h), 0).unwrap(),
        validator_address: vec![1; 20],
        validator_index: 0,
        extension: extension.to_vec(),
    }
}

fn sign_vote(chain: &ChainSigner<SigningKey>, dialect: Dialect, v: &Vote, skip: bool) -> Response {
    chain.handle(
        dialect,
        Request::SignVote {
            chain_id: chain_id().to_string(),
            vote: v.clone(),
            skip_extension_signing: skip,
        },
    )
}

/// `v` signed over v0.38, extension signing not skipped.
fn sign_v038(chain: &ChainSigner<SigningKey>, v: &Vote) -> Response {
    sign_vote(chain, Dialect::V0_38, v, false)
}

/// The signed vote, or a panic naming the vote and the answer instead.
#[allow(
    clippy::panic,
    reason = "fails the calling test, like the unwraps above"
)]
fn signed_vote(
    chain: &ChainSigner<SigningKey>,
    dialect: Dialect,
    v: &Vote,
    skip: bool,
) -> SignedVote {
    match sign_vote(chain, dialect, v, skip) {
        Response::SignedVote(Ok(signed)) => signed,
        other => panic!("{dialect}: no signature for {v:?}: {other:?}"),
    }
}

/// Signs `first`, then a copy changed by `change`, which must get the same
/// signature back (a replay); returns the second answer and the copy.
fn replayed_after(
    chain: &ChainSigner<SigningKey>,
    dialect: Dialect,
    first: &Vote,
    change: impl FnOnce(&mut Vote),
) -> (SignedVote, Vote) {
    let a = signed_vote(chain, dialect, first, false);
    let mut again = first.clone();
    change(&mut again);
    let b = signed_vote(chain, dialect, &again, false);
    assert_eq!(a.signature(), b.signature(), "{dialect}: {again:?}");
    (b, again)
}

/// A v1 sign-bytes request for `value`.
fn sign_bytes(chain: &ChainSigner<SigningKey>, value: &[u8]) -> Response {
    chain.handle(
        Dialect::V1,
        Request::SignBytes {
            value: value.to_vec(),
        },
    )
}

/// What the store holds (a state must have been persisted).
fn stored(store: &SharedStore) -> SignState {
    store
        .state
        .lock()
        .unwrap()
        .clone()
        .expect("a state was persisted")
}

fn proposal(h: u32, timestamp: Timestamp) -> Proposal {
    Proposal {
        height: Height::from(h),
        round: Round::from(0u16),
        pol_round: None,
        block_id: block(1),
        timestamp,
    }
}

fn verify(key: &SigningKey, msg: &[u8], sig: &Signature) {
    key.verifying_key()
        .verify(msg, &DalekSignature::from_bytes(&sig.0))
        .expect("signature verifies");
}

fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::PubKey(Err(e))
        | Response::SignedVote(Err(e))
        | Response::SignedProposal(Err(e))
        | Response::SignedBytes(Err(e)) => Some(e.code),
        _ => None,
    }
}

#[test]
fn extension_signed_only_for_non_nil_precommits_in_extension_dialects() {
    for dialect in Dialect::ALL {
        let (chain, _, key) = signer(None, false);
        let prevote = vote(VoteKind::Prevote, 1, block(1), b"");
        let nil_precommit = vote(VoteKind::Precommit, 1, None, b"");
        let precommit = vote(VoteKind::Precommit, 2, block(2), b"app-data");
        let empty_ext = vote(VoteKind::Precommit, 3, block(3), b"");
        for (v, wants_ext) in [
            (&prevote, false),
            (&nil_precommit, false),
            (&precommit, true),
            (&empty_ext, true),
        ] {
            let signed = signed_vote(&chain, dialect, v, false);
            verify(&key, &vote_sign_bytes(&chain_id(), v), &signed.signature());
            let expect = wants_ext && dialect.has_vote_extensions();
            assert_eq!(
                signed.extension_signature().is_some(),
                expect,
                "{dialect} {v:?}"
            );
            if let Some(ext) = signed.extension_signature() {
                verify(&key, &vote_extension_sign_bytes(&chain_id(), v), &ext);
            }
            assert!(
                signed.vote().extension.is_empty(),
                "extension must not be echoed"
            );
        }
    }
}

#[test]
fn honours_skip_extension_signing() {
    let (chain, _, _) = signer(None, false);
    let precommit = vote(VoteKind::Precommit, 1, block(1), b"x");
    let signed = signed_vote(&chain, Dialect::V1, &precommit, true);
    assert!(signed.extension_signature().is_none());
}

#[test]
fn extension_signature_is_fresh_on_replay() {
    let (chain, _, key) = signer(None, false);
    let precommit = vote(VoteKind::Precommit, 1, block(1), b"first");
    let (b, again) = replayed_after(&chain, Dialect::V0_38, &precommit, |v| {
        v.extension = b"second".to_vec();
    });
    verify(
        &key,
        &vote_extension_sign_bytes(&chain_id(), &again),
        &b.extension_signature().unwrap(),
    );
}

#[test]
fn rejects_wrong_chain_id_with_code_1() {
    let (chain, _, _) = signer(None, false);
    let r = chain.handle(
        Dialect::V0_38,
        Request::PubKey {
            chain_id: "other".into(),
        },
    );
    assert_eq!(error_code(&r), Some(ErrorCode::WrongChainId));
    let r = chain.handle(
        Dialect::V0_38,
        Request::SignVote {
            chain_id: "other".into(),
            vote: vote(VoteKind::Prevote, 1, block(1), b""),
            skip_extension_signing: false,
        },
    );
    assert_eq!(error_code(&r), Some(ErrorCode::WrongChainId));
}

#[test]
fn rejects_above_max_height_with_code_3() {
    let (chain, store, _) = signer(Some(10), false);
    let at_max = vote(VoteKind::Prevote, 10, block(1), b"");
    signed_vote(&chain, Dialect::V0_38, &at_max, false);
    let r = sign_v038(&chain, &vote(VoteKind::Prevote, 11, block(1), b""));
    assert_eq!(error_code(&r), Some(ErrorCode::AboveMaxHeight));
    assert_eq!(stored(&store).position.height, Height::from(10u32));
}

#[test]
fn persist_failure_releases_nothing_with_code_5() {
    let (chain, store, _) = signer(None, false);
    *store.fail.lock().unwrap() = true;
    let prevote = vote(VoteKind::Prevote, 1, block(1), b"");
    let r = sign_v038(&chain, &prevote);
    assert_eq!(error_code(&r), Some(ErrorCode::PersistFailed));
    assert!(store.state.lock().unwrap().is_none());
    assert_eq!(
        chain.last_state(),
        Some(SignState::default()),
        "memory must not run ahead of disk"
    );
    // Once the disk is back, the same request signs.
    *store.fail.lock().unwrap() = false;
    signed_vote(&chain, Dialect::V0_38, &prevote, false);
}

#[test]
fn regression_and_conflict_get_code_2() {
    let (chain, _, _) = signer(None, false);
    let precommit = vote(VoteKind::Precommit, 5, block(1), b"");
    signed_vote(&chain, Dialect::V0_38, &precommit, false);
    for refused in [
        vote(VoteKind::Precommit, 5, block(2), b""),
        vote(VoteKind::Prevote, 5, block(1), b""),
    ] {
        let r = sign_v038(&chain, &refused);
        assert_eq!(error_code(&r), Some(ErrorCode::DoubleSign), "{refused:?}");
    }
}

#[test]
fn replayed_vote_returns_stored_timestamp() {
    let (chain, _, key) = signer(None, false);
    let first = vote(VoteKind::Prevote, 3, block(1), b"");
    let (b, _later) = replayed_after(&chain, Dialect::V0_34, &first, |v| {
        v.timestamp = Timestamp::new(1_800_000_000, 7).unwrap();
    });
    assert_eq!(b.vote().timestamp, first.timestamp);
    verify(
        &key,
        &vote_sign_bytes(&chain_id(), b.vote()),
        &b.signature(),
    );
}

#[test]
fn proposal_with_new_timestamp_is_signed_afresh() {
    let (chain, store, key) = signer(None, false);
    let p = proposal(4, Timestamp::new(100, 0).unwrap());
    let sign = |p: &Proposal| {
        chain.handle(
            Dialect::V0_38,
            Request::SignProposal {
                chain_id: chain_id().to_string(),
                proposal: p.clone(),
            },
        )
    };
    let Response::SignedProposal(Ok(a)) = sign(&p) else {
        panic!()
    };
    let mut q = p.clone();
    q.timestamp = Timestamp::new(101, 0).unwrap();
    let Response::SignedProposal(Ok(b)) = sign(&q) else {
        panic!()
    };
    assert_ne!(a.signature(), b.signature());
    verify(&key, &proposal_sign_bytes(&chain_id(), &q), &b.signature());
    assert_eq!(
        stored(&store).sign_bytes,
        proposal_sign_bytes(&chain_id(), &q)
    );
}

#[test]
fn sign_bytes_disabled_by_default_and_never_signs_consensus_messages() {
    let (chain, _, _) = signer(None, false);
    let r = sign_bytes(&chain, b"hello");
    assert_eq!(error_code(&r), Some(ErrorCode::Malformed));
    let (chain, _, key) = signer(None, true);
    let Response::SignedBytes(Ok(sig)) = sign_bytes(&chain, b"hello") else {
        panic!()
    };
    verify(&key, b"hello", &sig);
    let consensus = vote_sign_bytes(&chain_id(), &vote(VoteKind::Precommit, 9, block(1), b""));
    let r = sign_bytes(&chain, &consensus);
    assert_eq!(error_code(&r), Some(ErrorCode::DoubleSign));
}

/// Sign-bytes must not sign a consensus message of *any* chain: the chain
/// id check alone lets a vote, proposal or extension of another chain (the
/// key may vote there too) through, outside the guard.
#[test]
fn sign_bytes_refuses_consensus_messages_of_every_chain() {
    let (chain, _, _) = signer(None, true);
    let precommit = vote(VoteKind::Precommit, 9, block(1), b"ext");
    for chain_id in [chain_id(), ChainId::try_from("another-chain").unwrap()] {
        let proposal = proposal(9, Timestamp::new(1_700_000_009, 0).unwrap());
        for value in [
            vote_sign_bytes(&chain_id, &precommit),
            vote_sign_bytes(&chain_id, &vote(VoteKind::Prevote, 3, None, b"")),
            vote_extension_sign_bytes(&chain_id, &precommit),
            proposal_sign_bytes(&chain_id, &proposal),
        ] {
            let r = sign_bytes(&chain, &value);
            assert_eq!(
                error_code(&r),
                Some(ErrorCode::DoubleSign),
                "{chain_id}: {r:?}"
            );
        }
    }
}

/// Our sign bytes must equal those of an independent implementation
/// (tendermint-rs domain types).
#[test]
fn sign_bytes_match_tendermint_rs() {
    use tendermint::{block, vote as tvote};
    let v = vote(VoteKind::Precommit, 77, block(5), b"ext");
    let tm_vote = tendermint::vote::Vote {
        vote_type: tvote::Type::Precommit,
        height: block::Height::try_from(77u64).unwrap(),
        round: block::Round::try_from(0u32).unwrap(),
        block_id: Some(block::Id {
            hash: tendermint::Hash::Sha256([5; 32]),
            part_set_header: block::parts::Header::new(2, tendermint::Hash::Sha256([6; 32]))
                .unwrap(),
        }),
        timestamp: Some(tendermint::Time::from_unix_timestamp(1_700_000_077, 0).unwrap()),
        validator_address: tendermint::account::Id::new([1; 20]),
        validator_index: tvote::ValidatorIndex::try_from(0u32).unwrap(),
        signature: None,
        extension: b"ext".to_vec(),
        extension_signature: None,
    };
    let tm_chain = tendermint::chain::Id::try_from("rules-chain").unwrap();
    assert_eq!(
        tm_vote.into_signable_vec(tm_chain),
        vote_sign_bytes(&chain_id(), &v)
    );
}
