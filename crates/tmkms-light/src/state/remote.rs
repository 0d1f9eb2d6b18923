//! Write-ahead state kept by an untrusted host for an enclave.
//!
//! The enclave owns the guard; the host owns the disk. For each new state
//! the enclave encodes a record with the next sequence number and an
//! authentication tag ([`record::encode_tagged_slot`]), sends it, and returns
//! from `persist` — which lets a signature go out — only after the host
//! acknowledged a durable write of exactly that record. The host stores it
//! with the same two-slot file as softsign ([`FileStore::write_record`]).
//!
//! At start the enclave reads both slots and verifies them itself
//! ([`choose_state`]): a record whose tag does not verify, or a damaged slot,
//! stops the start (falling back to the other slot could be a rollback made
//! to look like damage). Records without a tag were written by host tools
//! (`init`, `state import`) and are accepted: moving state forward is always
//! safe, and a host that wants to reset state can hand over an empty file
//! anyway. A host can replay an older authentic pair of records; the enclave
//! cannot tell a whole-file replay from the truth, but it logs what it loaded
//! and warns when the two slots are not consecutive writes.
//!
//! Wire protocol (each message one [`crate::link`] frame):
//!
//! | direction | message |
//! |---|---|
//! | enclave → host | `L` — send me both slots |
//! | host → enclave | `S`, then per slot: 1 byte present (0/1) + 512 bytes |
//! | enclave → host | `W` + 512-byte record — write it durably |
//! | host → enclave | `A` + 8-byte little-endian sequence number written, or `E` + UTF-8 reason |

use std::io::{Read, Write};

use tracing::{info, warn};

use super::record::{check_tag, decode_slot, encode_tagged_slot, StateTagKey, TagCheck, SLOT_LEN};
use super::{StateError, StateStore};
use crate::link::{read_frame, write_frame, LinkError};
use crate::types::SignState;

#[cfg(unix)]
use super::file::FileStore;

const LOAD: u8 = b'L';
const SLOTS: u8 = b'S';
const WRITE: u8 = b'W';
const ACK: u8 = b'A';
const ERROR: u8 = b'E';

/// Largest state-protocol frame: a slots reply.
const MAX_STATE_FRAME: usize = 1 + 2 * (1 + SLOT_LEN);

/// The state an enclave starts from, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub state: SignState,
    /// Sequence number of the record chosen.
    pub seq: u64,
    /// Highest sequence number seen in either slot (the next write uses one more).
    pub max_seq: u64,
    /// Whether the chosen record carried a valid tag (else it was written by a host tool).
    pub authenticated: bool,
}

/// Verify both slots as read from the host and choose the state to start from.
///
/// Every slot must decode; a tagged record must carry a valid tag. The
/// record with the highest position wins (the highest sequence number among
/// equals), so an untagged record can move state forward but never back.
pub fn choose_state(
    slots: &[Option<[u8; SLOT_LEN]>; 2],
    key: &StateTagKey,
) -> Result<VerifiedState, StateError> {
    let mut records = Vec::with_capacity(2);
    for (index, slot) in slots.iter().enumerate() {
        let bytes = slot.as_ref().ok_or_else(|| StateError::Damaged {
            slot: index,
            reason: "the host could not read it".into(),
        })?;
        let (seq, state) = decode_slot(bytes).map_err(|e| StateError::Damaged {
            slot: index,
            reason: e.to_string(),
        })?;
        let authenticated = match check_tag(bytes, key) {
            TagCheck::Valid => true,
            TagCheck::Absent => false,
            TagCheck::Invalid => return Err(StateError::Forged { slot: index }),
        };
        records.push((seq, state, authenticated));
    }
    let max_seq = records.iter().map(|(seq, ..)| *seq).max().unwrap_or(0);
    if let [(a, _, true), (b, _, true)] = records.as_slice() {
        if a.abs_diff(*b) != 1 {
            warn!(
                slot0_seq = a,
                slot1_seq = b,
                "the two authenticated state records are not consecutive writes: \
                 the host replayed an older record into one slot"
            );
        }
    }
    let (seq, state, authenticated) = records
        .into_iter()
        .max_by_key(|(seq, state, _)| (state.position, *seq))
        .ok_or(StateError::Unavailable("no state slots".into()))?;
    Ok(VerifiedState {
        state,
        seq,
        max_seq,
        authenticated,
    })
}

/// Enclave side: a [`StateStore`] that persists through the host.
pub struct RemoteStore<S> {
    link: S,
    key: StateTagKey,
    next_seq: u64,
}

impl<S> std::fmt::Debug for RemoteStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

fn link_error(e: LinkError) -> StateError {
    StateError::Unavailable(format!("state stream to the host: {e}"))
}

impl<S: Read + Write + Send> RemoteStore<S> {
    pub fn new(link: S, key: StateTagKey) -> Self {
        Self {
            link,
            key,
            next_seq: 1,
        }
    }

