//! The runner and the enclave (host simulation: two processes talking over
//! the same named streams as with EDP) against the node simulator, with the
//! same scenarios as softsign: TCP + SecretConnection inside the enclave,
//! and a Unix socket spliced by the runner.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{listen, Guard, Sgx};
use tmkms_node_sim::scenario::{run_all, SuiteConfig};
use tmkms_node_sim::Dialect;

const MAX_HEIGHT: i64 = 1_000_000;

fn conformance(dialect: &str, tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect);
    let chain = format!("sgx-{}", dialect.replace('.', "-"));
    let kms = Sgx::init_in(dir, &chain, &listener.local_addr(), dialect, &[]);
    kms.set_top_level(&format!("max_height = {MAX_HEIGHT}"));
    let pubkey = kms.pubkey();
    let _signer = Guard(kms.spawn());

    let mut cfg = SuiteConfig::new(&chain);
    cfg.max_height = Some(MAX_HEIGHT);
    cfg.normal_heights = 20;
    let report = run_all(&listener, &cfg)
        .unwrap_or_else(|e| panic!("suite aborted: {e}\nsigner log:\n{}", kms.log()));
    let mut failures = Vec::new();
    for r in &report.reports {
        for case in r.failures() {
            failures.push(format!(
                "{}: {} expected {:?}, got {:?}",
                r.scenario, case.name, case.expect, case.outcome
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{dialect} tcp={tcp}: failures:\n{}\nsigner log:\n{}",
        failures.join("\n"),
        kms.log()
    );
    assert_eq!(report.pubkey, pubkey, "pubkey over the wire = unsealed key");
    assert!(report.reconnects > 0, "malformed frames cost a connection");
    let state = kms.state();
    assert!(
        state.position.height.value() as i64 >= report.next_height - 2,
        "the runner's state file follows signing: {state:?}"
    );
    let log = kms.log();
    assert!(!log.contains("panicked"), "panic:\n{log}");
    assert!(
        log.contains("SGX HOST SIMULATION"),
        "simulation says so:\n{log}"
    );
    assert!(log.contains("authenticated=true") || report.next_height > 0);
    if tcp {
        assert!(
            log.contains("node peer id verified"),
            "pinned peer id:\n{log}"
        );
    }
}

macro_rules! conformance_tests {
    ($($name:ident: $dialect:literal, $tcp:literal;)*) => {$(
        #[test]
        fn $name() {
            conformance($dialect, $tcp);
        }
    )*};
}

conformance_tests! {
    v0_34_tcp: "v0.34", true;
    v0_34_unix: "v0.34", false;
    v0_37_tcp: "v0.37", true;
    v0_37_unix: "v0.37", false;
    v0_38_tcp: "v0.38", true;
    v0_38_unix: "v0.38", false;
    v1_tcp: "v1", true;
    v1_unix: "v1", false;
}
