//! The host's `vsock-proxy`: an enclave has no network, so the parent relays its connections
//! (in production: vsock port 8000 → `tcp://kms.<region>.amazonaws.com:443`). The bytes are
//! TLS end to end between the enclave and KMS; the proxy only copies them.
//!
//! Each accepted connection gets a target connection and two copy threads. End of stream in
//! one direction is passed on as a half-close (`shutdown(Write)`), so request/response
//! protocols that close their sending side first still get their answer. An error in either
//! direction tears down both connections, so neither thread is left blocked.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tmkms_light_cli::copy_half;
use tmkms_nitro_transport::{Endpoint, Listener, Stream};

use crate::link::Link;

/// Tunables of [`serve_proxy`].
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Connections relayed at once; further clients are accepted and closed at once
    /// (with a warning), instead of piling up threads.
    pub max_connections: usize,
    /// How long to wait for the target to accept a connection.
    pub connect_timeout: Duration,
    /// How often the accept loop looks at the shutdown flag.
    pub poll_interval: Duration,
    /// On shutdown, how long to wait for the relays' threads after closing their sockets.
    pub shutdown_grace: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            connect_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Binds `listen` and relays every connection to `target` until `shutdown` becomes true,
/// with [`ProxyConfig::default`].
/// ([`serve_proxy`] takes a bound listener and explicit settings.)
pub fn run_proxy(listen: &Endpoint, target: &Endpoint, shutdown: &AtomicBool) -> io::Result<()> {
    serve_proxy(&listen.bind()?, target, &ProxyConfig::default(), shutdown)
}

