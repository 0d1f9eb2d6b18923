//! High availability with the real binary: two `tmkms-softsign` signers of
//! one validator (one consensus key, two state files) reserve through a
//! real 3-member etcd cluster with TLS and client certificates, each
//! serving its own node connection. Conflicting messages are refused
//! across signers, a replay across signers gives the same signature and
//! the reserved timestamp, a lost quorum stops signing (code 5) until it is
//! back, and a signer that trusts another CA signs nothing.
//!
//! Skips when etcd is not installed (`scripts/install-etcd.sh`) unless
//! `TMKMS_REQUIRE_ETCD` is set, as CI does.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tmkms_node_sim::etcd::{etcd_available, EtcdCluster};
use tmkms_node_sim::{
    codes, verify_vote, BlockIdSpec, Dialect, NodeListener, SignerConn, VoteSpec,
};

const CHAIN: &str = "ha-chain";
const DIALECT: Dialect = Dialect::V0_38;

/// TLS files a signer presents.
struct Tls<'a> {
    ca: &'a Path,
    cert: &'a Path,
    key: &'a Path,
}

fn trusted(cluster: &EtcdCluster) -> Tls<'_> {
    Tls {
        ca: cluster.ca_path(),
        cert: cluster.client_cert_path(),
        key: cluster.client_key_path(),
    }
}

/// A signer home for its own node listener, with `[ha]` on `cluster` and
/// the consensus key of `key_from` (the first signer's, when given).
fn ha_signer(
    cluster: &EtcdCluster,
    tls: &Tls<'_>,
    signer_id: &str,
    key_from: Option<&Kms>,
) -> (Kms, NodeListener) {
    let listener = NodeListener::bind_tcp("127.0.0.1:0", DIALECT).unwrap();
    let kms = Kms::init(CHAIN, &listener.local_addr(), "v0.38");
    if let Some(first) = key_from {
        std::fs::copy(
            first.path("secrets/consensus.key"),
            kms.path("secrets/consensus.key"),
        )
        .unwrap();
    }
    let endpoints: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    let table = format!(
        "\n[ha]\nbackend = \"etcd\"\nendpoints = [{}]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nsigner_id = {signer_id:?}\ntimeout_ms = 1000\n",
        endpoints.join(", "),
        tls.ca,
        tls.cert,
        tls.key,
    );
    let mut text = std::fs::read_to_string(&kms.config).unwrap();
    text.push_str(&table);
    std::fs::write(&kms.config, text).unwrap();
    (kms, listener)
}

fn connect(kms: &Kms, listener: &NodeListener) -> (Guard, SignerConn) {
    let mut child = kms.spawn();
    let conn = accept(listener, &mut child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the signer did not connect:\n{}", kms.log()));
    (Guard(child), conn)
}

fn prevote(height: i64, block: i64) -> VoteSpec {
    VoteSpec::prevote(height, 0, Some(BlockIdSpec::for_height(block)))
}

/// The vote's answer: signed (checked against `pubkey`) or the refusal code.
fn ask(
    conn: &mut SignerConn,
    pubkey: &[u8; 32],
    vote: &VoteSpec,
) -> Result<tmkms_node_sim::SignedVote, i32> {
    match conn.sign_vote(CHAIN, vote, false).expect("an answer") {
        Ok(signed) => {
            verify_vote(pubkey, CHAIN, vote, &signed, DIALECT, false).expect("a valid signature");
            Ok(signed)
        }
        Err(refused) => Err(refused.code),
    }
}

#[test]
fn two_signers_share_one_reservation_in_etcd() {
    if !etcd_available("softsign ha") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(dir.path(), 3).unwrap();
    let (a, listen_a) = ha_signer(&cluster, &trusted(&cluster), "signer-a", None);
    let (b, listen_b) = ha_signer(&cluster, &trusted(&cluster), "signer-b", Some(&a));
    let pubkey = a.pubkey();
    assert_eq!(pubkey, b.pubkey());
    let (mut a_child, mut to_a) = connect(&a, &listen_a);
    let (_b_child, mut to_b) = connect(&b, &listen_b);

    // A signs; B is refused a conflicting vote at the same position, and
    // asked the same vote with a later time, answers with A's signature
    // and A's timestamp.
    let first = ask(&mut to_a, &pubkey, &prevote(1, 1)).expect("A signs the first prevote");
    assert_eq!(
        ask(&mut to_b, &pubkey, &prevote(1, 2)).unwrap_err(),
        codes::DOUBLE_SIGN
    );
    let later = prevote(1, 1).with_timestamp(1_700_000_999, 0);
    let replayed = ask(&mut to_b, &pubkey, &later).expect("B replays A's prevote");
    assert_eq!(replayed.signature, first.signature);
    assert_eq!(replayed.timestamp, first.timestamp);

    // B moves on; A is then refused below or beside B's reservation.
    ask(&mut to_b, &pubkey, &prevote(2, 2)).expect("B signs height 2");
    assert_eq!(
        ask(&mut to_a, &pubkey, &prevote(2, 3)).unwrap_err(),
        codes::DOUBLE_SIGN
    );
    assert_eq!(
        ask(&mut to_a, &pubkey, &prevote(1, 1).with_timestamp(5, 0)).unwrap_err(),
        codes::DOUBLE_SIGN
    );

    // A dies; B carries on.
    kill(&mut a_child.0);
    for h in 3..=5 {
        ask(&mut to_b, &pubkey, &prevote(h, h)).expect("B signs after A died");
    }

    // Quorum lost: nothing is signed (code 5), promptly.
    cluster.kill_member(0).unwrap();
    cluster.kill_member(1).unwrap();
    let asked = Instant::now();
    assert_eq!(
        ask(&mut to_b, &pubkey, &prevote(6, 6)).unwrap_err(),
        codes::PERSIST_FAILED
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert!(b.log().contains("HA store is unreachable"), "{}", b.log());

    // Quorum back: signing resumes by itself.
    cluster.restart_member(0).unwrap();
    cluster.restart_member(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ask(&mut to_b, &pubkey, &prevote(6, 6)) {
            Ok(_) => break,
            Err(code) if code == codes::PERSIST_FAILED && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(code) => panic!(
                "no signature after the quorum came back (code {code}):\n{}",
                b.log()
            ),
        }
    }
    // Both state files hold only what their signer released.
    assert_eq!(
        a.state().position.height.value(),
        1,
        "A released nothing after height 1"
    );
    assert_eq!(b.state().position.height.value(), 6);
}

#[test]
fn a_signer_that_trusts_another_ca_signs_nothing() {
    if !etcd_available("softsign ha") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = EtcdCluster::start(dir.path(), 3).unwrap();
    let rogue = Tls {
        ca: cluster.rogue_ca_path(),
        cert: cluster.client_cert_path(),
        key: cluster.client_key_path(),
    };
    let (kms, listener) = ha_signer(&cluster, &rogue, "signer-c", None);
    let pubkey = kms.pubkey();
    let (_child, mut conn) = connect(&kms, &listener);
    assert_eq!(
        ask(&mut conn, &pubkey, &prevote(1, 1)).unwrap_err(),
        codes::PERSIST_FAILED
    );
    let log = kms.log();
    assert!(
        log.contains("certificate") || log.contains("UnknownIssuer"),
        "{log}"
    );
    assert_eq!(
        kms.state().position.height.value(),
        0,
        "nothing was made durable"
    );
}
