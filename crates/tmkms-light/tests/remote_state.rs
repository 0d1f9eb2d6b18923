//! The enclave's write-ahead state store against the host's file store,
//! over a real socket pair: durability handshake, verification of what the
//! host hands back, and refusal of forged or damaged records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;

use sha2::{Digest, Sha256};
use tmkms_light::link::{read_frame, write_frame};
use tmkms_light::state::file::{slot_offset, FileStore};
use tmkms_light::state::record::{decode_slot, StateTagKey, SLOT_LEN};
use tmkms_light::state::remote::{serve_state, RemoteStore};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::{Height, Position, Round, SignState, Signature, Step};

fn key() -> StateTagKey {
    StateTagKey::derive(&[9u8; 32], "test-chain")
}

fn state(height: i64, step: Step) -> SignState {
    SignState {
        position: Position {
            height: Height::try_from(height).unwrap(),
            round: Round::try_from(0i64).unwrap(),
            step,
        },
        sign_bytes: vec![height as u8; 40],
        signature: Some(Signature([height as u8; 64])),
    }
}

/// A host serving `path` on one end of a socket pair; the enclave store on
/// the other.
fn connect(path: &Path) -> (RemoteStore<UnixStream>, thread::JoinHandle<()>) {
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let path = path.to_owned();
    let server = thread::spawn(move || {
        let mut store = FileStore::open(&path).unwrap();
        serve_state(&mut host, &mut store).unwrap();
    });
    (RemoteStore::new(enclave, key()), server)
}

fn new_state_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    FileStore::create(&path, &SignState::default()).unwrap();
    (dir, path)
}

fn slot(path: &Path, index: usize) -> [u8; SLOT_LEN] {
    let mut buf = [0u8; SLOT_LEN];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, slot_offset(index).unwrap())
        .unwrap();
    buf
}

fn put_slot(path: &Path, index: usize, bytes: &[u8; SLOT_LEN]) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, slot_offset(index).unwrap())
        .unwrap();
}

fn reseal(bytes: &mut [u8; SLOT_LEN]) {
    let digest = Sha256::digest(&bytes[..SLOT_LEN - 32]);
    bytes[SLOT_LEN - 32..].copy_from_slice(&digest);
}

/// Write `states` through a fresh enclave connection, then close it.
fn write_all(path: &Path, states: &[SignState]) {
    let (mut store, server) = connect(path);
    store.load_verified().unwrap();
    for s in states {
        store.persist(s).unwrap();
    }
    drop(store);
    server.join().unwrap();
}

#[test]
fn writes_are_durable_in_the_host_file_and_load_back_authenticated() {
    let (_dir, path) = new_state_file();
    let (mut store, server) = connect(&path);
    let initial = store.load_verified().unwrap();
    assert_eq!(initial.state, SignState::default());
    assert!(!initial.authenticated, "init writes an untagged record");

    for h in 1..=5 {
        let s = state(h, Step::Precommit);
        store.persist(&s).unwrap();
        // The ack came back: the host file already holds it (state show works).
        assert_eq!(FileStore::peek(&path).unwrap(), s);
    }
    drop(store);
    server.join().unwrap();

    let (mut store, server) = connect(&path);
    let loaded = store.load_verified().unwrap();
    assert_eq!(loaded.state, state(5, Step::Precommit));
    assert!(loaded.authenticated);
    assert_eq!(loaded.seq, 6);
    drop(store);
    server.join().unwrap();
}

#[test]
fn a_forged_record_with_a_valid_checksum_is_refused() {
    let (_dir, path) = new_state_file();
    write_all(
        &path,
        &[state(10, Step::Prevote), state(10, Step::Precommit)],
    );
    // The host rewrites the newest record to a lower height and fixes the
    // checksum, to make the enclave sign at height 10 again.
    let (newest, _) = (0..2)
        .map(|i| (i, decode_slot(&slot(&path, i)).unwrap().0))
        .max_by_key(|(_, seq)| *seq)
        .unwrap();
    let mut forged = slot(&path, newest);
    forged[24..32].copy_from_slice(&3u64.to_le_bytes());
    reseal(&mut forged);
    put_slot(&path, newest, &forged);

    let (mut store, server) = connect(&path);
    let err = store.load_verified().unwrap_err();
    assert!(
        matches!(err, StateError::Forged { slot } if slot == newest),
        "{err}"
    );
    assert!(err.to_string().contains("does not authenticate"));
    drop(store);
    server.join().unwrap();
}

