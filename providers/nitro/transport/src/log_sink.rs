//! Enclave side of the log stream: enclave logs to the host over one long-lived,
//! acknowledged stream.
//!
//! An enclave has no console in production, so its `tracing` output is its only trace.
//! [`LogSink`] is a `tracing_subscriber` writer that queues whole lines and hands them to one
//! background thread holding one connection to the host (never a connection per line). The
//! host side lives in the host crate (`tmkms_nitro_host::log_server`).
//!
//! Wire protocol, deliberately plain text: the enclave sends lines ending in `\n`; the host
//! answers with the decimal count of lines it has taken on this connection so far, also
//! `\n`-terminated, after each batch. A line leaves the enclave's queue only when the host has
//! acknowledged it, so lines in flight when the host dies or restarts are sent again on the
//! next connection (at-least-once: a line taken but not yet acknowledged may appear twice,
//! none is lost). While the host is unreachable the sink reconnects with exponential backoff
//! and buffers up to a bound; past it new lines are counted and dropped, and a line saying
//! how many were dropped is inserted at the gap.
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Endpoint, Stream};

/// Settings of a [`LogSink`].
#[derive(Clone, Debug)]
pub struct LogSinkConfig {
    /// Lines kept while the host is unreachable or slow (sent but unacknowledged included).
    pub max_buffered_lines: usize,
    /// Longer lines are cut to this many bytes.
    pub max_line_len: usize,
    /// Timeout of each connection attempt.
    pub connect_timeout: Duration,
    /// First reconnect delay; doubled after each failure up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A write blocked this long means the host is stuck: reconnect.
    pub write_timeout: Duration,
    /// After the last handle is dropped, how long the thread keeps trying to deliver.
    pub linger: Duration,
}

impl Default for LogSinkConfig {
    fn default() -> Self {
        Self {
            max_buffered_lines: 10_000,
            max_line_len: 16 * 1024,
            connect_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
        }
    }
}

/// Counters of a [`LogSink`], e.g. for a health report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSinkStats {
    /// Lines waiting for the host's acknowledgement.
    pub buffered: usize,
    /// Lines the host acknowledged since start.
    pub delivered: u64,
    /// Lines dropped because the buffer was full, since start.
    pub dropped: u64,
    /// Whether a connection to the host is open now.
    pub connected: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Lines not yet acknowledged, oldest first; the first `in_flight` were sent on the
    /// current connection.
    queue: VecDeque<Vec<u8>>,
    in_flight: usize,
    acked_on_conn: u64,
    dropped_pending: u64,
    stats: LogSinkStats,
    broken: bool,
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    config: LogSinkConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_line(&self, mut line: Vec<u8>) {
        line.truncate(self.config.max_line_len);
        let mut st = self.lock();
        self.note_drops(&mut st);
        if st.dropped_pending == 0 && st.queue.len() < self.config.max_buffered_lines {
            st.queue.push_back(line);
            st.stats.buffered = st.queue.len();
            self.changed.notify_all();
        } else {
            st.dropped_pending += 1;
            st.stats.dropped += 1;
        }
    }

    /// Puts the "n lines dropped" notice at the gap once there is room for it and one more line.
    fn note_drops(&self, st: &mut State) {
        if st.dropped_pending > 0 && st.queue.len() + 2 <= self.config.max_buffered_lines {
            let notice = format!(
                "[logstream] {} log lines dropped here: the host was unreachable and the buffer of {} lines was full",
                st.dropped_pending, self.config.max_buffered_lines
            );
            st.queue.push_back(notice.into_bytes());
            st.dropped_pending = 0;
            st.stats.buffered = st.queue.len();
            self.changed.notify_all();
        }
    }
}

/// Marks the sink as closing when the last [`LogSink`] handle is dropped.
#[derive(Debug)]
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.changed.notify_all();
    }
}

/// Enclave side of the log stream: an `io::Write` and a `tracing_subscriber` writer factory.
///
/// Cheap to clone; each clone buffers its own partial line, and a partial line is sent as a
/// line when its handle is dropped (each `tracing` event gets its own handle, so every event
/// becomes whole lines, in order per thread).
#[derive(Debug)]
pub struct LogSink {
    owner: Arc<Owner>,
    partial: Vec<u8>,
    /// Set while discarding the tail of an over-long line.
    truncating: bool,
}

impl Clone for LogSink {
    fn clone(&self) -> Self {
        Self {
            owner: Arc::clone(&self.owner),
            partial: Vec::new(),
            truncating: false,
        }
    }
}

