//! High availability: several signers of one validator, kept from signing
//! conflicting messages by a shared, linearizable store (etcd).
//!
//! Each signer reserves a new height/round/step in the shared store with
//! one compare-and-swap *before* a signature leaves it; the guard's rules
//! (DESIGN §4) are applied to the shared reservation as well as to the
//! signer's own durable state, and both must allow. Safety rests only on
//! the compare-and-swap: clocks and leases never decide it.
//!
//! This module holds what every backend shares: the [`Watermark`] trait
//! the chain signer talks to, the reservation's encoding in the store, and
//! the key it lives under. The etcd client is its own crate
//! (`tmkms-light-etcd`); [`MemoryWatermark`] serves the property tests.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::{ChainId, Height, Position, Round, SignState, Step};

/// What the shared store holds for one validator, as last read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reservation {
    /// The store's revision of the value (etcd's `mod_revision`); 0 when the
    /// key has never been written. The next reservation compares on it.
    pub revision: i64,
    /// The reserved position and the sign bytes reserved there; `None`
    /// when nothing was reserved yet. Never carries a signature.
    pub state: Option<SignState>,
}

/// The answer to a compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: the store now holds the new state at this revision.
    Reserved(Reservation),
    /// Not applied: the store moved on (another signer reserved); this is
    /// what it holds now.
    Superseded(Reservation),
}

/// Why the shared store gave no answer. Every error means the outcome of a
/// reservation is unknown ("maybe reserved"): nothing made for it may leave,
/// and the next request reads the store afresh before deciding.
#[derive(Debug, Error)]
pub enum WatermarkError {
    /// No member answered in time (down, partitioned, or without quorum).
    #[error("the HA store is unreachable ({endpoints}): {reason}. Signing stops until it answers again; safety is kept. Check that a quorum of etcd members is up and reachable from this signer")]
    Unreachable { endpoints: String, reason: String },
    /// A member answered with something that is not a valid reply.
    #[error("the HA store's answer is invalid: {0}")]
    Invalid(String),
    /// The stored reservation is not one this signer can read (written by
    /// another program, or by a newer version).
    #[error("the reservation stored under {key} is not valid: {reason}. Remove it only if no signer of this validator is running, or restore it")]
    Corrupt { key: String, reason: String },
}

/// A shared, linearizable record of the highest position any signer of
/// this validator reserved.
pub trait Watermark: Send {
    /// Where the store is, for log lines (endpoints, key).
    fn describe(&self) -> String;

    /// The current reservation (a linearizable read).
    fn read(&mut self) -> Result<Reservation, WatermarkError>;

    /// Store `next` if the reservation is still at `expected_revision`.
    /// `next`'s signature is never stored.
    fn reserve(
        &mut self,
        expected_revision: i64,
        next: &SignState,
    ) -> Result<Outcome, WatermarkError>;
}

/// The store key of one validator's reservation: one per (chain id,
/// consensus public key), under the operator's prefix.
pub fn reservation_key(prefix: &str, chain_id: &ChainId, public_key: &[u8]) -> String {
    let prefix = prefix.trim_end_matches('/');
    format!("{prefix}/{}/{}", chain_id.as_str(), hex::encode(public_key))
}

/// Version of the stored value's layout.
const VALUE_VERSION: u32 = 1;

/// The stored value: JSON, so an operator can read it with `etcdctl get`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredValue {
    version: u32,
    height: u64,
    round: u32,
    /// 1 proposal, 2 prevote, 3 precommit (the guard's order).
    step: u8,
    /// Base64 of the canonical sign bytes reserved at this position: the
    /// replay rules compare a request with them (same message → the same
    /// deterministic signature; a vote that differs only in its timestamp →
    /// the reserved timestamp).
    sign_bytes: String,
    /// Which signer reserved it (for operators; not used for decisions).
    signer: String,
}

/// Encode `state` (without its signature) as the stored value.
pub fn encode_value(state: &SignState, signer_id: &str) -> Vec<u8> {
    let value = StoredValue {
        version: VALUE_VERSION,
        height: state.position.height.value(),
        round: state.position.round.value(),
        step: state.position.step.as_u8(),
        sign_bytes: base64::engine::general_purpose::STANDARD.encode(&state.sign_bytes),
        signer: signer_id.to_owned(),
    };
    // Serializing a struct of plain fields cannot fail.
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Decode a stored value; `key` names it in the error.
pub fn decode_value(bytes: &[u8], key: &str) -> Result<SignState, WatermarkError> {
    let corrupt = |reason: String| WatermarkError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let value: StoredValue =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a reservation: {e}")))?;
    if value.version != VALUE_VERSION {
        return Err(corrupt(format!(
            "layout version {} (this signer reads {VALUE_VERSION})",
            value.version
        )));
    }
    let height = Height::try_from(value.height).map_err(|e| corrupt(format!("height: {e}")))?;
    let round =
        Round::try_from(i64::from(value.round)).map_err(|e| corrupt(format!("round: {e}")))?;
    let step = Step::try_from(value.step).map_err(|e| corrupt(format!("step: {e}")))?;
    if step == Step::None {
        return Err(corrupt("step 0 is not a signed step".into()));
    }
    let sign_bytes = base64::engine::general_purpose::STANDARD
        .decode(value.sign_bytes.as_bytes())
        .map_err(|e| corrupt(format!("sign_bytes: {e}")))?;
    Ok(SignState {
        position: Position {
            height,
            round,
            step,
        },
        sign_bytes,
        signature: None,
    })
}

/// What [`MemoryWatermark`] does with the next reservation (fault
/// injection for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryFault {
    /// Answer truthfully.
    #[default]
    None,
    /// Fail without applying it.
    FailBefore,
    /// Apply it, then fail (a lost reply).
    FailAfter,
}

