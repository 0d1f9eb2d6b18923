//! `record::decode_slot` on arbitrary bytes, and on the same bytes made into
//! a slot with a correct checksum (a fuzzer cannot forge SHA-256, so without
//! this it would never get past the checksum check).
//!
//! Whenever a slot decodes, encoding the decoded state must reproduce it byte
//! for byte: `encode_slot` for an untagged record; for a tagged one,
//! `encode_slot` reproduces everything but the flags, tag and checksum, and
//! the tag verifies under a key only if `encode_tagged_slot` with that key
//! gives exactly these bytes (a tag is never accepted for other contents).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tmkms_light::state::record::{
    check_tag, decode_slot, encode_slot, encode_tagged_slot, StateTagKey, TagCheck, MAX_SIGN_BYTES,
    SLOT_LEN,
};

const CHECKSUM_OFFSET: usize = SLOT_LEN - 32;
const TAG_OFFSET: usize = CHECKSUM_OFFSET - 32;
const FLAGS_OFFSET: usize = 11;

fn check(bytes: &[u8], key: &StateTagKey) {
    if let Ok((seq, state)) = decode_slot(bytes) {
        assert!(state.sign_bytes.len() <= MAX_SIGN_BYTES);
        let untagged = encode_slot(seq, &state).expect("a decoded state encodes");
        let tagged = bytes[FLAGS_OFFSET] & 1 == 1;
        if tagged {
            let mut stripped = [0u8; SLOT_LEN];
            stripped.copy_from_slice(bytes);
            stripped[FLAGS_OFFSET] = 0;
            stripped[TAG_OFFSET..CHECKSUM_OFFSET].fill(0);
            let checksum = Sha256::digest(&stripped[..CHECKSUM_OFFSET]);
            stripped[CHECKSUM_OFFSET..].copy_from_slice(&checksum);
            assert_eq!(untagged, stripped, "tagged record is not canonical");
            let genuine = encode_tagged_slot(seq, &state, key).expect("encodes");
            assert_eq!(
                check_tag(bytes, key) == TagCheck::Valid,
                genuine[..] == *bytes,
                "tag verification disagrees with the encoder"
            );
        } else {
            assert_eq!(
                &untagged[..],
                bytes,
                "encoding of a decoded slot is not canonical"
            );
            assert_eq!(check_tag(bytes, key), TagCheck::Absent);
        }
        assert_eq!(decode_slot(&untagged).expect("re-decodes"), (seq, state));
    }
}

fuzz_target!(|data: &[u8]| {
    let key = StateTagKey::derive(&[7u8; 32], "fuzz-chain");
    check(data, &key);

    let mut slot = [0u8; SLOT_LEN];
    let n = data.len().min(SLOT_LEN);
    slot[..n].copy_from_slice(&data[..n]);
    let checksum = Sha256::digest(&slot[..CHECKSUM_OFFSET]);
    slot[CHECKSUM_OFFSET..].copy_from_slice(&checksum);
    check(&slot, &key);
});
