//! The enclave's write-ahead state store against the host's file store,
//! over a real socket pair: durability handshake, verification of what the
//! host hands back (only records the enclave tagged; a torn slot falls
//! back to the other), refusal of forged records, and what a host that
//! withholds or fakes acknowledgements gets: nothing it could use.
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
use tmkms_light::enclave::{import_state_records, initial_state_records, ImportedRecords};
use tmkms_light::link::{read_frame, write_frame};
use tmkms_light::state::file::{slot_offset, FileStore};
use tmkms_light::state::record::{decode_slot, StateTagKey, SLOT_LEN};
use tmkms_light::state::remote::{serve_state, RemoteStore};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::{Height, Position, Round, SignState, Signature, Step};

const SEED: [u8; 32] = [9u8; 32];
const CHAIN: &str = "test-chain";

fn key() -> StateTagKey {
    StateTagKey::derive(&SEED, CHAIN)
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
    let (store, _) = RemoteStore::connect(enclave, key()).unwrap();
    (store, server)
}

/// Connect and return the verification result (the store is dropped).
fn try_connect(path: &Path) -> Result<tmkms_light::state::remote::VerifiedState, StateError> {
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let owned = path.to_owned();
    let server = thread::spawn(move || {
        let mut store = FileStore::open(&owned).unwrap();
        serve_state(&mut host, &mut store).unwrap();
    });
    let result = RemoteStore::connect(enclave, key()).map(|(_, verified)| verified);
    server.join().unwrap();
    result
}

/// A state file as `init` makes it through the enclave: both slots tagged.
fn new_state_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let records = initial_state_records(&SEED, CHAIN, &SignState::default()).unwrap();
    FileStore::create_from_records(&path, &records).unwrap();
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
    for s in states {
        store.persist(s).unwrap();
    }
    drop(store);
    server.join().unwrap();
}

#[test]
fn writes_are_durable_in_the_host_file_and_load_back_authenticated() {
    let (_dir, path) = new_state_file();
    let initial = try_connect(&path).unwrap();
    assert_eq!(initial.state, SignState::default());
    assert!(initial.authenticated, "init writes enclave-tagged records");
    let (mut store, server) = connect(&path);

    for h in 1..=5 {
        let s = state(h, Step::Precommit);
        store.persist(&s).unwrap();
        // The ack came back: the host file already holds it (state show works).
        assert_eq!(FileStore::peek(&path).unwrap(), s);
    }
    drop(store);
    server.join().unwrap();

    let loaded = try_connect(&path).unwrap();
    assert_eq!(loaded.state, state(5, Step::Precommit));
    assert!(loaded.authenticated);
    assert_eq!(loaded.seq, 6);
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

    let err = try_connect(&path).unwrap_err();
    assert!(
        matches!(err, StateError::Forged { slot } if slot == newest),
        "{err}"
    );
    assert!(err.to_string().contains("does not authenticate"));
}

#[test]
fn a_torn_slot_falls_back_to_the_other_authentic_slot() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(7, Step::Prevote), state(7, Step::Precommit)]);
    let newest = (0..2)
        .max_by_key(|&i| decode_slot(&slot(&path, i)).unwrap().0)
        .unwrap();
    for (index, expected) in [
        (newest, state(7, Step::Prevote)),
        (1 - newest, state(7, Step::Precommit)),
    ] {
        let good = slot(&path, index);
        let mut torn = good;
        torn[100..300].fill(0xEE);
        put_slot(&path, index, &torn);
        let loaded = try_connect(&path).unwrap();
        assert_eq!(loaded.state, expected, "slot {index} torn");
        put_slot(&path, index, &good);
    }
    // Both slots damaged: nothing authentic is left, the start is refused.
    for index in 0..2 {
        let mut torn = slot(&path, index);
        torn[100] ^= 1;
        put_slot(&path, index, &torn);
    }
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let slots = [0, 1].map(|i| Some(slot(&path, i)));
    let server = thread::spawn(move || serve_slots(&mut host, slots));
    let err = RemoteStore::connect(enclave, key()).unwrap_err();
    server.join().unwrap();
    assert!(matches!(err, StateError::NoAuthenticRecord { .. }), "{err}");
    assert!(err.to_string().contains("state import"), "{err}");
}

#[test]
fn a_fresh_untagged_or_missing_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // What a host (or an older `init`) writes on its own: untagged height 0.
    let fresh = dir.path().join("fresh.bin");
    FileStore::create(&fresh, &SignState::default()).unwrap();
    let err = try_connect(&fresh).unwrap_err();
    assert!(matches!(err, StateError::NoAuthenticRecord { .. }), "{err}");
    assert!(
        err.to_string().contains("without the enclave's tag"),
        "{err}"
    );
    // An untagged record at a higher height is passed over, not trusted.
    let (_d, path) = new_state_file();
    write_all(&path, &[state(50, Step::Precommit)]);
    FileStore::import_into(&path, &state(90, Step::Precommit), false).unwrap();
    assert_eq!(
        try_connect(&path).unwrap().state,
        state(50, Step::Precommit)
    );
    // No slots at all (a deleted file the host answers for with nothing).
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || serve_slots(&mut host, [None, None]));
    let err = RemoteStore::connect(enclave, key()).unwrap_err();
    server.join().unwrap();
    assert!(matches!(err, StateError::NoAuthenticRecord { .. }), "{err}");
}

