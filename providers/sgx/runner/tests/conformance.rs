//! The runner and the enclave (host simulation: two processes talking over
//! the same named streams as with EDP) against the node simulator, with the
//! same scenarios as softsign: TCP + SecretConnection inside the enclave,
//! and a Unix socket spliced by the runner.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use common::{Guard, Sgx};
use tmkms_node_sim::conformance::{max_height_setting, no_diagnostics, Cell, SignerUnderTest};

fn conformance(dialect: &str, tcp: bool) {
    let (dir, cell) = Cell::new("sgx", dialect, tcp);
    let kms = Sgx::init_in(dir, &cell.chain, &cell.address(), dialect, &[]);
    kms.set_top_level(&max_height_setting());
    // The key the enclave unsealed, read before the signer runs.
    let pubkey = kms.pubkey();
    let _signer = Guard(kms.spawn());
    let (report, log) = cell.run(&SignerUnderTest {
        home: &kms,
        pubkey,
        state_height: &|| kms.state().position.height.value(),
        diagnostics: &no_diagnostics,
    });
    assert!(
        log.contains("SGX HOST SIMULATION"),
        "simulation says so:\n{log}"
    );
    assert!(log.contains("authenticated=true") || report.next_height > 0);
}

tmkms_node_sim::conformance_matrix!(conformance);
