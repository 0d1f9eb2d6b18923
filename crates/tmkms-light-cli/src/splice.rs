//! Byte-for-byte relaying between two connected streams: an enclave's node
//! stream and the node's socket (SecretConnection runs in the enclave, so
//! the host only copies ciphertext).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;

/// A connected byte stream that can be cloned into a read half and a write
/// half and shut down from either, as sockets can.
pub trait Duplex: Read + Write + Send + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Duplex for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        UnixStream::shutdown(self, how)
    }
}

impl Duplex for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

/// Copy bytes both ways between two connected streams until both directions
/// ended (each half-closed after its end of stream); returns the bytes
/// copied from `a` to `b` and from `b` to `a`.
pub fn splice<A: Duplex, B: Duplex>(a: A, b: B) -> (io::Result<u64>, io::Result<u64>) {
    let clones = a.try_clone().and_then(|a2| Ok((a2, b.try_clone()?)));
    let (a_write, b_read) = match clones {
        Ok(c) => c,
        Err(e) => return (Err(e), Ok(0)),
    };
    let back = thread::Builder::new()
        .name("splice-back".into())
        .spawn(move || copy_half(b_read, a_write));
    match back {
        Ok(back) => {
            let forth = copy_half(a, b);
            let back = back
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
            (forth, back)
        }
        Err(e) => (Err(e), Ok(0)),
    }
}

/// Copies `from` to `to` until end of stream, then half-closes `to`. On an
/// error both streams are shut down completely so the opposite direction
/// stops too.
pub fn copy_half<F: Duplex, T: Duplex>(mut from: F, mut to: T) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let result = loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        let Some(chunk) = buf.get(..n) else {
            break Err(io::Error::other("read returned more than the buffer"));
        };
        if let Err(e) = to.write_all(chunk) {
            break Err(e);
        }
        total += n as u64;
    };
    match &result {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_both_ways_and_half_closes() {
        let (enclave, host_a) = UnixStream::pair().unwrap();
        let (host_b, node) = UnixStream::pair().unwrap();
        let relay = thread::spawn(move || splice(host_a, host_b));
        let mut enclave_w = enclave.try_clone().unwrap();
        enclave_w.write_all(b"to the node").unwrap();
        enclave_w.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&node).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"to the node");
        (&node).write_all(b"back").unwrap();
        node.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        (&enclave).read_to_end(&mut back).unwrap();
        assert_eq!(back, b"back");
        let (forth, back) = relay.join().unwrap();
        assert_eq!(forth.unwrap(), 11);
        assert_eq!(back.unwrap(), 4);
    }
}
