//! A hostile or broken host edits the state file between runs.
//!
//! The state file lives on the host; the enclave tags every record it
//! writes (HMAC under a key derived from the consensus key and chain id)
//! and checks both slots at start. A record moved back to a lower height
//! with a recomputed checksum passes every host-side check (the helper's own
//! file store reads it) but not the enclave's: `start` is refused with
//! "does not authenticate" and the node gets nothing; putting the original
//! file back makes `start` work again, so the edit was the cause. A flipped
//! bit (a torn write: the checksum no longer matches) is damage, not
//! forgery: the enclave passes over that slot, starts from the other
//! authentic one and signs on — no more than a host could do anyway by
//! replaying the older record.
//!
//! Record layout: `crates/tmkms-light/src/state/record.rs` (sequence number
//! at 16..24, height at 24..32, tag at 448..480, SHA-256 of 0..480 at
//! 480..512); slots at file offsets 0 and 4096.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{accept, kill, kms_endpoint, listen, wait_exit, Nitro};
use sha2::{Digest, Sha256};
use tmkms_light::state::file::FileStore;
use tmkms_node_sim::{
    verify_proposal, verify_vote, BlockIdSpec, Dialect, NodeListener, ProposalSpec, VoteSpec,
};

const CHAIN: &str = "tamper-chain";
const SLOTS: [usize; 2] = [0, 4096];
const SLOT_LEN: usize = 512;

fn seq(file: &[u8], slot: usize) -> u64 {
    u64::from_le_bytes(file[slot + 16..slot + 24].try_into().unwrap())
}

fn height(file: &[u8], slot: usize) -> i64 {
    i64::from_le_bytes(file[slot + 24..slot + 32].try_into().unwrap())
}

/// The slot holding the record with the highest sequence number, and the other.
fn newest_and_older(file: &[u8]) -> (usize, usize) {
    if seq(file, SLOTS[0]) > seq(file, SLOTS[1]) {
        (SLOTS[0], SLOTS[1])
    } else {
        (SLOTS[1], SLOTS[0])
    }
}

/// Rewrite the height of the record at `slot` and recompute its checksum,
/// as a host that wants a rollback would; the tag cannot be recomputed.
fn forge_height(file: &mut [u8], slot: usize, new_height: i64) {
    file[slot + 24..slot + 32].copy_from_slice(&new_height.to_le_bytes());
    let digest = Sha256::digest(&file[slot..slot + 480]);
    file[slot + 480..slot + SLOT_LEN].copy_from_slice(&digest);
}

/// Sign heights `from..to` (proposal, prevote, precommit) on a fresh start,
/// then stop the helper (the enclave follows).
fn sign_heights(nitro: &Nitro, listener: &NodeListener, from: i64, to: i64) {
    let (mut run, mut conn) = nitro.start_connected(listener, Duration::from_secs(60));
    let pubkey = nitro.pubkey();
    for h in from..to {
        let block = Some(BlockIdSpec::for_height(h));
        let proposal = ProposalSpec::new(h, 0, block);
        let signed = conn.sign_proposal(CHAIN, &proposal).unwrap().unwrap();
        verify_proposal(&pubkey, CHAIN, &proposal, &signed).unwrap();
        for vote in [
            VoteSpec::prevote(h, 0, block),
            VoteSpec::precommit(h, 0, block),
        ] {
            let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
            verify_vote(&pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false).unwrap();
        }
    }
    drop(conn);
    kill(&mut run.helper.0);
    let enclave_exit = wait_exit(&mut run.enclave.0, Duration::from_secs(10));
    assert!(
        enclave_exit.is_some(),
        "the enclave must exit when the helper goes"
    );
}

/// `start` on the current file must be refused before the node is reached;
/// returns what the helper logged during this attempt.
fn start_refused(nitro: &Nitro, listener: &NodeListener) -> String {
    let before = nitro.log().len();
    let mut run = nitro.start();
    let conn = accept(listener, &mut run.helper.0, Duration::from_secs(60));
    assert!(
        conn.is_none(),
        "the signer reached the node:\n{}",
        nitro.log()
    );
    let status = wait_exit(&mut run.helper.0, Duration::from_secs(10));
    assert!(
        matches!(status, Some(s) if !s.success()),
        "start must fail, got {status:?}:\n{}",
        nitro.log()
    );
    assert!(
        wait_exit(&mut run.enclave.0, Duration::from_secs(10)).is_some(),
        "the enclave must exit after refusing the state"
    );
    nitro.log()[before..].to_owned()
}

