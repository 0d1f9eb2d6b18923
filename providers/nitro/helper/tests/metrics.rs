//! The helper serves the metrics of the enclave it runs: the enclave writes
//! its events on the `events` stream, the helper counts them and serves
//! `/metrics` on `metrics_listen` (real enclave process with the mock NSM,
//! the KMS emulator, the node simulator over a Unix socket).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{kms_endpoint, Nitro};
use tmkms_node_sim::harness::sign_heights;
use tmkms_node_sim::{Dialect, NodeListener};

const CHAIN: &str = "nitro-metrics";

fn scrape(port: u16) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

#[test]
fn the_helper_serves_what_the_enclave_signed() {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let listener = NodeListener::bind_unix(&socket, Dialect::V0_38).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nitro = Nitro::configured(
        dir,
        &kms,
        CHAIN,
        &format!("unix://{}", socket.display()),
        "v0.38",
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
    )
    .init();
    let (_running, mut conn) = nitro.start_connected(&listener, Duration::from_secs(60));
    sign_heights(&mut conn, CHAIN, 1..=2, false);
    let wanted = [
        format!("tmkms_light_last_signed_height{{chain_id=\"{CHAIN}\"}} 2"),
        format!("tmkms_light_last_signed_step{{chain_id=\"{CHAIN}\"}} 3"),
        format!("tmkms_light_signed_total{{chain_id=\"{CHAIN}\",type=\"prevote\"}} 2"),
        format!("tmkms_light_signed_total{{chain_id=\"{CHAIN}\",type=\"extension\"}} 2"),
        format!("tmkms_light_sign_duration_seconds_count{{chain_id=\"{CHAIN}\"}} 4"),
        "tmkms_light_node_connects_total 1".to_owned(),
        "tmkms_light_build_info{version=\"0.1.0\",provider=\"nitro\"} 1".to_owned(),
    ];
    let started = Instant::now();
    loop {
        let metrics = scrape(port);
        if wanted.iter().all(|line| metrics.contains(line.as_str())) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "after 20 s /metrics still lacks one of {wanted:?}:\n{metrics}\nhelper log:\n{}",
            nitro.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
