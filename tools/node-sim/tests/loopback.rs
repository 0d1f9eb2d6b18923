//! Plumbing tests of the simulator against the tiny in-test fake signer of
//! `common/` (not a reference implementation; see there).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{read_frame, FakeSigner, Misbehaviour, CHAIN};
use ed25519_consensus::SigningKey;
use sha2::Digest as _;
use tmkms_node_sim::scenario::{self, Expect, MalformedFrame, Outcome, Scripted, SuiteConfig};
use tmkms_node_sim::{
    codes, BlockIdSpec, Dialect, NodeListener, SignerConn, SimError, VerifyError, VoteSpec,
};

fn unix_listener(dir: &tempfile::TempDir, d: Dialect) -> NodeListener {
    NodeListener::bind_unix(dir.path().join("node.sock"), d).unwrap()
}

/// A fake signer dialled in over a Unix socket in `dir`, and its accepted
/// connection.
fn fake_over_unix(
    dir: &tempfile::TempDir,
    dialect: Dialect,
    misbehaviour: Misbehaviour,
) -> (NodeListener, FakeSigner, SignerConn) {
    let listener = unix_listener(dir, dialect);
    let fake = FakeSigner::start(listener.local_addr(), dialect, misbehaviour);
    let conn = listener.accept(Duration::from_secs(10)).unwrap();
    (listener, fake, conn)
}

fn suite(listener: &NodeListener) -> scenario::SuiteReport {
    let mut cfg = SuiteConfig::new(CHAIN);
    cfg.accept_timeout = Duration::from_secs(10);
    cfg.reaction_wait = Duration::from_secs(2);
    let report = scenario::run_all(listener, &cfg).unwrap();
    for r in &report.reports {
        for c in &r.cases {
            eprintln!("{}: {c}", r.scenario);
        }
    }
    report
}

// --- tests -----------------------------------------------------------------

#[test]
fn suite_passes_against_the_fake_signer_over_tcp_v0_38() {
    let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38).unwrap();
    assert!(listener
        .local_addr()
        .starts_with(&format!("tcp://{}@127.0.0.1:", listener.node_id())));
    let fake = FakeSigner::start(listener.local_addr(), Dialect::V0_38, Misbehaviour::None);
    let report = suite(&listener);
    assert_eq!(report.pubkey, fake.pubkey);
    assert!(report.passed());
    // Every malformed-frame case costs the connection with this fake.
    assert!(report.reconnects >= MalformedFrame::ALL.len());
    drop(listener);
}

#[test]
fn suite_passes_against_the_fake_signer_over_tcp_v1() {
    let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V1).unwrap();
    let _fake = FakeSigner::start(listener.local_addr(), Dialect::V1, Misbehaviour::None);
    let report = suite(&listener);
    assert!(report.passed());
    let sign_bytes = report
        .reports
        .iter()
        .find(|r| r.scenario == "sign bytes")
        .unwrap();
    assert_eq!(sign_bytes.cases.len(), 2);
    drop(listener);
}

#[test]
fn suite_passes_against_the_fake_signer_over_unix_v0_34() {
    let dir = tempfile::tempdir().unwrap();
    let listener = unix_listener(&dir, Dialect::V0_34);
    let _fake = FakeSigner::start(listener.local_addr(), Dialect::V0_34, Misbehaviour::None);
    let report = suite(&listener);
    assert!(report.passed());
    assert!(!report
        .reports
        .iter()
        .any(|r| r.scenario == "extension rules"));
    drop(listener);
}

#[test]
fn peer_id_and_pubkey_over_tcp() {
    let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_37).unwrap();
    let fake = FakeSigner::start(listener.local_addr(), Dialect::V0_37, Misbehaviour::None);
    let mut conn = listener.accept(Duration::from_secs(10)).unwrap();
    // The fake's identity key is fixed: its peer id is SHA-256(key)[..20].
    let identity = SigningKey::from([43u8; 32]).verification_key().to_bytes();
    let want: [u8; 20] = sha2::Sha256::digest(identity)[..20].try_into().unwrap();
    assert_eq!(conn.remote_peer_id(), Some(want));
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), fake.pubkey);
    conn.ping().unwrap();
    let stats =
        scenario::normal_heights(&mut conn, CHAIN, 1, 20, &fake.pubkey, Dialect::V0_37).unwrap();
    assert_eq!(stats.requests, 60);
    assert_eq!(stats.last_height, 20);
    assert!(stats.max_response_len < 10_240);
    drop(conn);
    drop(listener);
}

