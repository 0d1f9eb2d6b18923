//! Named byte streams to the runner, and dialing the node from the enclave.
//!
//! In a real enclave a stream is opened with `TcpStream::connect(name)`: EDP
//! turns it into a usercall, and the runner's usercall extension answers
//! names it knows (`init`, `state`, `node:<path>`) with its own streams and
//! lets real addresses through as TCP connections it makes for the enclave.
//! In the host simulation the enclave process connects to the runner's Unix
//! socket and names the stream in a first frame. The bytes on each stream
//! are the same in both cases.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tmkms_light::config::Address;
use tmkms_light::net::{Dialer, NetError, RawStream};
use tracing::debug;

use crate::protocol::STREAM_NODE_PREFIX;

/// Opens named streams to the runner.
pub trait Host: Send + Sync {
    fn open(&self, name: &str) -> io::Result<Box<dyn RawStream>>;
}

/// The real enclave: streams are usercalls the runner answers.
#[cfg(target_env = "sgx")]
#[derive(Debug, Default)]
pub struct UsercallHost;

#[cfg(target_env = "sgx")]
impl Host for UsercallHost {
    fn open(&self, name: &str) -> io::Result<Box<dyn RawStream>> {
        Ok(Box::new(TcpStream::connect(name)?))
    }
}

/// The host simulation: one Unix socket of the runner carries every stream.
#[cfg(unix)]
#[derive(Debug)]
pub struct SocketHost {
    path: std::path::PathBuf,
}

#[cfg(unix)]
impl SocketHost {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[cfg(unix)]
impl Host for SocketHost {
    fn open(&self, name: &str) -> io::Result<Box<dyn RawStream>> {
        let mut stream = std::os::unix::net::UnixStream::connect(&self.path)?;
        tmkms_light::link::announce(&mut stream, name)?;
        Ok(Box::new(stream))
    }
}

/// Reaches the node: `tcp://` from the enclave itself (SecretConnection runs
/// in the enclave on top), `unix://` through the runner.
pub struct HostDialer {
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for HostDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostDialer")
    }
}

impl HostDialer {
    pub fn new(host: Arc<dyn Host>) -> Self {
        Self { host }
    }
}

impl Dialer for HostDialer {
    fn open(&self, address: &Address, timeout: Duration) -> Result<Box<dyn RawStream>, NetError> {
        match address {
            Address::Tcp { host, port, .. } => {
                let endpoint = format!("{host}:{port}");
                let socket =
                    TcpStream::connect(endpoint.as_str()).map_err(|source| NetError::Connect {
                        addr: endpoint.clone(),
                        source,
                    })?;
                // EDP cannot set socket options from inside the enclave; the
                // connection then relies on the node's own deadlines.
                for (what, result) in [
                    ("nodelay", socket.set_nodelay(true)),
                    ("read timeout", socket.set_read_timeout(Some(timeout))),
                    ("write timeout", socket.set_write_timeout(Some(timeout))),
                ] {
                    if let Err(e) = result {
                        debug!(addr = %endpoint, option = what, error = %e, "socket option not set");
                    }
                }
                Ok(Box::new(socket))
            }
            Address::Unix { path } => {
                let name = format!("{STREAM_NODE_PREFIX}{}", path.display());
                self.host.open(&name).map_err(|source| NetError::Connect {
                    addr: path.display().to_string(),
                    source,
                })
            }
        }
    }
}
