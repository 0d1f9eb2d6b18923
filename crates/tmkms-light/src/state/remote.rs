//! Write-ahead state kept by an untrusted host for an enclave.
//!
//! The enclave owns the guard; the host owns the disk. For each new state
//! the enclave encodes a record with the next sequence number and an
//! authentication tag ([`record::encode_tagged_slot`]), sends it, and returns
//! from `persist` — which lets a signature go out — only after the host
//! acknowledged a durable write of exactly that record. The host stores it
//! with the same two-slot file as softsign ([`FileStore::write_record`]).
//!
//! The record written ahead carries no signature: the signature is made
//! inside the enclave while the host writes and leaves only after the
//! acknowledgement, so a host that keeps a record and answers with an error
//! holds nothing it could use.
//!
//! At start the enclave reads both slots and verifies them itself
//! ([`choose_state`]): it starts only from a record it authenticated, so a
//! fresh, untagged or deleted file stops the start (`init` and
//! `state import` go through the enclave, which tags what it accepts). A
//! damaged slot (a torn write) is passed over for the other authentic slot;
//! a record whose tag does not verify stops the start. A host can replay an
//! older authentic pair of records; the enclave cannot tell a whole-file
//! replay from the truth, but it logs what it loaded and warns when the two
//! slots are not consecutive writes.
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
/// Only a record the enclave authenticated (a valid tag) can be started
/// from. A slot that is missing or damaged (a torn write after a power cut)
/// or carries no tag is passed over with a warning, and the other slot is
/// used if it authenticates — passing over a damaged newer slot is no more
/// than the host could do anyway by replaying an older record. A record
/// with a valid checksum but a wrong tag was forged or belongs to another
/// key or chain: the start is refused. Among authentic records the highest
/// position wins (the highest sequence number among equals).
pub fn choose_state(
    slots: &[Option<[u8; SLOT_LEN]>; 2],
    key: &StateTagKey,
) -> Result<VerifiedState, StateError> {
    let mut authentic = Vec::with_capacity(2);
    let mut passed_over = Vec::new();
    let mut max_seq = 0u64;
    for (index, slot) in slots.iter().enumerate() {
        let Some(bytes) = slot.as_ref() else {
            passed_over.push(format!("slot {index}: missing"));
            continue;
        };
        let (seq, state) = match decode_slot(bytes) {
            Ok(decoded) => decoded,
            Err(e) => {
                passed_over.push(format!("slot {index}: damaged ({e})"));
                continue;
            }
        };
        max_seq = max_seq.max(seq);
        match check_tag(bytes, key) {
            TagCheck::Valid => authentic.push((index, seq, state)),
            TagCheck::Absent => passed_over.push(format!(
                "slot {index}: a record at {} without the enclave's tag (written by a host tool)",
                state.position
            )),
            TagCheck::Invalid => return Err(StateError::Forged { slot: index }),
        }
    }
    if let [(_, a, _), (_, b, _)] = authentic.as_slice() {
        if a.abs_diff(*b) != 1 {
            warn!(
                slot0_seq = a,
                slot1_seq = b,
                "the two authenticated state records are not consecutive writes: \
                 the host replayed an older record into one slot"
            );
        }
    }
    let Some((index, seq, state)) = authentic
        .into_iter()
        .max_by_key(|(_, seq, state)| (state.position, *seq))
    else {
        return Err(StateError::NoAuthenticRecord {
            found: passed_over.join("; "),
        });
    };
    for reason in &passed_over {
        warn!(
            %reason,
            using_slot = index,
            "passed over a state slot that does not hold an authentic record"
        );
    }
    Ok(VerifiedState {
        state,
        seq,
        max_seq,
        authenticated: true,
    })
}

/// Enclave side: a [`StateStore`] that persists through the host.
pub struct RemoteStore<S> {
    /// `None` once the stream failed: a reply that may still arrive on it
    /// could be taken for the answer to a later write.
    link: Option<S>,
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
    StateError::StreamLost(e.to_string())
}

impl<S: Read + Write + Send> RemoteStore<S> {
    /// Connect to the host's state store: fetch both slots, verify them
    /// ([`choose_state`]), and return the store with the state to start
    /// from. There is no other way to make a `RemoteStore`, so one is never
    /// used before its state was verified.
    pub fn connect(link: S, key: StateTagKey) -> Result<(Self, VerifiedState), StateError> {
        let mut store = Self {
            link: Some(link),
            key,
            next_seq: 1,
        };
        let verified = store.load_verified()?;
        Ok((store, verified))
    }

    fn link(&mut self) -> Result<&mut S, StateError> {
        self.link
            .as_mut()
            .ok_or_else(|| StateError::StreamLost("it failed before".into()))
    }

    /// Fetch both slots from the host and verify them ([`choose_state`]).
    fn load_verified(&mut self) -> Result<VerifiedState, StateError> {
        let link = self.link()?;
        write_frame(link, &[LOAD]).map_err(|e| link_error(e.into()))?;
        let reply = read_frame(link, MAX_STATE_FRAME).map_err(link_error)?;
        let slots = parse_slots(&reply)?;
        let verified = choose_state(&slots, &self.key)?;
        self.next_seq = verified.max_seq.saturating_add(1);
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
        self.persist_while(state, &mut || {})
    }

    /// `meanwhile` runs after the record was sent, while the host writes it.
    fn persist_while(
        &mut self,
        state: &SignState,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(), StateError> {
        let seq = self.next_seq;
        let record = encode_tagged_slot(seq, state, &self.key)?;
        // Once a record went out, its sequence number is spent, whatever
        // the reply: the host may have stored it, and a second, different
        // record under the same number could then replace it.
        self.next_seq = seq.saturating_add(1);
        let mut message = [0u8; 1 + SLOT_LEN];
        let (kind, body) = message.split_at_mut(1);
        kind.copy_from_slice(&[WRITE]);
        body.copy_from_slice(&record);
        let link = self.link()?;
        let sent = write_frame(link, &message).map_err(|e| link_error(e.into()));
        let reply = sent.and_then(|()| {
            meanwhile();
            read_frame(link, 4096).map_err(link_error)
        });
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.link = None;
                return Err(e);
            }
        };
        match reply.split_first() {
            Some((&ACK, acked)) if acked == seq.to_le_bytes() => Ok(()),
            Some((&ERROR, reason)) => Err(StateError::Unavailable(format!(
                "host could not persist state: {}",
                String::from_utf8_lossy(reason)
            ))),
            // Anything else: the write's fate is unknown; sign nothing.
            _ => Err(StateError::Unavailable(
                "host sent an unexpected reply to a state write".into(),
            )),
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
