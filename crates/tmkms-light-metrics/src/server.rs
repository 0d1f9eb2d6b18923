//! A small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`, with
//! hard bounds on everything a client controls.
//!
//! Written by hand on purpose: it answers three GET paths and closes every
//! connection, and what matters is that no client can grow memory, hold a
//! thread past a deadline or slow signing. The sync HTTP crates spawn per
//! connection or buffer without a cap, and an async runtime would be a
//! large dependency for three paths. Bounds:
//! * a fixed pool of worker threads, separate from the signing threads;
//! * a fixed queue of accepted connections — when it is full, new ones are
//!   closed at once (a flood of idle connections costs nothing but those);
//! * a request head of at most [`Limits::request_bytes`], read within
//!   [`Limits::deadline`], and the response written within the same
//!   deadline; then the connection is closed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::registry::Metrics;

/// What one client may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub workers: usize,
    pub queue: usize,
    pub request_bytes: usize,
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            workers: 2,
            queue: 32,
            request_bytes: 4096,
            deadline: Duration::from_secs(2),
        }
    }
}

/// Serves `metrics` on `listener` from background threads, until the
/// process ends.
pub fn spawn(listener: TcpListener, metrics: Arc<Metrics>, limits: Limits) -> io::Result<()> {
    let (queue, accepted) = mpsc::sync_channel::<TcpStream>(limits.queue.max(1));
    let accepted = Arc::new(Mutex::new(accepted));
    for index in 0..limits.workers.max(1) {
        let accepted = Arc::clone(&accepted);
        let metrics = Arc::clone(&metrics);
        thread::Builder::new()
            .name(format!("metrics-http-{index}"))
            .spawn(move || work(&accepted, &metrics, limits))?;
    }
    thread::Builder::new()
        .name("metrics-accept".into())
        .spawn(move || accept(&listener, &queue))?;
    Ok(())
}

fn accept(listener: &TcpListener, queue: &SyncSender<TcpStream>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => match queue.try_send(stream) {
                Ok(()) => {}
                // Dropping the stream closes it: the client may retry.
                Err(TrySendError::Full(_)) => debug!("metrics: queue full, closed a connection"),
                Err(TrySendError::Disconnected(_)) => return,
            },
            Err(error) => {
                // Out of descriptors or a transient error: do not spin.
                warn!(%error, "metrics: accept failed");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn work(accepted: &Mutex<Receiver<TcpStream>>, metrics: &Metrics, limits: Limits) {
    loop {
        let next = accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(mut stream) = next else { return };
        if let Err(error) = answer(&mut stream, metrics, limits) {
            debug!(%error, "metrics: connection dropped");
        }
    }
}

/// An HTTP response: status line, content type and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn plain(status: u16, reason: &'static str, body: impl Into<String>) -> Reply {
    Reply {
        status,
        reason,
        content_type: TEXT,
        body: body.into(),
    }
}

/// What a request head (everything before the blank line) gets.
pub fn route(head: &[u8], metrics: &Metrics) -> Reply {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return plain(400, "Bad Request", "bad request\n");
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return plain(400, "Bad Request", "bad request\n");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return plain(400, "Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(400, "Bad Request", "bad request\n");
    }
    if method != "GET" && method != "HEAD" {
        return plain(405, "Method Not Allowed", "only GET\n");
    }
    let path = target.split('?').next().unwrap_or(target);
    let mut reply = match path {
        "/metrics" => Reply {
            status: 200,
            reason: "OK",
            content_type: OPENMETRICS,
            body: metrics.encode(),
        },
        "/healthz" => plain(200, "OK", "ok\n"),
        "/readyz" => match metrics.readiness() {
            Ok(()) => plain(200, "OK", "ready\n"),
            Err(why) => plain(503, "Service Unavailable", format!("not ready: {why}\n")),
        },
        _ => plain(404, "Not Found", "not found\n"),
    };
    if method == "HEAD" {
        reply.body.clear();
    }
    reply
}

fn answer(stream: &mut TcpStream, metrics: &Metrics, limits: Limits) -> io::Result<()> {
    let deadline = Instant::now() + limits.deadline;
    let reply = match read_head(stream, limits.request_bytes, deadline)? {
        Some(head) => route(&head, metrics),
        None => plain(
            431,
            "Request Header Fields Too Large",
            "request too large\n",
        ),
    };
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.reason,
        reply.content_type,
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(reply.body.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line that ends the head; `None` when the head is
/// larger than `cap`. Errors (including the deadline) drop the connection.
fn read_head(stream: &mut TcpStream, cap: usize, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > cap {
            return Ok(None);
        }
    }
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
}
