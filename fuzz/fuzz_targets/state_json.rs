//! `import::parse_state_json` on arbitrary UTF-8, in every format.
//!
//! A state that parses is exported with `to_cometbft_json` and must parse
//! back (as CometBFT and as auto-detected) to the same state. Auto-detection
//! must agree with one of the explicit formats.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmkms_light::state::import::{parse_state_json, to_cometbft_json, ImportFormat};
use tmkms_light::state::record::MAX_SIGN_BYTES;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let auto = parse_state_json(text, ImportFormat::Auto);
    let cometbft = parse_state_json(text, ImportFormat::CometBft);
    let tmkms = parse_state_json(text, ImportFormat::Tmkms);
    if let Ok(state) = &auto {
        assert!(
            cometbft.as_ref() == Ok(state) || tmkms.as_ref() == Ok(state),
            "auto-detected state matches neither explicit format"
        );
    }
    for state in [auto, cometbft, tmkms].into_iter().flatten() {
        assert!(state.sign_bytes.len() <= MAX_SIGN_BYTES);
        let exported = to_cometbft_json(&state);
        assert_eq!(
            parse_state_json(&exported, ImportFormat::CometBft).as_ref(),
            Ok(&state),
            "exported state does not read back: {exported}"
        );
        assert_eq!(
            parse_state_json(&exported, ImportFormat::Auto).as_ref(),
            Ok(&state),
            "exported state is not auto-detected: {exported}"
        );
    }
});
