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
use tmkms_node_sim::conformance::{run_conformance, SignerUnderTest, CONFORMANCE_MAX_HEIGHT};
use tmkms_node_sim::Dialect;

fn conformance(dialect: &str, tcp: bool) {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sim_dialect: Dialect = dialect.parse().unwrap();
    let listener = listen(dir.path(), tcp, sim_dialect).unwrap();
    let chain = format!("nitro-{}", dialect.replace('.', "-"));
    let nitro = Nitro::init_in(
        dir,
        &kms,
        &chain,
        &listener.local_addr(),
        dialect,
        &format!("max_height = {CONFORMANCE_MAX_HEIGHT}"),
    );
    let _enclave = Guard(nitro.spawn_enclave());
    let _proxy = Guard(nitro.spawn_proxy());
    let _helper = Guard(nitro.spawn_helper());
    let (_, log) = run_conformance(
        &listener,
        &chain,
        tcp,
        &SignerUnderTest {
            pubkey: nitro.pubkey(),
            state_height: &|| nitro.state().position.height.value(),
            log: &|| nitro.log(),
            diagnostics: &|| format!("enclave log:\n{}", nitro.enclave_log()),
        },
    );
    // Enclave lines arrive over the log stream, re-emitted by the helper.
    assert!(
        log.contains("enclave signer starting"),
        "enclave log stream:\n{log}"
    );
}

tmkms_node_sim::conformance_matrix!(conformance);
