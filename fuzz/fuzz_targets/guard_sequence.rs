//! The double-sign guard fed arbitrary request sequences, through the real
//! `ChainSigner`, with restarts that reload the persisted state and storage
//! that fails on demand.
//!
//! Input layout: byte 0 picks the dialect; then one byte per operation:
//!
//! | bits 7-6 | operation |
//! |---|---|
//! | 00, 01 | vote: bit 5 precommit, bits 4-3 height 1..=3 (3 twice), bit 2 round, bits 1-0 block nil/A/B/B |
//! | 10 | proposal: bits 4-3 height, bit 2 round, bit 1 block A/B, bit 0 pol_round 0 (round 1 only) |
//! | 11 | bit 5 set: restart from the store; bit 4 set: import a state without sign bytes at height bits 3-2, round 0, step bits 1-0 (only forwards, as `state import`), then restart; neither: toggle failing writes |
//!
//! For votes and proposals the *next* byte, if any, is consumed as modifiers:
//! bit 0 the second timestamp, bit 1 an extension, bit 2 skip extension
//! signing (v1), bit 3 a second validator index.
//!
//! Invariants: no two different vote sign bytes released at one H/R/S;
//! proposals released at one H/R/S differ at most in their timestamp; the
//! durable state never goes backwards and never changes while writes fail;
//! every released signature (and extension signature) verifies over what
//! the response says was signed; a fresh signature is only released after
//! the state naming it became durable.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use tmkms_light::chain::ChainSigner;
use tmkms_light::privval::{Dialect, ErrorCode, Request, Response};
use tmkms_light::sign_bytes::proposal_sign_bytes;
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::{
    BlockId, ChainId, Height, PartSetHeader, Position, Proposal, Round, SignState, Step, Timestamp,
    Vote, VoteKind,
};
use tmkms_light_fuzz::signer::{self, ReleasedSignatures};

const CHAIN_ID: &str = "guard-chain";

#[derive(Default)]
struct Durable {
    state: Option<SignState>,
    fail_writes: bool,
}

/// A store whose contents survive a "restart" (a new `ChainSigner`).
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<Durable>>);

impl StateStore for SharedStore {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(self.0.lock().expect("store lock").state.clone())
    }
    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        let mut durable = self.0.lock().expect("store lock");
        if durable.fail_writes {
            return Err(StateError::Unavailable("injected write failure".into()));
        }
        durable.state = Some(state.clone());
        Ok(())
    }
}

fn block_id(tag: u8) -> Option<BlockId> {
    (tag != 0).then_some(BlockId {
        hash: [tag; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: [tag ^ 0xff; 32],
        },
    })
}

fn height(bits: u8) -> Height {
    Height::from(u32::from(bits.min(2)) + 1)
}

fn timestamp(second: bool) -> Timestamp {
    Timestamp::new(1_700_000_000 + i64::from(second), 0).expect("valid timestamp")
}

fn start(store: &SharedStore) -> ChainSigner<SigningKey> {
    let chain_id = ChainId::try_from(CHAIN_ID).expect("valid chain id");
    signer::open(signer::policy(chain_id), store.clone()).expect("load")
}

/// Records the sign bytes released at `position` (for a proposal, without
/// its timestamp): a different value released there before is a double sign.
fn record_release(
    released: &mut HashMap<Position, Vec<u8>>,
    position: Position,
    bytes: Vec<u8>,
    what: &str,
) {
    let previous = released.entry(position).or_insert_with(|| bytes.clone());
    assert_eq!(
        *previous, bytes,
        "two different {what} signed at {position}"
    );
}

