//! The transport's [`Stream`] as the shared relay code
//! ([`tmkms_light_cli::splice`], the enclave stream router) takes it.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use tmkms_light_cli::Duplex;
use tmkms_nitro_transport::Stream;

/// A vsock, TCP or Unix stream of the Nitro transport.
#[derive(Debug)]
pub struct Link(pub Stream);

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Duplex for Link {
    fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(Link)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }
}
