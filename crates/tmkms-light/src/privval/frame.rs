//! Length-delimited framing: each privval message is preceded by its length
//! as a protobuf uvarint.
//!
//! [`FrameReader`] reassembles one message from any number of transport
//! reads, never trusts the declared length beyond the configured cap, and
//! always reads through a buffer of at least [`MIN_READ_CHUNK`] bytes (the
//! SecretConnection implementation we use panics on reads into smaller
//! buffers than one decrypted frame).
//!
//! A message is lent out as a [`Frame`] that reads as a byte slice. The
//! decoder takes it as a [`Body`]: a large message hands over the reader's
//! buffer, so that the buffer is freed once the decoder has copied out what
//! it keeps (a vote extension) instead of staying allocated next to that
//! copy while the request is signed. This keeps a connection's heap at about
//! two copies of its largest message (docs/sgx-build.md).

use std::io::{self, Read, Write};
use std::ops::{Deref, Range};

use prost::bytes::Bytes;
use thiserror::Error;

/// Smallest buffer handed to the transport's `read`. SecretConnection frames
/// carry 1024 data bytes.
pub const MIN_READ_CHUNK: usize = 1024;

/// Default cap on one message: a 1 MiB vote extension plus room for the rest
/// of the request.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// Longest uvarint that can encode a 64-bit length.
const MAX_VARINT_LEN: usize = 10;

/// Size of the reader's buffer between messages: small requests (votes,
/// proposals, pings) fit without growing it.
const IDLE_BUFFER_LEN: usize = MIN_READ_CHUNK * 4;

