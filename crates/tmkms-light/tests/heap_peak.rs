//! Measures the heap the signing path needs for the largest messages we
//! accept, to size the SGX enclave's heap (scripts/sgx-build.sh,
//! docs/sgx-build.md).
//!
//! The real path an enclave runs: the node simulator listens on TCP, the
//! signer dials it with `net::connect` (SecretConnection handshake), and
//! `session::serve` answers with a `ChainSigner` over a `MemoryStore`. A
//! counting global allocator records the peak of live bytes allocated by the
//! signer's thread (the simulated node runs on other threads and is not
//! counted). Run with `--nocapture` to see the figures.
//!
//! Besides checking the answers, the test holds the peak to at most two
//! copies of the request plus [`SMALL_CONSTANT`]: the frame buffer while the
//! request is decoded, then the decoded extension next to its sign bytes.
//! A third copy of a large message anywhere on the path fails it, and the
//! SGX heap (two connections at this bound, with a margin) would no longer
//! be enough.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A global allocator can only be written with `unsafe`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::config::Address;
use tmkms_light::keys::ConsensusKey;
use tmkms_light::privval::frame::DEFAULT_MAX_FRAME_BYTES;
use tmkms_light::privval::Dialect;
use tmkms_light::session::{serve, SessionConfig};
use tmkms_light::state::MemoryStore;
use tmkms_light::types::ChainId;
use tmkms_node_sim::codec::{encode_request, Request};
use tmkms_node_sim::{verify_vote, BlockIdSpec, NodeListener, VoteSpec};

/// Live bytes allocated (minus freed) by counted threads, and their peak.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

