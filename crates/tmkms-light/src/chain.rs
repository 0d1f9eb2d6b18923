//! Per-chain signing: chain-id and height policy, the guard, durable state
//! and the key, combined into one request handler.
//!
//! Several node connections (sentries) may share one [`ChainSigner`]; the
//! guard check, the signature and the durable write happen under one lock,
//! so two connections can never both get a signature for one height/round/
//! step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{debug, error, info, warn};

use crate::guard::{self, Refusal, Signable, Verdict};
use crate::ha::{Outcome, Reservation, Watermark};
use crate::observe::{Event, Observer, SignedKind, Unobserved};
use crate::phases::{Laps, Phase};
use crate::privval::{Dialect, RemoteError, Request, Response, SignedProposal, SignedVote};
use crate::refusal::Rejection;
use crate::session::Clock;
use crate::sign_bytes::consensus_message_kind;
use crate::sign_bytes::{proposal_sign_bytes, vote_extension_sign_bytes, vote_sign_bytes};
use crate::signer::ConsensusSigner;
use crate::state::{
    load_durable, persist_durably_signing, DurableState, ReleasedSignature, StateError, StateStore,
};
use crate::types::{ChainId, Height, Position, Proposal, SignState, Signature, Step, Vote};

/// What a chain's operator allows.
#[derive(Debug, Clone)]
pub struct ChainPolicy {
    pub chain_id: ChainId,
    /// Refuse to sign above this height (code 3).
    pub max_height: Option<Height>,
    /// Allow v1 `SignBytesRequest`s (arbitrary bytes under the consensus key).
    pub danger_allow_sign_bytes: bool,
}

struct Guarded {
    /// The last state the store confirmed durable.
    durable: DurableState,
    /// A newer state whose write has an unknown outcome (the store failed,
    /// or the host did not acknowledge it): the host may hold it. For the
    /// rest of this run nothing different is signed at its position, and
    /// it is released only after a write of it is acknowledged.
    in_doubt: Option<SignState>,
    store: Box<dyn StateStore>,
    /// The shared reservation of all signers of this validator, when
    /// high availability is on.
    shared: Option<Shared>,
}

/// The shared store and what this signer last learnt from it.
struct Shared {
    store: Box<dyn Watermark>,
    /// The reservation as last read or written; `None` when unknown (never
    /// read, or the last call failed: its reservation may or may not have
    /// been made), so the next request reads it afresh first.
    view: Option<Reservation>,
}

impl Shared {
    /// The reservation to decide on: the one known, or a fresh read.
    fn view(&mut self) -> Result<&Reservation, Rejection> {
        match self.view {
            Some(ref view) => Ok(view),
            None => {
                let view = self.store.read().map_err(|e| {
                    error!(store = %self.store.describe(), error = %e, "could not read the HA reservation; nothing signed");
                    Rejection::SharedUnavailable(e)
                })?;
                Ok(self.view.insert(view))
            }
        }
    }

    /// Reserve `next` on the revision last seen. A failure leaves the view
    /// unknown: the reservation may have been made.
    fn reserve(&mut self, next: &SignState) -> Result<Outcome, Rejection> {
        let expected = self.view.as_ref().map_or(0, |v| v.revision);
        match self.store.reserve(expected, next) {
            Ok(outcome) => {
                self.view = Some(match &outcome {
                    Outcome::Reserved(now) | Outcome::Superseded(now) => now.clone(),
                });
                Ok(outcome)
            }
            Err(e) => {
                self.view = None;
                error!(
                    store = %self.store.describe(),
                    requested = %next.position,
                    error = %e,
                    "HA reservation has no answer: maybe reserved, nothing signed; the next request reads it afresh"
                );
                Err(Rejection::SharedUnavailable(e))
            }
        }
    }
}

/// How many times one request re-reads the shared reservation after other
/// signers moved it before giving up (code 5; the node asks again).
const MAX_SHARED_ATTEMPTS: usize = 4;

impl Guarded {
    /// What the guard compares the next request with.
    fn last(&self) -> &SignState {
        self.in_doubt.as_ref().unwrap_or(self.durable.state())
    }
}

