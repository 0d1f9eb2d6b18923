//! Exhaustive check of the chain signer: every sequence of events up to a
//! bounded depth, not a random sample of them.
//!
//! Events:
//! * 80 sign requests — proposals at heights {1, 2} × rounds {0, 1} × blocks
//!   {A, B} × two timestamps; prevotes at heights × rounds × blocks {nil, A, B}
//!   × timestamps; precommits likewise, non-nil ones with and without a vote
//!   extension (v0.38 dialect). The second timestamp is *earlier* than the
//!   first: the signer must not care about time running backwards.
//! * `Restart`: throw the signer away and build a new one from the durable
//!   state, as a process restart does.
//! * `Fail(Clean)` / `Fail(Torn)`: the next request's state write fails, either
//!   without touching the store or after the record landed (an error after
//!   the write, e.g. a failed `fdatasync`: the store holds a state that was
//!   never acknowledged).
//!
//! Every event sequence of length `depth` is covered by a depth-first search
//! over the tree of sequences. The signer's whole state is its in-memory
//! [`SignState`] and its store, so a node of the tree is rebuilt exactly from
//! (in-memory state, durable state) and needs no replaying of its prefix.
//! Nodes that agree on everything the future depends on — in-memory state,
//! durable state, acknowledged position, pending fault and the ledger of
//! released signatures — have identical subtrees, so each is expanded once
//! (for the largest remaining depth it is met with). Likewise the signer's
//! answer to an event depends only on (in-memory state, store), so the real
//! [`ChainSigner`] runs once per distinct (signer state, event) pair and the
//! ledger checks run on every transition. Signatures come from a real
//! Ed25519 key; as Ed25519 is deterministic, they are memoized by message.
//!
//! Invariants, checked on every transition:
//! * **no conflicting signatures**: two signatures released at one
//!   height/round/step are for identical votes (same sign bytes, timestamp
//!   included), or for proposals that differ at most in their timestamp;
//! * **replays are byte-identical**: a request answered twice gets the same
//!   signature both times (also across restarts);
//! * **every released signature verifies** over the message returned, and an
//!   extension signature comes with (and only with) non-nil precommits and
//!   verifies over the request's extension;
//! * **persist before release**: right after a signature for position P is
//!   released, the durable state is above P, or at P with a message that
//!   may be signed alongside the released one (the same vote, or the same
//!   proposal up to its timestamp) — a restart can at most replay it;
//! * **the durable state covers every release**: it is never below the
//!   highest position a signature was released at, so a crash at any moment
//!   restarts at or above it;
//! * **no regression**: no signature is released below the in-memory
//!   position the request found (I1), and the in-memory position never
//!   decreases, restarts included (I2);
//! * **the durable state never goes backwards** past an acknowledged write:
//!   acknowledged positions only grow, and the durable state is never below
//!   the last acknowledged one (a torn, unacknowledged write may be replaced
//!   by a lower one — nothing was released for it);
//! * a failed write releases nothing and leaves the in-memory state alone;
//! * the signer is not vacuously safe: with no fault pending, a request above
//!   the in-memory position is signed.
//!
//! Two memo keys are used. The *full* key keeps the whole ledger. The
//! *reduced* key drops the ledger entries below the in-memory position: by
//! I1 and I2 no signature is ever released there again, so those entries can
//! never take part in a comparison. Both invariants are checked on every
//! transition, so a signer that broke them fails the check before the
//! reduction could hide anything. The full key at a smaller depth
//! cross-checks the reduction.
//!
//! An unacknowledged (torn) write can leave the store *ahead* of the
//! in-memory state, so a signature may be released (a replay of the last
//! signed message, or, after a restart, of a message whose write was torn)
//! while the store already holds a higher position. That is safe — the store
//! covers the release — and is why "persist before release" is stated as
//! "covered by the durable state" rather than "equal to it".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ed25519_dalek::{Signature as DalekSignature, SigningKey, Verifier};
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::privval::{Dialect, ErrorCode, Request, Response};
use tmkms_light::sign_bytes::{proposal_sign_bytes, vote_extension_sign_bytes, vote_sign_bytes};
use tmkms_light::signer::{ConsensusSigner, SignError};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::*;

