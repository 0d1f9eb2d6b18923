//! `tmkms_nitro_kms::http::read_response` over what the KMS connection
//! delivers (through the untrusted host's proxy, before TLS is checked the
//! bytes are still parsed by rustls; after it, KMS or a compromised endpoint
//! chooses them).
//!
//! Input layout: byte 0 picks the body cap, byte 1 the number `n` (1..=16)
//! of chunk sizes that follow; the rest is the stream, handed out at most
//! `sizes[i % n]` bytes per read (0 is an `Interrupted` error, which must be
//! retried, followed by a one-byte read).
//!
//! Invariants besides "never panics":
//! * a response has a final (non-1xx) status and a body within the cap;
//! * the result does not depend on how the stream is cut into reads: the
//!   chunked read and a read of the whole stream at once agree, except that
//!   a head or line crossing the 16 KiB limit may be caught at a different
//!   point (a size error on one side only);
//! * a `Content-Length` body is exactly that long.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use tmkms_nitro_kms::http::{read_response, HttpError, Response};

const CAPS: [usize; 4] = [0, 16, 256, 4096];

struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    reads: usize,
    interrupted: bool,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        // An interruption is always followed by progress (a real stream
        // does not stay interrupted; all-zero sizes would spin forever).
        if size == 0 && !std::mem::replace(&mut self.interrupted, true) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let size = size.max(1);
        let n = usize::from(size).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn is_size_limit(e: &HttpError) -> bool {
    matches!(e, HttpError::HeadTooLarge)
        || matches!(e, HttpError::MalformedChunk(m) if *m == "line too long")
}

fn summary(r: &Response) -> (u16, &[(String, String)], &[u8]) {
    (r.status, &r.headers, &r.body)
}

fuzz_target!(|data: &[u8]| {
    let [cap, n, rest @ ..] = data else {
        return;
    };
    let cap = CAPS[usize::from(*cap) % CAPS.len()];
    let n = usize::from(*n % 16) + 1;
    let Some((sizes, stream)) = rest.split_at_checked(n) else {
        return;
    };
    let chunked = read_response(
        &mut Chunked {
            data: stream,
            sizes,
            reads: 0,
            interrupted: false,
        },
        cap,
    );
    let whole = read_response(&mut &stream[..], cap);

    if let Ok(response) = &chunked {
        assert!(
            !(100..200).contains(&response.status),
            "1xx returned as the response"
        );
        assert!(response.body.len() <= cap, "body above the cap");
        let chunked_te = response.header("transfer-encoding").is_some();
        if let (false, Some(len)) = (chunked_te, response.header("content-length")) {
            assert_eq!(len.trim().parse::<usize>().ok(), Some(response.body.len()));
        }
    }
    match (&chunked, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(summary(a), summary(b), "read pattern changed the response"),
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            assert!(
                is_size_limit(e),
                "read pattern changed the outcome: {chunked:?} vs {whole:?}"
            )
        }
        (Err(_), Err(_)) => {}
    }
});