/// Signs for one chain with one key and one state.
pub struct ChainSigner<K> {
    policy: ChainPolicy,
    key: K,
    guarded: Mutex<Guarded>,
    /// Set once the store is gone for good (an enclave's state stream to
    /// its host died): every session ends, so the process can exit and be
    /// restarted instead of answering code 5 forever.
    stopped: AtomicBool,
    /// Who hears what was signed, refused and written (metrics).
    observer: Arc<dyn Observer>,
    /// Times state writes for the observer; `None` inside enclaves.
    clock: Option<Clock>,
}

impl<K> std::fmt::Debug for ChainSigner<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainSigner")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A signature that may leave the process, and whether it is new.
enum Release {
    Fresh(ReleasedSignature),
    Replayed(ReleasedSignature),
}

impl Release {
    fn signature(&self) -> ReleasedSignature {
        match self {
            Release::Fresh(sig) | Release::Replayed(sig) => *sig,
        }
    }
}

/// A released signature with the lock it was released under, and the
/// stored timestamp a replayed vote must carry.
type Released<'a> = (
    std::sync::MutexGuard<'a, Guarded>,
    Release,
    Option<crate::types::Timestamp>,
);

/// Characters of a requested chain id quoted back in errors and logs. Valid
/// chain ids are at most 50 bytes; the node sends any string, up to the
/// frame cap, and the error must stay within the node's 10 KiB read cap.
const QUOTED_CHAIN_ID_CHARS: usize = 64;

/// A peer-supplied chain id for an error or log line: escaped, and cut
/// after [`QUOTED_CHAIN_ID_CHARS`] characters.
fn quoted_chain_id(requested: &str) -> String {
    let mut chars = requested.chars();
    let head: String = chars.by_ref().take(QUOTED_CHAIN_ID_CHARS).collect();
    let rest = chars.count();
    if rest == 0 {
        format!("{head:?}")
    } else {
        format!("{head:?} (and {rest} more characters)")
    }
}

impl<K: ConsensusSigner> ChainSigner<K> {
    /// A signer starting from the state `store` holds.
    pub fn open(
        policy: ChainPolicy,
        key: K,
        mut store: Box<dyn StateStore>,
    ) -> Result<Self, StateError> {
        let initial = load_durable(store.as_mut())?;
        Ok(Self::with_state(policy, key, store, initial))
    }

    /// A signer starting from `initial`, which `store` holds durably.
    pub(crate) fn with_state(
        policy: ChainPolicy,
        key: K,
        store: Box<dyn StateStore>,
        initial: DurableState,
    ) -> Self {
        Self {
            policy,
            key,
            guarded: Mutex::new(Guarded {
                durable: initial,
                in_doubt: None,
                store,
                shared: None,
            }),
            stopped: AtomicBool::new(false),
            observer: Arc::new(Unobserved),
            clock: None,
        }
    }

    /// Reserve every new position in `store`, shared with the other
    /// signers of this validator, before its signature leaves (high
    /// availability). The local durable state is kept as well: both must
    /// allow a signature.
    #[must_use]
    pub fn shared_with(self, store: Box<dyn Watermark>) -> Self {
        if let Ok(mut guarded) = self.guarded.lock() {
            guarded.shared = Some(Shared { store, view: None });
        }
        self
    }

    /// Report events to `observer`; `clock` times the state writes.
    #[must_use]
    pub fn observed_by(mut self, observer: Arc<dyn Observer>, clock: Option<Clock>) -> Self {
        self.observer = observer;
        self.clock = clock;
        self
    }

    /// Hand `event` to this chain's observer (sessions and connection loops
    /// report through the chain they serve).
    pub fn observe(&self, event: &Event) {
        self.observer.observe(event);
    }

    /// Tell the observer a response went out (it may pass events on now).
    pub fn response_written(&self) {
        self.observer.response_written();
    }

    /// A result as the node sees it; a refusal is reported with its code.
    fn for_node<T>(&self, result: Result<T, Rejection>) -> Result<T, RemoteError> {
        result.map_err(|rejection| {
            let remote = rejection.remote_error();
            self.observer.observe(&Event::Refused {
                code: remote.code as i32,
            });
            remote
        })
    }

