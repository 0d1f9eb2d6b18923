//! Persistence of the double-sign state.
//!
//! One small trait, [`StateStore`], hides where state lives: a local file
//! ([`file::FileStore`]), or — for enclaves — the untrusted host that must
//! acknowledge each write. The only way to obtain a [`DurableState`] is from
//! the store ([`persist_durably_signing`], [`load_durable`]), and releasing a
//! signature requires one, so "sign before the state is durable" does not
//! compile.

#[cfg(unix)]
pub mod file;
pub mod import;
pub mod record;
pub mod remote;
pub mod wire;

use thiserror::Error;

use crate::phases::{Laps, Phase};
use crate::signer::{ConsensusSigner, SignError};
use crate::types::{SignState, Signature};

/// Errors of a state store. Every variant names the file or peer involved so
/// the operator knows what to fix.
#[derive(Debug, Error)]
pub enum StateError {
    // The OS error is part of the message, so it is deliberately not the
    // error's `source` (a field of that name would be): error chains
    // (`{:#}`) would print it twice.
    #[error("state file {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("state file {path} is locked by another process (pid file {lock}); stop the other signer or point state_file_path elsewhere")]
    Locked { path: String, lock: String },
    #[error("state file {path} does not exist; run `init` or `state import`, or start with --allow-empty-state to begin at height 0")]
    Missing { path: String },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("state file {path} already exists; refusing to overwrite it (use `state import` to move it forward)")]
    Exists { path: String },
    #[error("refusing to move state file {path} backwards from {current} to {requested}; pass --danger-allow-regression if this is really intended")]
    Regression {
        path: String,
        current: crate::types::Position,
        requested: crate::types::Position,
    },
    #[error("state {path} is not valid JSON state: {reason}")]
    Import { path: String, reason: String },
    #[error("state record rejected: {0}")]
    Record(#[from] record::RecordError),
    #[error("state record in slot {slot} does not authenticate: it was forged or modified, or written under another key or chain id; the enclave will not use it. Restore the state file from a trusted copy, or `state import` a height you know is safe")]
    Forged { slot: usize },
    #[error("state record in slot {slot} is damaged ({reason}); not falling back to the other slot, which could be a rollback. If this follows a power loss during a write, `state import` a height you know is safe")]
    Damaged { slot: usize, reason: String },
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("the state stream to the host is gone ({0}); nothing more can be made durable, so the enclave stops and its supervisor restarts it")]
    StreamLost(String),
    #[error("no state record the enclave wrote itself: {found}. The enclave only starts from a record it authenticated, so a deleted, replaced or freshly created state file cannot reset it. Restore the state file this signer wrote, or import a state you know is at or above the last height this validator signed with `state import` (through the enclave, on a trusted host)")]
    NoAuthenticRecord { found: String },
}

/// Where the guard's state is kept.
///
/// `persist` must return only once the state survives power loss (or, for a
/// remote store, once the host acknowledged such a write). An error means
/// the state may or may not have been written; the caller must not release
/// any signature made for it.
pub trait StateStore: Send {
    /// The last durable state, or `None` if the store has never been written.
    fn load(&mut self) -> Result<Option<SignState>, StateError>;

    /// Make `state` durable.
    fn persist(&mut self, state: &SignState) -> Result<(), StateError>;

    /// Make `state` durable, calling `meanwhile` at most once while the
    /// write is in flight (after it was handed to the disk or the host,
    /// before its confirmation is awaited), so that signing overlaps the
    /// flush. Nothing `meanwhile` makes may leave before this returns `Ok`.
    /// Stores that cannot split a write call it first, then persist.
    fn persist_while(
        &mut self,
        state: &SignState,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(), StateError> {
        meanwhile();
        self.persist(state)
    }
}

/// A state the store holds durably: loaded from it, or acknowledged by it.
///
/// Only this module creates one ([`persist_durably_signing`], [`load_durable`]), and
/// a signature can only be released through one ([`DurableState::release`]),
/// so "signature released before the durable write" does not compile. The
/// record written ahead never carries the signature: it is made while the
/// write is in flight and kept here, in memory only, once the write
/// returned (Ed25519 is deterministic, so re-signing the stored bytes later
/// gives the same signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableState {
    state: SignState,
}

/// A signature that may leave the signer: made over the sign bytes of a
/// [`DurableState`]. The response types require one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleasedSignature(Signature);

impl ReleasedSignature {
    pub fn signature(&self) -> Signature {
        self.0
    }

    /// For encoder tests and fuzzing only: a signature that no durable state
    /// vouches for. Not compiled into the providers.
    #[cfg(any(test, feature = "test-support"))]
    pub fn unchecked(signature: Signature) -> Self {
        Self(signature)
    }
}

impl DurableState {
    /// Wrap a state an enclave verified itself (authenticated records).
    pub(crate) fn verified(state: SignState) -> Self {
        Self { state }
    }

    pub fn state(&self) -> &SignState {
        &self.state
    }

