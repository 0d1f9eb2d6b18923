//! The host is untrusted with the state: the enclave authenticates every
//! state record it writes (HMAC under a key derived from the consensus key
//! and the chain id) and verifies both slots at start. A host that edits the
//! state file — even with a correct checksum — gets a signer that refuses to
//! start and signs nothing; a damaged (torn) slot is passed over for the
//! other authentic slot. A host that replays older authentic records is
//! logged.
//!
//! Layout used here (crates/tmkms-light/src/state/record.rs): slots at file
//! offsets 0 and 4096, 512 bytes each; sequence number at 16..24, height at
//! 24..32, SHA-256 of bytes 0..480 at 480..512.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::time::Duration;

use common::{accept, listen, Guard, Sgx};
use sha2::{Digest, Sha256};
use tmkms_node_sim::{verify_vote, BlockIdSpec, Dialect, NodeListener, VoteSpec};

const CHAIN: &str = "tamper-chain";
const SLOT: [usize; 2] = [0, 4096];
const SLOT_LEN: usize = 512;

fn seq(file: &[u8], slot: usize) -> u64 {
    u64::from_le_bytes(file[SLOT[slot] + 16..SLOT[slot] + 24].try_into().unwrap())
}

fn height(file: &[u8], slot: usize) -> u64 {
    u64::from_le_bytes(file[SLOT[slot] + 24..SLOT[slot] + 32].try_into().unwrap())
}

/// The slot holding the newest record (highest sequence number).
fn newest(file: &[u8]) -> usize {
    if seq(file, 0) > seq(file, 1) {
        0
    } else {
        1
    }
}

fn fix_checksum(file: &mut [u8], slot: usize) {
    let start = SLOT[slot];
    let sum = Sha256::digest(&file[start..start + 480]);
    file[start + 480..start + SLOT_LEN].copy_from_slice(&sum);
}

/// Sign prevotes and precommits for `heights`; returns the last vote.
fn sign_heights(kms: &Sgx, listener: &NodeListener, pubkey: &[u8; 32], heights: [i64; 2]) {
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no connection:\n{}", kms.log()));
    for h in heights[0]..=heights[1] {
        let block = Some(BlockIdSpec::for_height(h));
        for vote in [
            VoteSpec::prevote(h, 0, block),
            VoteSpec::precommit(h, 0, block),
        ] {
            let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
            verify_vote(pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false).unwrap();
        }
    }
}

/// Start on a tampered file: the runner must exit with an error before any
/// signature reaches the node. Returns the log of this start.
fn start_is_refused(kms: &Sgx, listener: &NodeListener) -> String {
    while listener.accept(Duration::ZERO).is_ok() {}
    fs::write(kms.log_path(), "").unwrap();
    let mut signer = Guard(kms.spawn());
    if let Some(mut conn) = accept(listener, &mut signer.0, Duration::from_secs(20)) {
        let vote = VoteSpec::prevote(100, 0, Some(BlockIdSpec::for_height(100)));
        let answer = conn.sign_vote(CHAIN, &vote, false);
        assert!(
            !matches!(answer, Ok(Ok(_))),
            "signed on a tampered state file:\n{}",
            kms.log()
        );
    }
    let status = common::wait_exit(&mut signer.0, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "the runner kept running on a tampered state:\n{}",
            kms.log()
        )
    });
    assert!(!status.success());
    kms.log()
}

/// Start, expect `needle` in the log, sign one vote at `h` to show it runs.
fn start_runs(kms: &Sgx, listener: &NodeListener, pubkey: &[u8; 32], h: i64) -> String {
    while listener.accept(Duration::ZERO).is_ok() {}
    fs::write(kms.log_path(), "").unwrap();
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no connection:\n{}", kms.log()));
    let vote = VoteSpec::prevote(h, 0, Some(BlockIdSpec::for_height(h)));
    let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
    verify_vote(pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false).unwrap();
    kms.log()
}

