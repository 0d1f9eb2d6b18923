//! The etcd client against a real 3-member cluster with TLS and client
//! certificates (skipped when etcd is not installed, unless
//! `TMKMS_REQUIRE_ETCD` is set, as CI does).
#![cfg(test)]

use std::path::Path;
use std::time::{Duration, Instant};

use tmkms_light::config::{HaConfig, HaEndpoint, HaTls};
use tmkms_light::ha::{Outcome, Watermark, WatermarkError};
use tmkms_light::types::{ChainId, Height, Position, Round, SignState, Step};
use tmkms_light_etcd::{open, EtcdWatermark};
use tmkms_node_sim::etcd::{etcd_available, EtcdCluster};

fn config(cluster: &EtcdCluster, ca: &Path, signer: &str) -> HaConfig {
    HaConfig {
        endpoints: cluster
            .endpoints()
            .iter()
            .map(|url| url.parse::<HaEndpoint>().unwrap())
            .collect(),
        tls: Some(HaTls {
            ca_file: ca.into(),
            cert_file: cluster.client_cert_path().into(),
            key_file: cluster.client_key_path().into(),
        }),
        key_prefix: "/test".into(),
        signer_id: signer.into(),
        timeout: Duration::from_millis(800),
    }
}

fn client(cluster: &EtcdCluster, signer: &str) -> EtcdWatermark {
    let chain = ChainId::try_from("etcd-test").unwrap();
    open(
        &config(cluster, cluster.ca_path(), signer),
        &chain,
        &[1; 32],
    )
    .unwrap()
}

fn state(height: u32, step: Step, bytes: u8) -> SignState {
    SignState {
        position: Position {
            height: Height::from(height),
            round: Round::from(0u16),
            step,
        },
        sign_bytes: vec![bytes; 100],
        signature: None,
    }
}

#[test]
fn compare_and_swap_lets_exactly_one_signer_win_and_survives_a_leader_kill() {
    if !etcd_available("etcd client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(dir.path(), 3).unwrap();
    let mut a = client(&cluster, "a");
    let mut b = client(&cluster, "b");
    assert_eq!(
        a.read().unwrap().state,
        None,
        "a fresh key reads as nothing reserved"
    );

    // Both read revision 0 and race for it: one commits, the other gets
    // the winner's reservation back in the same answer.
    let won = a.reserve(0, &state(1, Step::Prevote, 1)).unwrap();
    let Outcome::Reserved(after_a) = won else {
        panic!("the first CAS must commit: {won:?}")
    };
    let lost = b.reserve(0, &state(1, Step::Prevote, 2)).unwrap();
    let Outcome::Superseded(seen) = lost else {
        panic!("the second CAS must not commit: {lost:?}")
    };
    assert_eq!(seen.revision, after_a.revision);
    assert_eq!(
        seen.state.unwrap().sign_bytes,
        vec![1; 100],
        "b sees a's sign bytes"
    );
    assert_eq!(b.read().unwrap(), a.read().unwrap());

    // The leader dies: the next reservation still commits (on another
    // member, within the deadline), compared on the revision last seen.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    cluster.kill_member(leader).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let revision = after_a.revision;
    loop {
        match b.reserve(revision, &state(1, Step::Precommit, 3)) {
            Ok(Outcome::Reserved(now)) => {
                assert!(now.revision > revision);
                break;
            }
            Ok(other) => panic!("nobody else wrote: {other:?}"),
            Err(e) if Instant::now() < deadline => eprintln!("retrying after: {e}"),
            Err(e) => panic!("no new leader took the reservation: {e}"),
        }
    }
}

#[test]
fn no_quorum_or_a_foreign_ca_is_an_error_within_the_deadline() {
    if !etcd_available("etcd client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(dir.path(), 3).unwrap();

    let chain = ChainId::try_from("etcd-test").unwrap();
    let mut rogue = open(
        &config(&cluster, cluster.rogue_ca_path(), "r"),
        &chain,
        &[1; 32],
    )
    .unwrap();
    let e = rogue.reserve(0, &state(1, Step::Prevote, 1)).unwrap_err();
    assert!(matches!(e, WatermarkError::Unreachable { .. }), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    let mut a = client(&cluster, "a");
    a.read().unwrap();
    cluster.kill_member(0).unwrap();
    cluster.kill_member(1).unwrap();
    let asked = Instant::now();
    let e = a.reserve(0, &state(1, Step::Prevote, 1)).unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        asked.elapsed()
    );
    assert!(e.to_string().contains("unreachable"), "{e}");
    // With a quorum back the reservation reads again. The failed one may
    // or may not have been made (a lone member can hold it in its log and
    // commit it once it leads again): that is the "maybe reserved" the
    // signer handles by releasing nothing and reading afresh.
    cluster.restart_member(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match a.read() {
            Ok(r) => {
                assert!(
                    r.state.is_none() || r.state == Some(state(1, Step::Prevote, 1)),
                    "only the attempted reservation can be there: {r:?}"
                );
                break;
            }
            Err(e) if Instant::now() < deadline => eprintln!("retrying after: {e}"),
            Err(e) => panic!("the quorum did not come back: {e}"),
        }
    }
}
