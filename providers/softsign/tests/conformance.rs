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
use tmkms_node_sim::conformance::{
    no_diagnostics, run_conformance, SignerUnderTest, CONFORMANCE_MAX_HEIGHT,
};
use tmkms_node_sim::Dialect;

fn conformance(dialect: &str, tcp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect).unwrap();
    let chain = format!("conf-{}", dialect.replace('.', "-"));
    let kms = Kms::init_in(dir, &chain, &listener.local_addr(), dialect, &[]);
    kms.set_top_level(&format!("max_height = {CONFORMANCE_MAX_HEIGHT}"));
    let _signer = Guard(kms.spawn());
    run_conformance(
        &listener,
        &chain,
        tcp,
        &SignerUnderTest {
            pubkey: kms.pubkey(),
            state_height: &|| kms.state().position.height.value(),
            log: &|| kms.log(),
            diagnostics: &no_diagnostics,
        },
    );
}

tmkms_node_sim::conformance_matrix!(conformance);
