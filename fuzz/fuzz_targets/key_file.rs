//! The key-file parsers (`keys::parse_consensus_key_file`,
//! `keys::parse_identity_key_file`) on arbitrary bytes: base64 seeds, base64
//! seed+public key, CometBFT `priv_validator_key.json` / `node_key.json`.
//!
//! A key that parses must survive a round trip through our key-file format
//! (base64 of its seed): same public key, and the same seed.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use tmkms_light::keys::{parse_consensus_key_file, parse_identity_key_file};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_consensus_key_file(data) {
        let file = format!("{}\n", STANDARD.encode(key.secret_seed().as_slice()));
        let again = parse_consensus_key_file(file.as_bytes()).expect("our own key file parses");
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(*again.secret_seed(), *key.secret_seed());
        let message = b"fuzz";
        assert!(key.public_key().verify(message, &key.sign(message)));
    }
    if let Ok(key) = parse_identity_key_file(data) {
        let file = format!("{}\n", STANDARD.encode(key.secret_seed().as_slice()));
        let again = parse_identity_key_file(file.as_bytes()).expect("our own key file parses");
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(*again.secret_seed(), *key.secret_seed());
    }
});
