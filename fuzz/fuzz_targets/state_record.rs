//! `record::decode_slot` on arbitrary bytes, and on the same bytes made into
//! a slot with a correct checksum (a fuzzer cannot forge SHA-256, so without
//! this it would never get past the checksum check).
//!
//! Whenever a slot decodes, `encode_slot(seq, &state)` must reproduce it
//! byte for byte: the encoding is canonical, so a state read from disk is
//! exactly the state that was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tmkms_light::state::record::{decode_slot, encode_slot, MAX_SIGN_BYTES, SLOT_LEN};

const CHECKSUM_OFFSET: usize = SLOT_LEN - 32;

fn check(bytes: &[u8]) {
    if let Ok((seq, state)) = decode_slot(bytes) {
        assert!(state.sign_bytes.len() <= MAX_SIGN_BYTES);
        let encoded = encode_slot(seq, &state).expect("a decoded state encodes");
        assert_eq!(
            &encoded[..],
            bytes,
            "encoding of a decoded slot is not canonical"
        );
        assert_eq!(decode_slot(&encoded).expect("re-decodes"), (seq, state));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);

    let mut slot = [0u8; SLOT_LEN];
    let n = data.len().min(SLOT_LEN);
    slot[..n].copy_from_slice(&data[..n]);
    let checksum = Sha256::digest(&slot[..CHECKSUM_OFFSET]);
    slot[CHECKSUM_OFFSET..].copy_from_slice(&checksum);
    check(&slot);
});