    /// Fetch both slots from the host and verify them ([`choose_state`]).
    pub fn load_verified(&mut self) -> Result<VerifiedState, StateError> {
        write_frame(&mut self.link, &[LOAD]).map_err(|e| link_error(e.into()))?;
        let reply = read_frame(&mut self.link, MAX_STATE_FRAME).map_err(link_error)?;
        let slots = parse_slots(&reply)?;
        let verified = choose_state(&slots, &self.key)?;
        self.next_seq = verified.max_seq.saturating_add(1);
        if !verified.authenticated {
            warn!(
                at = %verified.state.position,
                "starting from a state record the enclave did not write (init or `state import`); \
                 make sure it is at or above the last height this validator signed"
            );
        }
        info!(
            seq = verified.seq,
            at = %verified.state.position,
            authenticated = verified.authenticated,
            "loaded state from the host (the host could present an older authentic record; \
             compare with the chain if in doubt)"
        );
        Ok(verified)
    }
}

fn parse_slots(reply: &[u8]) -> Result<[Option<[u8; SLOT_LEN]>; 2], StateError> {
    let malformed = || StateError::Unavailable("host sent a malformed slots reply".into());
    let (&kind, rest) = reply.split_first().ok_or_else(malformed)?;
    if kind == ERROR {
        return Err(StateError::Unavailable(format!(
            "host could not read the state: {}",
            String::from_utf8_lossy(rest)
        )));
    }
    if kind != SLOTS || rest.len() != 2 * (1 + SLOT_LEN) {
        return Err(malformed());
    }
    let mut out = [None, None];
    for (slot, chunk) in out.iter_mut().zip(rest.chunks_exact(1 + SLOT_LEN)) {
        let (&present, bytes) = chunk.split_first().ok_or_else(malformed)?;
        *slot = match present {
            0 => None,
            1 => Some(bytes.try_into().map_err(|_| malformed())?),
            _ => return Err(malformed()),
        };
    }
    Ok(out)
}

impl<S: Read + Write + Send> StateStore for RemoteStore<S> {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        self.load_verified().map(|v| Some(v.state))
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        let seq = self.next_seq;
        let record = encode_tagged_slot(seq, state, &self.key)?;
        let mut message = [0u8; 1 + SLOT_LEN];
        let (kind, body) = message.split_at_mut(1);
        kind.copy_from_slice(&[WRITE]);
        body.copy_from_slice(&record);
        write_frame(&mut self.link, &message).map_err(|e| link_error(e.into()))?;
        let reply = read_frame(&mut self.link, 4096).map_err(link_error)?;
        match reply.split_first() {
            Some((&ACK, acked)) if acked == seq.to_le_bytes() => {
                self.next_seq = seq.saturating_add(1);
                Ok(())
            }
            Some((&ERROR, reason)) => Err(StateError::Unavailable(format!(
                "host could not persist state: {}",
                String::from_utf8_lossy(reason)
            ))),
            // Anything else: the write's fate is unknown; sign nothing. The
            // next write uses a fresh sequence number either way.
            _ => {
                self.next_seq = seq.saturating_add(1);
                Err(StateError::Unavailable(
                    "host sent an unexpected reply to a state write".into(),
                ))
            }
        }
    }
}

/// Host side: answer an enclave's state requests from `store` until the
/// enclave closes the stream. Returns the error that ended the stream, if
/// it was not a clean close.
#[cfg(unix)]
pub fn serve_state<S: Read + Write>(link: &mut S, store: &mut FileStore) -> Result<(), LinkError> {
    loop {
        let request = match read_frame(link, 1 + SLOT_LEN) {
            Ok(request) => request,
            Err(LinkError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        };
        match request.split_first() {
            Some((&LOAD, [])) => {
                let mut reply = Vec::with_capacity(MAX_STATE_FRAME);
                reply.push(SLOTS);
                for slot in store.raw_slots() {
                    match slot {
                        Some(bytes) => {
                            reply.push(1);
                            reply.extend_from_slice(&bytes);
                        }
                        None => {
                            reply.push(0);
                            reply.extend_from_slice(&[0u8; SLOT_LEN]);
                        }
                    }
                }
                write_frame(link, &reply)?;
            }
            Some((&WRITE, record)) => {
                let reply = match <&[u8; SLOT_LEN]>::try_from(record)
                    .map_err(|_| {
                        StateError::Unavailable("state record has the wrong length".into())
                    })
                    .and_then(|record| store.write_record(record))
                {
                    Ok(seq) => [&[ACK][..], &seq.to_le_bytes()].concat(),
                    Err(e) => {
                        warn!(error = %e, "could not persist the enclave's state record");
                        [&[ERROR][..], e.to_string().as_bytes()].concat()
                    }
                };
                write_frame(link, &reply)?;
            }
            _ => {
                return Err(LinkError::Malformed(
                    "unknown request on the state stream".into(),
                ))
            }
        }
    }
}
