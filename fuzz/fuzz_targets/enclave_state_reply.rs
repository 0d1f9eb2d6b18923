//! What an enclave accepts from its untrusted host on the state stream at
//! start: `state::remote::choose_state` on the two slots, and
//! `RemoteStore::load_verified` over a stream whose reply the host chose.
//!
//! Input: flags byte, then slot 0 and slot 1 (512 bytes each, zero-padded).
//! Flags: bits 0/1 — slot 0/1 present; bits 2/3 — give it a correct
//! checksum (a fuzzer cannot forge SHA-256); bits 4/5 — if it decodes,
//! replace it by the record the enclave itself would write for it (tagged
//! with the enclave's key: a host can replay such records); bit 6 — the
//! bytes after the flags are the whole raw stream reply, instead of a
//! well-formed `S` frame built from the slots.
//!
//! Invariants besides "never panics":
//! * `choose_state` succeeds only if both slots are present and decode, and
//!   then chooses the record at the highest position (the highest sequence
//!   number among equal positions), reports the highest sequence number
//!   seen, and calls it authenticated only if its tag verifies — a tagged
//!   slot that does not verify is never accepted;
//! * `load_verified` sends exactly one `L` request frame, and returns what
//!   `choose_state` returns for the slots in the reply when the reply is a
//!   well-formed slots frame, and an error for anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tmkms_light::state::record::{
    check_tag, decode_slot, encode_tagged_slot, StateTagKey, TagCheck, SLOT_LEN,
};
use tmkms_light::state::remote::{choose_state, RemoteStore, VerifiedState};
use tmkms_light_fuzz::pipe::Pipe;

const CHECKSUM_OFFSET: usize = SLOT_LEN - 32;

fn key() -> StateTagKey {
    StateTagKey::derive(&[7u8; 32], "fuzz-chain")
}

fn build_slot(bytes: &[u8], fix_checksum: bool, retag: bool, key: &StateTagKey) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    let n = bytes.len().min(SLOT_LEN);
    slot[..n].copy_from_slice(&bytes[..n]);
    if fix_checksum {
        let checksum = Sha256::digest(&slot[..CHECKSUM_OFFSET]);
        slot[CHECKSUM_OFFSET..].copy_from_slice(&checksum);
    }
    if retag {
        if let Ok((seq, state)) = decode_slot(&slot) {
            slot = encode_tagged_slot(seq, &state, key).expect("a decoded state encodes");
        }
    }
    slot
}

/// Checks `choose_state`'s answer against the slots.
fn check_choice(slots: &[Option<[u8; SLOT_LEN]>; 2], key: &StateTagKey) -> Option<VerifiedState> {
    let chosen = choose_state(slots, key);
    let decoded: Vec<_> = slots
        .iter()
        .filter_map(|s| s.as_ref().and_then(|b| decode_slot(b).ok().map(|d| (b, d))))
        .collect();
    let forged = decoded
        .iter()
        .any(|(bytes, _)| check_tag(&bytes[..], key) == TagCheck::Invalid);
    let authentic: Vec<_> = decoded
        .iter()
        .filter(|(bytes, _)| check_tag(&bytes[..], key) == TagCheck::Valid)
        .collect();
    let Ok(v) = chosen else {
        // Refused: a forged slot, or no authentic one.
        assert!(forged || authentic.is_empty(), "refused an authentic state");
        return None;
    };
    assert!(!forged, "accepted a state next to a forged slot");
    assert!(v.authenticated, "started from an unauthenticated record");
    assert!(
        authentic
            .iter()
            .any(|(_, (seq, state))| *seq == v.seq && *state == v.state),
        "the chosen record is not an authentic slot"
    );
    for (_, (seq, state)) in &authentic {
        assert!(
            (state.position, *seq) <= (v.state.position, v.seq),
            "chose {}#{} over {}#{}",
            v.state.position,
            v.seq,
            state.position,
            seq
        );
    }
    for (_, (seq, _)) in &decoded {
        assert!(*seq <= v.max_seq, "max_seq below a slot's sequence");
    }
    assert!(
        decoded.iter().any(|(_, (seq, _))| *seq == v.max_seq),
        "max_seq is not a slot's"
    );
    Some(v)
}

/// The slots a raw reply carries if it is one well-formed slots frame.
fn parse_reply(reply: &[u8]) -> Option<[Option<[u8; SLOT_LEN]>; 2]> {
    let (len, body) = reply.split_first_chunk::<4>()?;
    let body = body.get(..u32::from_le_bytes(*len) as usize)?;
    let (&kind, rest) = body.split_first()?;
    if kind != b'S' || rest.len() != 2 * (1 + SLOT_LEN) {
        return None;
    }
    let mut slots = [None, None];
    for (slot, chunk) in slots.iter_mut().zip(rest.chunks_exact(1 + SLOT_LEN)) {
        *slot = match chunk[0] {
            0 => None,
            1 => Some(chunk[1..].try_into().ok()?),
            _ => return None,
        };
    }
    Some(slots)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let key = key();
    let part = |i: usize| rest.get(i * SLOT_LEN..).unwrap_or(&[]);
    let slot = |i: usize| {
        build_slot(
            part(i),
            flags >> (2 + i) & 1 == 1,
            flags >> (4 + i) & 1 == 1,
            &key,
        )
    };
    let slots = [
        (flags & 1 == 1).then(|| slot(0)),
        (flags & 2 == 2).then(|| slot(1)),
    ];
    let expected = check_choice(&slots, &key);

    let reply = if flags & 0x40 != 0 {
        rest.to_vec()
    } else {
        let mut body = vec![b'S'];
        for s in &slots {
            body.push(u8::from(s.is_some()));
            body.extend_from_slice(s.as_ref().map_or(&[0u8; SLOT_LEN][..], |b| &b[..]));
        }
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    };
    // The host side of the stream: replies, and records what the enclave writes.
    let mut host = Pipe::new(&reply);
    let loaded = RemoteStore::connect(&mut host, key.clone()).map(|(_, verified)| verified);
    assert_eq!(
        host.output,
        [1, 0, 0, 0, b'L'],
        "the enclave's load request"
    );

    let reply_slots = parse_reply(&reply);
    let expected = match (flags & 0x40 != 0, &reply_slots) {
        (true, Some(s)) => check_choice(s, &key),
        (true, None) => None,
        (false, _) => expected,
    };
    match (&loaded, &expected) {
        (Ok(a), Some(b)) => assert_eq!(a, b),
        (Err(_), None) => {}
        _ => panic!("load_verified {loaded:?} disagrees with choose_state {expected:?}"),
    }
});