#[test]
fn a_bit_flipped_record_is_refused_not_skipped() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(7, Step::Prevote), state(7, Step::Precommit)]);
    for index in 0..2 {
        let good = slot(&path, index);
        let mut flipped = good;
        flipped[100] ^= 0x01;
        put_slot(&path, index, &flipped);
        let (mut store, server) = connect(&path);
        let err = store.load_verified().unwrap_err();
        assert!(
            matches!(err, StateError::Damaged { slot, .. } if slot == index),
            "{err}"
        );
        drop(store);
        server.join().unwrap();
        put_slot(&path, index, &good);
    }
}

#[test]
fn a_replayed_older_authentic_record_cannot_lower_the_other_slot() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(1, Step::Precommit)]);
    let old = (0..2)
        .map(|i| slot(&path, i))
        .find(|s| decode_slot(s).unwrap().1 == state(1, Step::Precommit))
        .unwrap();
    write_all(
        &path,
        &[
            state(2, Step::Precommit),
            state(3, Step::Precommit),
            state(4, Step::Precommit),
        ],
    );
    // Put the old record (sequence 2) back into the slot of sequence 4's
    // sibling: the slots are now not consecutive; the newest still wins.
    let older_index = (0..2)
        .min_by_key(|&i| decode_slot(&slot(&path, i)).unwrap().0)
        .unwrap();
    put_slot(&path, older_index, &old);
    let (mut store, server) = connect(&path);
    let loaded = store.load_verified().unwrap();
    assert_eq!(loaded.state, state(4, Step::Precommit));
    drop(store);
    server.join().unwrap();
}

#[test]
fn an_untagged_import_moves_state_forward_but_never_back() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(50, Step::Precommit)]);
    // `state import` on the host writes untagged records.
    FileStore::import_into(&path, &state(20, Step::Precommit), true).unwrap();
    let (mut store, server) = connect(&path);
    assert_eq!(
        store.load_verified().unwrap().state,
        state(50, Step::Precommit)
    );
    drop(store);
    server.join().unwrap();

    FileStore::import_into(&path, &state(90, Step::Precommit), false).unwrap();
    let (mut store, server) = connect(&path);
    let loaded = store.load_verified().unwrap();
    assert_eq!(loaded.state, state(90, Step::Precommit));
    assert!(!loaded.authenticated);
    // The next write gets a sequence above both slots, so the host accepts it.
    store.persist(&state(91, Step::Prevote)).unwrap();
    drop(store);
    server.join().unwrap();
    assert_eq!(FileStore::peek(&path).unwrap(), state(91, Step::Prevote));
}

#[test]
fn persist_fails_without_a_matching_acknowledgement() {
    // A host that answers a write with an error, a wrong sequence number, or
    // not at all: no persist may succeed.
    for reply in [
        &b"Edisk full"[..],
        &[b'A', 9, 0, 0, 0, 0, 0, 0, 0][..],
        &[][..],
    ] {
        let (enclave, mut host) = UnixStream::pair().unwrap();
        let reply = reply.to_vec();
        let server = thread::spawn(move || {
            let _request = read_frame(&mut host, 1024).unwrap();
            if !reply.is_empty() {
                write_frame(&mut host, &reply).unwrap();
            }
        });
        let mut store = RemoteStore::new(enclave, key());
        let err = store.persist(&state(1, Step::Prevote)).unwrap_err();
        assert!(matches!(err, StateError::Unavailable(_)), "{err}");
        server.join().unwrap();
    }
}

#[test]
fn a_host_that_regresses_the_sequence_is_refused_by_the_file_store() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(5, Step::Precommit)]);
    let mut store = FileStore::open(&path).unwrap();
    let stale = slot(&path, 0);
    let err = store.write_record(&stale).unwrap_err();
    assert!(
        err.to_string().contains("refusing a record with sequence"),
        "{err}"
    );
}
