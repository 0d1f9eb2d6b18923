//! Persistence of the double-sign state.
//!
//! One small trait, [`StateStore`], hides where state lives: a local file
//! ([`file::FileStore`]), or — for enclaves — the untrusted host that must
//! acknowledge each write. The only way to obtain a [`DurableState`] is from
//! the store ([`persist_durably`], [`load_durable`]), and releasing a
//! signature requires one, so "sign before the state is durable" does not
//! compile.

#[cfg(unix)]
pub mod file;
pub mod import;
pub mod record;
pub mod remote;
pub mod wire;

use thiserror::Error;

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
}

/// A state the store holds durably: loaded from it, or acknowledged by it.
///
/// Only this module creates one ([`persist_durably`], [`load_durable`]), and
/// a signature can only be released through one ([`DurableState::release`]),
/// so "signature before durable write" does not compile. The record written
/// ahead never carries the signature: it is made after the write returned
/// (Ed25519 is deterministic, so re-signing the stored bytes later gives the
/// same signature), and kept here in memory only.
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

/// Persist `state` through `store` — without its signature — and return it
/// as durable once the store confirmed the write.
pub fn persist_durably<S: StateStore + ?Sized>(
    store: &mut S,
    mut state: SignState,
) -> Result<DurableState, StateError> {
    state.signature = None;
    store.persist(&state)?;
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
}
