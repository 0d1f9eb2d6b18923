//! A loopback TCP proxy in front of one etcd member's client port that can
//! cut the member off from the signers: while cut, it keeps every
//! connection open but forwards nothing (bytes vanish, as on a partitioned
//! network), and new connections are accepted but never reach the member.
//! When the cut heals, connections that lost bytes are closed (their TLS
//! stream is broken anyway) and clients reconnect.
//!
//! Peer (member-to-member) traffic does not pass through here: a cut member
//! stays in the raft group, it only loses its clients.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How often blocked reads look at the cut and stop flags.
const TICK: Duration = Duration::from_millis(50);

/// One proxy; dropping it does not stop its threads, [`Proxy::stop`] does.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Incremented at every heal: a connection that dropped bytes in an
    /// earlier generation closes.
    generation: AtomicU64,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(&listener, upstream, &st))?;
        Ok(Self { addr, state })
    }

    /// The address clients use instead of the member's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts or ends the cut.
    pub fn set_cut(&self, cut: bool) {
        if !cut {
            self.state.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.state.cut.store(cut, Ordering::SeqCst);
    }

    /// Whether the member is cut off now.
    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Ends the accept loop and every connection.
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, state: &Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let st = Arc::clone(state);
                let _ = thread::Builder::new()
                    .name("proxy-conn".to_owned())
                    .spawn(move || serve(client, upstream, &st));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(TICK),
            Err(_) => thread::sleep(TICK),
        }
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, state: &Arc<State>) {
    // A connection made while cut waits (the client sees a silent peer).
    while state.cut.load(Ordering::SeqCst) {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        thread::sleep(TICK);
    }
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(1)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let st = Arc::clone(state);
    let back = thread::Builder::new()
        .name("proxy-back".to_owned())
        .spawn(move || pump(s2, c2, &st));
    pump(client, server, state);
    if let Ok(handle) = back {
        let _ = handle.join();
    }
}

/// Copies `from` to `to` until either side closes; drops the bytes while
/// cut and closes both after a heal if anything was dropped.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State) {
    let _ = from.set_read_timeout(Some(TICK));
    let _ = from.set_nodelay(true);
    let _ = to.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut dropped_in: Option<u64> = None;
    loop {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(generation) = dropped_in {
            if state.generation.load(Ordering::SeqCst) != generation {
                break;
            }
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if state.cut.load(Ordering::SeqCst) {
                    dropped_in.get_or_insert(state.generation.load(Ordering::SeqCst));
                    continue;
                }
                let Some(chunk) = buf.get(..n) else { break };
                if to.write_all(chunk).is_err() {
                    break;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_and_blackholes() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap();
        thread::spawn(move || {
            for s in echo.incoming() {
                let mut s = s.unwrap();
                thread::spawn(move || {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start(upstream).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        c.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        proxy.set_cut(true);
        c.write_all(b"lost").unwrap();
        let mut b = [0u8; 4];
        assert!(c.read(&mut b).is_err(), "nothing comes back while cut");
        proxy.set_cut(false);
        // The connection that lost bytes is closed after the heal.
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)));
        let mut fresh = TcpStream::connect(proxy.addr()).unwrap();
        fresh.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        fresh.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
        proxy.stop();
    }
}