/// A host that answers the load request with `slots`, then closes.
fn serve_slots(host: &mut UnixStream, slots: [Option<[u8; SLOT_LEN]>; 2]) {
    let request = read_frame(host, 1024).unwrap();
    assert_eq!(request, b"L");
    let mut reply = vec![b'S'];
    for slot in slots {
        reply.push(u8::from(slot.is_some()));
        reply.extend_from_slice(&slot.unwrap_or([0; SLOT_LEN]));
    }
    write_frame(host, &reply).unwrap();
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
    let loaded = try_connect(&path).unwrap();
    assert_eq!(loaded.state, state(4, Step::Precommit));
}

#[test]
fn an_import_through_the_enclave_moves_state_forward_but_never_back() {
    let (_dir, path) = new_state_file();
    write_all(&path, &[state(50, Step::Precommit)]);
    let current = || Some(FileStore::open(&path).unwrap().raw_slots());
    let err = import_state_records(&SEED, CHAIN, current(), &state(20, Step::Precommit), false)
        .unwrap_err();
    assert!(err.to_string().contains("backwards"), "{err}");

    let imported =
        import_state_records(&SEED, CHAIN, current(), &state(90, Step::Precommit), false).unwrap();
    assert_eq!(imported.previous, Some(state(50, Step::Precommit).position));
    let ImportedRecords::Append(record) = imported.records else {
        panic!("an existing file gets one more record");
    };
    FileStore::open(&path)
        .unwrap()
        .write_record(&record)
        .unwrap();
    let (mut store, server) = connect(&path);
    // The next write gets a sequence above both slots, so the host accepts it.
    store.persist(&state(91, Step::Prevote)).unwrap();
    drop(store);
    server.join().unwrap();
    let loaded = try_connect(&path).unwrap();
    assert_eq!(loaded.state, state(91, Step::Prevote));

    // Under another chain id the records do not authenticate.
    let other =
        import_state_records(&SEED, "other-chain", None, &state(1, Step::Prevote), false).unwrap();
    let ImportedRecords::Create(records) = other.records else {
        panic!("no file: two new records");
    };
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.bin");
    FileStore::create_from_records(&foreign, &records).unwrap();
    assert!(matches!(
        try_connect(&foreign).unwrap_err(),
        StateError::Forged { .. }
    ));
}

/// A host that serves the load from a tagged file, then answers the first
/// write with `reply` (or nothing, closing the stream), and hands back
/// every record it was sent.
fn hostile_host(reply: Vec<u8>) -> (RemoteStore<UnixStream>, thread::JoinHandle<Vec<Vec<u8>>>) {
    let (_dir, path) = new_state_file();
    let slots = [0, 1].map(|i| Some(slot(&path, i)));
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || {
        serve_slots(&mut host, slots);
        let mut seen = Vec::new();
        let first = read_frame(&mut host, 1024).unwrap();
        seen.push(first);
        if reply.is_empty() {
            return seen;
        }
        write_frame(&mut host, &reply).unwrap();
        // A second write after the failed one, acknowledged honestly.
        if let Ok(second) = read_frame(&mut host, 1024) {
            let seq = decode_slot(second[1..].try_into().unwrap()).unwrap().0;
            write_frame(&mut host, &[&[b'A'][..], &seq.to_le_bytes()].concat()).unwrap();
            seen.push(second);
        }
        seen
    });
    let (store, _) = RemoteStore::connect(enclave, key()).unwrap();
    (store, server)
}

#[test]
fn persist_fails_without_a_matching_acknowledgement_and_never_reuses_a_sequence() {
    // A host that answers a write with an error or a wrong sequence number:
    // the persist fails, and the next write uses a new sequence number.
    for reply in [&b"Edisk full"[..], &[b'A', 9, 0, 0, 0, 0, 0, 0, 0][..]] {
        let (mut store, server) = hostile_host(reply.to_vec());
        let err = store.persist(&state(1, Step::Prevote)).unwrap_err();
        assert!(matches!(err, StateError::Unavailable(_)), "{err}");
        store.persist(&state(1, Step::Precommit)).unwrap();
        drop(store);
        let seen = server.join().unwrap();
        let seqs: Vec<u64> = seen
            .iter()
            .map(|w| decode_slot(w[1..].try_into().unwrap()).unwrap().0)
            .collect();
        assert_eq!(seqs.len(), 2);
        assert!(seqs[1] > seqs[0], "sequence reused: {seqs:?}");
    }
}