/// A home that signed heights 1..=4, so both slots hold authenticated records.
fn signed_home(kms: &str) -> (Nitro, NodeListener, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro = Nitro::configured(dir, kms, CHAIN, &listener.local_addr(), "v0.38", "").init();
    sign_heights(&nitro, &listener, 1, 5);
    let good = std::fs::read(nitro.state_path()).unwrap();
    let (newest, older) = newest_and_older(&good);
    assert_eq!(height(&good, newest), 4);
    assert_eq!(seq(&good, newest), seq(&good, older) + 1);
    (nitro, listener, good)
}

/// Put the original file back: `start` works and signs the next height.
fn restore_and_resume(nitro: &Nitro, listener: &NodeListener, good: &[u8]) {
    std::fs::write(nitro.state_path(), good).unwrap();
    sign_heights(nitro, listener, 5, 6);
    assert_eq!(nitro.state().position.height.value(), 5);
}

/// Writes `good` as the state file with the record at offset `slot` forged
/// to `new_height`.
fn write_forged(nitro: &Nitro, good: &[u8], slot: usize, new_height: i64) {
    let mut forged = good.to_vec();
    forge_height(&mut forged, slot, new_height);
    std::fs::write(nitro.state_path(), &forged).unwrap();
}

/// `start` refuses the state file in place, naming the record at offset
/// `forged_slot` as not authentic; with the original file `good` back, it
/// signs again.
fn refused_as_forged_then_restored(
    nitro: &Nitro,
    listener: &NodeListener,
    good: &[u8],
    forged_slot: usize,
) {
    let log = start_refused(nitro, listener);
    assert!(
        log.contains(&format!(
            "slot {} does not authenticate",
            forged_slot / 4096
        )),
        "no forgery message:\n{log}"
    );
    restore_and_resume(nitro, listener, good);
}

#[test]
fn forged_newest_record_with_a_lower_height_is_refused() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener, good) = signed_home(&kms);
    let (newest, _) = newest_and_older(&good);
    write_forged(&nitro, &good, newest, 2);
    // Host-side checks pass: the helper's store reads the rolled-back height.
    assert_eq!(
        FileStore::peek(nitro.state_path())
            .unwrap()
            .position
            .height
            .value(),
        2,
        "the forged record has a valid checksum"
    );
    refused_as_forged_then_restored(&nitro, &listener, &good, newest);
}

#[test]
fn forged_older_record_is_refused_too() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener, good) = signed_home(&kms);
    let (_, older) = newest_and_older(&good);
    write_forged(&nitro, &good, older, height(&good, older) + 100);
    refused_as_forged_then_restored(&nitro, &listener, &good, older);
}

#[test]
fn bit_flip_in_the_newest_record_falls_back_to_the_other_authentic_slot() {
    let Some(kms) = kms_endpoint() else { return };
    let (nitro, listener, good) = signed_home(&kms);
    let (newest, older) = newest_and_older(&good);
    // One bit in the sign bytes, checksum left as it was.
    let mut damaged = good.clone();
    damaged[newest + 120] ^= 0x04;
    std::fs::write(nitro.state_path(), &damaged).unwrap();
    let before = nitro.log().len();
    sign_heights(&nitro, &listener, 5, 6);
    let log = nitro.log()[before..].to_owned();
    assert!(
        log.contains(&format!("slot {}: damaged", newest / 4096))
            && log.contains("checksum does not match")
            && log.contains(&format!("using_slot={}", older / 4096)),
        "the damaged slot must be named and passed over:\n{log}"
    );
    assert!(!log.contains("does not authenticate"), "{log}");
    assert_eq!(nitro.state().position.height.value(), 5);
}
