//! One stream type and one listener type over TCP, Unix sockets and vsock, so protocol code
//! (which is generic over `Read + Write`) and the proxy never care which transport is in use.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::unix::UnixSocketListener;
#[cfg(target_os = "linux")]
use crate::vsock;

/// A connected byte stream on any supported transport.
#[derive(Debug)]
pub enum Stream {
    /// TCP connection.
    Tcp(TcpStream),
    /// Unix-domain connection.
    Unix(UnixStream),
    /// vsock connection (Linux only).
    #[cfg(target_os = "linux")]
    Vsock(::vsock::VsockStream),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
            #[cfg(target_os = "linux")]
            Stream::Vsock($s) => $e,
        }
    };
}

impl Stream {
    /// A second handle on the same connection, e.g. one per copy direction.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
            Self::Unix(s) => Self::Unix(s.try_clone()?),
            #[cfg(target_os = "linux")]
            Self::Vsock(s) => Self::Vsock(s.try_clone()?),
        })
    }

    /// Shuts down the read half, write half or both; `Write` is the half-close that
    /// tells the peer "no more data" while still reading its answer.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each!(self, s => s.shutdown(how))
    }

    /// Bounds each blocking read (`None`: wait forever). A zero duration is an error.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(timeout))
    }

    /// Bounds each blocking write (`None`: wait forever). A zero duration is an error.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(timeout))
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        each!(self, s => s.set_nonblocking(nonblocking))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(*self, s => (&*s).read(buf))
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(*self, s => (&*s).write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        each!(*self, s => (&*s).flush())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl Endpoint {
    /// Dials this endpoint, giving up after `timeout` (per resolved address for TCP).
    pub fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Self::Tcp { host, port } => {
                let mut last = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            // Small frames (votes, acks) must not wait for Nagle.
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolved to no address"),
                    )
                }))
            }
            // A local connect either succeeds or fails at once; no timeout is needed.
            Self::Unix { path } => UnixStream::connect(path).map(Stream::Unix),
            #[cfg(target_os = "linux")]
            Self::Vsock { cid, port } => vsock::connect(*cid, *port, timeout).map(Stream::Vsock),
            #[cfg(not(target_os = "linux"))]
            Self::Vsock { .. } => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "vsock endpoints are only supported on Linux",
            )),
        }
    }

    /// Starts listening on this endpoint. For Unix sockets see [`UnixSocketListener::bind`]
    /// (stale files are replaced only when nothing answers; the file is 0600 and removed on drop).
    pub fn bind(&self) -> io::Result<Listener> {
        let inner = match self {
            Self::Tcp { host, port } => {
                ListenerKind::Tcp(TcpListener::bind((host.as_str(), *port))?)
            }
            Self::Unix { path } => ListenerKind::Unix(UnixSocketListener::bind(path)?),
            #[cfg(target_os = "linux")]
            Self::Vsock { cid, port } => {
                ListenerKind::Vsock(::vsock::VsockListener::bind_with_cid_port(*cid, *port)?)
            }
            #[cfg(not(target_os = "linux"))]
            Self::Vsock { .. } => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "vsock endpoints are only supported on Linux",
                ))
            }
        };
        // Non-blocking so `accept_timeout` can poll and never hang on a vanished client.
        match &inner {
            ListenerKind::Tcp(l) => l.set_nonblocking(true)?,
            ListenerKind::Unix(l) => l.listener().set_nonblocking(true)?,
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(l) => l.set_nonblocking(true)?,
        }
        Ok(Listener { inner })
    }
}

/// A bound, listening socket on any supported transport.
#[derive(Debug)]
pub struct Listener {
    inner: ListenerKind,
}

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    Unix(UnixSocketListener),
    #[cfg(target_os = "linux")]
    Vsock(::vsock::VsockListener),
}