const CHAIN: &str = "exhaustive-chain";
const DIALECT: Dialect = Dialect::V0_38;
const T1: i64 = 1_700_000_000;
/// Earlier than `T1`: clocks may jump back; the guard must not care.
const T2: i64 = T1 - 3600;

fn chain_id() -> ChainId {
    ChainId::try_from(CHAIN).unwrap()
}

// ---------------------------------------------------------------------------
// The alphabet
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Msg {
    Vote(Vote),
    Proposal(Proposal),
}

#[derive(Clone, Debug)]
struct Req {
    msg: Msg,
    position: Position,
}

impl Req {
    fn request(&self) -> Request {
        match &self.msg {
            Msg::Vote(vote) => Request::SignVote {
                chain_id: CHAIN.to_owned(),
                vote: vote.clone(),
                skip_extension_signing: false,
            },
            Msg::Proposal(proposal) => Request::SignProposal {
                chain_id: CHAIN.to_owned(),
                proposal: proposal.clone(),
            },
        }
    }
}

fn block(tag: u8) -> Option<BlockId> {
    (tag != 0).then_some(BlockId {
        hash: [tag; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: [tag.wrapping_add(0x40); 32],
        },
    })
}

fn alphabet() -> Vec<Req> {
    let mut out = Vec::new();
    for h in [1u32, 2] {
        for r in [0u16, 1] {
            for ts in [T1, T2] {
                let timestamp = Timestamp::new(ts, 0).unwrap();
                for b in [1u8, 2] {
                    let proposal = Proposal {
                        height: Height::from(h),
                        round: Round::from(r),
                        pol_round: None,
                        block_id: block(b),
                        timestamp,
                    };
                    out.push(Req {
                        position: proposal.position(),
                        msg: Msg::Proposal(proposal),
                    });
                }
                for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                    for b in [0u8, 1, 2] {
                        let with_extension: &[bool] = if kind == VoteKind::Precommit && b != 0 {
                            &[false, true]
                        } else {
                            &[false]
                        };
                        for &ext in with_extension {
                            let vote = Vote {
                                kind,
                                height: Height::from(h),
                                round: Round::from(r),
                                block_id: block(b),
                                timestamp,
                                validator_address: vec![7; 20],
                                validator_index: 0,
                                extension: if ext {
                                    b"app-data".to_vec()
                                } else {
                                    Vec::new()
                                },
                            };
                            out.push(Req {
                                position: vote.position(),
                                msg: Msg::Vote(vote),
                            });
                        }
                    }
                }
            }
        }
    }
    assert_eq!(out.len(), 80, "alphabet size");
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fault {
    None,
    /// The write fails and the store is unchanged.
    Clean,
    /// The record lands, then the write reports an error (unacknowledged).
    Torn,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Request(u8),
    Restart,
    Fail(Fault),
}

fn events(requests: usize) -> Vec<Event> {
    let mut out: Vec<Event> = (0..requests)
        .map(|i| Event::Request(u8::try_from(i).unwrap()))
        .collect();
    out.extend([
        Event::Restart,
        Event::Fail(Fault::Clean),
        Event::Fail(Fault::Torn),
    ]);
    out
}

// ---------------------------------------------------------------------------
// Key and store
// ---------------------------------------------------------------------------

/// The real Ed25519 key, with signatures memoized by message. Ed25519 is
/// deterministic, so a cached signature is exactly the one the key makes;
/// the cache only saves time.
struct MemoKey {
    key: SigningKey,
    cache: Mutex<HashMap<Vec<u8>, Signature>>,
}

impl ConsensusSigner for MemoKey {
    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignError> {
        let mut cache = self.cache.lock().unwrap();
        if let Some(sig) = cache.get(message) {
            return Ok(*sig);
        }
        let sig = ConsensusSigner::sign(&self.key, message)?;
        cache.insert(message.to_vec(), sig);
        Ok(sig)
    }
}

/// What the store holds and what it acknowledged, shared with the test.
#[derive(Default)]
struct Disk {
    state: Option<SignState>,
    fault: Option<Fault>,
    /// Position of the last write that returned `Ok`.
    acked: Option<Position>,
    /// What the next `load` returns instead of `state`, once.
    boot: Option<SignState>,
}

#[derive(Clone, Default)]
struct Store(Arc<Mutex<Disk>>);

