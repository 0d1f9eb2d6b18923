//! The simulated node(s): one listener per signer per node, one worker
//! thread per listener. All workers follow one frontier (height, round,
//! step): a signature from any signer moves it on; if nothing is signed for
//! a while the round goes up, as CometBFT's timeouts would. Each worker
//! picks its block id and timestamp per position from a hash of the seed,
//! its node and its signer, so different signers (and sentries) are asked
//! conflicting messages at the same position on purpose: only the shared
//! reservation keeps a signer from signing them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::ledger::{Ledger, Signed};
use super::rng::hash;
use crate::{
    codes, default_timestamp, msg_type, verify_proposal, verify_vote, BlockIdSpec, Dialect,
    NodeListener, ProposalSpec, SignerConn, VoteSpec,
};

/// With no signature for this long the round goes up.
const STALL: Duration = Duration::from_secs(3);
/// How long `accept` waits before looking at the stop flag again.
const ACCEPT_WAIT: Duration = Duration::from_millis(300);

/// A position of the consensus state machine the node walks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub height: i64,
    pub round: i32,
    /// 0 proposal, 1 prevote, 2 precommit.
    pub step: u8,
}

impl Pos {
    fn next(self) -> Self {
        match self.step {
            0 | 1 => Pos {
                step: self.step + 1,
                ..self
            },
            _ => Pos {
                height: self.height + 1,
                round: 0,
                step: 0,
            },
        }
    }

    fn msg_type(self) -> i32 {
        match self.step {
            0 => msg_type::PROPOSAL,
            1 => msg_type::PREVOTE,
            _ => msg_type::PRECOMMIT,
        }
    }
}

#[derive(Debug)]
struct Frontier {
    pos: Pos,
    moved: Instant,
}

/// Counters of what the node saw.
#[derive(Debug, Default, Clone)]
pub struct NodeStats {
    pub requests: u64,
    pub signed: u64,
    /// Second asks of a signed vote with another timestamp.
    pub replay_asks: u64,
    pub refused: BTreeMap<i32, u64>,
    /// Timeouts and broken connections.
    pub transport_errors: u64,
    pub connections: u64,
    pub round_bumps: u64,
    pub invalid: Vec<String>,
    pub wrong_pubkey: u64,
}

/// State shared by all workers.
#[derive(Debug)]
pub struct Shared {
    pub chain_id: String,
    pub dialect: Dialect,
    pub seed: u64,
    pub request_timeout: Duration,
    pub stop: AtomicBool,
    pub ledger: Ledger,
    frontier: Mutex<Frontier>,
    stats: Mutex<NodeStats>,
    pubkey: Mutex<Option<[u8; 32]>>,
}

