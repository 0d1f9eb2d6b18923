//! The metrics server over real loopback sockets: what it serves, and that
//! no client can make it grow or stall.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tmkms_light::observe::{DisconnectReason, Event, Observer, SignedKind};
use tmkms_light_metrics::{spawn, Limits, Metrics};

fn serve(limits: Limits) -> (SocketAddr, Arc<Metrics>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new("softsign");
    spawn(listener, Arc::clone(&metrics), limits).unwrap();
    (addr, metrics)
}

fn get(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

fn status(reply: &str) -> &str {
    reply.split(' ').nth(1).unwrap_or("")
}

fn signed(kind: SignedKind, height: u64) -> Event {
    Event::Signed {
        kind,
        height,
        round: 0,
        extension: kind == SignedKind::Precommit,
        replayed: false,
    }
}

fn answered() -> Event {
    Event::Answered {
        latency: Duration::from_micros(300),
    }
}

#[test]
fn metrics_show_what_the_observer_saw() {
    let (addr, metrics) = serve(Limits::default());
    let chain = metrics.chain("test-chain");
    chain.observe(&Event::Connected {
        address: "tcp://127.0.0.1:26659".into(),
    });
    for height in 1..=3 {
        chain.observe(&signed(SignedKind::Proposal, height));
        chain.observe(&signed(SignedKind::Prevote, height));
        chain.observe(&signed(SignedKind::Precommit, height));
        for _ in 0..3 {
            chain.observe(&answered());
        }
    }
    chain.observe(&Event::Refused { code: 2 });
    chain.observe(&Event::StateWritten {
        duration: Duration::from_micros(80),
    });

    let reply = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&reply), "200", "{reply}");
    for line in [
        "tmkms_light_signed_total{chain_id=\"test-chain\",type=\"prevote\"} 3",
        "tmkms_light_signed_total{chain_id=\"test-chain\",type=\"extension\"} 3",
        "tmkms_light_refused_total{chain_id=\"test-chain\",code=\"2\"} 1",
        "tmkms_light_last_signed_height{chain_id=\"test-chain\"} 3",
        "tmkms_light_last_signed_step{chain_id=\"test-chain\"} 3",
        "tmkms_light_node_connected{chain_id=\"test-chain\",address=\"tcp://127.0.0.1:26659\"} 1",
        "tmkms_light_node_connects_total 1",
        "tmkms_light_sign_duration_seconds_count{chain_id=\"test-chain\"} 9",
        "tmkms_light_state_persist_duration_seconds_count 1",
        "tmkms_light_build_info{version=\"0.1.0\",provider=\"softsign\"} 1",
    ] {
        assert!(reply.contains(line), "missing {line:?} in\n{reply}");
    }
}

#[test]
fn readyz_follows_the_node_connection_and_the_state_writes() {
    let (addr, metrics) = serve(Limits::default());
    let chain = metrics.chain("c");
    let readyz = || get(addr, b"GET /readyz HTTP/1.0\r\n\r\n");
    assert_eq!(status(&readyz()), "503");
    assert!(readyz().contains("no node connection"));
    let address = "unix:///tmp/v.sock".to_string();
    chain.observe(&Event::Connected {
        address: address.clone(),
    });
    assert_eq!(status(&readyz()), "200");
    chain.observe(&Event::StateWriteFailed);
    assert!(readyz().contains("the last state write failed"));
    chain.observe(&Event::StateWritten {
        duration: Duration::from_micros(10),
    });
    assert_eq!(status(&readyz()), "200");
    // A failed handshake never counted as a connection.
    chain.observe(&Event::Disconnected {
        address: address.clone(),
        reason: DisconnectReason::Handshake,
    });
    assert_eq!(status(&readyz()), "200");
    chain.observe(&Event::Disconnected {
        address,
        reason: DisconnectReason::Closed,
    });
    assert_eq!(status(&readyz()), "503");
    assert_eq!(status(&get(addr, b"GET /healthz HTTP/1.1\r\n\r\n")), "200");
}

#[test]
fn malformed_and_unknown_requests_get_errors_and_the_server_keeps_serving() {
    let (addr, _metrics) = serve(Limits::default());
    for (request, expected) in [
        (&b"GET /nope HTTP/1.1\r\n\r\n"[..], "404"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
        (b"GET /metrics\r\n\r\n", "400"),
        (b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", "400"),
        (b"GET /metrics SPDY/3\r\n\r\n", "400"),
        (b"\r\n\r\n", "400"),
    ] {
        assert_eq!(status(&get(addr, request)), expected, "{request:?}");
    }
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream.write_all(&huge);
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert_eq!(status(&reply), "431", "{reply}");
    assert_eq!(status(&get(addr, b"GET /metrics HTTP/1.1\r\n\r\n")), "200");
}

#[test]
fn a_silent_client_is_dropped_at_the_deadline() {
    let limits = Limits {
        workers: 1,
        deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _metrics) = serve(limits);
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closes without a reply");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The only worker is free again.
    assert_eq!(status(&get(addr, b"GET /healthz HTTP/1.1\r\n\r\n")), "200");
}

#[test]
fn a_flood_of_idle_connections_is_shed_and_the_server_recovers() {
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let (addr, _metrics) = serve(limits);
    let idle: Vec<TcpStream> = (0..2_000)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() > 100, "could open only {}", idle.len());
    // While they are still open, the server has already closed most of
    // them (queue full) and it answers again once the queue has drained.
    let started = Instant::now();
    let reply = loop {
        let reply = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).ok()?;
            Some(reply)
        })
        .join()
        .unwrap();
        if let Some(reply) = reply.filter(|r| !r.is_empty()) {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no answer within 30 s"
        );
    };
    assert_eq!(status(&reply), "200");
    drop(idle);
}
