//! Transport behaviour of the real binary: sentries sharing one guard,
//! peer-id pinning, reconnection with backoff.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

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

/// A restarting CometBFT node waits only 3 s (`defaultTimeoutAcceptSeconds`)
/// for its signer and exits otherwise. After an outage long enough for the
/// backoff to reach its cap, the signer must still connect inside that
/// window. (A real v0.38 node exited here when the cap was 5 s.)
#[test]
fn reconnects_within_the_node_accept_window_after_a_long_outage() {
    const NODE_ACCEPT_WINDOW: Duration = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("node.sock");
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let kms = Kms::init_in(dir, CHAIN, &listener.local_addr(), "v0.38", &[]);
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    conn.ping().unwrap();

    // Node goes away long enough for the backoff to reach its cap.
    drop(conn);
    drop(listener);
    let _ = fs::remove_file(&sock);
    let down_for = Duration::from_secs(8);
    std::thread::sleep(down_for);
    let attempts = attempt_times(&kms.log());
    assert!(
        attempts.len() >= 6,
        "signer stopped retrying ({} attempts)",
        attempts.len()
    );
    assert!(
        attempts.len() <= 25,
        "reconnect loop too eager: {} attempts in {down_for:?}",
        attempts.len()
    );
    let widest = attempts
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0f64, f64::max);
    assert!(
        widest < NODE_ACCEPT_WINDOW.as_secs_f64() - 0.5,
        "gap of {widest:.2} s between attempts: a node restarting in that gap gives up after 3 s"
    );

    let back = Instant::now();
    let listener = NodeListener::bind_unix(&sock, Dialect::V0_38).unwrap();
    let mut conn = accept(&listener, &mut signer.0, NODE_ACCEPT_WINDOW)
        .expect("signer missed the node's 3 s accept window");
    let vote = VoteSpec::prevote(1, 0, Some(BlockIdSpec::for_height(1)));
    conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
    eprintln!(
        "{} attempts while down, widest gap {widest:.2} s; reconnected {:?} after the node came back",
        attempts.len(),
        back.elapsed()
    );
}

/// Seconds-of-day of every failed connection attempt in the signer's log.
fn attempt_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("cannot reach node"))
        .filter_map(|l| {
            // "2026-01-01T12:34:56.789012Z  WARN ..."
            let time = l.split('T').nth(1)?.split('Z').next()?;
            let mut parts = time.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            Some(h * 3600.0 + m * 60.0 + s)
        })
        .collect()
}

#[test]
fn serves_the_next_connection_after_the_node_hangs_up_mid_frame() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), true, Dialect::V1).unwrap();
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
