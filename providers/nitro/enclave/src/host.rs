//! Streams to the helper, and dialing the node through it.
//!
//! An enclave has no network: every byte it exchanges with the node goes
//! through the helper, which connects to the configured node address and
//! splices. SecretConnection (for `tcp://` nodes) runs here, on top, so the
//! helper relays ciphertext.

use std::io;
use std::time::Duration;

use tmkms_light::config::Address;
use tmkms_light::link::announce;
use tmkms_light::net::{Dialer, NetError, RawStream};
use tmkms_nitro_transport::{Endpoint, Stream};

pub use tmkms_nitro_protocol::messages::node_stream_name;

/// How long opening a stream to the helper may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The helper's stream endpoint.
#[derive(Debug, Clone)]
pub struct HelperHost {
    endpoint: Endpoint,
}

impl HelperHost {
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// Open the stream `name`.
    pub fn open(&self, name: &str) -> io::Result<Stream> {
        let mut stream = self.endpoint.connect(CONNECT_TIMEOUT)?;
        announce(&mut stream, name)?;
        Ok(stream)
    }
}

/// Reaches the node through the helper.
#[derive(Debug, Clone)]
pub struct HelperDialer {
    host: HelperHost,
}

impl HelperDialer {
    pub fn new(host: HelperHost) -> Self {
        Self { host }
    }
}

impl Dialer for HelperDialer {
    fn open(&self, address: &Address, timeout: Duration) -> Result<Box<dyn RawStream>, NetError> {
        let connect_error = |source| NetError::Connect {
            addr: address.to_string(),
            source,
        };
        let stream = self
            .host
            .open(&node_stream_name(address))
            .map_err(connect_error)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(connect_error)?;
        Ok(Box::new(stream))
    }
}