impl Listener {
    /// Waits for the next connection; returns it with a printable peer address.
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        loop {
            if let Some(conn) = self.accept_timeout(Duration::from_secs(3600))? {
                return Ok(conn);
            }
        }
    }

    /// Like [`Listener::accept`] but returns `Ok(None)` when no connection came within
    /// `timeout`, so accept loops can check a shutdown flag.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<Option<(Stream, String)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let (stream, peer) = match self.try_accept() {
                Ok(conn) => conn,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !wait_readable(self.as_fd(), left)? {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The client gave up between queueing and our accept; not our failure.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            // Accepted sockets inherit O_NONBLOCK on some systems; streams are blocking.
            stream.set_nonblocking(false)?;
            return Ok(Some((stream, peer)));
        }
    }

    fn try_accept(&self) -> io::Result<(Stream, String)> {
        Ok(match &self.inner {
            ListenerKind::Tcp(l) => {
                let (s, a) = l.accept()?;
                s.set_nodelay(true)?;
                (Stream::Tcp(s), format!("tcp://{a}"))
            }
            ListenerKind::Unix(l) => {
                let (s, _) = l.listener().accept()?;
                let peer = match nix::sys::socket::getsockopt(
                    &s,
                    nix::sys::socket::sockopt::PeerCredentials,
                ) {
                    Ok(c) => format!("unix://{} (pid {})", l.path().display(), c.pid()),
                    Err(_) => format!("unix://{}", l.path().display()),
                };
                (Stream::Unix(s), peer)
            }
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(l) => {
                let (s, a) = l.accept()?;
                (
                    Stream::Vsock(s),
                    format!("vsock://{}:{}", a.cid(), a.port()),
                )
            }
        })
    }

    /// The endpoint actually bound (with the kernel-chosen port after binding TCP port 0).
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        Ok(match &self.inner {
            ListenerKind::Tcp(l) => {
                let a = l.local_addr()?;
                Endpoint::Tcp {
                    host: a.ip().to_string(),
                    port: a.port(),
                }
            }
            ListenerKind::Unix(l) => Endpoint::Unix {
                path: l.path().to_owned(),
            },
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(l) => {
                let a = l.local_addr()?;
                Endpoint::Vsock {
                    cid: a.cid(),
                    port: a.port(),
                }
            }
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            ListenerKind::Tcp(l) => l.as_fd(),
            ListenerKind::Unix(l) => l.listener().as_fd(),
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(l) => l.as_fd(),
        }
    }
}

/// Waits until `fd` is readable (or has an error/hang-up to report); false on timeout.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::try_from(timeout.min(Duration::from_secs(3600)))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, ms) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_once(listener: Listener) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (mut s, peer) = listener.accept().unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            peer
        })
    }

    fn round_trip(listen: &Endpoint) -> (Endpoint, String) {
        let listener = listen.bind().unwrap();
        let bound = listener.local_endpoint().unwrap();
        let server = echo_once(listener);
        let mut s = bound.connect(Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = s.try_clone().unwrap();
        s.write_all(b"hello over the stream").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        reader.read_to_string(&mut back).unwrap();
        assert_eq!(back, "hello over the stream");
        (bound, server.join().unwrap())
    }

    #[test]
    fn tcp_round_trip_with_half_close() {
        let (bound, peer) = round_trip(&"tcp://127.0.0.1:0".parse().unwrap());
        assert!(matches!(bound, Endpoint::Tcp { port, .. } if port != 0));
        assert!(peer.starts_with("tcp://127.0.0.1:"), "{peer}");
    }

    #[test]
    fn unix_round_trip_names_peer_pid() {
        let dir = tempfile::tempdir().unwrap();
        let ep = Endpoint::Unix {
            path: dir.path().join("s.sock"),
        };
        let (bound, peer) = round_trip(&ep);
        assert_eq!(bound, ep);
        assert!(
            peer.contains(&format!("pid {}", std::process::id())),
            "{peer}"
        );
    }

    #[test]
    fn accept_timeout_returns_none_when_idle() {
        let l = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        }
        .bind()
        .unwrap();
        let t = Instant::now();
        assert!(l
            .accept_timeout(Duration::from_millis(150))
            .unwrap()
            .is_none());
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(140) && waited < Duration::from_secs(2));
    }

    #[test]
    fn connect_refused_is_an_error() {
        let l = "tcp://127.0.0.1:0"
            .parse::<Endpoint>()
            .unwrap()
            .bind()
            .unwrap();
        let ep = l.local_endpoint().unwrap();
        drop(l);
        assert!(ep.connect(Duration::from_secs(1)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let err = Endpoint::Unix {
            path: dir.path().join("none.sock"),
        }
        .connect(Duration::from_secs(1))
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// Binding vsock on CID_ANY works on this kernel even without a loopback transport;
    /// connecting is not tested here because it would leave the machine.
    #[cfg(target_os = "linux")]
    #[test]
    fn vsock_binds_any_cid_when_available() {
        if !std::path::Path::new("/dev/vsock").exists() {
            eprintln!("no /dev/vsock; skipped");
            return;
        }
        // Port VMADDR_PORT_ANY (2^32-1) lets the kernel choose a free port.
        let ep: Endpoint = "vsock://any:4294967295".parse().unwrap();
        match ep.bind() {
            Ok(l) => {
                let local = l.local_endpoint().unwrap();
                assert!(
                    matches!(local, Endpoint::Vsock { port, .. } if port != u32::MAX),
                    "{local}"
                );
                assert!(l
                    .accept_timeout(Duration::from_millis(50))
                    .unwrap()
                    .is_none());
            }
            Err(e) => eprintln!("vsock bind unavailable here ({e}); skipped"),
        }
    }
}