#[test]
fn a_lost_state_stream_is_final() {
    let (mut store, server) = hostile_host(Vec::new());
    let err = store.persist(&state(1, Step::Prevote)).unwrap_err();
    assert!(matches!(err, StateError::StreamLost(_)), "{err}");
    server.join().unwrap();
    let err = store.persist(&state(2, Step::Prevote)).unwrap_err();
    assert!(matches!(err, StateError::StreamLost(_)), "{err}");
}

#[test]
fn records_written_ahead_carry_no_signature() {
    use ed25519_dalek::SigningKey;
    use tmkms_light::chain::{ChainPolicy, ChainSigner};
    use tmkms_light::privval::{Dialect, Request, Response};
    use tmkms_light::types::{ChainId, Timestamp, Vote, VoteKind};

    // The host keeps every record and answers the first with an error, as a
    // host that wants the signature without letting the state move would.
    let (store, server) = hostile_host(b"Eno".to_vec());
    let key = SigningKey::from_bytes(&SEED);
    let policy = ChainPolicy {
        chain_id: ChainId::try_from(CHAIN).unwrap(),
        max_height: None,
        danger_allow_sign_bytes: false,
    };
    // The chain signer normally starts from the verified state; here the
    // store was verified by `hostile_host`.
    let chain = ChainSigner::open(policy, key, Box::new(NoLoad(store))).unwrap();
    let vote = |block: u8| Vote {
        kind: VoteKind::Prevote,
        height: Height::try_from(5i64).unwrap(),
        round: Round::try_from(0i64).unwrap(),
        block_id: Some(tmkms_light::types::BlockId {
            hash: [block; 32],
            part_set_header: tmkms_light::types::PartSetHeader {
                total: 1,
                hash: [block; 32],
            },
        }),
        timestamp: Timestamp::new(1_700_000_000, 0).unwrap(),
        validator_address: vec![1; 20],
        validator_index: 0,
        extension: Vec::new(),
    };
    let sign = |v: Vote| {
        chain.handle(
            Dialect::V0_38,
            Request::SignVote {
                chain_id: CHAIN.into(),
                vote: v,
                skip_extension_signing: false,
            },
        )
    };
    let Response::SignedVote(Err(e)) = sign(vote(0xA)) else {
        panic!("signed without an acknowledgement");
    };
    assert_eq!(e.code as i32, 5);
    // The write's outcome is unknown: a different vote at that position is
    // refused for the rest of the run ...
    let Response::SignedVote(Err(e)) = sign(vote(0xB)) else {
        panic!("signed a conflicting vote after an unacknowledged write");
    };
    assert_eq!(e.code as i32, 2, "{}", e.description);
    // ... and the same vote is written again and released after its ack.
    let Response::SignedVote(Ok(signed)) = sign(vote(0xA)) else {
        panic!("the acknowledged retry was not signed");
    };
    drop(chain);
    let seen = server.join().unwrap();
    for write in &seen {
        let (_, recorded) = decode_slot(write[1..].try_into().unwrap()).unwrap();
        assert_eq!(recorded.signature, None, "a record carried a signature");
        assert!(!write.windows(64).any(|w| w == signed.signature().0));
    }
}

/// Hands the chain signer a store it must not load again (it was verified).
struct NoLoad(RemoteStore<UnixStream>);

impl StateStore for NoLoad {
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        Ok(Some(SignState::default()))
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        self.0.persist(state)
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

/// The enclave signs while the host writes: `persist_while` runs its
/// window after the record went out and before it waits for the
/// acknowledgement. This host acknowledges only when the window told it to
/// (after it already holds the record), so a store that awaited the
/// acknowledgement first would never see one.
#[test]
fn the_signing_window_lies_between_sending_the_record_and_its_acknowledgement() {
    let (_dir, path) = new_state_file();
    let slots = [0, 1].map(|i| Some(slot(&path, i)));
    let (enclave, mut host) = UnixStream::pair().unwrap();
    let (window_open, opened) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        serve_slots(&mut host, slots);
        let record = read_frame(&mut host, 1024).unwrap();
        let seq = decode_slot(record[1..].try_into().unwrap()).unwrap().0;
        opened
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the store awaited the acknowledgement before its window");
        write_frame(&mut host, &[&[b'A'][..], &seq.to_le_bytes()].concat()).unwrap();
    });
    let (mut store, _) = RemoteStore::connect(enclave, key()).unwrap();
    let mut windows = 0;
    store
        .persist_while(&state(1, Step::Prevote), &mut || {
            windows += 1;
            window_open.send(()).unwrap();
        })
        .unwrap();
    assert_eq!(windows, 1);
    server.join().unwrap();
}
