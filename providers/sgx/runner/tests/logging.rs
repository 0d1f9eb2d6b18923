//! `--log-format json` holds for the enclave's lines too: the runner hands
//! its format to the enclave, whose lines (its signatures among them) share
//! the runner's stderr, so a log shipper reading that stream gets one JSON
//! object per line.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Guard, Sgx, RUNNER};
use tmkms_node_sim::harness::{sign_heights, signed_json_lines};
use tmkms_node_sim::home::{logging_to, SIGNER_LOG};
use tmkms_node_sim::{Dialect, NodeListener};

const CHAIN: &str = "log-chain";

#[test]
fn json_logs_cover_the_enclave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let listener = NodeListener::bind_unix(&socket, Dialect::V0_38).unwrap();
    let address = format!("unix://{}", socket.display());
    let sgx = Sgx::init_in(dir, CHAIN, &address, "v0.38", &[]);
    let runner = Guard(
        logging_to(
            Command::new(RUNNER)
                .args(["start", "-c", sgx.config_str(), "--log-format", "json"])
                .env("TMKMS_LOG", "info"),
            &sgx,
            SIGNER_LOG,
        )
        .spawn()
        .unwrap(),
    );
    let mut node = listener.accept(Duration::from_secs(30)).unwrap();
    sign_heights(&mut node, CHAIN, 1..=2, true);
    node.close();
    std::thread::sleep(Duration::from_millis(300));
    drop(runner);
    let log = sgx.log();
    let signed = signed_json_lines(&log);
    let steps: Vec<_> = signed.iter().map(|(h, _, s, _)| (*h, s.as_str())).collect();
    assert_eq!(
        steps,
        [
            (1, "proposal"),
            (1, "prevote"),
            (1, "precommit"),
            (2, "proposal"),
            (2, "prevote"),
            (2, "precommit")
        ],
        "{log}"
    );
    assert!(log.contains("SGX HOST SIMULATION"), "{log}");
}