#[test]
fn forged_damaged_and_replayed_state_records() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let kms = Sgx::init_in(dir, CHAIN, &listener.local_addr(), "v0.38", &[]);
    let pubkey = kms.pubkey();
    let state = kms.state_path();

    sign_heights(&kms, &listener, &pubkey, [1, 2]);
    let older = fs::read(&state).unwrap();
    assert_eq!(height(&older, newest(&older)), 2);
    sign_heights(&kms, &listener, &pubkey, [3, 5]);
    let current = fs::read(&state).unwrap();
    let top = newest(&current);
    assert_eq!(height(&current, top), 5);
    assert_eq!(seq(&current, top), seq(&current, 1 - top) + 1);

    // (a) The newest record moved to a lower height, checksum recomputed: the
    // file is well-formed, but the tag no longer matches.
    let mut forged = current.clone();
    forged[SLOT[top] + 24..SLOT[top] + 32].copy_from_slice(&1u64.to_le_bytes());
    fix_checksum(&mut forged, top);
    fs::write(&state, &forged).unwrap();
    let log = start_is_refused(&kms, &listener);
    assert!(
        log.contains(&format!("state record in slot {top} does not authenticate")),
        "{log}"
    );
    // The same with the tag flag cleared (posing as a host-tool record): an
    // untagged record may only move state forward, so slot {1-top}, the
    // authentic height-5 record (prevote), wins and the signer runs on.
    let mut untagged = forged.clone();
    untagged[SLOT[top] + 11] = 0;
    untagged[SLOT[top] + 448..SLOT[top] + 480].fill(0);
    fix_checksum(&mut untagged, top);
    fs::write(&state, &untagged).unwrap();
    let log = start_runs(&kms, &listener, &pubkey, 6);
    assert!(
        log.contains("loaded state from the host") && log.contains("5/0/prevote"),
        "the untagged lower record did not take the state back:\n{log}"
    );

    // (b) A flipped bit, checksum not fixed: a torn write. The enclave passes
    // over the damaged slot and starts from the other authentic one (the
    // height-5 prevote) — no more than the host could do by replaying that
    // record anyway. (Before, a torn slot stopped the start for good.)
    fs::write(&state, &current).unwrap();
    let mut damaged = current.clone();
    damaged[SLOT[top] + 40] ^= 0x10;
    fs::write(&state, &damaged).unwrap();
    let log = start_runs(&kms, &listener, &pubkey, 6);
    assert!(
        log.contains(&format!("slot {top}: damaged"))
            && log.contains("loaded state from the host")
            && log.contains("5/0/prevote"),
        "{log}"
    );

    // (c) A whole older file copied back: both records authentic and
    // consecutive. The enclave cannot tell this from the truth — only the
    // chain (which is past height 2) can — so it starts and logs what it
    // loaded for the operator to compare.
    fs::write(&state, &older).unwrap();
    let log = start_runs(&kms, &listener, &pubkey, 7);
    let loaded = log
        .lines()
        .find(|l| l.contains("loaded state from the host"))
        .unwrap_or_else(|| panic!("no load line:\n{log}"));
    assert!(
        loaded.contains(&format!("seq={}", seq(&older, newest(&older))))
            && loaded.contains("at=2/0/precommit"),
        "{loaded}"
    );
    assert!(!log.contains("not consecutive"), "{log}");

    // (d) An older authentic record in one slot: the two are not consecutive.
    let now = fs::read(&state).unwrap();
    let keep = newest(&now);
    let mut mixed = now.clone();
    let old_slot = 1 - newest(&older);
    mixed[SLOT[1 - keep]..SLOT[1 - keep] + SLOT_LEN]
        .copy_from_slice(&older[SLOT[old_slot]..SLOT[old_slot] + SLOT_LEN]);
    // Make the replayed one older than its neighbour by more than one write.
    assert!(seq(&mixed, keep) > seq(&mixed, 1 - keep) + 1);
    fs::write(&state, &mixed).unwrap();
    let log = start_runs(&kms, &listener, &pubkey, 8);
    assert!(log.contains("not consecutive"), "{log}");
    assert!(
        log.contains("at=7/0/prevote"),
        "the newest record wins:\n{log}"
    );
}