#[derive(Debug, Error)]
pub enum FrameError {
    /// The peer closed the connection between messages.
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message ({got} of {expected} bytes received)")]
    Truncated { got: usize, expected: usize },
    #[error("message length prefix is not a valid uvarint")]
    BadLengthPrefix,
    #[error("message of {declared} bytes exceeds the limit of {max} bytes (max_frame_bytes)")]
    TooLarge { declared: u64, max: usize },
    #[error("transport error: {0}")]
    Io(#[from] io::Error),
}

/// Parse a uvarint prefix. Returns `Ok(None)` if more bytes are needed, and
/// `(value, prefix_len)` once complete.
fn parse_uvarint(bytes: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        let part = u64::from(byte & 0x7f);
        // The tenth byte may only contribute the top bit of a u64.
        if i == MAX_VARINT_LEN - 1 && part > 1 {
            return Err(FrameError::BadLengthPrefix);
        }
        value |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= MAX_VARINT_LEN {
        return Err(FrameError::BadLengthPrefix);
    }
    Ok(None)
}

/// Append the uvarint encoding of `value` to `out`.
pub fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads length-delimited messages from a byte stream.
#[derive(Debug)]
pub struct FrameReader {
    max_frame_bytes: usize,
    /// Received bytes not yet consumed; `buf[start..end]` is live.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            buf: vec![0; IDLE_BUFFER_LEN],
            start: 0,
            end: 0,
        }
    }

    /// Read the next complete message body, lent until the next call.
    pub fn next_message<R: Read>(&mut self, reader: &mut R) -> Result<Frame<'_>, FrameError> {
        // Drop what the previous call handed out.
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let (len, prefix_len) = loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or_default();
            if let Some(parsed) = parse_uvarint(pending)? {
                break parsed;
            }
            if self.fill(reader)? == 0 {
                return Err(if self.start == self.end {
                    FrameError::Closed
                } else {
                    FrameError::Truncated {
                        got: self.end - self.start,
                        expected: MAX_VARINT_LEN,
                    }
                });
            }
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.max_frame_bytes)
            .ok_or(FrameError::TooLarge {
                declared: len,
                max: self.max_frame_bytes,
            })?;
        let body_start = self.start + prefix_len;
        let body_end = body_start + len;
        // Make room for the whole message (bounded by the cap checked above).
        if body_end + MIN_READ_CHUNK > self.buf.len() {
            self.compact();
            let needed = (self.end - self.start).max(prefix_len + len) + MIN_READ_CHUNK;
            if needed > self.buf.len() {
                self.buf.resize(needed, 0);
            }
        }
        let body_start = self.start + prefix_len;
        let body_end = body_start + len;
        while self.end < body_end {
            if self.fill(reader)? == 0 {
                return Err(FrameError::Truncated {
                    got: self.end.saturating_sub(body_start),
                    expected: len,
                });
            }
        }
        self.start = body_end;
        Ok(Frame {
            reader: self,
            body: body_start..body_end,
        })
    }

    /// Move live bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// One transport read into the free tail (at least `MIN_READ_CHUNK`).
    fn fill<R: Read>(&mut self, reader: &mut R) -> Result<usize, FrameError> {
        if self.buf.len() - self.end < MIN_READ_CHUNK {
            self.compact();
            if self.buf.len() - self.end < MIN_READ_CHUNK {
                self.buf.resize(self.end + MIN_READ_CHUNK, 0);
            }
        }
        let tail = self.buf.get_mut(self.end..).unwrap_or_default();
        loop {
            match reader.read(tail) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
    }

    /// Shrink the buffer after a large message so an idle connection does not
    /// keep a megabyte allocated.
    pub fn shrink(&mut self) {
        if self.start == self.end && self.buf.len() > IDLE_BUFFER_LEN {
            self.buf = vec![0; IDLE_BUFFER_LEN];
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether the buffer was grown past its idle size (for a large message).
    fn is_grown(&self) -> bool {
        self.buf.len() > IDLE_BUFFER_LEN
    }

    /// Hand the whole buffer over and start again with an idle-size one that
    /// holds the bytes already read past the last message.
    fn take_buffer(&mut self) -> Vec<u8> {
        let pending = self.buf.get(self.start..self.end).unwrap_or_default();
        let len = IDLE_BUFFER_LEN.max(pending.len() + MIN_READ_CHUNK);
        let mut fresh = Vec::with_capacity(len);
        fresh.extend_from_slice(pending);
        self.start = 0;
        self.end = fresh.len();
        fresh.resize(len, 0);
        std::mem::replace(&mut self.buf, fresh)
    }
}

/// One message body, lent by a [`FrameReader`] until its next call. It
/// reads as a byte slice; `Body::from` hands it to a decoder.
#[derive(Debug)]
pub struct Frame<'a> {
    reader: &'a mut FrameReader,
    body: Range<usize>,
}

impl Deref for Frame<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.reader.buf.get(self.body.clone()).unwrap_or_default()
    }
}

/// A message body as a decoder takes it: borrowed, or owned when a
/// [`FrameReader`] had to grow its buffer for it. Decoding from an owned
/// body shares its bytes instead of copying them twice (prost copies a
/// `bytes` field out of a borrowed slice into a temporary first), and frees
/// the message as soon as the decoded request no longer refers to it.
#[derive(Debug)]
pub enum Body<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

impl<'a> From<&'a [u8]> for Body<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Body::Borrowed(bytes)
    }
}

impl<'a> From<Frame<'a>> for Body<'a> {
    /// A small message stays in the reader's buffer (reused for the next
    /// one); a large one takes the buffer with it.
    fn from(frame: Frame<'a>) -> Self {
        let Frame { reader, body } = frame;
        // `next_message` made `body` a range of the buffer; checked rather
        // than trusted here because `Bytes::slice` would panic.
        let in_buffer = reader.buf.get(body.clone()).is_some();
        if !reader.is_grown() || !in_buffer {
            return Body::Borrowed(reader.buf.get(body).unwrap_or_default());
        }
        Body::Owned(Bytes::from(reader.take_buffer()).slice(body))
    }
}

