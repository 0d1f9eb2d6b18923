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
    conformance_with(dialect, tcp, &[]);
}

/// The suite with extra top-level settings.
fn conformance_with(dialect: &str, tcp: bool, settings: &[&str]) {
    let (dir, cell) = Cell::new("conf", dialect, tcp);
    let kms = Kms::init_in(dir, &cell.chain, &cell.address(), dialect, &[]);
    kms.set_top_level(&max_height_setting());
    for setting in settings {
        kms.set_top_level(setting);
    }
    let _signer = Guard(kms.spawn());
    cell.run(&SignerUnderTest {
        home: &kms,
        pubkey: kms.pubkey(),
        state_height: &|| kms.state().position.height.value(),
        diagnostics: &no_diagnostics,
    });
}

tmkms_node_sim::conformance_matrix!(conformance);

/// With a busy-polled node socket (non-blocking reads that spin, then
/// block with the read timeout), the whole suite — malformed frames,
/// reconnects, idle pings — behaves the same.
#[test]
fn busy_polled_v0_38_tcp() {
    conformance_with("v0.38", true, &["busy_poll_us = 300"]);
}

#[test]
fn busy_polled_v0_38_unix() {
    conformance_with("v0.38", false, &["busy_poll_us = 300"]);
}