    /// The signature over this state's sign bytes: the one made before in
    /// this run, or a new one (kept for the next replay).
    pub fn release<K: ConsensusSigner + ?Sized>(
        &mut self,
        key: &K,
    ) -> Result<ReleasedSignature, SignError> {
        if let Some(signature) = self.state.signature {
            return Ok(ReleasedSignature(signature));
        }
        let signature = key.sign(&self.state.sign_bytes)?;
        self.state.signature = Some(signature);
        Ok(ReleasedSignature(signature))
    }
}

/// Persist `state` through `store` — without its signature — and sign its
/// bytes with `key` while the write is in flight; `meanwhile` runs in the
/// same window (a vote's extension signature). The signature is kept in the
/// returned state and can only be released through it, that is once the
/// store confirmed the write; on a failed write it is dropped unreleased.
/// `laps` charges the window to [`Phase::Sign`] and the rest of the write
/// to [`Phase::Write`].
pub fn persist_durably_signing<S, K>(
    store: &mut S,
    mut state: SignState,
    key: &K,
    laps: &mut Laps,
    meanwhile: &mut dyn FnMut(),
) -> Result<DurableState, StateError>
where
    S: StateStore + ?Sized,
    K: ConsensusSigner + ?Sized,
{
    state.signature = None;
    let mut signed = None;
    let written = store.persist_while(&state, &mut || {
        laps.lap(Phase::Write);
        signed = key.sign(&state.sign_bytes).ok();
        meanwhile();
        laps.lap(Phase::Sign);
    });
    laps.lap(Phase::Write);
    written?;
    // A failed signature is made again (and its error reported) on release.
    state.signature = signed;
    Ok(DurableState { state })
}

/// The store's durable state; a store never written counts as
/// `SignState::default()` (softsign refuses that case before, unless the
/// operator allowed an empty state).
pub fn load_durable<S: StateStore + ?Sized>(store: &mut S) -> Result<DurableState, StateError> {
    Ok(DurableState {
        state: store.load()?.unwrap_or_default(),
    })
}

/// A store that keeps state in memory only. For tests and for the
/// property-based guard checks; never used by a provider binary.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub state: Option<SignState>,
    /// When set, `persist` fails (fault injection in tests).
    pub fail_writes: bool,
}

impl StateStore for MemoryStore {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(self.state.clone())
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        if self.fail_writes {
            return Err(StateError::Unavailable("injected write failure".into()));
        }
        self.state = Some(state.clone());
        Ok(())
    }
}

impl<S: StateStore + ?Sized> StateStore for Box<S> {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        (**self).load()
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        (**self).persist(state)
    }

    fn persist_while(
        &mut self,
        state: &SignState,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(), StateError> {
        (**self).persist_while(state, meanwhile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Height, Position, Round, Step};

    /// Runs `meanwhile` inside its write, then succeeds or fails.
    struct WindowStore {
        fail: bool,
        events: Vec<&'static str>,
    }

    impl WindowStore {
        fn failing(fail: bool) -> Self {
            Self {
                fail,
                events: Vec::new(),
            }
        }
    }

    impl StateStore for WindowStore {
        fn load(&mut self) -> Result<Option<SignState>, StateError> {
            Ok(None)
        }

        fn persist(&mut self, _: &SignState) -> Result<(), StateError> {
            unreachable!("the signing path uses persist_while")
        }

        fn persist_while(
            &mut self,
            state: &SignState,
            meanwhile: &mut dyn FnMut(),
        ) -> Result<(), StateError> {
            assert!(
                state.signature.is_none(),
                "a record written ahead carries a signature"
            );
            self.events.push("record handed over");
            meanwhile();
            self.events.push("write confirmed");
            if self.fail {
                return Err(StateError::Unavailable("injected".into()));
            }
            Ok(())
        }
    }

    fn next() -> SignState {
        SignState {
            position: Position {
                height: Height::try_from(5_i64).unwrap(),
                round: Round::default(),
                step: Step::Precommit,
            },
            sign_bytes: b"sign bytes".to_vec(),
            signature: None,
        }
    }

    #[test]
    fn signs_inside_the_write_window_and_releases_that_signature() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut store = WindowStore::failing(false);
        let mut ran = 0;
        let mut durable =
            persist_durably_signing(&mut store, next(), &key, &mut Laps::off(), &mut || ran += 1)
                .unwrap();
        assert_eq!(ran, 1);
        assert_eq!(store.events, ["record handed over", "write confirmed"]);
        let made_in_window = durable.state().signature.expect("signed in the window");
        assert_eq!(made_in_window, key.sign(b"sign bytes").unwrap());
        assert_eq!(durable.release(&key).unwrap().signature(), made_in_window);
    }

    #[test]
    fn a_failed_write_yields_no_durable_state_to_release_from() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut store = WindowStore::failing(true);
        let written =
            persist_durably_signing(&mut store, next(), &key, &mut Laps::off(), &mut || {});
        assert!(matches!(written, Err(StateError::Unavailable(_))));
    }
}
