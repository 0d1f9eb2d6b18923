//! An optional, bounded busy-poll on the node socket.
//!
//! A node sends proposal, prevote and precommit requests in bursts. A
//! signer blocked in `read` is woken by the kernel's scheduler when the next
//! request arrives, which on a virtual machine can add tens of microseconds.
//! With a budget set (`busy_poll_us`), a read first polls the socket without
//! blocking for up to that long, then falls back to an ordinary blocking
//! read (with the socket's read timeout). Each poll that finds nothing
//! yields the core, so a runnable thread that is to answer is not starved.
//! The cost is CPU: up to the budget of one core's time after each response
//! when nothing else wants the core.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// A socket that can switch between blocking and non-blocking mode.
pub trait Pollable {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

impl Pollable for std::net::TcpStream {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        std::net::TcpStream::set_nonblocking(self, nonblocking)
    }
}

#[cfg(unix)]
impl Pollable for std::os::unix::net::UnixStream {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_nonblocking(self, nonblocking)
    }
}

/// A socket whose reads spin for up to `budget` before they block.
#[derive(Debug)]
pub struct BusyPoll<S> {
    socket: S,
    budget: Duration,
}

impl<S: Pollable> BusyPoll<S> {
    /// Wrap `socket`; it is left in non-blocking mode between calls.
    pub fn new(socket: S, budget: Duration) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self { socket, budget })
    }

    /// Run `op` once in blocking mode (then back to polling).
    fn blocking<T>(&mut self, op: impl FnOnce(&mut S) -> io::Result<T>) -> io::Result<T> {
        self.socket.set_nonblocking(false)?;
        let result = op(&mut self.socket);
        self.socket.set_nonblocking(true)?;
        result
    }
}

impl<S: Pollable + Read> Read for BusyPoll<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if started.elapsed() >= self.budget {
                        return self.blocking(|socket| socket.read(buf));
                    }
                    // Yield rather than spin: on a busy machine the thread
                    // that is to answer (the host writing the state, the
                    // node) may need this core.
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }
}

impl<S: Pollable + Write> Write for BusyPoll<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.socket.write(buf) {
            // A full send buffer: wait for room as a blocking socket would
            // (with its write timeout).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocking(|socket| socket.write(buf))
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reads_what_arrives_during_and_after_the_budget() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut polled = BusyPoll::new(ours, Duration::from_millis(2)).unwrap();
        let writer = std::thread::spawn(move || {
            theirs.write_all(b"soon").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            theirs.write_all(b"late").unwrap();
            theirs
        });
        let mut buf = [0u8; 4];
        polled.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"soon");
        // Arrives well after the budget: the blocking read gets it.
        polled.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        drop(writer.join().unwrap());
        assert_eq!(polled.read(&mut buf).unwrap(), 0, "peer closed");
    }

    #[test]
    fn a_read_timeout_still_applies_after_the_budget() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        let mut polled = BusyPoll::new(ours, Duration::from_millis(1)).unwrap();
        let started = Instant::now();
        let err = polled.read(&mut [0u8; 4]).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
