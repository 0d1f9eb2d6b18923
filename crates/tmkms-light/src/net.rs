//! Dialing the node: TCP with SecretConnection, or a Unix socket; timeouts,
//! peer-id pinning and reconnection with backoff.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tendermint_p2p::secret_connection::{PublicKey as P2pPublicKey, SecretConnection, Version};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::busy_poll::BusyPoll;
use crate::chain::ChainSigner;
use crate::config::Address;
use crate::keys::PublicKey;
use crate::observe::{DisconnectReason, Event};
use crate::phases::ArrivalStamped;
use crate::session::{serve, SessionConfig, SessionError};
use crate::signer::ConsensusSigner;

/// A connected, ready-to-use stream to the node.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

#[derive(Debug, Error)]
pub enum NetError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("SecretConnection handshake with {addr} failed: {reason}")]
    Handshake { addr: String, reason: String },
    #[error("node at {addr} has peer id {actual}, but the address pins {expected}; check the node's node_key.json or the validator address")]
    PeerIdMismatch {
        addr: String,
        expected: String,
        actual: String,
    },
    #[error("a tcp:// address needs id_key_path to be set")]
    MissingIdentity,
}

/// A raw byte stream to the node, before SecretConnection.
pub trait RawStream: Read + Write + Send + Sync {}
impl<T: Read + Write + Send + Sync> RawStream for T {}

/// How the signer opens the byte stream to the node's socket: a process
/// dials it itself ([`DirectDialer`]); an enclave asks its host for it.
/// SecretConnection and peer-id checks happen above this, in [`connect_via`],
/// so for an enclave they run inside the enclave.
pub trait Dialer: Send + Sync {
    fn open(&self, address: &Address, timeout: Duration) -> Result<Box<dyn RawStream>, NetError>;
}

/// Dials TCP and Unix sockets from this process, with read/write timeouts.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectDialer {
    /// Spin this long for the next bytes before a read blocks (see
    /// [`crate::busy_poll`]); zero for plain blocking reads.
    pub busy_poll: Duration,
}

impl DirectDialer {
    /// The socket as the session reads it: arrival-stamped for the phase
    /// figures, busy-polled if configured.
    fn finish<S>(&self, socket: S) -> io::Result<Box<dyn RawStream>>
    where
        S: crate::busy_poll::Pollable + Read + Write + Send + Sync + 'static,
    {
        if self.busy_poll.is_zero() {
            return Ok(Box::new(ArrivalStamped(socket)));
        }
        Ok(Box::new(ArrivalStamped(BusyPoll::new(
            socket,
            self.busy_poll,
        )?)))
    }
}

impl Dialer for DirectDialer {
    fn open(&self, address: &Address, timeout: Duration) -> Result<Box<dyn RawStream>, NetError> {
        match address {
            Address::Tcp { host, port, .. } => {
                let endpoint = format!("{host}:{port}");
                let target = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|_| NetError::Resolve(endpoint.clone()))?
                    .next()
                    .ok_or_else(|| NetError::Resolve(endpoint.clone()))?;
                let socket = TcpStream::connect_timeout(&target, timeout).map_err(|source| {
                    NetError::Connect {
                        addr: endpoint.clone(),
                        source,
                    }
                })?;
                let setup = |s: &TcpStream| -> io::Result<()> {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))
                };
                setup(&socket)
                    .and_then(|()| self.finish(socket))
                    .map_err(|source| NetError::Connect {
                        addr: endpoint,
                        source,
                    })
            }
            Address::Unix { path } => open_unix(self, path, timeout),
        }
    }
}

#[cfg(unix)]
fn open_unix(
    dialer: &DirectDialer,
    path: &std::path::Path,
    timeout: Duration,
) -> Result<Box<dyn RawStream>, NetError> {
    let endpoint = path.display().to_string();
    let socket =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| NetError::Connect {
            addr: endpoint.clone(),
            source,
        })?;
    socket
        .set_read_timeout(Some(timeout))
        .and_then(|()| socket.set_write_timeout(Some(timeout)))
        .and_then(|()| dialer.finish(socket))
        .map_err(|source| NetError::Connect {
            addr: endpoint,
            source,
        })
}

#[cfg(not(unix))]
fn open_unix(
    _dialer: &DirectDialer,
    path: &std::path::Path,
    _timeout: Duration,
) -> Result<Box<dyn RawStream>, NetError> {
    Err(NetError::Connect {
        addr: path.display().to_string(),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            "no Unix sockets on this target; the host must provide the stream",
        ),
    })
}