impl StateStore for Store {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        let mut disk = self.0.lock().unwrap();
        // The signer being rebuilt starts from the modelled memory, which
        // may be behind the disk after a failed write.
        if let Some(memory) = disk.boot.take() {
            return Ok(Some(memory));
        }
        Ok(disk.state.clone())
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        let mut disk = self.0.lock().unwrap();
        match disk.fault.unwrap_or(Fault::None) {
            Fault::None => {
                disk.state = Some(state.clone());
                disk.acked = Some(state.position);
                Ok(())
            }
            Fault::Clean => Err(StateError::Unavailable("injected: write failed".into())),
            Fault::Torn => {
                disk.state = Some(state.clone());
                Err(StateError::Unavailable("injected: fdatasync failed".into()))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

/// Interns values as small integers so that node keys hash cheaply.
struct Interner<T> {
    ids: HashMap<T, u32>,
    items: Vec<T>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Self {
            ids: HashMap::new(),
            items: Vec::new(),
        }
    }

    fn id(&mut self, value: &T) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.items.len()).unwrap();
        self.items.push(value.clone());
        self.ids.insert(value.clone(), id);
        id
    }

    fn get(&self, id: u32) -> &T {
        &self.items[id as usize]
    }
}

type StateKey = (Position, Vec<u8>, Option<Signature>);

fn state_key(s: &SignState) -> StateKey {
    (s.position, s.sign_bytes.clone(), s.signature)
}

fn state_of(k: &StateKey) -> SignState {
    SignState {
        position: k.0,
        sign_bytes: k.1.clone(),
        signature: k.2,
    }
}

/// A released answer: the sign bytes of the message returned, and the
/// signature. `class` is what two answers at one position must agree on:
/// the sign bytes for votes, the sign bytes with the timestamp erased for
/// proposals.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Answer {
    sign_bytes: Vec<u8>,
    signature: Signature,
    class: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyMode {
    /// The whole ledger is part of the node key.
    Full,
    /// Ledger entries below the in-memory position are dropped (see the
    /// module documentation for why that is sound).
    Reduced,
}

/// Everything the signer's behaviour depends on: the running signer's
/// in-memory state and what its store holds. The signer is a deterministic
/// function of these and the request.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SignerNode {
    /// In-memory state of the running signer (interned).
    mem: u32,
    /// What the store holds (interned; `None`: never written).
    durable: Option<u32>,
    /// Position of the last write the store acknowledged.
    acked: Option<Position>,
    /// A fault for the next request's write.
    pending: Fault,
}

/// A node of the sequence tree: the signer, plus what was released so far.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Node {
    signer: SignerNode,
    max_released: Option<Position>,
    /// (request index, answer id), sorted, one entry per request.
    ledger: Vec<(u8, u32)>,
}

/// What one event did to the signer.
#[derive(Clone, Copy)]
struct Outcome {
    next: SignerNode,
    /// The answer released, if a signature was.
    released: Option<u32>,
}

#[derive(Debug, Default)]
struct Stats {
    transitions: u64,
    signer_calls: u64,
    expanded: u64,
    signatures: u64,
    refusals: u64,
}

struct Search {
    mode: KeyMode,
    requests: Vec<Req>,
    events: Vec<Event>,
    key: Arc<MemoKey>,
    policy: ChainPolicy,
    states: Interner<StateKey>,
    answers: Interner<Answer>,
    verified: HashSet<(Vec<u8>, Signature)>,
    /// Sign bytes of every message in the alphabet → its conflict class.
    class_of: HashMap<Vec<u8>, Vec<u8>>,
    /// The real signer's answer to each (signer node, event), computed once.
    outcomes: HashMap<(SignerNode, u8), Outcome>,
    /// Node → the largest remaining depth it was expanded with.
    seen: HashMap<Node, u8>,
    stats: Stats,
}

impl Search {
    fn new(mode: KeyMode) -> Self {
        let requests = alphabet();
        let events = events(requests.len());
        let chain = chain_id();
        let class_of = requests
            .iter()
            .map(|req| match &req.msg {
                Msg::Vote(v) => {
                    let bytes = vote_sign_bytes(&chain, v);
                    (bytes.clone(), bytes)
                }
                Msg::Proposal(p) => {
                    let mut timeless = p.clone();
                    timeless.timestamp = Timestamp::default();
                    (
                        proposal_sign_bytes(&chain, p),
                        proposal_sign_bytes(&chain, &timeless),
                    )
                }
            })
            .collect();
        Self {
            mode,
            requests,
            events,
            key: Arc::new(MemoKey {
                key: SigningKey::from_bytes(&[9; 32]),
                cache: Mutex::new(HashMap::new()),
            }),
            policy: ChainPolicy {
                chain_id: chain,
                max_height: None,
                danger_allow_sign_bytes: false,
            },
            states: Interner::new(),
            answers: Interner::new(),
            verified: HashSet::new(),
            class_of,
            outcomes: HashMap::new(),
            seen: HashMap::new(),
            stats: Stats::default(),
        }
    }

