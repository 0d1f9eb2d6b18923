//! The real `tmkms-softsign` binary against the node simulator, for every
//! dialect over TCP + SecretConnection and over a Unix socket: pubkey,
//! ping, proposals, prevotes, precommits with extension signatures,
//! replays, regressions, conflicts, wrong chain id, max height, invalid
//! requests and malformed frames (after which the signer must reconnect
//! and keep serving).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use common::{Guard, Kms};
use tmkms_node_sim::conformance::{max_height_setting, no_diagnostics, Cell, SignerUnderTest};

fn conformance(dialect: &str, tcp: bool) {
    let (dir, cell) = Cell::new("conf", dialect, tcp);
    let kms = Kms::init_in(dir, &cell.chain, &cell.address(), dialect, &[]);
    kms.set_top_level(&max_height_setting());
    let _signer = Guard(kms.spawn());
    cell.run(&SignerUnderTest {
        home: &kms,
        pubkey: kms.pubkey(),
        state_height: &|| kms.state().position.height.value(),
        diagnostics: &no_diagnostics,
    });
}

tmkms_node_sim::conformance_matrix!(conformance);