    /// Whether the state store is gone for good (see [`StateError::StreamLost`]).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub fn policy(&self) -> &ChainPolicy {
        &self.policy
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// The last durable state, as held in memory.
    pub fn last_state(&self) -> Option<SignState> {
        self.guarded.lock().ok().map(|g| g.durable.state().clone())
    }

    /// Handle one request from a connection speaking `dialect`.
    pub fn handle(&self, dialect: Dialect, request: Request) -> Response {
        self.handle_timed(dialect, request, &mut Laps::off())
    }

    /// [`Self::handle`], charging the guard, the durable write and the
    /// signatures to their phases on `laps`.
    pub fn handle_timed(&self, dialect: Dialect, request: Request, laps: &mut Laps) -> Response {
        match request {
            Request::Ping => Response::Ping,
            Request::PubKey { chain_id } => Response::PubKey(
                self.for_node(
                    self.check_chain_id(&chain_id)
                        .map(|()| self.key.public_key()),
                ),
            ),
            Request::SignVote {
                chain_id,
                vote,
                skip_extension_signing,
            } => Response::SignedVote(
                self.for_node(
                    self.check_chain_id(&chain_id)
                        .and_then(|()| self.sign_vote(dialect, vote, skip_extension_signing, laps)),
                ),
            ),
            Request::SignProposal { chain_id, proposal } => Response::SignedProposal(
                self.for_node(
                    self.check_chain_id(&chain_id)
                        .and_then(|()| self.sign_proposal(proposal, laps)),
                ),
            ),
            Request::SignBytes { value } => {
                Response::SignedBytes(self.for_node(self.sign_raw_bytes(&value)))
            }
        }
    }

    fn check_chain_id(&self, requested: &str) -> Result<(), Rejection> {
        if requested == self.policy.chain_id.as_str() {
            return Ok(());
        }
        let shown = quoted_chain_id(requested);
        warn!(
            expected = %self.policy.chain_id,
            requested = %shown,
            "refusing request for another chain"
        );
        Err(Rejection::WrongChainId {
            expected: self.policy.chain_id.as_str().to_owned(),
            requested: shown,
        })
    }

    fn check_max_height(&self, position: Position) -> Result<(), Rejection> {
        match self.policy.max_height {
            Some(max) if position.height > max => {
                error!(requested = %position, max_height = %max, "refusing to sign above max_height");
                Err(Rejection::AboveMaxHeight {
                    height: position.height,
                    max_height: max,
                })
            }
            _ => Ok(()),
        }
    }

    fn sign_vote(
        &self,
        dialect: Dialect,
        mut vote: Vote,
        skip_extension_signing: bool,
        laps: &mut Laps,
    ) -> Result<SignedVote, Rejection> {
        let position = vote.position();
        // Extension signatures are never cached: a fresh one on every answer.
        // For a new vote it is made while the vote's state write is in
        // flight; it leaves only with the vote, after that write returned.
        let extension_bytes = (dialect.has_vote_extensions()
            && vote.is_non_nil_precommit()
            && !skip_extension_signing)
            .then(|| vote_extension_sign_bytes(&self.policy.chain_id, &vote));
        let mut extension = None;
        let (guarded, release, timestamp) =
            self.release(Signable::Vote(&vote), laps, &mut || {
                extension = extension_bytes.as_deref().map(|bytes| self.key.sign(bytes));
            })?;
        let extension_signature = match (extension, extension_bytes.as_deref()) {
            (Some(signed), _) => Some(signed.map_err(|e| self.sign_failed(e))?),
            (None, Some(bytes)) => Some(self.sign_or_refuse(bytes)?),
            (None, None) => None,
        };
        laps.lap(Phase::Sign);
        drop(guarded);
        if let Some(timestamp) = timestamp {
            vote.timestamp = timestamp;
        }
        self.report_release(position, &release, extension_signature.is_some());
        Ok(SignedVote::new(
            vote,
            release.signature(),
            extension_signature,
        ))
    }

