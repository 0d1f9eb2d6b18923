//! Fixed-size, self-checking binary encoding of one [`SignState`] record.
//!
//! The file store keeps two of these slots and overwrites them alternately in
//! place, so a record must (a) have a fixed size, so that writing one never
//! moves another, (b) carry a sequence number, so that load can tell the newer
//! of two valid slots, and (c) detect a torn or corrupted write on its own,
//! so that load can fall back to the other slot instead of trusting garbage.
//!
//! The state file is untrusted input (it may be damaged, truncated or edited),
//! so decoding is strict: every byte is either a field with a checked range,
//! or padding that must be zero, and the checksum covers all of them. The
//! encoding is canonical: `encode_slot(decode_slot(b)) == b` for every `b`
//! that decodes, which the fuzz target checks.
//!
//! Layout (all integers little-endian, offsets in bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TMKLST01` |
//! | 8 | 1 | format version, [`FORMAT_VERSION`] |
//! | 9 | 1 | step (0 none, 1 propose, 2 prevote, 3 precommit) |
//! | 10 | 1 | has signature (0 or 1) |
//! | 11 | 1 | flags: bit 0 = authentication tag present; other bits zero |
//! | 12 | 4 | round (at most `i32::MAX`) |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | height (at most `i64::MAX`) |
//! | 32 | 64 | signature, all zero when absent |
//! | 96 | 2 | sign bytes length (at most [`MAX_SIGN_BYTES`]) |
//! | 98 | 320 | sign bytes, zero after the length |
//! | 418 | 30 | zero padding (room for later versions) |
//! | 448 | 32 | authentication tag, all zero when absent |
//! | 480 | 32 | SHA-256 of bytes 0..480 |
//!
//! # Authentication tag
//!
//! The checksum only detects accidents. An enclave keeps its state on an
//! untrusted host, so it also writes a tag: HMAC-SHA-256 over bytes 0..448
//! (the flags byte included) under a key only the enclave can derive
//! ([`StateTagKey`]). The host stores and returns tagged records like any
//! other; the enclave refuses one whose tag does not verify. Records written
//! by host tools (`init`, `state import`) carry no tag.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::types::{Height, Position, Round, SignState, Signature, Step, SIGNATURE_LEN};

/// Size of one encoded record: one 512-byte logical sector. Correctness does
/// not depend on the device writing it atomically; the checksum catches a
/// partial write.
pub const SLOT_LEN: usize = 512;

/// Longest sign bytes a record holds. A canonical vote or proposal with a
/// 50-byte chain id, a full block id and the widest timestamp and round
/// encodings is under 200 bytes (length prefix included); the rest is margin.
pub const MAX_SIGN_BYTES: usize = 320;

/// First bytes of every record: identifies the file type at a glance.
pub const MAGIC: [u8; 8] = *b"TMKLST01";

/// Layout version written by this code.
pub const FORMAT_VERSION: u8 = 1;

const CHECKSUM_LEN: usize = 32;
/// Everything before this offset is covered by the checksum.
const CHECKSUM_OFFSET: usize = SLOT_LEN - CHECKSUM_LEN;
/// Length of the authentication tag.
pub const TAG_LEN: usize = 32;
/// Everything before this offset is covered by the tag.
const TAG_OFFSET: usize = CHECKSUM_OFFSET - TAG_LEN;
/// Offset of the flags byte.
const FLAGS_OFFSET: usize = 11;
/// Flag: the record carries an authentication tag.
const FLAG_TAGGED: u8 = 1;

/// Key of the records' authentication tags. Derived inside the enclave from
/// the consensus key and the chain id, so the host, which never sees the
/// key, cannot make a valid tag, and a record of one chain does not verify
/// for another.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StateTagKey([u8; 32]);

