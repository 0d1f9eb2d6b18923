//! `FrameReader` over arbitrary bytes delivered in arbitrary chunks.
//!
//! Input layout: byte 0 picks the frame cap, byte 1 the number `n` of chunk
//! sizes (1..=16) that follow; the rest is the byte stream. The transport
//! hands out at most `sizes[i % n]` bytes per read (a size of 0 is an
//! `Interrupted` error, which the reader must retry, followed by a one-byte
//! read; above 200, as much as fits), so the same stream is reassembled from
//! many different read patterns.
//!
//! Checked against a straightforward reference parse of the whole stream:
//! the same bodies in the same order, the same way of ending, no body above
//! the cap, every read buffer at least `MIN_READ_CHUNK` bytes, and the
//! reader's memory bounded by the cap, not by what the peer declares or
//! sends (measured by a counting allocator), also when bodies are handed
//! over to a decoder as a `Body`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use tmkms_light::privval::frame::{Body, FrameError, FrameReader, MIN_READ_CHUNK};
use tmkms_light_fuzz::chunked::{split_input, Chunked};

const CAPS: [usize; 6] = [0, 1, 100, 1024, 5000, 16 * 1024];

/// Counts live heap bytes and their peak, so the target can bound what the
/// frame reader allocates.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // Old and new block briefly coexist in the worst case.
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What the reader may hold at once: its buffer grows to one message plus a
/// read chunk, and `Vec` may round a growth up to twice the old capacity.
fn memory_bound(cap: usize) -> usize {
    2 * (cap + 10 + 2 * MIN_READ_CHUNK) + 8 * MIN_READ_CHUNK
}

/// How the reference parse ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    Truncated { got: usize, expected: usize },
    BadLengthPrefix,
    TooLarge { declared: u64 },
}

fn end_of(e: &FrameError) -> End {
    match e {
        FrameError::Closed => End::Closed,
        FrameError::Truncated { got, expected } => End::Truncated {
            got: *got,
            expected: *expected,
        },
        FrameError::BadLengthPrefix => End::BadLengthPrefix,
        FrameError::TooLarge { declared, .. } => End::TooLarge {
            declared: *declared,
        },
        FrameError::Io(e) => panic!("unexpected transport error {e}"),
    }
}

/// The messages of `stream` and how it ends, per the framing rules: a
/// protobuf uvarint length (at most 10 bytes, the tenth at most 1) and body.
fn reference(mut stream: &[u8], cap: usize) -> (Vec<&[u8]>, End) {
    let mut bodies = Vec::new();
    loop {
        if stream.is_empty() {
            return (bodies, End::Closed);
        }
        let mut len: u64 = 0;
        let mut prefix = None;
        for (i, &b) in stream.iter().take(10).enumerate() {
            if i == 9 && b & 0x7f > 1 {
                return (bodies, End::BadLengthPrefix);
            }
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                prefix = Some(i + 1);
                break;
            }
        }
        let Some(prefix) = prefix else {
            if stream.len() >= 10 {
                return (bodies, End::BadLengthPrefix);
            }
            return (
                bodies,
                End::Truncated {
                    got: stream.len(),
                    expected: 10,
                },
            );
        };
        if len > cap as u64 {
            return (bodies, End::TooLarge { declared: len });
        }
        let len = len as usize;
        let rest = &stream[prefix..];
        if rest.len() < len {
            return (
                bodies,
                End::Truncated {
                    got: rest.len(),
                    expected: len,
                },
            );
        }
        bodies.push(&rest[..len]);
        stream = &rest[len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((cap_ix, sizes, stream)) = split_input(data) else {
        return;
    };
    let cap = CAPS[usize::from(cap_ix) % CAPS.len()];

    let (expected, expected_end) = reference(stream, cap);
    let mut transport = Chunked::new(stream, sizes)
        .requiring_buffers_of(MIN_READ_CHUNK)
        .whole_reads_above(200);
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let check_memory = || {
        let used = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
        assert!(
            used <= memory_bound(cap),
            "frame reader used {used} bytes with a cap of {cap}"
        );
    };
    let mut reader = FrameReader::new(cap);
    let mut got = 0usize;
    // Every message consumes at least its one-byte prefix.
    for _ in 0..=stream.len() {
        match reader.next_message(&mut transport) {
            Ok(frame) => {
                // Every third body is handed over as a decoder takes it (a
                // large one takes the reader's buffer, which must keep the
                // bytes read past it); the others are read in place.
                let handed_over = got % 3 == 2;
                let taken;
                let body: &[u8] = if handed_over {
                    taken = Body::from(frame);
                    match &taken {
                        Body::Borrowed(bytes) => bytes,
                        Body::Owned(bytes) => bytes,
                    }
                } else {
                    &frame
                };
                assert!(
                    body.len() <= cap,
                    "body of {} bytes above cap {cap}",
                    body.len()
                );
                assert_eq!(
                    Some(&body),
                    expected.get(got),
                    "message {got} differs from the reference parse"
                );
                got += 1;
                if got.is_multiple_of(2) {
                    reader.shrink();
                }
            }
            Err(e) => {
                check_memory();
                assert_eq!(got, expected.len(), "ended early with {e}");
                assert_eq!(end_of(&e), expected_end);
                return;
            }
        }
    }
    panic!("reader did not end after {} messages", got);
});
