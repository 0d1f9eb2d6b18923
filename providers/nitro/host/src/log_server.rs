//! Host side of the log stream: reads the enclave's lines (see
//! [`tmkms_nitro_transport::log_sink`] for the wire protocol), acknowledges them and re-emits
//! them. The enclave is not trusted to bound or clean its lines: they are cut to a maximum
//! length and control characters are replaced.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tmkms_nitro_transport::{Listener, Stream};

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
    use tmkms_nitro_transport::log_sink::{LogSink, LogSinkConfig};
    use tmkms_nitro_transport::Endpoint;

    use crate::test_output::Captured;

    struct Host {
        stop: Arc<AtomicBool>,
        handle: thread::JoinHandle<io::Result<()>>,
        out: Captured,
    }

    fn start_host(ep: &Endpoint) -> Host {
        let listener = ep.bind().unwrap();
        let out = Captured::default();
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
        fn stop(self) -> Captured {
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
