//! Helper + enclave (two host processes over Unix sockets standing in for
//! vsock) + mock NSM + the KMS emulator + the node simulator: `init`, then
//! `start` (keys decrypted through KMS Decrypt with an attested Recipient),
//! and the same conformance scenarios as softsign, over TCP +
//! SecretConnection (inside the enclave) and a Unix socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{kms_endpoint, listen, Guard, Nitro};
use tmkms_node_sim::scenario::{run_all, SuiteConfig};
use tmkms_node_sim::Dialect;

const MAX_HEIGHT: i64 = 1_000_000;

fn conformance(dialect: &str, tcp: bool) {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect);
    let chain = format!("nitro-{}", dialect.replace('.', "-"));
    let nitro = Nitro::init_in(
        dir,
        &kms,
        &chain,
        &listener.local_addr(),
        dialect,
        &format!("max_height = {MAX_HEIGHT}"),
    );
    let _enclave = Guard(nitro.spawn_enclave());
    let _proxy = Guard(nitro.spawn_proxy());
    let _helper = Guard(nitro.spawn_helper());

    let mut cfg = SuiteConfig::new(&chain);
    cfg.max_height = Some(MAX_HEIGHT);
    cfg.normal_heights = 20;
    let report = run_all(&listener, &cfg).unwrap_or_else(|e| {
        panic!(
            "suite aborted: {e}\nhelper log:\n{}\nenclave log:\n{}",
            nitro.log(),
            nitro.enclave_log()
        )
    });
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
        "{dialect} tcp={tcp}: failures:\n{}\nhelper log:\n{}",
        failures.join("\n"),
        nitro.log()
    );
    assert_eq!(
        report.pubkey,
        nitro.pubkey(),
        "pubkey over the wire = init's key"
    );
    assert!(report.reconnects > 0, "malformed frames cost a connection");
    let state = nitro.state();
    assert!(
        state.position.height.value() as i64 >= report.next_height - 2,
        "the helper's state file follows signing: {state:?}"
    );
    let log = nitro.log();
    assert!(!log.contains("panicked"), "panic:\n{log}");
    // Enclave lines arrive over the log stream, re-emitted by the helper.
    assert!(
        log.contains("enclave signer starting"),
        "enclave log stream:\n{log}"
    );
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