    fn root(&mut self) -> Node {
        // A fresh home: `init` writes the height-0 state.
        let id = self.states.id(&state_key(&SignState::default()));
        Node {
            signer: SignerNode {
                mem: id,
                durable: Some(id),
                acked: None,
                pending: Fault::None,
            },
            max_released: None,
            ledger: Vec::new(),
        }
    }

    fn position_of_state(&self, id: u32) -> Position {
        self.states.get(id).0
    }

    fn verify(&mut self, bytes: &[u8], signature: &Signature, what: &str, trail: &[Event]) {
        if self.verified.contains(&(bytes.to_vec(), *signature)) {
            return;
        }
        if let Err(e) = self
            .key
            .key
            .verifying_key()
            .verify(bytes, &DalekSignature::from_bytes(&signature.0))
        {
            self.fail(trail, &format!("{what} signature does not verify: {e}"));
        }
        self.verified.insert((bytes.to_vec(), *signature));
    }

    fn describe(&self, event: Event) -> String {
        match event {
            Event::Request(i) => {
                let req = &self.requests[usize::from(i)];
                match &req.msg {
                    Msg::Vote(v) => format!(
                        "{:?} {} block {} ts {} ext {}",
                        v.kind,
                        req.position,
                        v.block_id.as_ref().map_or(0, |b| b.hash[0]),
                        v.timestamp.seconds,
                        !v.extension.is_empty()
                    ),
                    Msg::Proposal(p) => format!(
                        "Proposal {} block {} ts {}",
                        req.position,
                        p.block_id.as_ref().map_or(0, |b| b.hash[0]),
                        p.timestamp.seconds
                    ),
                }
            }
            other => format!("{other:?}"),
        }
    }

    fn fail(&self, trail: &[Event], why: &str) -> ! {
        let steps: Vec<String> = trail.iter().map(|e| self.describe(*e)).collect();
        panic!(
            "invariant violated: {why}\nsequence:\n  {}",
            steps.join("\n  ")
        );
    }

    /// Run the real signer for `event` from `node` (once per distinct pair)
    /// and check everything about its answer that does not depend on what
    /// was released before.
    fn outcome(&mut self, node: SignerNode, event_index: u8, trail: &[Event]) -> Outcome {
        if let Some(outcome) = self.outcomes.get(&(node, event_index)) {
            return *outcome;
        }
        self.stats.signer_calls += 1;
        let mem = state_of(self.states.get(node.mem));
        let store = Store(Arc::new(Mutex::new(Disk {
            state: node.durable.map(|id| state_of(self.states.get(id))),
            fault: None,
            acked: node.acked,
            boot: None,
        })));
        let mut next = node;
        let mut released = None;
        match self.events[usize::from(event_index)] {
            Event::Restart => {
                let loaded = store.clone().load().unwrap().unwrap_or_default();
                next.mem = self.states.id(&state_key(&loaded));
            }
            Event::Fail(fault) => next.pending = fault,
            Event::Request(index) => {
                let req = self.requests[usize::from(index)].clone();
                store.0.lock().unwrap().fault = Some(node.pending);
                next.pending = Fault::None;
                store.0.lock().unwrap().boot = Some(mem.clone());
                let signer = ChainSigner::open(
                    self.policy.clone(),
                    Arc::clone(&self.key),
                    Box::new(store.clone()),
                )
                .unwrap();
                let response = signer.handle(DIALECT, req.request());
                let after = signer.last_state().unwrap();
                let answer = self.check_response(&req, response, node.pending, &mem, &after, trail);
                if answer.is_some() && req.position < mem.position {
                    self.fail(
                        trail,
                        &format!(
                            "I1: released a signature at {} below the last signed {}",
                            req.position, mem.position
                        ),
                    );
                }
                released = answer.map(|a| self.answers.id(&a));
                next.mem = self.states.id(&state_key(&after));
                let disk = store.0.lock().unwrap();
                next.durable = disk.state.as_ref().map(|s| self.states.id(&state_key(s)));
                next.acked = disk.acked;
            }
        }
        let outcome = Outcome { next, released };
        self.outcomes.insert((node, event_index), outcome);
        outcome
    }

