//! The hardware floor of one durable signature on this machine, measured
//! with the signer's own pieces: a loopback round trip over its transports
//! (a Unix socket, TCP + SecretConnection), one Ed25519 signature over vote
//! sign bytes, and one state write (the file store's record write and
//! flush). The floor of a request is the three done one after another in
//! one timed iteration, so its p99 is a real distribution, not a sum of
//! p99s. It also compares ways of making a 512-byte record durable.
//!
//! Prints one `floor <name> p50_us=.. p90_us=.. p99_us=..` line per figure
//! (scripts/bench.sh reads them).
//!
//!   cargo run --release -p tmkms-light --example floor -- DIR [ITERATIONS]

// Linux-only syscalls compared against the file store's `pwrite` +
// `fdatasync`; none of this is in the signer.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use tendermint_p2p::secret_connection::{SecretConnection, Version};
use tmkms_light::privval::frame::{write_message, FrameReader};
use tmkms_light::state::file::{FileStore, FILE_LEN, SLOT_STRIDE};
use tmkms_light::state::StateStore;
use tmkms_light::types::{Height, Position, Round, SignState, Step};

/// About the size of a v0.38 precommit request and its response.
const REQUEST_LEN: usize = 180;
const RESPONSE_LEN: usize = 150;
const RECORD_LEN: usize = 512;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: floor DIR [ITERATIONS]")?);
    let iterations: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    std::fs::create_dir_all(&dir)?;
    let work = tempfile::tempdir_in(&dir)?;

    let mut pieces = Pieces {
        key: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        message: [0x5a_u8; 120],
        store: FileStore::create(work.path().join("state.bin"), &SignState::default())?,
        height: 0,
    };
    report("sign", iterations, || {
        pieces.sign();
        Ok(())
    })?;
    report("state_write", iterations, || pieces.write_state())?;
    for (name, mut write) in record_writers(work.path())? {
        report(name, iterations, &mut write)?;
    }
    // A precommit's two signatures, after the write or while it is in
    // flight (writeback started, signatures made, then the flush awaited).
    let two_signatures = || {
        pieces.sign();
        pieces.sign();
    };
    let file = preallocated(&work.path().join("overlap"), 0)?;
    let mut slot = Slots::default();
    let record = Aligned([7; RECORD_LEN]);
    report("write_then_sign2", iterations, || {
        file.write_all_at(&record.0, slot.next())?;
        file.sync_data()?;
        two_signatures();
        Ok(())
    })?;
    report("write_sign2_during_writeback", iterations, || {
        let offset = slot.next();
        file.write_all_at(&record.0, offset)?;
        start_writeback(&file, offset)?;
        two_signatures();
        file.sync_data()?;
        Ok(())
    })?;
    // The signatures on a second thread while this one writes: what
    // overlapping costs when the store cannot split its write.
    let (to_signer, jobs) = std::sync::mpsc::channel::<()>();
    let (signed, signatures) = std::sync::mpsc::channel::<()>();
    let (signer_key, message) = (pieces.key.clone(), pieces.message);
    std::thread::spawn(move || {
        for () in jobs {
            std::hint::black_box(signer_key.sign(&message));
            std::hint::black_box(signer_key.sign(&message));
            if signed.send(()).is_err() {
                return;
            }
        }
    });
    report("write_while_thread_signs2", iterations, || {
        to_signer.send(())?;
        file.write_all_at(&record.0, slot.next())?;
        file.sync_data()?;
        signatures.recv()?;
        Ok(())
    })?;
    let (to_writer, writes) = std::sync::mpsc::channel::<u64>();
    let (done, written) = std::sync::mpsc::channel::<bool>();
    let writer_file = file.try_clone()?;
    std::thread::spawn(move || {
        for offset in writes {
            let ok = writer_file.write_all_at(&record.0, offset).is_ok()
                && writer_file.sync_data().is_ok();
            if done.send(ok).is_err() {
                return;
            }
        }
    });
    report("write_on_thread_sign2", iterations, || {
        to_writer.send(slot.next())?;
        two_signatures();
        if !written.recv()? {
            return Err("write failed".into());
        }
        Ok(())
    })?;

    transport_figures("unix", &mut echo_unix()?, &mut pieces, iterations)?;
    transport_figures(
        "tcp",
        &mut echo_secret_connection()?,
        &mut pieces,
        iterations,
    )
}

/// The signer's own pieces of one request: its key, sign bytes and state.
struct Pieces {
    key: ed25519_dalek::SigningKey,
    message: [u8; 120],
    store: FileStore,
    height: i64,
}

impl Pieces {
    fn sign(&self) {
        std::hint::black_box(self.key.sign(&self.message));
    }

    /// One state write at the next height, as the signer makes it.
    fn write_state(&mut self) -> Result<()> {
        self.height += 1;
        let state = SignState {
            position: Position {
                height: Height::try_from(self.height)?,
                round: Round::default(),
                step: Step::Prevote,
            },
            sign_bytes: self.message.to_vec(),
            signature: None,
        };
        Ok(self.store.persist(&state)?)
    }
}