impl StateTagKey {
    /// Derive the key for `chain_id` from the consensus key's secret seed.
    pub fn derive(consensus_seed: &[u8; 32], chain_id: &str) -> Self {
        let mut mac = hmac_with(consensus_seed);
        mac.update(b"tmkms-light state record tag v1\0");
        mac.update(chain_id.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    fn tag(&self, covered: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = hmac_with(&self.0);
        mac.update(covered);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for StateTagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateTagKey(<redacted>)")
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// How a slot's authentication tag compares to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagCheck {
    /// The record carries a tag made with the key.
    Valid,
    /// The record carries no tag (written by a host tool).
    Absent,
    /// The record carries a tag that this key did not make: forged,
    /// modified, or written for another key or chain.
    Invalid,
}

/// Why a slot does not hold a valid record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record is {len} bytes, expected {SLOT_LEN}")]
    Length { len: usize },
    #[error("record does not start with the state magic (not a tmkms-light state slot, or never written)")]
    BadMagic,
    #[error("record format version {0} is not supported by this version (it reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    #[error("record checksum does not match (torn write or corruption)")]
    BadChecksum,
    #[error("record field {field} has the out-of-range value {value}")]
    FieldOutOfRange { field: &'static str, value: u64 },
    #[error("record has non-zero bytes in {field}, which must be zero")]
    NonZeroPadding { field: &'static str },
    #[error("sign bytes are {len} bytes long, a state record holds at most {MAX_SIGN_BYTES}")]
    SignBytesTooLong { len: usize },
}

/// Encode `state` with sequence number `seq` into one slot.
///
/// Fails only if the state cannot be represented (sign bytes longer than
/// [`MAX_SIGN_BYTES`]). No heap allocation: the hot path of every signature
/// calls this.
pub fn encode_slot(seq: u64, state: &SignState) -> Result<[u8; SLOT_LEN], RecordError> {
    let sign_bytes = state.sign_bytes.as_slice();
    let sign_len = u16::try_from(sign_bytes.len())
        .ok()
        .filter(|&len| usize::from(len) <= MAX_SIGN_BYTES)
        .ok_or(RecordError::SignBytesTooLong {
            len: sign_bytes.len(),
        })?;
    let (has_signature, signature) = match &state.signature {
        Some(sig) => (1u8, sig.0),
        None => (0u8, [0u8; SIGNATURE_LEN]),
    };

    let mut out = [0u8; SLOT_LEN];
    let mut w = Writer::new(&mut out);
    w.put(&MAGIC)?;
    w.put(&[
        FORMAT_VERSION,
        state.position.step.as_u8(),
        has_signature,
        0,
    ])?;
    w.put(&state.position.round.value().to_le_bytes())?;
    w.put(&seq.to_le_bytes())?;
    w.put(&state.position.height.value().to_le_bytes())?;
    w.put(&signature)?;
    w.put(&sign_len.to_le_bytes())?;
    w.put(sign_bytes)?;
    // The rest up to the checksum stays zero.

    let (covered, checksum) = out
        .split_at_mut_checked(CHECKSUM_OFFSET)
        .ok_or(RecordError::Length { len: SLOT_LEN })?;
    checksum.copy_from_slice(&Sha256::digest(&*covered));
    Ok(out)
}

/// Encode `state` like [`encode_slot`], with an authentication tag made with
/// `key`.
pub fn encode_tagged_slot(
    seq: u64,
    state: &SignState,
    key: &StateTagKey,
) -> Result<[u8; SLOT_LEN], RecordError> {
    // Only reachable if the layout constants were inconsistent.
    let layout = || RecordError::Length { len: SLOT_LEN };
    let mut out = encode_slot(seq, state)?;
    *out.get_mut(FLAGS_OFFSET).ok_or_else(layout)? = FLAG_TAGGED;
    let tag = key.tag(out.get(..TAG_OFFSET).ok_or_else(layout)?);
    out.get_mut(TAG_OFFSET..CHECKSUM_OFFSET)
        .ok_or_else(layout)?
        .copy_from_slice(&tag);
    let digest = Sha256::digest(out.get(..CHECKSUM_OFFSET).ok_or_else(layout)?);
    out.get_mut(CHECKSUM_OFFSET..)
        .ok_or_else(layout)?
        .copy_from_slice(&digest);
    Ok(out)
}

/// Check the authentication tag of a slot that [`decode_slot`] accepted.
pub fn check_tag(bytes: &[u8], key: &StateTagKey) -> TagCheck {
    let flags = bytes.get(FLAGS_OFFSET).copied().unwrap_or(0);
    let (Some(covered), Some(tag)) = (
        bytes.get(..TAG_OFFSET),
        bytes.get(TAG_OFFSET..CHECKSUM_OFFSET),
    ) else {
        return TagCheck::Invalid;
    };
    if flags & FLAG_TAGGED == 0 {
        return TagCheck::Absent;
    }
    if bool::from(key.tag(covered).ct_eq(tag)) {
        TagCheck::Valid
    } else {
        TagCheck::Invalid
    }
}

/// Decode one slot into its sequence number and state.
///
/// Never panics; every malformed input is an error.
pub fn decode_slot(bytes: &[u8]) -> Result<(u64, SignState), RecordError> {
    if bytes.len() != SLOT_LEN {
        return Err(RecordError::Length { len: bytes.len() });
    }
    let mut r = Reader::new(bytes);
    if r.array::<8>()? != MAGIC {
        return Err(RecordError::BadMagic);
    }
    let [version, step, has_signature, flags] = r.array::<4>()?;
    if version != FORMAT_VERSION {
        return Err(RecordError::UnsupportedVersion(version));
    }
    let (covered, checksum) = bytes
        .split_at_checked(CHECKSUM_OFFSET)
        .ok_or(RecordError::Length { len: bytes.len() })?;
    if Sha256::digest(covered).as_slice() != checksum {
        return Err(RecordError::BadChecksum);
    }

    // The checksum matched, so what follows was written by an encoder; the
    // checks below still reject records no encoder of this version writes.
    if flags & !FLAG_TAGGED != 0 {
        return Err(RecordError::NonZeroPadding { field: "flags" });
    }
    let step = Step::try_from(step).map_err(|_| RecordError::FieldOutOfRange {
        field: "step",
        value: u64::from(step),
    })?;
    let round_raw = u32::from_le_bytes(r.array()?);
    let round =
        Round::try_from(i64::from(round_raw)).map_err(|_| RecordError::FieldOutOfRange {
            field: "round",
            value: u64::from(round_raw),
        })?;
    let seq = u64::from_le_bytes(r.array()?);
    let height_raw = u64::from_le_bytes(r.array()?);
    let height = Height::try_from(height_raw).map_err(|_| RecordError::FieldOutOfRange {
        field: "height",
        value: height_raw,
    })?;
    let signature_raw = r.array::<SIGNATURE_LEN>()?;
    let signature = match has_signature {
        1 => Some(Signature(signature_raw)),
        0 if signature_raw == [0u8; SIGNATURE_LEN] => None,
        0 => {
            return Err(RecordError::NonZeroPadding {
                field: "absent signature",
            })
        }
        other => {
            return Err(RecordError::FieldOutOfRange {
                field: "has_signature",
                value: u64::from(other),
            })
        }
    };
    let sign_len = usize::from(u16::from_le_bytes(r.array()?));
    if sign_len > MAX_SIGN_BYTES {
        return Err(RecordError::SignBytesTooLong { len: sign_len });
    }
    let sign_bytes = r.take(sign_len)?.to_vec();
    let padding = r.take(TAG_OFFSET.saturating_sub(r.pos))?;
    if padding.iter().any(|&b| b != 0) {
        return Err(RecordError::NonZeroPadding { field: "padding" });
    }
    let tag = r.take(TAG_LEN)?;
    if flags & FLAG_TAGGED == 0 && tag.iter().any(|&b| b != 0) {
        return Err(RecordError::NonZeroPadding {
            field: "absent tag",
        });
    }

    Ok((
        seq,
        SignState {
            position: Position {
                height,
                round,
                step,
            },
            sign_bytes,
            signature,
        },
    ))
}

/// Bounds-checked cursor over an input slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let short = RecordError::Length {
            len: self.bytes.len(),
        };
        let end = self.pos.checked_add(n).ok_or(short.clone())?;
        let out = self.bytes.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let len = self.bytes.len();
        self.take(N)?
            .try_into()
            .map_err(|_| RecordError::Length { len })
    }
}

/// Bounds-checked cursor over the output buffer.
struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        // Only reachable if the layout constants above were inconsistent.
        let overflow = RecordError::Length { len: SLOT_LEN };
        let end = self.pos.checked_add(bytes.len()).ok_or(overflow.clone())?;
        if end > TAG_OFFSET {
            return Err(overflow);
        }
        self.out
            .get_mut(self.pos..end)
            .ok_or(overflow)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SignState {
        SignState {
            position: Position {
                height: Height::try_from(1_234_567i64).unwrap(),
                round: Round::try_from(2i64).unwrap(),
                step: Step::Precommit,
            },
            sign_bytes: (0..MAX_SIGN_BYTES).map(|i| (i as u8) ^ 0x5a).collect(),
            signature: Some(Signature([7u8; SIGNATURE_LEN])),
        }
    }