/// Write `body` with its length prefix in a single `write_all`, then flush.
pub fn write_message<W: Write>(writer: &mut W, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + MAX_VARINT_LEN);
    put_uvarint(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    writer.write_all(&out)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `step` bytes per read.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Trickle {
        /// A reader handing out `data` at most `step` bytes per read.
        fn new(data: Vec<u8>, step: usize) -> Self {
            Self { data, pos: 0, step }
        }
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(buf.len() >= MIN_READ_CHUNK, "read buffer below one frame");
            let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            put_uvarint(&mut out, b.len() as u64);
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn reassembles_messages_split_across_reads() {
        let big = vec![7u8; 300_000];
        let data = framed(&[b"hello", &big, b"", b"x"]);
        for step in [1, 3, 1000, 1024, 70_000] {
            let mut r = Trickle::new(data.clone(), step);
            let mut f = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
            assert_eq!(&*f.next_message(&mut r).unwrap(), b"hello");
            assert_eq!(&*f.next_message(&mut r).unwrap(), &big[..]);
            assert_eq!(&*f.next_message(&mut r).unwrap(), b"");
            assert_eq!(&*f.next_message(&mut r).unwrap(), b"x");
            assert!(matches!(f.next_message(&mut r), Err(FrameError::Closed)));
        }
    }

    /// The bytes of a body handed to a decoder, and whether it took the
    /// reader's buffer.
    fn taken(frame: Frame<'_>) -> (Vec<u8>, bool) {
        match Body::from(frame) {
            Body::Borrowed(bytes) => (bytes.to_vec(), false),
            Body::Owned(bytes) => (bytes.to_vec(), true),
        }
    }

    #[test]
    fn large_bodies_take_the_buffer_and_keep_bytes_read_past_them() {
        let big = vec![7u8; 300_000];
        let other = vec![9u8; 5_000];
        let data = framed(&[&big, b"hello", &other, b"x"]);
        // 70,000-byte reads run past the end of `big` into "hello" and the
        // start of `other`.
        for step in [1, 1024, 70_000, usize::MAX] {
            let mut r = Trickle::new(data.clone(), step);
            let mut f = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
            assert_eq!(taken(f.next_message(&mut r).unwrap()), (big.clone(), true));
            assert_eq!(f.buf.len(), IDLE_BUFFER_LEN, "step {step}");
            assert_eq!(
                taken(f.next_message(&mut r).unwrap()),
                (b"hello".to_vec(), false)
            );
            assert_eq!(
                taken(f.next_message(&mut r).unwrap()),
                (other.clone(), true)
            );
            assert_eq!(
                taken(f.next_message(&mut r).unwrap()),
                (b"x".to_vec(), false)
            );
            assert!(matches!(f.next_message(&mut r), Err(FrameError::Closed)));
        }
    }

    #[test]
    fn rejects_oversize_prefix_before_allocating() {
        let mut data = Vec::new();
        put_uvarint(&mut data, 1 << 40);
        let mut r = Trickle::new(data, 1);
        let mut f = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        assert!(matches!(
            f.next_message(&mut r),
            Err(FrameError::TooLarge { declared, .. }) if declared == 1 << 40
        ));
        assert!(f.buf.len() < 64 * 1024);
    }

    #[test]
    fn rejects_overlong_varint() {
        let data = vec![0xff; 11];
        let mut r = Trickle::new(data, 64);
        let mut f = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        assert!(matches!(
            f.next_message(&mut r),
            Err(FrameError::BadLengthPrefix)
        ));
    }

    #[test]
    fn reports_truncated_message() {
        let mut data = framed(&[b"0123456789"]);
        data.truncate(6);
        let mut r = Trickle::new(data, 64);
        let mut f = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        assert!(matches!(
            f.next_message(&mut r),
            Err(FrameError::Truncated {
                got: 5,
                expected: 10
            })
        ));
    }

    #[test]
    fn uvarint_round_trips() {
        for v in [0u64, 1, 127, 128, 300, 1 << 20, u64::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(parse_uvarint(&out).unwrap(), Some((v, out.len())));
        }
    }
}