    /// Checks one response; returns the released answer, if any.
    fn check_response(
        &mut self,
        req: &Req,
        response: Response,
        pending: Fault,
        mem: &SignState,
        after: &SignState,
        trail: &[Event],
    ) -> Option<Answer> {
        let chain = chain_id();
        let released = match (&req.msg, response) {
            (Msg::Vote(asked), Response::SignedVote(Ok(signed))) => {
                let mut expected = asked.clone();
                expected.timestamp = signed.vote().timestamp;
                expected.extension = Vec::new();
                if *signed.vote() != expected {
                    self.fail(
                        trail,
                        "returned vote differs from the request beyond its timestamp",
                    );
                }
                let bytes = vote_sign_bytes(&chain, signed.vote());
                self.verify(&bytes, &signed.signature(), "vote", trail);
                match (asked.is_non_nil_precommit(), signed.extension_signature()) {
                    (true, Some(ext)) => {
                        let ext_bytes = vote_extension_sign_bytes(&chain, asked);
                        self.verify(&ext_bytes, &ext, "extension", trail);
                    }
                    (false, None) => {}
                    (true, None) => {
                        self.fail(trail, "non-nil precommit without extension signature")
                    }
                    (false, Some(_)) => {
                        self.fail(trail, "extension signature on a prevote or nil precommit")
                    }
                }
                Some(Answer {
                    class: bytes.clone(),
                    sign_bytes: bytes,
                    signature: signed.signature(),
                })
            }
            (Msg::Proposal(asked), Response::SignedProposal(Ok(signed))) => {
                if signed.proposal() != asked {
                    self.fail(trail, "returned proposal differs from the request");
                }
                let bytes = proposal_sign_bytes(&chain, signed.proposal());
                self.verify(&bytes, &signed.signature(), "proposal", trail);
                let mut timeless = signed.proposal().clone();
                timeless.timestamp = Timestamp::default();
                Some(Answer {
                    class: proposal_sign_bytes(&chain, &timeless),
                    sign_bytes: bytes,
                    signature: signed.signature(),
                })
            }
            (_, Response::SignedVote(Err(e)) | Response::SignedProposal(Err(e))) => {
                match e.code {
                    ErrorCode::DoubleSign => {}
                    ErrorCode::PersistFailed if pending != Fault::None => {}
                    other => self.fail(trail, &format!("unexpected refusal code {other:?}: {e:?}")),
                }
                if after != mem {
                    self.fail(trail, "a refused request changed the in-memory state");
                }
                // Not vacuously safe: a request above the last signed
                // position with a healthy disk must be signed.
                if pending == Fault::None && req.position > mem.position {
                    self.fail(trail, "refused a request above the last signed position");
                }
                None
            }
            (_, other) => self.fail(trail, &format!("response of the wrong type: {other:?}")),
        };
        released
    }

    /// Apply `event` to `node`, check every invariant of the transition, and
    /// return the child node.
    fn step(&mut self, node: &Node, event_index: u8, trail: &[Event]) -> Node {
        self.stats.transitions += 1;
        let outcome = self.outcome(node.signer, event_index, trail);
        let mut child = Node {
            signer: outcome.next,
            max_released: node.max_released,
            ledger: node.ledger.clone(),
        };
        match (self.events[usize::from(event_index)], outcome.released) {
            (Event::Request(index), Some(answer)) => {
                self.stats.signatures += 1;
                self.record_release(&mut child, index, answer, trail);
            }
            (Event::Request(_), None) => self.stats.refusals += 1,
            _ => {}
        }
        self.check_node(node, &child, trail);
        if self.mode == KeyMode::Reduced {
            // Sound by I1 and I2 (checked above): nothing is ever released
            // below the in-memory position again.
            let floor = self.position_of_state(child.signer.mem);
            let requests = &self.requests;
            child
                .ledger
                .retain(|&(i, _)| requests[usize::from(i)].position >= floor);
        }
        child
    }