    /// Rewrite the checksum after a test tampered with covered bytes, so the
    /// field checks behind it are reached.
    fn reseal(slot: &mut [u8; SLOT_LEN]) {
        let digest = Sha256::digest(&slot[..CHECKSUM_OFFSET]);
        slot[CHECKSUM_OFFSET..].copy_from_slice(&digest);
    }

    #[test]
    fn layout_fits_the_slot() {
        // magic + header + round + seq + height + signature + length + bytes
        let fields = 8 + 4 + 4 + 8 + 8 + SIGNATURE_LEN + 2 + MAX_SIGN_BYTES;
        assert!(fields <= CHECKSUM_OFFSET, "{fields} > {CHECKSUM_OFFSET}");
    }

    #[test]
    fn round_trips_full_and_empty_states() {
        for (seq, state) in [
            (1, sample()),
            (u64::MAX, sample()),
            (0, SignState::default()),
            (9, SignState::at_height(Height::try_from(i64::MAX).unwrap())),
        ] {
            let slot = encode_slot(seq, &state).unwrap();
            assert_eq!(decode_slot(&slot).unwrap(), (seq, state));
        }
    }

    #[test]
    fn encodes_the_documented_layout() {
        let slot = encode_slot(0x0102, &sample()).unwrap();
        assert_eq!(&slot[..8], b"TMKLST01");
        assert_eq!(slot[8..12], [1, 3, 1, 0]);
        assert_eq!(slot[12..16], 2u32.to_le_bytes());
        assert_eq!(slot[16..24], 0x0102u64.to_le_bytes());
        assert_eq!(slot[24..32], 1_234_567u64.to_le_bytes());
        assert_eq!(slot[32..96], [7u8; 64]);
        assert_eq!(slot[96..98], (MAX_SIGN_BYTES as u16).to_le_bytes());
        assert!(slot[418..480].iter().all(|&b| b == 0));
    }

