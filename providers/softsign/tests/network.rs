//! Transport behaviour of the real binary: sentries sharing one guard,
//! peer-id pinning, reconnection with backoff.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{accept, listen, Guard, Kms};
use tmkms_node_sim::{codes, BlockIdSpec, Dialect, NodeListener, VoteSpec};

const CHAIN: &str = "net-chain";

/// Add a second `[[validator]]` table to the config.
fn add_validator(kms: &Kms, address: &str, dialect: &str) {
    let mut text = fs::read_to_string(&kms.config).unwrap();
    text.push_str(&format!(
        "\n[[validator]]\naddress = \"{address}\"\nprotocol_version = \"{dialect}\"\n"
    ));
    fs::write(&kms.config, text).unwrap();
}

#[test]
fn sentries_share_one_guard_so_racing_conflicts_sign_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = NodeListener::bind_unix(dir.path().join("a.sock"), Dialect::V0_38).unwrap();
    let b = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38).unwrap();
    let kms = Kms::init_in(dir, CHAIN, &a.local_addr(), "v0.38", &[]);
    add_validator(&kms, &b.local_addr(), "v0.38");
    let mut signer = Guard(kms.spawn());
    let conn_a = accept(&a, &mut signer.0, Duration::from_secs(10)).expect("sentry A connects");
    let conn_b = accept(&b, &mut signer.0, Duration::from_secs(10)).expect("sentry B connects");
    let pubkey = kms.pubkey();

    // Both sentries ask, at the same instant, for conflicting precommits at
    // each height; exactly one per height may be signed.
    let heights = 1..=150i64;
    let barrier = Arc::new(Barrier::new(2));
    let run = |mut conn: tmkms_node_sim::SignerConn, tag: &'static [u8], barrier: Arc<Barrier>| {
        let heights = heights.clone();
        std::thread::spawn(move || {
            let mut signed = Vec::new();
            for h in heights {
                let vote = VoteSpec::precommit(
                    h,
                    0,
                    Some(BlockIdSpec::from_seed(&[tag, &h.to_be_bytes()].concat())),
                );
                barrier.wait();
                match conn.sign_vote(CHAIN, &vote, false).unwrap() {
                    Ok(sig) => {
                        tmkms_node_sim::verify_vote(
                            &pubkey,
                            CHAIN,
                            &vote,
                            &sig,
                            Dialect::V0_38,
                            false,
                        )
                        .unwrap();
                        signed.push(h);
                    }
                    Err(e) => assert_eq!(e.code, codes::DOUBLE_SIGN),
                }
            }
            signed
        })
    };
    let ta = run(conn_a, b"A", Arc::clone(&barrier));
    let tb = run(conn_b, b"B", barrier);
    let (sa, sb) = (ta.join().unwrap(), tb.join().unwrap());
    for h in heights.clone() {
        let n = usize::from(sa.contains(&h)) + usize::from(sb.contains(&h));
        assert_eq!(n, 1, "height {h} signed {n} times");
    }
    eprintln!(
        "sentry A won {} heights, sentry B won {}",
        sa.len(),
        sb.len()
    );
    assert_eq!(kms.state().position.height.value(), 150);
}

#[test]
fn refuses_node_whose_peer_id_does_not_match_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38).unwrap();
    let addr = listener.local_addr();
    let port = addr.rsplit(':').next().unwrap();
    let wrong = format!("tcp://{}@127.0.0.1:{port}", "ab".repeat(20));
    let kms = Kms::init_in(dir, CHAIN, &wrong, "v0.38", &[]);
    let mut signer = Guard(kms.spawn());
    // The handshake completes on our side, but the signer must hang up
    // before answering anything.
    if let Some(mut conn) = accept(&listener, &mut signer.0, Duration::from_secs(10)) {
        assert!(
            conn.pubkey(CHAIN).is_err(),
            "signer answered a node with the wrong peer id"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = kms.log();
    assert!(
        log.contains("but the address pins"),
        "log explains the mismatch:\n{log}"
    );
}

#[test]
fn warns_when_peer_id_is_not_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38).unwrap();
    let port = listener.local_addr().rsplit(':').next().unwrap().to_owned();
    let kms = Kms::init_in(dir, CHAIN, &format!("tcp://127.0.0.1:{port}"), "v0.38", &[]);
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), kms.pubkey());
    assert!(kms.log().contains("WITHOUT peer id verification"));
}

#[test]
fn reconnects_after_node_restart_with_bounded_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("node.sock");
    let listener = listen(dir.path(), false, Dialect::V0_38);
    let kms = Kms::init_in(dir, CHAIN, &listener.local_addr(), "v0.38", &[]);
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    conn.ping().unwrap();

    // Node goes away for 3 s: the signer must keep retrying, but not in a busy loop.
    drop(conn);
    drop(listener);
    let _ = fs::remove_file(&sock);
    let down_for = Duration::from_secs(3);
    std::thread::sleep(down_for);
    let attempts = kms.log().matches("cannot reach node").count();
    assert!(
        attempts >= 3,
        "signer stopped retrying ({attempts} attempts)"
    );
    assert!(
        attempts <= 20,
        "reconnect loop too eager: {attempts} attempts in {down_for:?}"
    );

    // Node back: signer reconnects within the backoff cap (5 s by default).
    let back = Instant::now();
    let listener = NodeListener::bind_unix(&sock, Dialect::V0_38).unwrap();
    let mut conn =
        accept(&listener, &mut signer.0, Duration::from_secs(10)).expect("signer reconnects");
    let waited = back.elapsed();
    let vote = VoteSpec::prevote(1, 0, Some(BlockIdSpec::for_height(1)));
    conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
    eprintln!("{attempts} attempts while down; reconnected {waited:?} after the node came back");
    assert!(waited < Duration::from_secs(6), "reconnect took {waited:?}");
}

#[test]
fn serves_the_next_connection_after_the_node_hangs_up_mid_frame() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), true, Dialect::V1);
    let kms = Kms::init_in(dir, CHAIN, &listener.local_addr(), "v1", &[]);
    let mut signer = Guard(kms.spawn());
    // Each failed session grows the backoff (100 ms, 200 ms, ...); five is enough.
    for _ in 0..5 {
        let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
        // Half a frame, then gone.
        conn.send_raw(&[0x80, 0x01, 0x0a]).unwrap();
        conn.close();
    }
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), kms.pubkey());
    assert!(
        signer.0.try_wait().unwrap().is_none(),
        "signer still running"
    );
}