fn add(bytes: usize) {
    let now = LIVE.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn sub(bytes: usize) {
    LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && counted() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && counted() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            sub(layout.size());
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && counted() {
            // A moving realloc holds both blocks for a moment: count the new
            // block before releasing the old one.
            add(new_size);
            sub(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CHAIN_ID: &str = "heap-chain";
const SEED: [u8; 32] = [0x5e; 32];
/// The simulator's cap on a vote extension (CometBFT's 1 MiB).
const EXTENSION_LEN: usize = tmkms_node_sim::MAX_VOTE_EXTENSION_SIZE;
/// What the signer thread may hold besides two copies of the request:
/// the connection (about 4.5 KB), the read buffer's spare chunk, the
/// decoded request's other fields and the response.
const SMALL_CONSTANT: usize = 256 * 1024;

/// A precommit at `height` whose extension makes the encoded request body
/// `body_len` bytes long (or carries `EXTENSION_LEN` bytes when `None`).
fn precommit(height: i64, body_len: Option<usize>) -> VoteSpec {
    let base = |len: usize| {
        VoteSpec::precommit(height, 0, Some(BlockIdSpec::for_height(height)))
            .with_extension(vec![0xa5; len])
    };
    let Some(target) = body_len else {
        return base(EXTENSION_LEN);
    };
    // Two passes settle the extension's own length prefix.
    let mut len = target;
    for _ in 0..3 {
        let body = encode_request(
            tmkms_node_sim::Dialect::V0_38,
            &Request::SignVote {
                vote: base(len).to_raw(),
                chain_id: CHAIN_ID.into(),
                skip_extension_signing: false,
            },
        )
        .unwrap();
        len = len + target - body.len();
    }
    base(len)
}

struct Measured {
    /// Peak live heap of the signer thread over the whole connection.
    peak: usize,
    /// Live heap of the signer thread after the handshake and pubkey request.
    after_handshake: usize,
    request_body_len: usize,
}

/// One connection: handshake, pubkey, then `vote`, answered by the real
/// signer on a counted thread with a `stack` bytes stack.
fn measure(vote: VoteSpec, stack: usize) -> Measured {
    let listener = NodeListener::bind_tcp("127.0.0.1:0", tmkms_node_sim::Dialect::V0_38).unwrap();
    let address: Address = listener.local_addr().parse().unwrap();
    let key = ConsensusKey::from_seed(&SEED);
    let pubkey = key.public_key().0;
    let policy = ChainPolicy {
        chain_id: ChainId::try_from(CHAIN_ID).unwrap(),
        max_height: None,
        danger_allow_sign_bytes: false,
    };
    let chain = ChainSigner::open(policy, key, Box::new(MemoryStore::default())).unwrap();
    let request_body_len = encode_request(
        tmkms_node_sim::Dialect::V0_38,
        &Request::SignVote {
            vote: vote.to_raw(),
            chain_id: CHAIN_ID.into(),
            skip_extension_signing: false,
        },
    )
    .unwrap()
    .len();

    let (after_tx, after_rx) = std::sync::mpsc::channel::<()>();
    let signer = std::thread::Builder::new()
        .name("signer".into())
        .stack_size(stack)
        .spawn(move || {
            let identity = ed25519_consensus::SigningKey::from([0x1d; 32]);
            LIVE.store(0, Ordering::Relaxed);
            PEAK.store(0, Ordering::Relaxed);
            COUNTED.with(|c| c.set(true));
            let mut stream =
                tmkms_light::net::connect(&address, Some(&identity), Duration::from_secs(10))
                    .unwrap();
            let config = SessionConfig {
                dialect: Dialect::V0_38,
                max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
                clock: None,
            };
            let (answered, end) = serve(&mut stream, &chain, config);
            COUNTED.with(|c| c.set(false));
            drop(after_tx);
            (answered, end)
        })
        .unwrap();

    let mut node = listener.accept(Duration::from_secs(10)).unwrap();
    node.set_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(node.pubkey(CHAIN_ID).unwrap().unwrap(), pubkey);
    let after_handshake = LIVE.load(Ordering::Relaxed).max(0) as usize;
    let signed = node
        .sign_vote(CHAIN_ID, &vote, false)
        .unwrap()
        .unwrap_or_else(|e| panic!("signer refused the vote: {e:?}"));
    verify_vote(
        &pubkey,
        CHAIN_ID,
        &vote,
        &signed,
        tmkms_node_sim::Dialect::V0_38,
        false,
    )
    .unwrap();
    assert!(signed.extension_signature.is_some());
    assert_eq!(signed.echoed_extension_len, 0, "extension not echoed");
    node.close();
    // A SecretConnection closed by the node ends the session with a
    // transport error rather than `Closed`; either way both requests were
    // answered.
    let (answered, _end) = signer.join().unwrap();
    assert_eq!(answered, 2);
    drop(after_rx);
    Measured {
        peak: PEAK.load(Ordering::Relaxed).max(0) as usize,
        after_handshake,
        request_body_len,
    }
}

/// Stack of the signer thread in this test: what the enclave gives each
/// thread would have to be at least this (this test profile is less
/// optimised than the enclave's release build, so it uses more stack).
fn stack_size() -> usize {
    std::env::var("HEAP_PEAK_STACK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256 * 1024)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(what: &str, m: &Measured) {
    println!(
        "heap peak, {what}: request body {} bytes; signer thread peak {} bytes ({:.2} MiB), {} bytes live after handshake+pubkey; signer stack {} KiB",
        m.request_body_len,
        m.peak,
        mib(m.peak),
        m.after_handshake,
        stack_size() / 1024
    );
}

// One test: the counters are process-wide and the two measurements must not
// overlap.
#[test]
fn heap_peak_of_the_largest_requests() {
    let extension = measure(precommit(1, None), stack_size());
    report("v0.38 precommit with a 1 MiB extension", &extension);
    let max_frame = measure(precommit(2, Some(DEFAULT_MAX_FRAME_BYTES)), stack_size());
    report("max-size frame (a precommit filling the cap)", &max_frame);
    assert_eq!(max_frame.request_body_len, DEFAULT_MAX_FRAME_BYTES);

    for m in [&extension, &max_frame] {
        // At least the request itself was held in memory once...
        assert!(m.peak > m.request_body_len, "peak {} too small", m.peak);
        // ...and never more than two copies of it.
        let bound = 2 * m.request_body_len + SMALL_CONSTANT;
        assert!(
            m.peak <= bound,
            "peak {} bytes is above two copies of the {}-byte request plus {} bytes ({bound})",
            m.peak,
            m.request_body_len,
            SMALL_CONSTANT
        );
    }
}