    fn record_release(&mut self, child: &mut Node, index: u8, answer_id: u32, trail: &[Event]) {
        let position = self.requests[usize::from(index)].position;
        let answer = self.answers.get(answer_id);
        // Persist before release: the durable state is above the release,
        // or at it with a message of the same class, so that a restart can
        // at most replay what was released.
        let durable = child.signer.durable.map(|id| self.states.get(id));
        match durable {
            Some(d) if d.0 > position => {}
            Some(d) if d.0 == position && self.class_of.get(&d.1) == Some(&answer.class) => {}
            other => self.fail(
                trail,
                &format!(
                    "released a signature at {position} not covered by the durable state {:?}",
                    other.map(state_of)
                ),
            ),
        }
        // Conflicts and replays against every earlier release.
        for &(other, earlier_id) in &child.ledger {
            let earlier = self.answers.get(earlier_id);
            if other == index && earlier.signature != answer.signature {
                self.fail(trail, "the same request got two different signatures");
            }
            if self.requests[usize::from(other)].position == position
                && earlier.class != answer.class
            {
                self.fail(
                    trail,
                    &format!("two conflicting messages signed at {position}"),
                );
            }
        }
        if let Err(slot) = child.ledger.binary_search_by_key(&index, |&(i, _)| i) {
            child.ledger.insert(slot, (index, answer_id));
        }
        child.max_released = child.max_released.max(Some(position));
    }

    /// Invariants of the node reached.
    fn check_node(&self, parent: &Node, child: &Node, trail: &[Event]) {
        let (parent, signer) = (&parent.signer, &child.signer);
        let durable = signer
            .durable
            .map(|id| self.position_of_state(id))
            .unwrap_or_default();
        if self.position_of_state(signer.mem) < self.position_of_state(parent.mem) {
            self.fail(trail, "I2: the in-memory position went backwards");
        }
        if signer.acked < parent.acked {
            self.fail(trail, "an acknowledged write went backwards");
        }
        // The durable state covers every release and every acknowledged write.
        for (what, covered) in [
            ("released", child.max_released),
            ("acknowledged", signer.acked),
        ] {
            if let Some(covered) = covered.filter(|c| durable < *c) {
                self.fail(
                    trail,
                    &format!("durable state {durable} is below the {what} {covered}"),
                );
            }
        }
    }

    fn explore(&mut self, node: Node, remaining: u8, trail: &mut Vec<Event>) {
        if remaining == 0 {
            return;
        }
        match self.seen.get(&node) {
            Some(&done) if done >= remaining => return,
            _ => {}
        }
        self.seen.insert(node.clone(), remaining);
        self.stats.expanded += 1;
        for i in 0..self.events.len() {
            let index = u8::try_from(i).unwrap();
            trail.push(self.events[i]);
            let child = self.step(&node, index, trail);
            self.explore(child, remaining - 1, trail);
            trail.pop();
        }
    }
}

fn run(mode: KeyMode, depth: u8) {
    let started = Instant::now();
    let mut search = Search::new(mode);
    let root = search.root();
    search.explore(root, depth, &mut Vec::new());
    let alphabet = search.events.len() as u128;
    let sequences = alphabet.pow(u32::from(depth));
    let s = &search.stats;
    eprintln!(
        "exhaustive guard check ({mode:?} key, depth {depth}, {alphabet} events): \
         all {sequences} event sequences covered; {} distinct nodes expanded, \
         {} transitions checked ({} signatures, {} refusals), {} signer calls over \
         {} distinct states, {:.1?}",
        s.expanded,
        s.transitions,
        s.signatures,
        s.refusals,
        s.signer_calls,
        search.states.items.len(),
        started.elapsed()
    );
}

#[test]
fn every_sequence_of_six_events_is_safe() {
    run(KeyMode::Reduced, 6);
}

#[test]
fn every_sequence_of_four_events_is_safe_with_the_full_ledger_key() {
    run(KeyMode::Full, 4);
}

#[test]
#[ignore = "minutes; run with --ignored"]
fn every_sequence_of_eight_events_is_safe() {
    run(KeyMode::Reduced, 8);
}

#[test]
#[ignore = "minutes; run with --ignored"]
fn every_sequence_of_five_events_is_safe_with_the_full_ledger_key() {
    run(KeyMode::Full, 5);
}
