//! Property test for high availability: several signers of one validator,
//! each with its own durable state, share one linearizable reservation
//! store. For any interleaving of requests (the same or conflicting
//! messages sent to different signers), restarts, unreachable stores and
//! reservations whose outcome is lost (applied or not), no two signatures
//! for conflicting messages at one height/round/step leave any signer.

// Test helpers outside #[test] fns unwrap and index too (clippy.toml covers
// only those).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signature as DalekSignature, SigningKey, Verifier};
use proptest::prelude::*;
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::ha::{MemoryFault, MemoryWatermark};
use tmkms_light::privval::{Dialect, ErrorCode, Request, Response};
use tmkms_light::sign_bytes::{proposal_sign_bytes, vote_sign_bytes};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::*;

const SIGNERS: usize = 3;

#[derive(Clone, Default)]
struct LocalStore(Arc<Mutex<Option<SignState>>>);

impl StateStore for LocalStore {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        *self.0.lock().unwrap() = Some(state.clone());
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Vote {
        signer: usize,
        precommit: bool,
        h: u32,
        r: u16,
        block: u8,
        ts: i64,
    },
    Proposal {
        signer: usize,
        h: u32,
        r: u16,
        block: u8,
        ts: i64,
    },
    /// The signer's next reservation fails before or after it applied.
    Fault {
        signer: usize,
        after: bool,
    },
    /// The store is unreachable for this signer until the next toggle.
    Unreachable {
        signer: usize,
    },
    Restart {
        signer: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SIGNERS;
    prop_oneof![
        6 => (s.clone(), any::<bool>(), 1u32..4, 0u16..2, 0u8..3, 1i64..3)
            .prop_map(|(signer, precommit, h, r, block, ts)| Op::Vote { signer, precommit, h, r, block, ts }),
        2 => (s.clone(), 1u32..4, 0u16..2, 1u8..3, 1i64..3)
            .prop_map(|(signer, h, r, block, ts)| Op::Proposal { signer, h, r, block, ts }),
        2 => (s.clone(), any::<bool>()).prop_map(|(signer, after)| Op::Fault { signer, after }),
        1 => s.clone().prop_map(|signer| Op::Unreachable { signer }),
        1 => s.prop_map(|signer| Op::Restart { signer }),
    ]
}

fn block_id(tag: u8) -> Option<BlockId> {
    (tag != 0).then_some(BlockId {
        hash: [tag; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: [tag; 32],
        },
    })
}

fn chain_id() -> ChainId {
    ChainId::try_from("ha-chain").unwrap()
}

struct Node {
    local: LocalStore,
    /// This signer's handle on the shared store (faults are per handle).
    shared: Arc<Mutex<MemoryWatermark>>,
    chain: ChainSigner<SigningKey>,
}

/// A watermark handle whose faults the test can set while the signer owns it.
struct Handle(Arc<Mutex<MemoryWatermark>>);

impl tmkms_light::ha::Watermark for Handle {
    fn describe(&self) -> String {
        "memory".into()
    }
    fn read(&mut self) -> Result<tmkms_light::ha::Reservation, tmkms_light::ha::WatermarkError> {
        self.0.lock().unwrap().read()
    }
    fn reserve(
        &mut self,
        expected_revision: i64,
        next: &SignState,
    ) -> Result<tmkms_light::ha::Outcome, tmkms_light::ha::WatermarkError> {
        self.0.lock().unwrap().reserve(expected_revision, next)
    }
}

fn start(local: &LocalStore, shared: &Arc<Mutex<MemoryWatermark>>) -> ChainSigner<SigningKey> {
    let policy = ChainPolicy {
        chain_id: chain_id(),
        max_height: None,
        danger_allow_sign_bytes: false,
    };
    ChainSigner::open(
        policy,
        SigningKey::from_bytes(&[3; 32]),
        Box::new(local.clone()),
    )
    .unwrap()
    .shared_with(Box::new(Handle(shared.clone())))
}

/// Released signatures per position: votes must be identical (a replay
/// carries the reserved timestamp); proposals may differ in time only.
#[derive(Default)]
struct Ledger {
    votes: HashMap<Position, Vec<u8>>,
    proposals: HashMap<Position, Vec<u8>>,
    signed: usize,
}

fn run(ops: Vec<Op>, dialect: Dialect) -> Result<Ledger, TestCaseError> {
    let key = SigningKey::from_bytes(&[3; 32]);
    let store = MemoryWatermark::default();
    let mut nodes: Vec<Node> = (0..SIGNERS)
        .map(|_| {
            let local = LocalStore::default();
            let shared = Arc::new(Mutex::new(store.clone()));
            let chain = start(&local, &shared);
            Node {
                local,
                shared,
                chain,
            }
        })
        .collect();
    let mut ledger = Ledger::default();
    for op in ops {
        match op {
            Op::Restart { signer } => {
                let node = &mut nodes[signer];
                node.chain = start(&node.local, &node.shared);
            }
            Op::Fault { signer, after } => {
                nodes[signer].shared.lock().unwrap().next_fault = if after {
                    MemoryFault::FailAfter
                } else {
                    MemoryFault::FailBefore
                };
            }
            Op::Unreachable { signer } => {
                let mut handle = nodes[signer].shared.lock().unwrap();
                handle.unreachable = !handle.unreachable;
            }
            Op::Vote {
                signer,
                precommit,
                h,
                r,
                block,
                ts,
            } => {
                let kind = if precommit {
                    VoteKind::Precommit
                } else {
                    VoteKind::Prevote
                };
                let v = Vote {
                    kind,
                    height: Height::from(h),
                    round: Round::from(r),
                    block_id: block_id(block),
                    timestamp: Timestamp::new(ts, 0).unwrap(),
                    validator_address: vec![0; 20],
                    validator_index: 0,
                    extension: Vec::new(),
                };
                let response = nodes[signer].chain.handle(
                    dialect,
                    Request::SignVote {
                        chain_id: chain_id().to_string(),
                        vote: v.clone(),
                        skip_extension_signing: false,
                    },
                );
                match response {
                    Response::SignedVote(Ok(signed)) => {
                        let bytes = vote_sign_bytes(&chain_id(), signed.vote());
                        key.verifying_key()
                            .verify(&bytes, &DalekSignature::from_bytes(&signed.signature().0))
                            .unwrap();
                        let previous = ledger
                            .votes
                            .entry(v.position())
                            .or_insert_with(|| bytes.clone());
                        prop_assert_eq!(
                            &*previous,
                            &bytes,
                            "two different votes signed at {}",
                            v.position()
                        );
                        ledger.signed += 1;
                    }
                    Response::SignedVote(Err(e)) => prop_assert!(
                        matches!(e.code, ErrorCode::DoubleSign | ErrorCode::PersistFailed),
                        "unexpected refusal {e:?}"
                    ),
                    other => prop_assert!(false, "unexpected response {other:?}"),
                }
            }
            Op::Proposal {
                signer,
                h,
                r,
                block,
                ts,
            } => {
                let p = Proposal {
                    height: Height::from(h),
                    round: Round::from(r),
                    pol_round: None,
                    block_id: block_id(block),
                    timestamp: Timestamp::new(ts, 0).unwrap(),
                };
                let response = nodes[signer].chain.handle(
                    dialect,
                    Request::SignProposal {
                        chain_id: chain_id().to_string(),
                        proposal: p.clone(),
                    },
                );
                if let Response::SignedProposal(Ok(signed)) = response {
                    let bytes = proposal_sign_bytes(&chain_id(), signed.proposal());
                    key.verifying_key()
                        .verify(&bytes, &DalekSignature::from_bytes(&signed.signature().0))
                        .unwrap();
                    let mut timeless = p.clone();
                    timeless.timestamp = Timestamp::default();
                    let key_bytes = proposal_sign_bytes(&chain_id(), &timeless);
                    let previous = ledger
                        .proposals
                        .entry(p.position())
                        .or_insert_with(|| key_bytes.clone());
                    prop_assert_eq!(
                        &*previous,
                        &key_bytes,
                        "two different proposals signed at {}",
                        p.position()
                    );
                    ledger.signed += 1;
                }
            }
        }
    }
    Ok(ledger)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn signers_sharing_a_reservation_never_double_sign(
        ops in prop::collection::vec(op(), 1..60),
        dialect_ix in 0usize..4,
    ) {
        run(ops, Dialect::ALL[dialect_ix])?;
    }
}

/// The replay rules hold across signers: the vote another signer reserved
/// is answered with the same signature and the reserved timestamp.
#[test]
fn a_vote_reserved_by_another_signer_is_replayed_with_its_timestamp() {
    let vote = |ts: i64, block: u8| Op::Vote {
        signer: 0,
        precommit: false,
        h: 5,
        r: 0,
        block,
        ts,
    };
    let on = |op: Op, signer: usize| match op {
        Op::Vote {
            precommit,
            h,
            r,
            block,
            ts,
            ..
        } => Op::Vote {
            signer,
            precommit,
            h,
            r,
            block,
            ts,
        },
        other => other,
    };
    // Signer 0 signs at t=1; signer 1 is asked the same vote at t=2 and
    // must answer with t=1's signature (the ledger checks byte equality),
    // and signer 2 is refused a different block.
    let ledger = run(
        vec![vote(1, 1), on(vote(2, 1), 1), on(vote(1, 2), 2)],
        Dialect::V0_38,
    )
    .unwrap();
    assert_eq!(ledger.signed, 2);
}

/// A reservation whose reply was lost may have been made: the signer
/// releases nothing for it, and after a fresh read it answers the same
/// message (which is reserved) and refuses a different one.
#[test]
fn a_lost_reply_releases_nothing_and_the_fresh_read_decides() {
    let ops = vec![
        Op::Fault {
            signer: 0,
            after: true,
        },
        Op::Vote {
            signer: 0,
            precommit: true,
            h: 2,
            r: 0,
            block: 1,
            ts: 1,
        },
        Op::Vote {
            signer: 1,
            precommit: true,
            h: 2,
            r: 0,
            block: 2,
            ts: 1,
        },
        Op::Vote {
            signer: 0,
            precommit: true,
            h: 2,
            r: 0,
            block: 1,
            ts: 1,
        },
    ];
    let ledger = run(ops, Dialect::V0_38).unwrap();
    assert_eq!(
        ledger.signed, 1,
        "only the retried, reserved vote is signed"
    );
}