    fn sign_proposal(
        &self,
        mut proposal: Proposal,
        laps: &mut Laps,
    ) -> Result<SignedProposal, Rejection> {
        let position = proposal.position();
        let (guarded, release, timestamp) =
            self.release(Signable::Proposal(&proposal), laps, &mut || {})?;
        laps.lap(Phase::Sign);
        drop(guarded);
        if let Some(timestamp) = timestamp {
            proposal.timestamp = timestamp;
        }
        self.report_release(position, &release, false);
        Ok(SignedProposal::new(proposal, release.signature()))
    }

    /// The height policy, then — under the lock, which the caller gets back
    /// — the guard decision and the release of `request`'s signature.
    /// `meanwhile` runs at most once, while a new state's write is in flight.
    fn release(
        &self,
        request: Signable<'_>,
        laps: &mut Laps,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<Released<'_>, Rejection> {
        self.check_max_height(request.position())?;
        let sign_bytes = match request {
            Signable::Vote(vote) => vote_sign_bytes(&self.policy.chain_id, vote),
            Signable::Proposal(proposal) => proposal_sign_bytes(&self.policy.chain_id, proposal),
        };
        let mut guarded = self.lock()?;
        let (release, timestamp) =
            self.decide_and_sign(&mut guarded, request, sign_bytes, laps, meanwhile)?;
        Ok((guarded, release, timestamp))
    }

