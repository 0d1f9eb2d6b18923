//! The etcd gateway's answers as the HA client reads them: a range of the
//! reservation key, a compare-and-swap's outcome, and the stored value
//! itself (`tmkms_light::ha::decode_value`). A member, or anyone on the
//! path before TLS ends, chooses these bytes.
//!
//! Input layout: byte 0 picks what is parsed (range answer, txn answer, or
//! a stored value); the rest is the body.
//!
//! Invariants besides "never panics":
//! * a read reservation has a state exactly when its revision is positive;
//! * a committed txn reports a positive revision and the requested state;
//! * a decoded value never carries a signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmkms_light::ha::{decode_value, Outcome};
use tmkms_light::types::{Height, Position, Round, SignState, Step};
use tmkms_light_etcd::gateway::{outcome_of_txn, reservation_of_range};

const KEY: &str = "/tmkms-light/fuzz-chain/00";

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let next = SignState {
        position: Position {
            height: Height::from(7u32),
            round: Round::from(0u16),
            step: Step::Prevote,
        },
        sign_bytes: vec![1, 2, 3],
        signature: None,
    };
    match which % 3 {
        0 => {
            let Ok(answer) = serde_json::from_slice(body) else {
                return;
            };
            if let Ok(r) = reservation_of_range(&answer, KEY) {
                assert_eq!(r.state.is_some(), r.revision > 0);
            }
        }
        1 => {
            let Ok(answer) = serde_json::from_slice(body) else {
                return;
            };
            match outcome_of_txn(&answer, KEY, &next) {
                Ok(Outcome::Reserved(r)) => {
                    assert!(r.revision > 0);
                    assert_eq!(r.state.as_ref(), Some(&next));
                }
                Ok(Outcome::Superseded(r)) => assert_eq!(r.state.is_some(), r.revision > 0),
                Err(_) => {}
            }
        }
        _ => {
            if let Ok(state) = decode_value(body, KEY) {
                assert!(state.signature.is_none());
            }
        }
    }
});
