//! A transport that hands out a stream in read sizes taken from the fuzz
//! input, so one stream is reassembled from many read patterns.

use std::io::{self, Read};

/// Splits an input laid out as: a selector byte (the target's to use), a
/// count byte `n` (taken modulo 16, plus one), `n` read sizes, the stream.
/// `None` if the input is too short.
pub fn split_input(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let [selector, n, rest @ ..] = data else {
        return None;
    };
    let n = usize::from(*n % 16) + 1;
    let (sizes, stream) = rest.split_at_checked(n)?;
    Some((*selector, sizes, stream))
}

/// Hands out `data` at most `sizes[i % sizes.len()]` bytes per read. A size
/// of 0 is an `Interrupted` error (the reader must retry), followed by a
/// one-byte read: a real stream does not stay interrupted, and all-zero
/// sizes would otherwise spin forever.
pub struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    reads: usize,
    interrupted: bool,
    min_buffer: usize,
    whole_above: Option<u8>,
}

impl<'a> Chunked<'a> {
    /// `sizes` must not be empty ([`split_input`] never returns it empty).
    pub fn new(data: &'a [u8], sizes: &'a [u8]) -> Self {
        Chunked {
            data,
            sizes,
            reads: 0,
            interrupted: false,
            min_buffer: 0,
            whole_above: None,
        }
    }

    /// Asserts that every read offers a buffer of at least `min` bytes (a
    /// reader's promise to its transport).
    pub fn requiring_buffers_of(self, min: usize) -> Self {
        Chunked {
            min_buffer: min,
            ..self
        }
    }

    /// A size above `limit` hands out as much as fits, so that large bodies
    /// are reached in few reads.
    pub fn whole_reads_above(self, limit: u8) -> Self {
        Chunked {
            whole_above: Some(limit),
            ..self
        }
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(
            buf.len() >= self.min_buffer,
            "read into {} bytes, below the promised {}",
            buf.len(),
            self.min_buffer
        );
        let size = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        if size == 0 && !std::mem::replace(&mut self.interrupted, true) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let want = match self.whole_above {
            Some(limit) if size > limit => usize::MAX,
            _ => usize::from(size.max(1)),
        };
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