    /// The guard decision, and for a new signature: persist durably (the
    /// record carries no signature), then sign — in that order, all under
    /// the caller's lock. A state whose write failed stays "in doubt": the
    /// host may have stored it, so nothing else is signed at its position,
    /// and it is released only once a write of it is acknowledged.
    fn decide_and_sign(
        &self,
        guarded: &mut Guarded,
        request: Signable<'_>,
        sign_bytes: Vec<u8>,
        laps: &mut Laps,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(Release, Option<crate::types::Timestamp>), Rejection> {
        if guarded.shared.is_some() {
            return self.decide_shared(guarded, request, sign_bytes, laps, meanwhile);
        }
        let verdict = guard::check(guarded.last(), &self.policy.chain_id, request, &sign_bytes)
            .map_err(|refusal| self.refused(guarded.last(), refusal))?;
        laps.lap(Phase::Guard);
        self.act_locally(guarded, verdict, request, sign_bytes, laps, meanwhile)
    }

    /// Carry out the local guard's `verdict`: replay from the durable
    /// state, or persist and sign a new one.
    fn act_locally(
        &self,
        guarded: &mut Guarded,
        verdict: Verdict,
        request: Signable<'_>,
        sign_bytes: Vec<u8>,
        laps: &mut Laps,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(Release, Option<crate::types::Timestamp>), Rejection> {
        match verdict {
            Verdict::Replay { timestamp, .. } | Verdict::ResignStored { timestamp } => {
                if let Some(in_doubt) = guarded.in_doubt.clone() {
                    // The same message as the unacknowledged write: write it
                    // again, and release only after that is acknowledged.
                    let signature = self.persist_and_release(guarded, in_doubt, laps, meanwhile)?;
                    return Ok((Release::Fresh(signature), timestamp));
                }
                let signature = guarded
                    .durable
                    .release(&self.key)
                    .map_err(|e| self.sign_failed(e))?;
                Ok((Release::Replayed(signature), timestamp))
            }
            Verdict::SignNew => {
                let next = SignState {
                    position: request.position(),
                    sign_bytes,
                    signature: None,
                };
                let signature = self.persist_and_release(guarded, next, laps, meanwhile)?;
                Ok((Release::Fresh(signature), None))
            }
        }
    }

    /// The guard decision with high availability: the request must be
    /// allowed both by this signer's state and by the shared reservation.
    /// A new position is reserved in the shared store (one compare-and-swap
    /// on the revision last seen) before it is made durable locally and
    /// signed; a message another signer reserved is made durable locally
    /// and signed again (the same deterministic signature, the reserved
    /// timestamp). If another signer moved the reservation meanwhile, the
    /// request is decided again on what it holds now.
    fn decide_shared(
        &self,
        guarded: &mut Guarded,
        request: Signable<'_>,
        sign_bytes: Vec<u8>,
        laps: &mut Laps,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(Release, Option<crate::types::Timestamp>), Rejection> {
        let chain_id = &self.policy.chain_id;
        for _ in 0..MAX_SHARED_ATTEMPTS {
            let local = guard::check(guarded.last(), chain_id, request, &sign_bytes)
                .map_err(|refusal| self.refused(guarded.last(), refusal))?;
            let Some(shared) = guarded.shared.as_mut() else {
                break;
            };
            let view = shared.view()?.clone();
            let reserved = match &view.state {
                None => Verdict::SignNew,
                Some(reserved) => guard::check(reserved, chain_id, request, &sign_bytes)
                    .map_err(|refusal| self.refused(reserved, refusal))?,
            };
            laps.lap(Phase::Guard);
            let next = match (&reserved, view.state) {
                // Reserved here already (by us or another signer): no
                // reservation to make. Replay ours, or take the reserved
                // message as our own new state.
                (
                    Verdict::Replay { timestamp, .. } | Verdict::ResignStored { timestamp },
                    Some(reserved_state),
                ) => {
                    let timestamp = *timestamp;
                    return match local {
                        Verdict::SignNew => {
                            let signature =
                                self.persist_and_release(guarded, reserved_state, laps, meanwhile)?;
                            Ok((Release::Fresh(signature), timestamp))
                        }
                        local => {
                            self.act_locally(guarded, local, request, sign_bytes, laps, meanwhile)
                        }
                    };
                }
                // New to the shared store: what this signer will hold next.
                _ => match &local {
                    Verdict::SignNew => SignState {
                        position: request.position(),
                        sign_bytes: sign_bytes.clone(),
                        signature: None,
                    },
                    // Known locally, but the shared store is behind (HA was
                    // just turned on): reserve the local state first.
                    Verdict::Replay { .. } | Verdict::ResignStored { .. } => SignState {
                        signature: None,
                        ..guarded.last().clone()
                    },
                },
            };
            let Some(shared) = guarded.shared.as_mut() else {
                break;
            };
            match shared.reserve(&next)? {
                Outcome::Reserved(_) => {
                    laps.lap(Phase::Write);
                    return self.act_locally(guarded, local, request, sign_bytes, laps, meanwhile);
                }
                Outcome::Superseded(now) => {
                    debug!(
                        requested = %next.position,
                        reserved = ?now.state.as_ref().map(|s| s.position),
                        "another signer moved the HA reservation; deciding again"
                    );
                }
            }
        }
        warn!(
            requested = %request.position(),
            "the HA reservation kept moving under this request; nothing signed"
        );
        Err(Rejection::SharedContended {
            attempts: MAX_SHARED_ATTEMPTS,
        })
    }

    /// Make `next` durable, signing it while the write is in flight, and
    /// release the signature once the write returned. On a failed write
    /// `next` is in doubt and nothing is released.
    fn persist_and_release(
        &self,
        guarded: &mut Guarded,
        next: SignState,
        laps: &mut Laps,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<ReleasedSignature, Rejection> {
        let position = next.position;
        let started = self.clock.map(|now| now());
        let written = persist_durably_signing(
            guarded.store.as_mut(),
            next.clone(),
            &self.key,
            laps,
            meanwhile,
        );
        self.report_write(written.is_ok(), started);
        match written {
            Ok(durable) => {
                guarded.durable = durable;
                guarded.in_doubt = None;
                guarded
                    .durable
                    .release(&self.key)
                    .map_err(|e| self.sign_failed(e))
            }
            Err(e) => {
                error!(
                    requested = %position,
                    error = %e,
                    "could not persist the new state; nothing was signed"
                );
                guarded.in_doubt = Some(next);
                if matches!(e, StateError::StreamLost(_)) {
                    self.stopped.store(true, Ordering::SeqCst);
                }
                Err(Rejection::PersistFailed(e))
            }
        }
    }

    fn report_write(&self, ok: bool, started: Option<std::time::Instant>) {
        let event = match (ok, started.zip(self.clock)) {
            (false, _) => Event::StateWriteFailed,
            (true, Some((started, now))) => Event::StateWritten {
                duration: now().saturating_duration_since(started),
            },
            (true, None) => return,
        };
        self.observer.observe(&event);
    }

    fn sign_failed(&self, e: crate::signer::SignError) -> Rejection {
        error!(error = %e, "consensus key could not sign");
        Rejection::SignFailed(e)
    }

    fn refused(&self, last: &SignState, refusal: Refusal) -> Rejection {
        error!(last = %last.position, %refusal, "refusing to sign");
        Rejection::Conflict(refusal)
    }

    fn sign_or_refuse(&self, bytes: &[u8]) -> Result<Signature, Rejection> {
        self.key.sign(bytes).map_err(|e| self.sign_failed(e))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Guarded>, Rejection> {
        // A poisoned lock means a thread died mid-update: the in-memory state
        // can no longer be trusted, so refuse everything until restart.
        self.guarded.lock().map_err(|_| {
            error!("signing state lock poisoned; restart the signer");
            Rejection::StateLockPoisoned
        })
    }

    /// Fresh signatures are logged by the session (with latency, when it has
    /// a clock); replays are rare and worth an info line of their own. Both
    /// are reported to the observer.
    fn report_release(&self, position: Position, release: &Release, extension: bool) {
        let replayed = match release {
            Release::Fresh(..) => {
                debug!(at = %position, "signed");
                false
            }
            Release::Replayed(..) => {
                info!(at = %position, "replayed the stored signature");
                true
            }
        };
        let kind = match position.step {
            Step::Propose => SignedKind::Proposal,
            Step::Prevote => SignedKind::Prevote,
            Step::Precommit => SignedKind::Precommit,
            // Positions of signed messages always have a step.
            Step::None => return,
        };
        self.observer.observe(&Event::Signed {
            kind,
            height: position.height.value(),
            round: position.round.value(),
            extension,
            replayed,
        });
    }

    fn sign_raw_bytes(&self, value: &[u8]) -> Result<Signature, Rejection> {
        if !self.policy.danger_allow_sign_bytes {
            warn!("refused a sign-bytes request: danger_allow_sign_bytes is off");
            return Err(Rejection::SignBytesDisabled);
        }
        // Even when allowed, never let this path sign a consensus message of
        // any chain: that would bypass the double-sign guard (and a chain id
        // check is no barrier: the key may serve other chains, or the
        // configured chain id may not be the one the key votes on).
        if let Some(kind) = consensus_message_kind(value) {
            error!(
                kind,
                "refused a sign-bytes request carrying a consensus message"
            );
            return Err(Rejection::ConsensusMessageThroughSignBytes { kind });
        }
        debug!(len = value.len(), "signing raw bytes");
        let signature = self.sign_or_refuse(value)?;
        self.observer.observe(&Event::Signed {
            kind: SignedKind::Bytes,
            height: 0,
            round: 0,
            extension: false,
            replayed: false,
        });
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privval::{encode_response, ErrorCode};
    use crate::session::NODE_RESPONSE_CAP;
    use crate::state::MemoryStore;

    fn signer() -> ChainSigner<ed25519_dalek::SigningKey> {
        let policy = ChainPolicy {
            chain_id: ChainId::try_from("test-chain").unwrap(),
            max_height: None,
            danger_allow_sign_bytes: false,
        };
        ChainSigner::open(
            policy,
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            Box::new(MemoryStore::default()),
        )
        .unwrap()
    }

    /// Found by the `session` fuzz target: a request naming an 11,000-character
    /// chain id was answered with an 11 KiB error, which a v0.34–v1.0 node
    /// cannot read (it drops the connection instead).
    #[test]
    fn refuses_huge_foreign_chain_id_within_the_node_response_cap() {
        let chain = signer();
        for dialect in Dialect::ALL {
            let response = chain.handle(
                dialect,
                Request::PubKey {
                    chain_id: "\u{10ffff}".repeat(11_000),
                },
            );
            let Response::PubKey(Err(error)) = &response else {
                unreachable!("expected a refusal, got {response:?}");
            };
            assert_eq!(error.code, ErrorCode::WrongChainId);
            assert!(error.description.contains("and 10936 more characters"));
            assert!(encode_response(dialect, &response).len() <= NODE_RESPONSE_CAP);
        }
    }

    #[test]
    fn quotes_short_foreign_chain_id_whole() {
        assert_eq!(quoted_chain_id("other-chain"), "\"other-chain\"");
        assert_eq!(quoted_chain_id("a\nb"), "\"a\\nb\"");
    }
}
