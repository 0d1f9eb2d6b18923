//! Byte streams to the KMS endpoint, and TLS over them.
//!
//! The enclave has no network: the host runs a vsock proxy to
//! `kms.<region>.amazonaws.com:443`, and the enclave speaks TLS itself through
//! it, so the host sees only ciphertext. The client therefore takes a
//! *connector* that yields a fresh byte stream per request and never opens
//! sockets on its own.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// A bidirectional byte stream (vsock, TCP, Unix socket, an in-memory pipe).
pub trait ReadWrite: Read + Write {}
impl<T: Read + Write + ?Sized> ReadWrite for T {}

/// A boxed stream as a connector returns it.
pub type Stream = Box<dyn ReadWrite + Send>;

/// Opens a new stream to the endpoint; called once per request.
pub type Connector = Box<dyn FnMut() -> io::Result<Stream> + Send>;

/// A connector over TCP to `addr` (`host:port`), with read/write timeouts.
/// For host-side tools and tests; inside the enclave, pass a vsock connector.
pub fn tcp_connector(addr: impl Into<String>, timeout: Duration) -> Connector {
    let addr = addr.into();
    Box::new(move || {
        let stream = TcpStream::connect(&addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream) as Stream)
    })
}

/// The TLS client configuration used for `https` endpoints: rustls on `ring`
/// (no aws-lc-rs, so no cmake/C toolchain for the enclave image), Mozilla's
/// root store compiled in (the enclave has no system trust store).
pub fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Wraps `stream` in a TLS client session for `host`.
pub(crate) fn tls_wrap(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    stream: Stream,
) -> Result<Stream, crate::KmsError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| crate::KmsError::InvalidServerName(host.to_owned()))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(crate::KmsError::Tls)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, stream)))
}
