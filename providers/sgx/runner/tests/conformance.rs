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
use tmkms_node_sim::conformance::{
    no_diagnostics, run_conformance, SignerUnderTest, CONFORMANCE_MAX_HEIGHT,
};
use tmkms_node_sim::Dialect;

fn conformance(dialect: &str, tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect).unwrap();
    let chain = format!("sgx-{}", dialect.replace('.', "-"));
    let kms = Sgx::init_in(dir, &chain, &listener.local_addr(), dialect, &[]);
    kms.set_top_level(&format!("max_height = {CONFORMANCE_MAX_HEIGHT}"));
    // The key the enclave unsealed, read before the signer runs.
    let pubkey = kms.pubkey();
    let _signer = Guard(kms.spawn());
    let (report, log) = run_conformance(
        &listener,
        &chain,
        tcp,
        &SignerUnderTest {
            pubkey,
            state_height: &|| kms.state().position.height.value(),
            log: &|| kms.log(),
            diagnostics: &no_diagnostics,
        },
    );
    assert!(
        log.contains("SGX HOST SIMULATION"),
        "simulation says so:\n{log}"
    );
    assert!(log.contains("authenticated=true") || report.next_height > 0);
}

tmkms_node_sim::conformance_matrix!(conformance);