fuzz_target!(|data: &[u8]| {
    let [dialect_byte, ops @ ..] = data else {
        return;
    };
    let dialect = Dialect::ALL[usize::from(dialect_byte & 3)];
    let chain_id = ChainId::try_from(CHAIN_ID).expect("valid chain id");
    let signatures = ReleasedSignatures::for_chain(chain_id.clone());
    let store = SharedStore::default();
    let mut chain = start(&store);

    // Released vote sign bytes per position; released proposals per
    // position with the timestamp erased.
    let mut votes: HashMap<Position, Vec<u8>> = HashMap::new();
    let mut proposals: HashMap<Position, Vec<u8>> = HashMap::new();
    let mut last_durable = Position::default();

    let mut ops = ops.iter().copied();
    while let Some(op) = ops.next() {
        let before = store.0.lock().expect("store lock").state.clone();
        let failing = store.0.lock().expect("store lock").fail_writes;
        let mut released_at = None;
        match op >> 6 {
            3 => {
                if op & 0x20 != 0 {
                    chain = start(&store);
                } else if op & 0x10 != 0 {
                    let position = Position {
                        height: height((op >> 2) & 3),
                        round: Round::default(),
                        step: Step::try_from(op & 3).expect("steps 0-3 exist"),
                    };
                    let mut durable = store.0.lock().expect("store lock");
                    let current = durable.state.as_ref().map(|s| s.position);
                    if current.unwrap_or_default() <= position {
                        durable.state = Some(SignState {
                            position,
                            sign_bytes: Vec::new(),
                            signature: None,
                        });
                    }
                    drop(durable);
                    chain = start(&store);
                } else {
                    store.0.lock().expect("store lock").fail_writes = !failing;
                }
            }
            2 => {
                let modifiers = ops.next().unwrap_or(0);
                let round = Round::from(u16::from(op & 4 != 0));
                let proposal = Proposal {
                    height: height((op >> 3) & 3),
                    round,
                    pol_round: (op & 1 != 0 && round.value() == 1).then(|| Round::from(0u16)),
                    block_id: block_id(1 + ((op >> 1) & 1)),
                    timestamp: timestamp(modifiers & 1 != 0),
                };
                let response = chain.handle(
                    dialect,
                    Request::SignProposal {
                        chain_id: CHAIN_ID.to_owned(),
                        proposal: proposal.clone(),
                    },
                );
                match response {
                    Response::SignedProposal(Ok(signed)) => {
                        let mut returned = proposal.clone();
                        returned.timestamp = signed.proposal().timestamp;
                        assert_eq!(
                            *signed.proposal(),
                            returned,
                            "proposal changed beyond its timestamp"
                        );
                        signatures.verify_proposal(signed.proposal(), &signed.signature().0);
                        let mut timeless = proposal.clone();
                        timeless.timestamp = Timestamp::default();
                        record_release(
                            &mut proposals,
                            proposal.position(),
                            proposal_sign_bytes(&chain_id, &timeless),
                            "proposals",
                        );
                        released_at = Some(proposal.position());
                    }
                    Response::SignedProposal(Err(e)) => check_refusal(&e.code, failing),
                    other => panic!("proposal answered with {other:?}"),
                }
            }
            _ => {
                let modifiers = ops.next().unwrap_or(0);
                let kind = if op & 0x20 != 0 {
                    VoteKind::Precommit
                } else {
                    VoteKind::Prevote
                };
                let block_id = block_id((op & 3).min(2));
                let with_extension = modifiers & 2 != 0
                    && kind == VoteKind::Precommit
                    && block_id.is_some()
                    && dialect.has_vote_extensions();
                let vote = Vote {
                    kind,
                    height: height((op >> 3) & 3),
                    round: Round::from(u16::from(op & 4 != 0)),
                    block_id,
                    timestamp: timestamp(modifiers & 1 != 0),
                    validator_address: vec![0x11; 20],
                    validator_index: u32::from(modifiers & 8 != 0),
                    extension: if with_extension {
                        b"ext".to_vec()
                    } else {
                        Vec::new()
                    },
                };
                let skip = modifiers & 4 != 0 && dialect == Dialect::V1;
                let response = chain.handle(
                    dialect,
                    Request::SignVote {
                        chain_id: CHAIN_ID.to_owned(),
                        vote: vote.clone(),
                        skip_extension_signing: skip,
                    },
                );
                match response {
                    Response::SignedVote(Ok(signed)) => {
                        let mut returned = vote.clone();
                        returned.timestamp = signed.vote().timestamp;
                        returned.extension = Vec::new();
                        assert_eq!(
                            *signed.vote(),
                            returned,
                            "vote changed beyond its timestamp"
                        );
                        let bytes = signatures.verify_vote(signed.vote(), &signed.signature().0);
                        let wants_ext =
                            dialect.has_vote_extensions() && vote.is_non_nil_precommit() && !skip;
                        assert_eq!(signed.extension_signature().is_some(), wants_ext);
                        if let Some(sig) = signed.extension_signature() {
                            let mut with_ext = signed.vote().clone();
                            with_ext.extension = vote.extension.clone();
                            signatures.verify_extension(&with_ext, &sig.0);
                        }
                        record_release(&mut votes, vote.position(), bytes, "votes");
                        released_at = Some(vote.position());
                    }
                    Response::SignedVote(Err(e)) => check_refusal(&e.code, failing),
                    other => panic!("vote answered with {other:?}"),
                }
            }
        }

        let after = store.0.lock().expect("store lock").state.clone();
        let durable = after.as_ref().map(|s| s.position).unwrap_or_default();
        assert!(
            durable >= last_durable,
            "state went backwards: {last_durable} -> {durable}"
        );
        last_durable = durable;
        if failing && op >> 6 != 3 {
            assert_eq!(before, after, "state changed while writes fail");
        }
        if let Some(at) = released_at {
            // Whatever was released is at the durable position: either it was
            // just persisted or it is a replay of what was persisted before.
            assert_eq!(
                Some(at),
                after.as_ref().map(|s| s.position),
                "released at {at} but durable state is {durable}"
            );
        }
        // Memory is only updated after a durable write, and a restart loads
        // the durable state: the two never disagree. The durable record
        // carries no signature (it is written ahead of the release); memory
        // keeps the released one for replays.
        assert!(
            after.as_ref().is_none_or(|state| state.signature.is_none()),
            "a durable record carries a signature"
        );
        let without_signature = |state: Option<SignState>| {
            state.map(|mut state| {
                state.signature = None;
                state
            })
        };
        assert_eq!(
            without_signature(chain.last_state()),
            Some(after.unwrap_or_default()),
            "memory and durable state disagree"
        );
    }
});

fn check_refusal(code: &ErrorCode, failing: bool) {
    match code {
        ErrorCode::DoubleSign => {}
        ErrorCode::PersistFailed => assert!(failing, "persist failure while writes succeed"),
        other => panic!("unexpected refusal {other:?}"),
    }
}