impl Shared {
    pub fn new(chain_id: &str, dialect: Dialect, seed: u64, request_timeout: Duration) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            dialect,
            seed,
            request_timeout,
            stop: AtomicBool::new(false),
            ledger: Ledger::default(),
            frontier: Mutex::new(Frontier {
                pos: Pos {
                    height: 1,
                    round: 0,
                    step: 0,
                },
                moved: Instant::now(),
            }),
            stats: Mutex::new(NodeStats::default()),
            pubkey: Mutex::new(None),
        }
    }

    pub fn stats(&self) -> NodeStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self, f: impl FnOnce(&mut NodeStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn current(&self) -> Pos {
        let mut f = self.frontier.lock().unwrap_or_else(|p| p.into_inner());
        if f.moved.elapsed() >= STALL {
            f.pos = Pos {
                round: f.pos.round.saturating_add(1),
                step: 0,
                ..f.pos
            };
            f.moved = Instant::now();
            drop(f);
            self.count(|s| s.round_bumps += 1);
            return self.current();
        }
        f.pos
    }

    fn advance_from(&self, pos: Pos) {
        let mut f = self.frontier.lock().unwrap_or_else(|p| p.into_inner());
        if f.pos == pos {
            f.pos = pos.next();
            f.moved = Instant::now();
        }
    }

    /// Whether `key` is the validator's key (the first one seen sets it).
    fn check_pubkey(&self, key: [u8; 32]) -> bool {
        let mut pk = self.pubkey.lock().unwrap_or_else(|p| p.into_inner());
        *pk.get_or_insert(key) == key
    }

    fn pubkey(&self) -> Option<[u8; 32]> {
        *self.pubkey.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One listener of one node for one signer.
#[derive(Debug)]
pub struct Worker {
    pub node: usize,
    pub signer: usize,
    pub listener: NodeListener,
}

/// What to ask at `pos`: the worker's own pick.
enum Ask {
    Vote(VoteSpec),
    Proposal(ProposalSpec),
}

impl Worker {
    fn ask_for(&self, shared: &Shared, pos: Pos) -> Ask {
        let h = hash(&[
            shared.seed,
            self.node as u64,
            self.signer as u64,
            pos.height as u64,
            pos.round as u64,
            u64::from(pos.step),
        ]);
        // Two candidate blocks per height/round, and nil now and then.
        let block = |choice: u64| {
            BlockIdSpec::from_seed(
                &[
                    pos.height.to_be_bytes().as_slice(),
                    &pos.round.to_be_bytes(),
                    &[u8::try_from(choice).unwrap_or(0)],
                ]
                .concat(),
            )
        };
        let (secs, nanos) = default_timestamp(pos.height);
        let extra_ms = i32::try_from((h >> 8) % 1000).unwrap_or(0);
        let nanos = nanos.saturating_add(extra_ms.saturating_mul(1_000_000)) % 1_000_000_000;
        let choice = h % 8;
        match pos.step {
            0 => Ask::Proposal(
                ProposalSpec::new(pos.height, pos.round, Some(block(choice % 2)))
                    .with_timestamp(secs, nanos),
            ),
            step => {
                let block_id = (choice != 0).then(|| block(choice % 2));
                let spec = if step == 1 {
                    VoteSpec::prevote(pos.height, pos.round, block_id)
                } else {
                    VoteSpec::precommit(pos.height, pos.round, block_id)
                };
                Ask::Vote(spec.with_timestamp(secs, nanos))
            }
        }
    }

    /// Serves until the stop flag is set.
    pub fn run(self, shared: &Arc<Shared>) {
        let mut conn: Option<SignerConn> = None;
        // The position this worker is done with (signed or refused as a
        // double sign): it waits for the frontier to move.
        let mut done: Option<Pos> = None;
        while !shared.stop.load(Ordering::SeqCst) {
            let Some(c) = conn.as_mut() else {
                conn = self.connect(shared);
                continue;
            };
            let pos = shared.current();
            if done == Some(pos) {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            match self.ask(shared, c, pos) {
                Step::Done => done = Some(pos),
                Step::Retry => thread::sleep(Duration::from_millis(50)),
                Step::Broken => conn = None,
            }
        }
    }

    fn connect(&self, shared: &Shared) -> Option<SignerConn> {
        let mut c = self.listener.accept(ACCEPT_WAIT).ok()?;
        c.set_timeout(shared.request_timeout).ok()?;
        let key = match c.pubkey(&shared.chain_id) {
            Ok(Ok(key)) => key,
            _ => {
                shared.count(|s| s.transport_errors += 1);
                return None;
            }
        };
        if !shared.check_pubkey(key) {
            shared.count(|s| s.wrong_pubkey += 1);
            return None;
        }
        shared.count(|s| s.connections += 1);
        Some(c)
    }

    fn ask(&self, shared: &Shared, conn: &mut SignerConn, pos: Pos) -> Step {
        let Some(pubkey) = shared.pubkey() else {
            return Step::Broken;
        };
        shared.count(|s| s.requests += 1);
        let hrs = (pos.height, pos.round, pos.msg_type());
        let chain = shared.chain_id.as_str();
        let answer = match self.ask_for(shared, pos) {
            Ask::Proposal(spec) => conn.sign_proposal(chain, &spec).map(|r| {
                r.map(|signed| {
                    let valid = verify_proposal(&pubkey, chain, &spec, &signed)
                        .map_err(|e| format!("proposal {hrs:?} from signer {}: {e}", self.signer));
                    let entry = Signed {
                        block: spec.block_id.map(|b| b.hash),
                        timestamp: spec.timestamp,
                        pol_round: spec.pol_round,
                        signature: signed.signature,
                        signer: self.signer,
                        node: self.node,
                    };
                    (valid, entry, None)
                })
            }),
            Ask::Vote(spec) => conn.sign_vote(chain, &spec, false).map(|r| {
                r.map(|signed| {
                    let valid = verify_vote(&pubkey, chain, &spec, &signed, shared.dialect, false)
                        .map_err(|e| format!("vote {hrs:?} from signer {}: {e}", self.signer));
                    let entry = Signed {
                        block: spec.block_id.map(|b| b.hash),
                        timestamp: signed.timestamp,
                        pol_round: -1,
                        signature: signed.signature,
                        signer: self.signer,
                        node: self.node,
                    };
                    (valid, entry, Some(spec))
                })
            }),
        };
        match answer {
            Ok(Ok((valid, entry, vote))) => {
                if let Err(e) = valid {
                    shared.count(|s| s.invalid.push(e));
                    return Step::Done;
                }
                shared.count(|s| s.signed += 1);
                if let Some(c) = shared.ledger.record(hrs, entry) {
                    eprintln!(
                        "ha-chaos: CONFLICT at {:?}: signer {} (node {}) and signer {} (node {}): {:?} vs {:?}",
                        c.hrs, c.first.signer, c.first.node, c.second.signer, c.second.node,
                        c.first, c.second
                    );
                }
                shared.advance_from(pos);
                // Now and then the same vote again with a later timestamp:
                // a replay must give the reserved one back.
                if let Some(spec) =
                    vote.filter(|_| hash(&[shared.seed, hrs.0 as u64, 77]).is_multiple_of(4))
                {
                    self.replay(shared, conn, hrs, spec, pubkey);
                }
                Step::Done
            }
            Ok(Err(refusal)) => {
                shared.count(|s| *s.refused.entry(refusal.code).or_default() += 1);
                if refusal.code == codes::PERSIST_FAILED {
                    Step::Retry
                } else {
                    Step::Done
                }
            }
            Err(_) => {
                shared.count(|s| s.transport_errors += 1);
                Step::Broken
            }
        }
    }

    fn replay(
        &self,
        shared: &Shared,
        conn: &mut SignerConn,
        hrs: super::ledger::Hrs,
        spec: VoteSpec,
        pubkey: [u8; 32],
    ) {
        let later = {
            let (s, n) = spec.timestamp;
            spec.with_timestamp(s.saturating_add(7), n)
        };
        shared.count(|s| {
            s.requests += 1;
            s.replay_asks += 1;
        });
        match conn.sign_vote(&shared.chain_id, &later, false) {
            Ok(Ok(signed)) => {
                if let Err(e) = verify_vote(
                    &pubkey,
                    &shared.chain_id,
                    &later,
                    &signed,
                    shared.dialect,
                    false,
                ) {
                    shared.count(|s| s.invalid.push(format!("replay {hrs:?}: {e}")));
                    return;
                }
                shared.count(|s| s.signed += 1);
                let entry = Signed {
                    block: later.block_id.map(|b| b.hash),
                    timestamp: signed.timestamp,
                    pol_round: -1,
                    signature: signed.signature,
                    signer: self.signer,
                    node: self.node,
                };
                if let Some(c) = shared.ledger.record(hrs, entry) {
                    eprintln!(
                        "ha-chaos: CONFLICT (replay) at {:?}: {:?} vs {:?}",
                        c.hrs, c.first, c.second
                    );
                }
            }
            Ok(Err(refusal)) => {
                shared.count(|s| *s.refused.entry(refusal.code).or_default() += 1);
            }
            Err(_) => shared.count(|s| s.transport_errors += 1),
        }
    }
}

enum Step {
    Done,
    Retry,
    Broken,
}