#[test]
fn echoing_a_large_extension_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, fake, mut conn) =
        fake_over_unix(&dir, Dialect::V0_38, Misbehaviour::EchoExtension);
    let large = Scripted::LargeExtension { len: 64 * 1024 };
    let report = large.run(&mut conn, CHAIN, 5, &fake.pubkey).unwrap();
    assert!(!report.passed());
    let case = &report.cases[0];
    let Outcome::Violation(why) = &case.outcome else {
        panic!("{case}")
    };
    assert!(why.contains("exceeds the node's read cap"), "{why}");
    // Without the cap check the signature itself is fine.
    conn.set_response_cap(None);
    let vote = VoteSpec::precommit(6, 0, Some(BlockIdSpec::for_height(6)))
        .with_extension(vec![1u8; 20_000]);
    let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
    assert_eq!(signed.echoed_extension_len, 20_000);
    assert!(signed.raw_len > 20_000);
    tmkms_node_sim::verify_vote(&fake.pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false)
        .unwrap();
    drop(conn);
    drop(listener);
}

#[test]
fn extension_signature_on_a_prevote_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, fake, mut conn) = fake_over_unix(
        &dir,
        Dialect::V0_38,
        Misbehaviour::ExtensionSignatureEverywhere,
    );
    let err =
        scenario::normal_heights(&mut conn, CHAIN, 1, 3, &fake.pubkey, Dialect::V0_38).unwrap_err();
    assert!(
        matches!(
            err,
            SimError::Verify {
                source: VerifyError::UnexpectedExtensionSignature(_),
                ..
            }
        ),
        "{err}"
    );
    drop(conn);
    drop(listener);
}

#[test]
fn refusals_keep_the_connection_and_malformed_input_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, fake, mut conn) = fake_over_unix(&dir, Dialect::V0_38, Misbehaviour::None);
    let report = Scripted::Regressions
        .run(&mut conn, CHAIN, 10, &fake.pubkey)
        .unwrap();
    assert!(report.passed(), "{:?}", report.failures());
    assert!(report
        .cases
        .iter()
        .any(|c| c.expect == Expect::Refused(codes::DOUBLE_SIGN)));
    let case =
        scenario::malformed_frame(&mut conn, MalformedFrame::Garbage, Duration::from_secs(2))
            .unwrap();
    assert_eq!(case.outcome, Outcome::Dropped);
    assert!(case.passed());
    // The fake redials; the new connection works.
    let mut conn = listener.accept(Duration::from_secs(10)).unwrap();
    conn.ping().unwrap();
    let case =
        scenario::invalid_request(&mut conn, CHAIN, 50, scenario::InvalidRequest::MissingVote)
            .unwrap();
    assert!(
        matches!(case.outcome, Outcome::Refused { code: 4, .. }),
        "{case}"
    );
    drop(conn);
    drop(listener);
}

/// A responder that writes one byte at a time, and two messages in one
/// write: exercises reassembly and leftovers through `SignerConn`.
#[test]
fn responses_split_across_many_writes_and_coalesced() {
    let (node_side, mut signer_side) = UnixStream::pair().unwrap();
    let mut conn = SignerConn::from_unix_stream(node_side, Dialect::V0_38).unwrap();
    let pong = [0x02u8, 0x42, 0x00];
    let responder = std::thread::spawn(move || {
        let mut pending = Vec::new();
        // First ping: answer byte by byte.
        read_frame(&mut signer_side, &mut pending).unwrap();
        for b in pong {
            signer_side.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Second ping: answer it and the third at once.
        read_frame(&mut signer_side, &mut pending).unwrap();
        let mut two = pong.to_vec();
        two.extend_from_slice(&pong);
        signer_side.write_all(&two).unwrap();
        read_frame(&mut signer_side, &mut pending).unwrap();
        signer_side
    });
    conn.ping().unwrap();
    assert_eq!(conn.last_response_len(), 2);
    conn.ping().unwrap();
    // The third answer is already buffered.
    assert_eq!(
        conn.wait_readable(Duration::from_millis(1)),
        tmkms_node_sim::Readiness::Data
    );
    conn.ping().unwrap();
    let signer_side = responder.join().unwrap();
    drop(signer_side);
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn silence_is_not_a_close_and_raw_reads_work() {
    let (node_side, mut signer_side) = UnixStream::pair().unwrap();
    let mut conn = SignerConn::from_unix_stream(node_side, Dialect::V1).unwrap();
    assert!(!conn.is_closed_by_peer(Duration::from_millis(50)));
    conn.set_timeout(Duration::from_millis(100)).unwrap();
    assert!(matches!(conn.read_message_raw(), Err(SimError::Timeout(_))));
    signer_side
        .write_all(&[0x03, 0xaa, 0xbb, 0xcc, 0x01])
        .unwrap();
    assert_eq!(conn.read_message_raw().unwrap(), vec![0xaa, 0xbb, 0xcc]);
    // One byte of the next frame is pending; the rest never comes.
    assert!(matches!(conn.read_message_raw(), Err(SimError::Timeout(_))));
    // Oversize declared length (beyond what the simulator buffers).
    let (node_side, mut signer_side) = UnixStream::pair().unwrap();
    let mut conn = SignerConn::from_unix_stream(node_side, Dialect::V0_38).unwrap();
    let mut prefix = Vec::new();
    prost::encoding::encode_varint(1 << 40, &mut prefix);
    signer_side.write_all(&prefix).unwrap();
    assert!(matches!(conn.read_message_raw(), Err(SimError::Frame(_))));
}
