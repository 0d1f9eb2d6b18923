//! Tests never leave loopback: without credentials in its environment the
//! helper asks the instance metadata service, and the shared harness pins
//! that to a closed loopback port. A helper started through the harness
//! with no credentials must therefore fail fast, naming the loopback
//! endpoint — never the link-local default 169.254.169.254.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{command, HELPER};
use tmkms_node_sim::harness::LOOPBACK_IMDS_ENDPOINT;

#[test]
fn helper_without_credentials_asks_only_the_loopback_metadata_service() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tmkms.toml");
    let started = Instant::now();
    let out = command(Path::new(HELPER))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .args(["init", "-c", config.to_str().unwrap()])
        .args(["-a", "us-east-1", "-k", "alias/imds-test"])
        .args(["--chain-id", "imds-chain"])
        .args([
            "--address",
            &format!("unix://{}", dir.path().join("node.sock").display()),
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "init without credentials succeeded:\n{stderr}"
    );
    let pinned = LOOPBACK_IMDS_ENDPOINT.trim_start_matches("http://");
    assert!(
        stderr.contains("instance metadata service") && stderr.contains(pinned),
        "the error must name the pinned loopback endpoint {pinned}:\n{stderr}"
    );
    assert!(!stderr.contains("169.254"), "{stderr}");
    // A closed loopback port refuses at once; a route to the link-local
    // default would sit in the 3 s connect timeout.
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?}:\n{stderr}"
    );
}
