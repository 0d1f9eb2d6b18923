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

use libfuzzer_sys::fuzz_target;
use tmkms_light_fuzz::chunked::{split_input, Chunked};
use tmkms_nitro_kms::http::{read_response, HttpError, Response};

const CAPS: [usize; 4] = [0, 16, 256, 4096];

fn is_size_limit(e: &HttpError) -> bool {
    matches!(e, HttpError::HeadTooLarge)
        || matches!(e, HttpError::MalformedChunk(m) if *m == "line too long")
}

fn summary(r: &Response) -> (u16, &[(String, String)], &[u8]) {
    (r.status, &r.headers, &r.body)
}

fuzz_target!(|data: &[u8]| {
    let Some((cap, sizes, stream)) = split_input(data) else {
        return;
    };
    let cap = CAPS[usize::from(cap) % CAPS.len()];
    let chunked = read_response(&mut Chunked::new(stream, sizes), cap);
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
