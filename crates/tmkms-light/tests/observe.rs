//! What the chain signer and the session report to an observer: every
//! release (new or replayed), every refusal with its code, every state
//! write, and each answered signature's latency — over a real session on a
//! socket pair, so the events are the ones a metrics exporter would get.

// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use ed25519_dalek::SigningKey;
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::observe::{DisconnectReason, Event, Observer, SignedKind};
use tmkms_light::privval::Dialect;
use tmkms_light::session::{serve, SessionConfig};
use tmkms_light::state::{MemoryStore, StateError, StateStore};
use tmkms_light::types::*;
use tmkms_node_sim::{BlockIdSpec, SignerConn, VoteSpec};

const CHAIN_ID: &str = "observed-chain";

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn observe(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A store whose every write fails.
struct FailingStore;

impl StateStore for FailingStore {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(None)
    }
    fn persist(&mut self, _: &SignState) -> Result<(), StateError> {
        Err(StateError::Unavailable("disk full (injected)".into()))
    }
}

fn policy() -> ChainPolicy {
    ChainPolicy {
        chain_id: ChainId::try_from(CHAIN_ID).unwrap(),
        max_height: Some(Height::from(100u32)),
        danger_allow_sign_bytes: false,
    }
}

fn observed(store: Box<dyn StateStore>) -> (Arc<ChainSigner<SigningKey>>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let chain = ChainSigner::open(policy(), SigningKey::from_bytes(&[9; 32]), store)
        .unwrap()
        .observed_by(recorder.clone(), Some(std::time::Instant::now));
    (Arc::new(chain), recorder)
}

/// Sends `votes` over a session on a socket pair, each answered or
/// refused; the session ends when the node side closes.
fn exchange(chain: &Arc<ChainSigner<SigningKey>>, votes: &[VoteSpec]) {
    let (node, mut signer) = UnixStream::pair().unwrap();
    let chain = Arc::clone(chain);
    let session = thread::spawn(move || {
        let config = SessionConfig {
            dialect: Dialect::V0_38,
            max_frame_bytes: 1 << 20,
            clock: Some(std::time::Instant::now),
        };
        serve(&mut signer, &chain, config).1.reason()
    });
    let mut node = SignerConn::from_unix_stream(node, tmkms_node_sim::Dialect::V0_38).unwrap();
    for vote in votes {
        let _answer = node.sign_vote(CHAIN_ID, vote, false).unwrap();
    }
    node.close();
    assert_eq!(session.join().unwrap(), DisconnectReason::Closed);
}

fn prevote(height: i64, timestamp_secs: i64) -> VoteSpec {
    let mut vote = VoteSpec::prevote(height, 0, Some(BlockIdSpec::for_height(height)));
    vote.timestamp = (timestamp_secs, 0);
    vote
}

#[test]
fn releases_replays_and_refusals_are_reported_with_their_codes() {
    let (chain, recorder) = observed(Box::new(MemoryStore::default()));
    exchange(
        &chain,
        &[
            prevote(5, 1_700_000_000),
            // The same vote with another timestamp: the stored signature.
            prevote(5, 1_700_000_009),
            // Lower height: double-sign protection, code 2.
            prevote(4, 1_700_000_000),
            // Above max_height: code 3.
            prevote(101, 1_700_000_000),
        ],
    );
    let events = recorder.take();
    let signed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Signed {
                kind,
                height,
                replayed,
                ..
            } => Some((*kind, *height, *replayed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        signed,
        [
            (SignedKind::Prevote, 5, false),
            (SignedKind::Prevote, 5, true)
        ]
    );
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { code } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(refused, [2, 3]);
    let writes = events
        .iter()
        .filter(|e| matches!(e, Event::StateWritten { .. }))
        .count();
    assert_eq!(writes, 1, "one new state, one durable write: {events:?}");
    let answered = events
        .iter()
        .filter(|e| matches!(e, Event::Answered { .. }))
        .count();
    assert_eq!(answered, 2, "two responses carried a signature");
}

#[test]
fn a_failed_state_write_is_reported_and_nothing_is_signed() {
    let (chain, recorder) = observed(Box::new(FailingStore));
    exchange(&chain, &[prevote(5, 1_700_000_000)]);
    let events = recorder.take();
    assert!(events.contains(&Event::StateWriteFailed), "{events:?}");
    assert!(events.contains(&Event::Refused { code: 5 }), "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Signed { .. })),
        "{events:?}"
    );
}