impl LogSink {
    /// Starts the background thread that connects to `host` (with backoff) and delivers lines.
    pub fn connect(host: Endpoint, config: LogSinkConfig) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
            config,
        });
        let worker = Arc::clone(&shared);
        thread::Builder::new()
            .name("logstream".into())
            .spawn(move || deliver(&worker, &host))?;
        Ok(Self {
            owner: Arc::new(Owner(shared)),
            partial: Vec::new(),
            truncating: false,
        })
    }

    fn shared(&self) -> &Shared {
        &self.owner.0
    }

    /// Waits until every queued line is acknowledged by the host; false on timeout.
    /// (Call it before the enclave exits; `flush` does not wait for the network.)
    pub fn drain(&self, timeout: Duration) -> bool {
        let shared = self.shared();
        let deadline = Instant::now() + timeout;
        let mut st = shared.lock();
        while !st.queue.is_empty() || st.dropped_pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Current counters.
    pub fn stats(&self) -> LogSinkStats {
        self.shared().lock().stats
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let max = self.shared().config.max_line_len;
        let mut rest = buf;
        while !rest.is_empty() {
            let (chunk, ends_line) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (rest.get(..i).unwrap_or_default(), true),
                None => (rest, false),
            };
            rest = rest
                .get(chunk.len() + usize::from(ends_line)..)
                .unwrap_or_default();
            if !self.truncating {
                let room = max.saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                self.truncating = chunk.len() > room;
            }
            if ends_line {
                let line = std::mem::take(&mut self.partial);
                self.truncating = false;
                self.owner.0.push_line(line);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.owner.0.push_line(line);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The delivery thread: connect, send, reconnect, until closed and drained (or lingered out).
fn deliver(shared: &Shared, host: &Endpoint) {
    let config = &shared.config;
    let mut backoff = config.backoff_initial;
    let mut closing_since: Option<Instant> = None;
    loop {
        {
            let st = shared.lock();
            if st.closing {
                let since = *closing_since.get_or_insert_with(Instant::now);
                if st.queue.is_empty() || since.elapsed() >= config.linger {
                    return;
                }
            }
        }
        // Failures are not logged through `tracing`: that would feed this very sink.
        match host.connect(config.connect_timeout) {
            Ok(stream) => {
                backoff = config.backoff_initial;
                let _ = run_connection(shared, stream, &mut closing_since);
            }
            Err(_) => {
                let st = shared.lock();
                if st.closing {
                    drop(st);
                    thread::sleep(backoff.min(config.linger));
                } else {
                    // Woken early only by closing; new lines do not shorten the backoff.
                    let _ = shared
                        .changed
                        .wait_timeout_while(st, backoff, |st| !st.closing);
                }
                backoff = (backoff * 2).min(config.backoff_max);
            }
        }
    }
}

fn run_connection(
    shared: &Shared,
    stream: Stream,
    closing_since: &mut Option<Instant>,
) -> io::Result<()> {
    let config = &shared.config;
    stream.set_write_timeout(Some(config.write_timeout))?;
    let acks = stream.try_clone()?;
    {
        let mut st = shared.lock();
        st.in_flight = 0;
        st.acked_on_conn = 0;
        st.broken = false;
        st.stats.connected = true;
    }
    let reader = thread::scope(|scope| {
        let reader = scope.spawn(|| read_acks(shared, acks));
        let result = send_lines(shared, &stream, closing_since);
        let _ = stream.shutdown(Shutdown::Both);
        let _ = reader.join();
        result
    });
    let mut st = shared.lock();
    st.stats.connected = false;
    st.in_flight = 0;
    reader
}

fn send_lines(
    shared: &Shared,
    stream: &Stream,
    closing_since: &mut Option<Instant>,
) -> io::Result<()> {
    let config = &shared.config;
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    loop {
        let batch: Vec<Vec<u8>> = {
            let mut st = shared.lock();
            loop {
                if st.broken {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "host closed the log stream",
                    ));
                }
                if st.closing {
                    let since = *closing_since.get_or_insert_with(Instant::now);
                    if st.queue.is_empty() || since.elapsed() >= config.linger {
                        return Ok(());
                    }
                }
                if st.queue.len() > st.in_flight {
                    break;
                }
                st = shared
                    .changed
                    .wait_timeout(st, Duration::from_millis(200))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let start = st.in_flight;
            let batch: Vec<Vec<u8>> = st.queue.iter().skip(start).take(1024).cloned().collect();
            // Counted as sent before writing, so an acknowledgement can never outrun it.
            st.in_flight += batch.len();
            batch
        };
        for line in &batch {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
}

/// Longest acknowledgement line accepted ("18446744073709551615\n" is 21 bytes).
const MAX_ACK_LEN: u64 = 32;

fn read_acks(shared: &Shared, stream: Stream) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let ok = match (&mut reader).take(MAX_ACK_LEN).read_line(&mut line) {
            Ok(0) | Err(_) => false,
            Ok(_) => match line.trim_end_matches('\n').parse::<u64>() {
                Ok(n) => apply_ack(shared, n),
                Err(_) => false,
            },
        };
        if !ok {
            shared.lock().broken = true;
            shared.changed.notify_all();
            return;
        }
    }
}

/// Applies a cumulative acknowledgement; false if it acknowledges lines never sent.
fn apply_ack(shared: &Shared, acked: u64) -> bool {
    let mut st = shared.lock();
    let Some(newly) = acked
        .checked_sub(st.acked_on_conn)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= st.in_flight)
    else {
        return false;
    };
    st.queue.drain(..newly);
    st.in_flight -= newly;
    st.acked_on_conn = acked;
    st.stats.delivered += newly as u64;
    st.stats.buffered = st.queue.len();
    shared.note_drops(&mut st);
    shared.changed.notify_all();
    true
}