    #[test]
    fn rejects_sign_bytes_that_do_not_fit() {
        let mut state = sample();
        state.sign_bytes = vec![1; MAX_SIGN_BYTES + 1];
        assert_eq!(
            encode_slot(1, &state),
            Err(RecordError::SignBytesTooLong {
                len: MAX_SIGN_BYTES + 1
            })
        );
        state.sign_bytes = vec![1; 70_000];
        assert!(encode_slot(1, &state).is_err());
    }

    #[test]
    fn rejects_every_single_bit_flip() {
        let slot = encode_slot(5, &sample()).unwrap();
        for bit in 0..SLOT_LEN * 8 {
            let mut bad = slot;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_slot(&bad).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn rejects_wrong_lengths_and_blank_slots() {
        let slot = encode_slot(5, &sample()).unwrap();
        assert_eq!(decode_slot(&[]), Err(RecordError::Length { len: 0 }));
        assert_eq!(
            decode_slot(&slot[..SLOT_LEN - 1]),
            Err(RecordError::Length { len: SLOT_LEN - 1 })
        );
        assert_eq!(decode_slot(&[0u8; SLOT_LEN]), Err(RecordError::BadMagic));
    }

    fn tag_key(chain: &str) -> StateTagKey {
        StateTagKey::derive(&[42u8; 32], chain)
    }

    #[test]
    fn tagged_records_round_trip_and_verify_only_under_their_key() {
        let key = tag_key("chain-a");
        let slot = encode_tagged_slot(7, &sample(), &key).unwrap();
        assert_eq!(slot[11], 1, "flags byte marks the tag");
        assert_ne!(slot[448..480], [0u8; 32]);
        assert_eq!(decode_slot(&slot).unwrap(), (7, sample()));
        assert_eq!(check_tag(&slot, &key), TagCheck::Valid);
        assert_eq!(check_tag(&slot, &tag_key("chain-b")), TagCheck::Invalid);
        let other_seed = StateTagKey::derive(&[43u8; 32], "chain-a");
        assert_eq!(check_tag(&slot, &other_seed), TagCheck::Invalid);
        let untagged = encode_slot(7, &sample()).unwrap();
        assert_eq!(check_tag(&untagged, &key), TagCheck::Absent);
    }

    #[test]
    fn every_resealed_bit_flip_of_a_tagged_record_fails_its_tag_or_decoding() {
        // A host that recomputes the checksum still cannot change any bit
        // the tag covers (0..448) or the tag itself without detection.
        let key = tag_key("chain-a");
        let good = encode_tagged_slot(7, &sample(), &key).unwrap();
        for byte in 0..CHECKSUM_OFFSET {
            for bit in 0..8 {
                let mut slot = good;
                slot[byte] ^= 1 << bit;
                reseal(&mut slot);
                let accepted =
                    decode_slot(&slot).is_ok() && check_tag(&slot, &key) == TagCheck::Valid;
                assert!(!accepted, "flip of bit {bit} in byte {byte} went unnoticed");
            }
        }
    }

    #[test]
    fn tag_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", tag_key("c")), "StateTagKey(<redacted>)");
    }

    #[test]
    fn rejects_unknown_version() {
        let mut slot = encode_slot(5, &sample()).unwrap();
        slot[8] = 2;
        reseal(&mut slot);
        assert_eq!(decode_slot(&slot), Err(RecordError::UnsupportedVersion(2)));
    }

    #[test]
    fn rejects_out_of_range_fields_even_with_a_valid_checksum() {
        let good = encode_slot(5, &sample()).unwrap();
        let cases: [(usize, &[u8], RecordError); 8] = [
            (
                9,
                &[4],
                RecordError::FieldOutOfRange {
                    field: "step",
                    value: 4,
                },
            ),
            (
                10,
                &[2],
                RecordError::FieldOutOfRange {
                    field: "has_signature",
                    value: 2,
                },
            ),
            (11, &[2], RecordError::NonZeroPadding { field: "flags" }),
            (
                12,
                &0x8000_0000u32.to_le_bytes(),
                RecordError::FieldOutOfRange {
                    field: "round",
                    value: 0x8000_0000,
                },
            ),
            (
                24,
                &(1u64 << 63).to_le_bytes(),
                RecordError::FieldOutOfRange {
                    field: "height",
                    value: 1 << 63,
                },
            ),
            (
                96,
                &(MAX_SIGN_BYTES as u16 + 1).to_le_bytes(),
                RecordError::SignBytesTooLong {
                    len: MAX_SIGN_BYTES + 1,
                },
            ),
            (447, &[1], RecordError::NonZeroPadding { field: "padding" }),
            (
                479,
                &[1],
                RecordError::NonZeroPadding {
                    field: "absent tag",
                },
            ),
        ];
        for (offset, patch, expected) in cases {
            let mut slot = good;
            slot[offset..offset + patch.len()].copy_from_slice(patch);
            reseal(&mut slot);
            assert_eq!(decode_slot(&slot), Err(expected), "patch at {offset}");
        }
    }

    #[test]
    fn rejects_bytes_after_the_sign_bytes_and_an_absent_signature_with_data() {
        let mut state = sample();
        state.sign_bytes.truncate(10);
        let good = encode_slot(5, &state).unwrap();

        let mut slot = good;
        slot[98 + 10] = 1;
        reseal(&mut slot);
        assert_eq!(
            decode_slot(&slot),
            Err(RecordError::NonZeroPadding { field: "padding" })
        );

        let mut slot = good;
        slot[10] = 0; // has_signature = 0 but the signature bytes remain
        reseal(&mut slot);
        assert_eq!(
            decode_slot(&slot),
            Err(RecordError::NonZeroPadding {
                field: "absent signature"
            })
        );
    }

    fn arb_state() -> impl Strategy<Value = SignState> {
        (
            0..=i64::MAX,
            0..=i64::from(i32::MAX),
            0u8..=3,
            proptest::collection::vec(any::<u8>(), 0..=MAX_SIGN_BYTES),
            proptest::option::of(proptest::array::uniform32(any::<u8>())),
        )
            .prop_map(|(h, r, s, sign_bytes, sig)| SignState {
                position: Position {
                    height: Height::try_from(h).unwrap(),
                    round: Round::try_from(r).unwrap(),
                    step: Step::try_from(s).unwrap(),
                },
                sign_bytes,
                signature: sig.map(|half| {
                    let mut full = [0u8; SIGNATURE_LEN];
                    full[..32].copy_from_slice(&half);
                    full[32..].copy_from_slice(&half);
                    Signature(full)
                }),
            })
    }

    proptest! {
        #[test]
        fn round_trips_any_state(seq in any::<u64>(), state in arb_state()) {
            let slot = encode_slot(seq, &state).unwrap();
            prop_assert_eq!(decode_slot(&slot).unwrap(), (seq, state));
        }

        #[test]
        fn never_panics_and_stays_canonical_on_mutated_slots(
            seq in any::<u64>(),
            state in arb_state(),
            edits in proptest::collection::vec((0..SLOT_LEN, any::<u8>()), 0..8),
            reseal_after in any::<bool>(),
        ) {
            let mut slot = encode_slot(seq, &state).unwrap();
            for (at, value) in edits {
                slot[at] = value;
            }
            if reseal_after {
                reseal(&mut slot);
            }
            if let Ok((seq, state)) = decode_slot(&slot) {
                prop_assert_eq!(encode_slot(seq, &state).unwrap(), slot);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = decode_slot(&bytes);
        }
    }
}
