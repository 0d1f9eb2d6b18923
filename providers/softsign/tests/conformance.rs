//! The real `tmkms-softsign` binary against the node simulator, for every
//! dialect over TCP + SecretConnection and over a Unix socket: pubkey,
//! ping, proposals, prevotes, precommits with extension signatures,
//! replays, regressions, conflicts, wrong chain id, max height, invalid
//! requests and malformed frames (after which the signer must reconnect
//! and keep serving).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{listen, Guard, Kms};
use tmkms_node_sim::scenario::{run_all, SignerAfterSuite, SuiteConfig};
use tmkms_node_sim::Dialect;

const MAX_HEIGHT: i64 = 1_000_000;

fn conformance(dialect: &str, tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect).unwrap();
    let chain = format!("conf-{}", dialect.replace('.', "-"));
    let kms = Kms::init_in(dir, &chain, &listener.local_addr(), dialect, &[]);
    kms.set_top_level(&format!("max_height = {MAX_HEIGHT}"));
    let _signer = Guard(kms.spawn());

    let mut cfg = SuiteConfig::new(&chain);
    cfg.max_height = Some(MAX_HEIGHT);
    cfg.normal_heights = 20;
    let report = run_all(&listener, &cfg)
        .unwrap_or_else(|e| panic!("suite aborted: {e}\nsigner log:\n{}", kms.log()));
    let log = kms.log();
    let problems = report.check_signer(&SignerAfterSuite {
        pubkey: kms.pubkey(),
        state_height: kms.state().position.height.value(),
        log: &log,
        tcp,
    });
    assert!(
        problems.is_empty(),
        "{dialect} tcp={tcp}:\n{}\nsigner log:\n{log}",
        problems.join("\n")
    );
}

tmkms_node_sim::conformance_matrix!(conformance);
