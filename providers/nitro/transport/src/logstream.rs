//! Enclave logs to the host over one long-lived, acknowledged stream.
//!
//! An enclave has no console in production, so its `tracing` output is its only trace. The
//! enclave side, [`LogSink`], is a `tracing_subscriber` writer that queues whole lines and
//! hands them to one background thread holding one connection to the host (never a
//! connection per line). The host side, [`serve_logs`] / [`serve_logs_to`], reads the lines
//! and re-emits them.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Endpoint, Listener, Stream};

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

/// Settings of the host side.
#[derive(Clone, Debug)]
pub struct LogServeConfig {
    /// Longer lines are cut to this many bytes (the enclave is not trusted to bound them).
    pub max_line_len: usize,
    /// How often blocked reads and the accept loop look at the shutdown flag.
    pub poll_interval: Duration,
}

impl Default for LogServeConfig {
    fn default() -> Self {
        Self {
            max_line_len: 16 * 1024,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// Where the host puts received lines.
#[derive(Clone)]
enum Output {
    Tracing,
    Writer(Arc<Mutex<dyn Write + Send>>),
}

/// Host side: accepts log connections on `listener` and re-emits each line as a `tracing`
/// event with target `enclave` (at the line's own level when it carries one), until
/// `shutdown` is set.
pub fn serve_logs(listener: &Listener, shutdown: &AtomicBool) -> io::Result<()> {
    serve(
        listener,
        Output::Tracing,
        &LogServeConfig::default(),
        shutdown,
    )
}

/// Host side writing each received line, `\n`-terminated, to `out` instead.
pub fn serve_logs_to(
    listener: &Listener,
    out: Arc<Mutex<dyn Write + Send>>,
    config: &LogServeConfig,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    serve(listener, Output::Writer(out), config, shutdown)
}

fn serve(
    listener: &Listener,
    out: Output,
    config: &LogServeConfig,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    thread::scope(|scope| {
        while !shutdown.load(Ordering::SeqCst) {
            match listener.accept_timeout(config.poll_interval) {
                Ok(Some((stream, peer))) => {
                    tracing::debug!(%peer, "enclave log stream connected");
                    let out = out.clone();
                    scope.spawn(move || {
                        if let Err(e) = read_lines(stream, &out, config, shutdown) {
                            tracing::warn!(%peer, error = %e, "enclave log stream ended with an error");
                        }
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a log connection failed; retrying");
                    thread::sleep(config.poll_interval);
                }
            }
        }
        Ok(())
    })
}

fn read_lines(
    mut stream: Stream,
    out: &Output,
    config: &LogServeConfig,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(config.poll_interval))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut truncating = false;
    let mut taken = 0u64;
    let mut acked = 0u64;
    while !shutdown.load(Ordering::SeqCst) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let mut rest = chunk.get(..n).unwrap_or_default();
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            append_bounded(&mut line, head, config.max_line_len, &mut truncating);
            emit(out, &line)?;
            line.clear();
            truncating = false;
            taken += 1;
            rest = tail.get(1..).unwrap_or_default();
        }
        append_bounded(&mut line, rest, config.max_line_len, &mut truncating);
        if taken != acked {
            stream.write_all(format!("{taken}\n").as_bytes())?;
            acked = taken;
        }
    }
    Ok(())
}

fn append_bounded(line: &mut Vec<u8>, bytes: &[u8], max: usize, truncating: &mut bool) {
    if *truncating {
        return;
    }
    let room = max.saturating_sub(line.len());
    line.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
    *truncating = bytes.len() > room;
}

/// Control characters (terminal escapes) from the enclave are replaced before display.
fn sanitize(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn emit(out: &Output, line: &[u8]) -> io::Result<()> {
    let text = sanitize(line);
    match out {
        Output::Writer(w) => {
            let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        }
        Output::Tracing => {
            match level_of(&text) {
                Some(tracing::Level::ERROR) => tracing::error!(target: "enclave", "{text}"),
                Some(tracing::Level::WARN) => tracing::warn!(target: "enclave", "{text}"),
                Some(tracing::Level::DEBUG) => tracing::debug!(target: "enclave", "{text}"),
                Some(tracing::Level::TRACE) => tracing::trace!(target: "enclave", "{text}"),
                _ => tracing::info!(target: "enclave", "{text}"),
            }
            Ok(())
        }
    }
}

/// The level word of a `tracing_subscriber::fmt` line (`<timestamp> LEVEL target: message`),
/// looked for among the first three words only.
fn level_of(line: &str) -> Option<tracing::Level> {
    line.split_whitespace().take(3).find_map(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<u8>>>);

    impl Write for Collected {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Collected {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    struct Host {
        stop: Arc<AtomicBool>,
        handle: thread::JoinHandle<io::Result<()>>,
        out: Collected,
    }

    fn start_host(ep: &Endpoint) -> Host {
        let listener = ep.bind().unwrap();
        let out = Collected::default();
        let writer: Arc<Mutex<dyn Write + Send>> = Arc::new(Mutex::new(out.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let config = LogServeConfig {
            poll_interval: Duration::from_millis(50),
            ..LogServeConfig::default()
        };
        let handle = thread::spawn(move || serve_logs_to(&listener, writer, &config, &flag));
        Host { stop, handle, out }
    }

    impl Host {
        fn stop(self) -> Collected {
            self.stop.store(true, Ordering::SeqCst);
            self.handle.join().unwrap().unwrap();
            self.out
        }
    }

    fn quick() -> LogSinkConfig {
        LogSinkConfig {
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..LogSinkConfig::default()
        }
    }

    fn socket(dir: &tempfile::TempDir) -> Endpoint {
        Endpoint::Unix {
            path: dir.path().join("logs.sock"),
        }
    }

    /// Checks that every thread's numbered lines are all present, in order, once.
    fn assert_per_thread_order(lines: &[String], threads: usize, per_thread: usize) {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for l in lines {
            let Some(pos) = l.find("msg t=") else {
                continue;
            };
            let mut it = l[pos + 6..].split(" n=");
            let t: usize = it.next().unwrap().parse().unwrap();
            let n: usize = it.next().unwrap().trim().parse().unwrap();
            let want = next.entry(t).or_default();
            assert_eq!(n, *want, "thread {t}: got line {n}, expected {want}");
            *want += 1;
        }
        assert_eq!(next.len(), threads);
        assert!(next.values().all(|&n| n == per_thread), "{next:?}");
    }

    #[test]
    fn ten_thousand_tracing_lines_from_four_threads_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ep = socket(&dir);
        let host = start_host(&ep);
        let sink = LogSink::connect(ep, quick()).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let dispatch = tracing::Dispatch::new(subscriber);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dispatch = dispatch.clone();
                thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for n in 0..2500 {
                            tracing::info!("msg t={t} n={n}");
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(sink.drain(Duration::from_secs(20)), "{:?}", sink.stats());
        let stats = sink.stats();
        assert_eq!(
            (stats.delivered, stats.dropped, stats.buffered),
            (10_000, 0, 0)
        );
        let lines = host.stop().lines();
        assert_eq!(lines.len(), 10_000);
        assert!(lines.iter().all(|l| l.contains(" INFO ")), "{}", lines[0]);
        assert_per_thread_order(&lines, 4, 2500);
    }

    #[test]
    fn host_restart_lines_are_buffered_and_delivered_after_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let ep = socket(&dir);
        let first = start_host(&ep);
        let mut sink = LogSink::connect(ep.clone(), quick()).unwrap();
        for n in 0..100 {
            writeln!(sink, "msg t=0 n={n}").unwrap();
        }
        assert!(sink.drain(Duration::from_secs(10)));
        let before = first.stop().lines();
        for n in 100..300 {
            writeln!(sink, "msg t=0 n={n}").unwrap();
        }
        thread::sleep(Duration::from_millis(200));
        let stats = sink.stats();
        assert_eq!(stats.buffered, 200, "{stats:?}");
        assert!(!stats.connected);
        let second = start_host(&ep);
        assert!(sink.drain(Duration::from_secs(10)), "{:?}", sink.stats());
        let after = second.stop().lines();
        assert_eq!(before.len(), 100);
        assert_eq!(after.len(), 200);
        let all: Vec<String> = before.into_iter().chain(after).collect();
        assert_per_thread_order(&all, 1, 300);
        assert_eq!(sink.stats().delivered, 300);
    }

    #[test]
    fn lines_taken_but_not_acknowledged_are_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let ep = socket(&dir);
        // A host that reads the first lines and dies without acknowledging anything.
        let listener = ep.bind().unwrap();
        let mut sink = LogSink::connect(ep.clone(), quick()).unwrap();
        for n in 0..50 {
            writeln!(sink, "msg t=0 n={n}").unwrap();
        }
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        while got.iter().filter(|&&b| b == b'\n').count() < 50 {
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
        }
        drop(s);
        drop(listener);
        let host = start_host(&ep);
        assert!(sink.drain(Duration::from_secs(10)));
        let lines = host.stop().lines();
        assert_per_thread_order(&lines, 1, 50);
    }

    #[test]
    fn full_buffer_drops_new_lines_and_reports_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let ep = socket(&dir);
        let config = LogSinkConfig {
            max_buffered_lines: 50,
            ..quick()
        };
        let mut sink = LogSink::connect(ep.clone(), config).unwrap();
        for n in 0..80 {
            writeln!(sink, "line {n}").unwrap();
        }
        assert_eq!(sink.stats().dropped, 30);
        assert_eq!(sink.stats().buffered, 50);
        let host = start_host(&ep);
        assert!(sink.drain(Duration::from_secs(10)), "{:?}", sink.stats());
        writeln!(sink, "line after").unwrap();
        assert!(sink.drain(Duration::from_secs(10)));
        let lines = host.stop().lines();
        assert_eq!(lines.len(), 52, "{lines:#?}");
        assert_eq!(lines[49], "line 49");
        assert!(
            lines[50].starts_with("[logstream] 30 log lines dropped here"),
            "{}",
            lines[50]
        );
        assert_eq!(lines[51], "line after");
    }

    #[test]
    fn partial_lines_long_lines_and_control_characters() {
        let dir = tempfile::tempdir().unwrap();
        let ep = socket(&dir);
        let host = start_host(&ep);
        let config = LogSinkConfig {
            max_line_len: 10,
            ..quick()
        };
        let sink = LogSink::connect(ep, config).unwrap();
        {
            let mut w = sink.clone();
            w.write_all(b"ab").unwrap();
            w.write_all(b"c\nde").unwrap();
            w.write_all(b"\x1b[31mred\n0123456789ABCDEF\nlast").unwrap();
        } // drop sends "last"
        assert!(sink.drain(Duration::from_secs(10)));
        let lines = host.stop().lines();
        assert_eq!(
            lines,
            ["abc", "de\u{FFFD}[31mred", "0123456789", "last"],
            "{lines:?}"
        );
    }

    #[test]
    fn level_words_are_recognised() {
        assert_eq!(
            level_of("2026-01-01T00:00:00.000Z  WARN tmkms: x"),
            Some(tracing::Level::WARN)
        );
        assert_eq!(level_of("ERROR x"), Some(tracing::Level::ERROR));
        assert_eq!(level_of("a b c ERROR"), None);
    }
}