#[derive(Debug, Default)]
struct MemoryShared {
    revision: i64,
    value: Option<SignState>,
}

/// An in-process linearizable store shared by clones (one per simulated
/// signer). For tests only; a provider binary uses etcd.
#[derive(Debug, Clone, Default)]
pub struct MemoryWatermark {
    shared: Arc<Mutex<MemoryShared>>,
    /// The fault for this handle's next call to `reserve` (then reset).
    pub next_fault: MemoryFault,
    /// When set, every call fails without touching the store.
    pub unreachable: bool,
}

impl MemoryWatermark {
    /// The reservation held now.
    pub fn current(&self) -> Reservation {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        Reservation {
            revision: shared.revision,
            state: shared.value.clone(),
        }
    }

    fn unreachable_error() -> WatermarkError {
        WatermarkError::Unreachable {
            endpoints: "memory".into(),
            reason: "injected fault".into(),
        }
    }
}

impl Watermark for MemoryWatermark {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn read(&mut self) -> Result<Reservation, WatermarkError> {
        if self.unreachable {
            return Err(Self::unreachable_error());
        }
        Ok(self.current())
    }

    fn reserve(
        &mut self,
        expected_revision: i64,
        next: &SignState,
    ) -> Result<Outcome, WatermarkError> {
        if self.unreachable {
            return Err(Self::unreachable_error());
        }
        let fault = std::mem::take(&mut self.next_fault);
        if fault == MemoryFault::FailBefore {
            return Err(Self::unreachable_error());
        }
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if shared.revision != expected_revision {
            return Ok(Outcome::Superseded(Reservation {
                revision: shared.revision,
                state: shared.value.clone(),
            }));
        }
        shared.revision += 1;
        shared.value = Some(SignState {
            signature: None,
            ..next.clone()
        });
        if fault == MemoryFault::FailAfter {
            return Err(Self::unreachable_error());
        }
        Ok(Outcome::Reserved(Reservation {
            revision: shared.revision,
            state: shared.value.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(height: u64, step: Step) -> SignState {
        SignState {
            position: Position {
                height: Height::try_from(height).unwrap(),
                round: Round::try_from(2i64).unwrap(),
                step,
            },
            sign_bytes: vec![1, 2, 3, 0xff],
            signature: Some(crate::types::Signature([7; 64])),
        }
    }

    #[test]
    fn values_round_trip_without_the_signature() {
        let s = state(12, Step::Precommit);
        let bytes = encode_value(&s, "signer-a");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"signer\":\"signer-a\""), "{text}");
        let back = decode_value(&bytes, "k").unwrap();
        assert_eq!(back.position, s.position);
        assert_eq!(back.sign_bytes, s.sign_bytes);
        assert_eq!(back.signature, None);
    }

    #[test]
    fn bad_values_name_the_key_and_the_reason() {
        for (bytes, reason) in [
            (&b"{}"[..], "not a reservation"),
            (
                br#"{"version":2,"height":1,"round":0,"step":1,"sign_bytes":"","signer":""}"#,
                "layout version 2",
            ),
            (
                br#"{"version":1,"height":1,"round":0,"step":0,"sign_bytes":"","signer":""}"#,
                "step 0",
            ),
            (
                br#"{"version":1,"height":1,"round":0,"step":9,"sign_bytes":"","signer":""}"#,
                "step",
            ),
            (
                br#"{"version":1,"height":1,"round":0,"step":1,"sign_bytes":"***","signer":""}"#,
                "sign_bytes",
            ),
        ] {
            let e = decode_value(bytes, "/tmkms/c/ab").unwrap_err().to_string();
            assert!(e.contains("/tmkms/c/ab") && e.contains(reason), "{e}");
        }
    }

    #[test]
    fn keys_are_per_chain_and_public_key() {
        let chain = ChainId::try_from("test-chain").unwrap();
        assert_eq!(
            reservation_key("/tmkms/", &chain, &[0xab, 0x01]),
            "/tmkms/test-chain/ab01"
        );
    }

    #[test]
    fn memory_store_compares_on_the_revision() {
        let mut a = MemoryWatermark::default();
        let mut b = a.clone();
        let s = state(1, Step::Propose);
        let Outcome::Reserved(r) = a.reserve(0, &s).unwrap() else {
            panic!("first reservation must commit")
        };
        assert_eq!(r.revision, 1);
        assert!(matches!(b.reserve(0, &s).unwrap(), Outcome::Superseded(x) if x.revision == 1));
        b.next_fault = MemoryFault::FailAfter;
        assert!(b.reserve(1, &state(2, Step::Propose)).is_err());
        assert_eq!(a.read().unwrap().revision, 2, "a lost reply still applied");
    }
}
