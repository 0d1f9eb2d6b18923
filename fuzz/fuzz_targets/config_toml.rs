//! `Config::from_toml_str` on arbitrary UTF-8.
//!
//! A config that validates must hold what its type promises: at least one
//! validator, absolute paths, the documented frame and timeout bounds, an
//! id key for every `tcp://` validator, and addresses that print and parse
//! back to themselves.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tmkms_light::config::{
    Address, Config, MAX_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES, MIN_TIMEOUT_SECS,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml_str(text, Path::new("/tmp/fuzz/tmkms.toml")) else {
        return;
    };
    assert!(!config.validator.is_empty());
    assert!(config.consensus_key_path.is_absolute());
    assert!(config.state_file_path.is_absolute());
    assert!((MIN_MAX_FRAME_BYTES..=MAX_MAX_FRAME_BYTES).contains(&config.max_frame_bytes));
    if config.uses_tcp() {
        assert!(config.id_key_path.as_deref().is_some_and(Path::is_absolute));
    }
    for v in &config.validator {
        assert!(v.timeout_secs >= MIN_TIMEOUT_SECS);
        assert!(v.reconnect_max_backoff_secs >= 1);
        let shown = v.address.to_string();
        assert_eq!(
            shown.parse::<Address>().as_ref(),
            Ok(&v.address),
            "address {shown:?} does not parse back"
        );
    }
});
