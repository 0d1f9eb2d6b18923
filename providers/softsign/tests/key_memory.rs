//! The running signer keeps its key out of core dumps and away from
//! same-user debuggers.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{accept, listen, Guard, Kms};
use tmkms_node_sim::Dialect;

#[test]
fn running_signer_has_no_core_limit_and_is_not_dumpable() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let kms = Kms::init_in(dir, "mem-chain", &listener.local_addr(), "v0.38", &[]);
    let mut signer = Guard(kms.spawn());
    let _conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).expect("signer connects");
    let pid = signer.0.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "core limit: {core}");
    let log = kms.log();
    assert!(
        !log.contains("could not mark the process non-dumpable"),
        "{log}"
    );
    assert!(!log.contains("could not disable core dumps"), "{log}");
}