/// The round trip over `io`, and the floor: round trip, signature and
/// state write in one timed iteration.
fn transport_figures<S: Read + Write>(
    name: &str,
    io: &mut S,
    pieces: &mut Pieces,
    iterations: usize,
) -> Result<()> {
    report(&format!("roundtrip_{name}"), iterations, || round_trip(io))?;
    report(&format!("floor_{name}"), iterations, || {
        round_trip(io)?;
        pieces.sign();
        pieces.write_state()
    })
}

/// Times `iterations` calls of `step` (after a short warm-up) and prints
/// their percentiles.
fn report(name: &str, iterations: usize, mut step: impl FnMut() -> Result<()>) -> Result<()> {
    for _ in 0..iterations / 20 {
        step()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        step()?;
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let at = |p: usize| {
        let rank = (samples.len() * p).div_ceil(100).max(1) - 1;
        samples.get(rank).copied().unwrap_or_default()
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "floor {name} p50_us={:.1} p90_us={:.1} p99_us={:.1}",
        us(at(50)),
        us(at(90)),
        us(at(99))
    );
    Ok(())
}

/// One request out, one response back, framed as the signer frames them.
fn round_trip<S: Read + Write>(io: &mut S) -> Result<()> {
    write_message(io, &[1; REQUEST_LEN])?;
    let mut reader = FrameReader::new(4096);
    let body = reader.next_message(io)?;
    if body.len() != RESPONSE_LEN {
        return Err("short echo".into());
    }
    Ok(())
}

/// Answers every framed request with a response-sized frame.
fn serve_echo<S: Read + Write>(mut io: S) {
    let mut reader = FrameReader::new(4096);
    while reader.next_message(&mut io).is_ok() {
        if write_message(&mut io, &[2; RESPONSE_LEN]).is_err() {
            return;
        }
    }
}

fn echo_unix() -> Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    std::thread::spawn(move || serve_echo(theirs));
    Ok(ours)
}

fn echo_secret_connection() -> Result<SecretConnection<TcpStream>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let Ok((socket, _)) = listener.accept() else {
            return;
        };
        let _ = socket.set_nodelay(true);
        let node_key = ed25519_consensus::SigningKey::from([3; 32]);
        if let Ok(conn) = SecretConnection::new(socket, node_key, Version::V0_34) {
            serve_echo(conn);
        }
    });
    let socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    let signer_key = ed25519_consensus::SigningKey::from([4; 32]);
    Ok(SecretConnection::new(socket, signer_key, Version::V0_34)?)
}

type RecordWriter = Box<dyn FnMut() -> Result<()>>;

/// Ways to make one 512-byte record durable in place, alternating between
/// two slots 4 KiB apart as the file store does.
fn record_writers(dir: &Path) -> Result<Vec<(&'static str, RecordWriter)>> {
    let record = Aligned([7; RECORD_LEN]);
    let mut writers: Vec<(&'static str, RecordWriter)> = Vec::new();

    let file = preallocated(&dir.join("pwrite_fdatasync"), 0)?;
    let mut slot = Slots::default();
    writers.push((
        "record_pwrite_fdatasync",
        Box::new(move || {
            file.write_all_at(&record.0, slot.next())?;
            file.sync_data()?;
            Ok(())
        }),
    ));

    // Files opened so that the write itself is durable when it returns.
    for (name, flags) in [
        ("record_o_dsync", libc::O_DSYNC),
        ("record_o_direct_dsync", libc::O_DIRECT | libc::O_DSYNC),
    ] {
        let file = preallocated(&dir.join(name), flags)?;
        let mut slot = Slots::default();
        writers.push((
            name,
            Box::new(move || {
                file.write_all_at(&record.0, slot.next())?;
                Ok(())
            }),
        ));
    }

    let file = preallocated(&dir.join("rwf_dsync"), 0)?;
    let mut slot = Slots::default();
    writers.push((
        "record_pwritev2_rwf_dsync",
        Box::new(move || pwritev2_dsync(&file, &record.0, slot.next())),
    ));

    let file = preallocated(&dir.join("sync_file_range"), 0)?;
    let mut slot = Slots::default();
    writers.push((
        "record_pwrite_sync_file_range_fdatasync",
        Box::new(move || {
            let offset = slot.next();
            file.write_all_at(&record.0, offset)?;
            start_writeback(&file, offset)?;
            file.sync_data()?;
            Ok(())
        }),
    ));
    Ok(writers)
}

/// A record buffer aligned for O_DIRECT.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Aligned([u8; RECORD_LEN]);

#[derive(Default)]
struct Slots(u64);

impl Slots {
    fn next(&mut self) -> u64 {
        self.0 ^= 1;
        self.0 * SLOT_STRIDE
    }
}

fn preallocated(path: &Path, flags: i32) -> Result<File> {
    std::fs::write(path, vec![0; usize::try_from(FILE_LEN)?])?;
    File::open(path)?.sync_all()?;
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags)
        .open(path)?)
}

fn pwritev2_dsync(file: &File, bytes: &[u8], offset: u64) -> Result<()> {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let offset = i64::try_from(offset)?;
    // SAFETY: one valid iovec over a live buffer; the fd is open.
    let written = unsafe { libc::pwritev2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_DSYNC) };
    if usize::try_from(written).ok() != Some(bytes.len()) {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn start_writeback(file: &File, offset: u64) -> Result<()> {
    let offset = i64::try_from(offset)?;
    // SAFETY: plain syscall on an open fd.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            RECORD_LEN as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}