/// Dial `address` once from this process; see [`connect_via`].
pub fn connect(
    address: &Address,
    identity: Option<&ed25519_consensus::SigningKey>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, NetError> {
    connect_via(&DirectDialer::default(), address, identity, timeout)
}

/// Open `address` with `dialer`; for tcp:// run the SecretConnection
/// handshake with `identity` and check the pinned peer id, if any.
pub fn connect_via(
    dialer: &dyn Dialer,
    address: &Address,
    identity: Option<&ed25519_consensus::SigningKey>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, NetError> {
    match address {
        Address::Tcp {
            peer_id: pinned,
            host,
            port,
        } => {
            let endpoint = format!("{host}:{port}");
            let identity = identity.ok_or(NetError::MissingIdentity)?;
            let socket = dialer.open(address, timeout)?;
            let conn =
                SecretConnection::new(socket, identity.clone(), Version::V0_34).map_err(|e| {
                    NetError::Handshake {
                        addr: endpoint.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let P2pPublicKey::Ed25519(remote) = conn.remote_pubkey();
            let actual = PublicKey(*remote.as_bytes()).peer_id();
            match pinned {
                Some(expected) if !bool::from(expected.ct_eq(&actual)) => {
                    return Err(NetError::PeerIdMismatch {
                        addr: endpoint,
                        expected: hex::encode(expected),
                        actual: hex::encode(actual),
                    });
                }
                Some(_) => info!(addr = %endpoint, "connected; node peer id verified"),
                None => warn!(
                    addr = %endpoint,
                    peer_id = %hex::encode(actual),
                    "connected WITHOUT peer id verification; pin it as tcp://<peer_id>@host:port if the node's key is stable"
                ),
            }
            Ok(Box::new(conn))
        }
        Address::Unix { path } => {
            let socket = dialer.open(address, timeout)?;
            info!(addr = %path.display(), "connected (unix socket, plaintext)");
            Ok(socket_as_stream(socket))
        }
    }
}

fn socket_as_stream(socket: Box<dyn RawStream>) -> Box<dyn Stream> {
    Box::new(socket)
}

/// Reconnection schedule: exponential from 100 ms up to a cap, reset after a
/// connection that served requests.
#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    max: Duration,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_millis(100);

    pub fn new(max: Duration) -> Self {
        Self {
            current: Self::INITIAL,
            max: max.max(Self::INITIAL),
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.current = Self::INITIAL;
    }
}

/// Settings of one validator connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub address: Address,
    pub session: SessionConfig,
    pub timeout: Duration,
    pub max_backoff: Duration,
}

/// Keep one validator connection up until `shutdown` is set: dial, serve,
/// back off, dial again. Never returns early on errors; every failure is
/// logged with what to check.
pub fn run_connection<K: ConsensusSigner>(
    dialer: &dyn Dialer,
    chain: &ChainSigner<K>,
    connection: &Connection,
    identity: Option<&ed25519_consensus::SigningKey>,
    shutdown: &AtomicBool,
) {
    let mut backoff = Backoff::new(connection.max_backoff);
    while !shutdown.load(Ordering::Relaxed) && !chain.is_stopped() {
        match connect_via(dialer, &connection.address, identity, connection.timeout) {
            Ok(mut stream) => {
                let started = Instant::now();
                let address = connection.address.to_string();
                chain.observe(&Event::Connected {
                    address: address.clone(),
                });
                let (answered, end) = serve(&mut stream, chain, connection.session);
                chain.observe(&Event::Disconnected {
                    address,
                    reason: end.reason(),
                });
                match &end {
                    SessionError::Closed => {
                        info!(addr = %connection.address, answered, "node closed the connection")
                    }
                    other => {
                        warn!(addr = %connection.address, answered, reason = %other, "connection ended")
                    }
                }
                if answered > 0 || started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            Err(NetError::MissingIdentity) => {
                error!("a tcp:// validator address needs id_key_path; not connecting");
                return;
            }
            Err(e) => {
                if matches!(
                    e,
                    NetError::Handshake { .. } | NetError::PeerIdMismatch { .. }
                ) {
                    chain.observe(&Event::Disconnected {
                        address: connection.address.to_string(),
                        reason: DisconnectReason::Handshake,
                    });
                }
                warn!(error = %e, "cannot reach node; will retry");
            }
        }
        if chain.is_stopped() {
            error!(addr = %connection.address, "the state store is gone; closing this connection");
            return;
        }
        sleep_unless_shutdown(backoff.next_delay(), shutdown);
    }
}

fn sleep_unless_shutdown(total: Duration, shutdown: &AtomicBool) {
    let step = Duration::from_millis(50);
    let deadline = Instant::now() + total;
    while !shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep(step.min(deadline - now));
    }
}

/// Run every configured connection of one chain on its own thread until
/// `shutdown` is set.
pub fn run_all<K: ConsensusSigner + 'static>(
    dialer: Arc<dyn Dialer>,
    chain: Arc<ChainSigner<K>>,
    connections: Vec<Connection>,
    identity: Option<ed25519_consensus::SigningKey>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    let mut handles = Vec::new();
    for (i, connection) in connections.into_iter().enumerate() {
        let chain = Arc::clone(&chain);
        let dialer = Arc::clone(&dialer);
        let identity = identity.clone();
        let shutdown = Arc::clone(&shutdown);
        let handle = std::thread::Builder::new()
            .name(format!("validator-{i}"))
            .spawn(move || {
                run_connection(&*dialer, &chain, &connection, identity.as_ref(), &shutdown)
            })?;
        handles.push(handle);
    }
    for handle in handles {
        if handle.join().is_err() {
            error!("a connection thread panicked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
