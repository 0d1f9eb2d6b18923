//! Helper + enclave (two host processes over Unix sockets standing in for
//! vsock) + mock NSM + the KMS emulator + the node simulator: `init`, then
//! `start` (keys decrypted through KMS Decrypt with an attested Recipient),
//! and the same conformance scenarios as softsign, over TCP +
//! SecretConnection (inside the enclave) and a Unix socket.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use common::{kms_endpoint, Nitro};
use tmkms_node_sim::conformance::{max_height_setting, Cell, SignerUnderTest};

fn conformance(dialect: &str, tcp: bool) {
    let Some(kms) = kms_endpoint() else { return };
    let (dir, cell) = Cell::new("nitro", dialect, tcp);
    let top_level = max_height_setting();
    let nitro =
        Nitro::configured(dir, &kms, &cell.chain, &cell.address(), dialect, &top_level).init();
    let _running = nitro.start();
    let (_, log) = cell.run(&SignerUnderTest {
        home: &nitro,
        pubkey: nitro.pubkey(),
        state_height: &|| nitro.state().position.height.value(),
        diagnostics: &|| format!("enclave log:\n{}", nitro.enclave_log()),
    });
    // Enclave lines arrive over the log stream, re-emitted by the helper.
    assert!(
        log.contains("enclave signer starting"),
        "enclave log stream:\n{log}"
    );
}

tmkms_node_sim::conformance_matrix!(conformance);
