//! Property test: for any sequence of sign requests (with restarts that
//! reload the persisted state in between), the signer never releases two
//! signatures for conflicting messages at one height/round/step, every
//! released signature verifies over what it claims, and the durable state
//! never moves backwards.

// Test helpers outside #[test] fns unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signature as DalekSignature, SigningKey, Verifier};
use proptest::prelude::*;
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::privval::{Dialect, Request, Response};
use tmkms_light::sign_bytes::{proposal_sign_bytes, vote_sign_bytes};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::*;

#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<Option<SignState>>>);

impl StateStore for SharedStore {
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
        precommit: bool,
        h: u32,
        r: u16,
        block: u8,
        ts: i64,
        ext: bool,
    },
    Proposal {
        h: u32,
        r: u16,
        block: u8,
        ts: i64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (any::<bool>(), 1u32..4, 0u16..2, 0u8..3, 1i64..3, any::<bool>())
            .prop_map(|(precommit, h, r, block, ts, ext)| Op::Vote { precommit, h, r, block, ts, ext }),
        2 => (1u32..4, 0u16..2, 1u8..3, 1i64..3).prop_map(|(h, r, block, ts)| Op::Proposal { h, r, block, ts }),
        1 => Just(Op::Restart),
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
    ChainId::try_from("prop-chain").unwrap()
}

/// Released signatures per position, keyed by the message signed with the
/// timestamp erased (what makes two messages "conflicting").
#[derive(Default)]
struct Ledger {
    votes: HashMap<Position, Vec<u8>>,
    proposals: HashMap<Position, Vec<u8>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn never_double_signs(ops in prop::collection::vec(op(), 1..40), dialect_ix in 0usize..4) {
        let dialect = Dialect::ALL[dialect_ix];
        let key = SigningKey::from_bytes(&[3; 32]);
        let store = SharedStore::default();
        let policy = ChainPolicy { chain_id: chain_id(), max_height: None, danger_allow_sign_bytes: false };
        let start = |s: &SharedStore| {
            ChainSigner::open(policy.clone(), key.clone(), Box::new(s.clone())).unwrap()
        };
        let mut chain = start(&store);
        let mut ledger = Ledger::default();
        let mut last_durable = Position::default();
        for op in ops {
            match op {
                Op::Restart => chain = start(&store),
                Op::Vote { precommit, h, r, block, ts, ext } => {
                    let kind = if precommit { VoteKind::Precommit } else { VoteKind::Prevote };
                    let block_id = block_id(block);
                    let extension = if ext && precommit && block_id.is_some() && dialect.has_vote_extensions() { b"e".to_vec() } else { Vec::new() };
                    let v = Vote { kind, height: Height::from(h), round: Round::from(r), block_id, timestamp: Timestamp::new(ts, 0).unwrap(), validator_address: vec![0; 20], validator_index: 0, extension };
                    let response = chain.handle(dialect, Request::SignVote { chain_id: chain_id().to_string(), vote: v.clone(), skip_extension_signing: false });
                    if let Response::SignedVote(Ok(signed)) = response {
                        // The signature must be over the vote as returned (timestamp included).
                        let bytes = vote_sign_bytes(&chain_id(), signed.vote());
                        key.verifying_key().verify(&bytes, &DalekSignature::from_bytes(&signed.signature().0)).unwrap();
                        // Conflict = a different vote (any field, incl. timestamp) at one position.
                        let previous = ledger.votes.entry(v.position()).or_insert_with(|| bytes.clone());
                        prop_assert_eq!(&*previous, &bytes, "two different votes signed at {}", v.position());
                    }
                }
                Op::Proposal { h, r, block, ts } => {
                    let p = Proposal { height: Height::from(h), round: Round::from(r), pol_round: None, block_id: block_id(block), timestamp: Timestamp::new(ts, 0).unwrap() };
                    let response = chain.handle(dialect, Request::SignProposal { chain_id: chain_id().to_string(), proposal: p.clone() });
                    if let Response::SignedProposal(Ok(signed)) = response {
                        let bytes = proposal_sign_bytes(&chain_id(), signed.proposal());
                        key.verifying_key().verify(&bytes, &DalekSignature::from_bytes(&signed.signature().0)).unwrap();
                        // Proposals may be re-signed with a new timestamp only.
                        let mut timeless = p.clone();
                        timeless.timestamp = Timestamp::default();
                        let key_bytes = proposal_sign_bytes(&chain_id(), &timeless);
                        let previous = ledger.proposals.entry(p.position()).or_insert_with(|| key_bytes.clone());
                        prop_assert_eq!(&*previous, &key_bytes, "two different proposals signed at {}", p.position());
                    }
                }
            }
            let durable = store.0.lock().unwrap().as_ref().map(|s| s.position).unwrap_or_default();
            prop_assert!(durable >= last_durable, "state went backwards: {} -> {}", last_durable, durable);
            last_durable = durable;
        }
    }
}