/// Relays connections accepted on an already bound `listener` (lets callers bind first,
/// e.g. to learn a kernel-chosen port or to fail early). On shutdown it stops accepting,
/// closes the open relays and waits up to `shutdown_grace` for their threads.
pub fn serve_proxy(
    listener: &Listener,
    target: &Endpoint,
    config: &ProxyConfig,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    let local = listener.local_endpoint()?;
    tracing::info!(listen = %local, %target, max = config.max_connections, "vsock proxy started");
    let active: Arc<Mutex<HashMap<u64, Vec<Stream>>>> = Arc::default();
    let next_id = AtomicU64::new(0);
    while !shutdown.load(Ordering::SeqCst) {
        let (client, peer) = match listener.accept_timeout(config.poll_interval) {
            Ok(Some(conn)) => conn,
            Ok(None) => continue,
            // E.g. out of file descriptors: keep serving the open relays and retry later.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                thread::sleep(config.poll_interval);
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let mut relays = active.lock().unwrap_or_else(PoisonError::into_inner);
        if relays.len() >= config.max_connections {
            tracing::warn!(%peer, limit = config.max_connections, "connection limit reached; closing the new connection");
            continue;
        }
        // Handles that let shutdown unblock the copy threads; registered before they start.
        let closer = match client.try_clone() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot duplicate the client socket; closing it");
                continue;
            }
        };
        relays.insert(id, vec![closer]);
        drop(relays);
        let relay_set = Arc::clone(&active);
        let target = target.clone();
        let timeout = config.connect_timeout;
        let spawned = thread::Builder::new()
            .name(format!("proxy-{id}"))
            .spawn(move || {
                relay(id, client, &peer, &target, timeout, &relay_set);
                relay_set
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a relay thread");
            active
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        }
    }
    let open = {
        let relays = active.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in relays.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        relays.len()
    };
    let deadline = Instant::now() + config.shutdown_grace;
    while !active
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_empty()
    {
        if Instant::now() >= deadline {
            tracing::warn!("relays still running after the shutdown grace period");
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    tracing::info!(listen = %local, closed = open, "vsock proxy stopped");
    Ok(())
}

fn relay(
    id: u64,
    client: Stream,
    peer: &str,
    target: &Endpoint,
    timeout: Duration,
    active: &Mutex<HashMap<u64, Vec<Stream>>>,
) {
    let upstream = match target.connect(timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, %target, error = %e, "cannot reach the target; closing the client");
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    let handles = (|| {
        Ok::<_, io::Error>((
            client.try_clone()?,
            upstream.try_clone()?,
            upstream.try_clone()?,
        ))
    })();
    let (client_w, upstream_r, upstream_closer) = match handles {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(%peer, error = %e, "cannot duplicate sockets");
            return;
        }
    };
    if let Some(v) = active
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_mut(&id)
    {
        v.push(upstream_closer);
    }
    tracing::info!(%peer, %target, "relaying");
    let started = Instant::now();
    let back = thread::Builder::new()
        .name(format!("proxy-{id}-back"))
        .spawn(move || copy_half(Link(upstream_r), Link(client_w)));
    let (up, down) = match back {
        Ok(back) => {
            let up = copy_half(Link(client), Link(upstream));
            let down = back
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
            (up, down)
        }
        Err(e) => (Err(e), Ok(0)),
    };
    match (up, down) {
        (Ok(up), Ok(down)) => {
            tracing::info!(%peer, bytes_up = up, bytes_down = down, secs = started.elapsed().as_secs_f32(), "connection closed")
        }
        (up, down) => tracing::warn!(
            %peer,
            up = ?up.map_err(|e| e.to_string()),
            down = ?down.map_err(|e| e.to_string()),
            "connection ended with an error"
        ),
    }
}

/// Copy bytes both ways between two connected streams until both directions
/// ended (each half-closed after its end of stream); returns the bytes
/// copied from `a` to `b` and from `b` to `a`. The shared
/// [`tmkms_light_cli::splice`] on the transport's streams.
pub fn splice(a: Stream, b: Stream) -> (io::Result<u64>, io::Result<u64>) {
    tmkms_light_cli::splice(Link(a), Link(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;

    /// A listener on a free loopback TCP port, and its address.
    fn loopback_listener() -> (Listener, Endpoint) {
        let l = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        }
        .bind()
        .unwrap();
        let ep = l.local_endpoint().unwrap();
        (l, ep)
    }

    /// A connection to `ep` whose reads give up after 5 s.
    fn connect(ep: &Endpoint) -> Stream {
        let s = ep.connect(Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// A TCP server that echoes each connection until the client half-closes, then closes.
    fn echo_server() -> (Endpoint, Arc<AtomicUsize>) {
        let (l, ep) = loopback_listener();
        let served = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&served);
        thread::spawn(move || loop {
            let (s, _) = l.accept().unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                io::copy(&mut r, &mut w).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
        });
        (ep, served)
    }

    struct Proxy {
        listen: Endpoint,
        stop: Arc<AtomicBool>,
        handle: Option<thread::JoinHandle<io::Result<()>>>,
        _dir: tempfile::TempDir,
    }

    impl Proxy {
        /// Raise the stop flag and wait for `serve_proxy` to return `Ok`.
        fn stop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let handle = self.handle.take().expect("stopped once");
            handle.join().unwrap().unwrap();
        }
    }

    fn start_proxy(target: Endpoint, config: ProxyConfig) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let listen = Endpoint::Unix {
            path: dir.path().join("proxy.sock"),
        };
        let listener = listen.bind().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || serve_proxy(&listener, &target, &config, &flag));
        Proxy {
            listen,
            stop,
            handle: Some(handle),
            _dir: dir,
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
            .collect()
    }

    /// Sends `data`, half-closes and returns everything read back.
    fn exchange(ep: &Endpoint, data: Vec<u8>) -> Vec<u8> {
        let s = ep.connect(Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        (&s).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        back
    }

    #[test]
    fn relays_4_mib_both_ways_intact() {
        let (target, _) = echo_server();
        let mut p = start_proxy(target, ProxyConfig::default());
        let data = pattern(4 << 20, 7);
        let back = exchange(&p.listen, data.clone());
        assert_eq!(back.len(), data.len());
        assert!(back == data, "payload corrupted");
        p.stop();
    }

    #[test]
    fn relays_concurrent_connections() {
        let (target, served) = echo_server();
        let mut p = start_proxy(target, ProxyConfig::default());
        let clients: Vec<_> = (0..16u8)
            .map(|i| {
                let ep = p.listen.clone();
                thread::spawn(move || {
                    let data = pattern(256 * 1024 + usize::from(i) * 1000, i);
                    assert!(
                        exchange(&ep, data.clone()) == data,
                        "client {i} got other bytes"
                    );
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(served.load(Ordering::SeqCst), 16);
        p.stop();
    }

    #[test]
    fn answer_after_half_close_reaches_client() {
        // A target that reads the whole request first and only then answers.
        let (l, target) = loopback_listener();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            s.read_to_end(&mut req).unwrap();
            s.write_all(format!("got {} bytes", req.len()).as_bytes())
                .unwrap();
        });
        let mut p = start_proxy(target, ProxyConfig::default());
        assert_eq!(exchange(&p.listen, vec![1; 5000]), b"got 5000 bytes");
        p.stop();
    }

    #[test]
    fn target_down_closes_client_promptly() {
        let (l, target) = loopback_listener();
        drop(l);
        let mut p = start_proxy(target, ProxyConfig::default());
        let s = connect(&p.listen);
        let t = Instant::now();
        let mut buf = [0u8; 16];
        let n = (&s).read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        p.stop();
    }

    #[test]
    fn connection_limit_closes_extra_clients() {
        let (target, _) = echo_server();
        let mut p = start_proxy(
            target,
            ProxyConfig {
                max_connections: 2,
                ..ProxyConfig::default()
            },
        );
        let held: Vec<_> = (0..2)
            .map(|_| {
                let mut s = connect(&p.listen);
                s.write_all(b"ping").unwrap();
                let mut b = [0u8; 4];
                s.read_exact(&mut b).unwrap();
                s
            })
            .collect();
        let extra = connect(&p.listen);
        assert_eq!(
            (&extra).read(&mut [0u8; 4]).unwrap_or(0),
            0,
            "third client must be closed"
        );
        drop(held);
        // Slots free up once the held relays finish.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = connect(&p.listen);
            let _ = s.write_all(b"pong");
            let mut b = [0u8; 4];
            if s.read_exact(&mut b).is_ok() {
                assert_eq!(&b, b"pong");
                break;
            }
            assert!(Instant::now() < deadline, "slots never freed");
            thread::sleep(Duration::from_millis(20));
        }
        p.stop();
    }

    #[test]
    fn shutdown_closes_open_relays_and_returns() {
        let (target, _) = echo_server();
        let mut p = start_proxy(target, ProxyConfig::default());
        let mut s = connect(&p.listen);
        s.write_all(b"open").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        let t = Instant::now();
        p.stop();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "shutdown took {:?}",
            t.elapsed()
        );
        assert_eq!(s.read(&mut b).unwrap_or(0), 0, "relay must be closed");
        assert!(
            p.listen.connect(Duration::from_secs(1)).is_err(),
            "listener must be gone"
        );
    }
}
