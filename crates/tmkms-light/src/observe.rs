//! What a signer reports about its work, for metrics and health checks.
//!
//! The core knows nothing about Prometheus or HTTP: sessions and the chain
//! signer hand [`Event`]s to an [`Observer`], after the fact, and the host
//! decides what to do with them (count them, serve them, or — inside an
//! enclave — forward them over the log stream). Events carry positions,
//! codes and durations only: nothing secret, nothing a peer could use to
//! grow memory.

use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

/// The name of an enclave's stream of events to its host (both TEE
/// providers), served by the host's stream router.
pub const EVENTS_STREAM: &str = "events";

/// Longest JSON line of one event (the longest is a `Connected` with a
/// long socket path); a reader may drop longer lines.
pub const MAX_EVENT_LINE: usize = 4096;

/// What kind of message a signature was released for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedKind {
    Proposal,
    Prevote,
    Precommit,
    /// Raw bytes (`SignBytes` / raw-bytes dialects).
    Bytes,
}

impl SignedKind {
    /// The label value used in metrics and JSON logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposal => "proposal",
            Self::Prevote => "prevote",
            Self::Precommit => "precommit",
            Self::Bytes => "bytes",
        }
    }

    /// CometBFT's step number for a consensus message (1 propose, 2
    /// prevote, 3 precommit); raw bytes have none.
    pub fn step(self) -> Option<u8> {
        match self {
            Self::Proposal => Some(1),
            Self::Prevote => Some(2),
            Self::Precommit => Some(3),
            Self::Bytes => None,
        }
    }
}

/// Why a node connection ended, as a bounded set of label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// The node closed the connection.
    Closed,
    /// Reading failed (timeout, reset, a broken frame).
    Read,
    /// The node sent bytes that are not a request.
    Protocol,
    /// Writing the response failed.
    Write,
    /// The handshake with the node did not complete (the connection never
    /// reported [`Event::Connected`]).
    Handshake,
    /// The signer stopped (its state store is gone).
    Stopped,
}

impl DisconnectReason {
    /// The label value used in metrics and JSON logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Read => "read",
            Self::Protocol => "protocol",
            Self::Write => "write",
            Self::Handshake => "handshake",
            Self::Stopped => "stopped",
        }
    }
}

/// One thing that happened, reported after it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A signature was released (reported by the chain signer).
    Signed {
        kind: SignedKind,
        height: u64,
        round: u32,
        /// The precommit also carried a vote-extension signature.
        extension: bool,
        /// The stored signature was sent again (same message re-requested).
        replayed: bool,
    },
    /// A response carrying a signature was written (reported by the
    /// session, which has the clock): request read → response written.
    Answered { latency: Duration },
    /// A request was answered with a `RemoteSignerError` of this code.
    Refused { code: i32 },
    /// A node connection is up (after its handshake).
    Connected { address: String },
    /// A node connection ended.
    Disconnected {
        address: String,
        reason: DisconnectReason,
    },
    /// A state record reached durable storage.
    StateWritten { duration: Duration },
    /// Writing a state record failed.
    StateWriteFailed,
}

/// Receives events. Called on the signing path after the response is
/// written, so an implementation must be quick and must never block.
pub trait Observer: Send + Sync {
    fn observe(&self, event: &Event);

    /// A response was just written: a good moment to pass on what was
    /// observed while the request was being answered (see [`EventWriter`]).
    fn response_written(&self) {}
}

/// The observer of a signer nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn observe(&self, _event: &Event) {}
}

/// Writes events as JSON lines to a stream (an enclave's `events` stream to
/// its host, which serves the metrics). The events of a request being
/// answered are held until its response is written and then go out in one
/// write, so the signing path makes no write of its own before the response
/// (connection events go out at once). A failed write stops the forwarding
/// for the rest of the run: metrics are not worth a retry on the signing
/// path.
pub struct EventWriter {
    out: Mutex<EventLines>,
}

struct EventLines {
    stream: Option<Box<dyn Write + Send>>,
    pending: Vec<u8>,
}

/// Held event lines beyond which they are written without waiting for the
/// response (a request yields three or four short lines).
const MAX_PENDING_EVENT_BYTES: usize = 4096;

impl EventLines {
    fn write_pending(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            self.pending.clear();
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        if let Err(error) = stream.write_all(&self.pending) {
            warn!(%error, "the host's events stream failed; metrics stop until restart");
            self.stream = None;
        }
        self.pending.clear();
    }
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventWriter")
    }
}

impl EventWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(EventLines {
                stream: Some(out),
                pending: Vec::with_capacity(MAX_PENDING_EVENT_BYTES),
            }),
        }
    }
}

impl Observer for EventWriter {
    fn observe(&self, event: &Event) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if out.stream.is_none() {
            return;
        }
        let mut lines = std::mem::take(&mut out.pending);
        if serde_json::to_writer(&mut lines, event).is_ok() {
            lines.push(b'\n');
        }
        out.pending = lines;
        let between_requests =
            matches!(event, Event::Connected { .. } | Event::Disconnected { .. });
        if between_requests || out.pending.len() >= MAX_PENDING_EVENT_BYTES {
            out.write_pending();
        }
    }

    fn response_written(&self) {
        self.out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_pending();
    }
}

/// What an enclave reports to: the events stream its host opened for it,
/// or nobody when opening it failed — metrics are the host's business, the
/// enclave signs all the same.
pub fn to_host_events<W: Write + Send + 'static>(
    opened: std::io::Result<W>,
) -> std::sync::Arc<dyn Observer> {
    match opened {
        Ok(stream) => std::sync::Arc::new(EventWriter::new(Box::new(stream))),
        Err(error) => {
            warn!(%error, "cannot open the events stream; the host gets no metrics");
            std::sync::Arc::new(Unobserved)
        }
    }
}

/// The host's end of an [`EventWriter`]: feeds the JSON event lines read
/// from `stream` to `observer` until the stream ends. A line that is too
/// long or does not parse is skipped (one warning per run of bad lines),
/// so a confused stream costs nothing but its own metrics.
pub fn relay_events(stream: impl std::io::Read, observer: &dyn Observer) {
    use std::io::{BufRead, Read};

    let mut reader = std::io::BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    let limit = u64::try_from(MAX_EVENT_LINE).unwrap_or(u64::MAX) + 1;
    let mut reported = false;
    loop {
        line.clear();
        match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            // Too long (or cut off at the end): skip to the end of the line.
            let mut rest = Vec::new();
            let _ = reader.by_ref().take(1 << 20).read_until(b'\n', &mut rest);
            continue;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => {
                observer.observe(&event);
                reported = false;
            }
            Err(error) if !reported => {
                warn!(%error, "an event line from the enclave did not parse; skipping");
                reported = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cross_a_stream_as_json_and_come_back_equal() {
        let events = [
            Event::Signed {
                kind: SignedKind::Precommit,
                height: 7,
                round: 1,
                extension: true,
                replayed: false,
            },
            Event::Answered {
                latency: Duration::from_micros(250),
            },
            Event::Refused { code: 2 },
            Event::Connected {
                address: "tcp://127.0.0.1:26659".into(),
            },
            Event::Disconnected {
                address: "unix:///run/v.sock".into(),
                reason: DisconnectReason::Read,
            },
            Event::StateWritten {
                duration: Duration::from_micros(90),
            },
            Event::StateWriteFailed,
        ];
        for event in events {
            let line = serde_json::to_string(&event).unwrap();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);

    impl Observer for Recorder {
        fn observe(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    /// A stream that records what was written to it, and in how many writes.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut inner = self.0.lock().unwrap();
            inner.0.extend_from_slice(bytes);
            inner.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_host_relays_what_the_enclave_wrote_and_skips_bad_lines() {
        let events = [
            Event::Refused { code: 2 },
            Event::StateWriteFailed,
            Event::Connected {
                address: "unix:///n.sock".into(),
            },
        ];
        let shared = Shared::default();
        let writer = EventWriter::new(Box::new(shared.clone()));
        writer.observe(&events[0]);
        writer.response_written();
        let mut wire = shared.0.lock().unwrap().0.clone();
        wire.extend_from_slice(b"not json\n");
        wire.extend(std::iter::repeat_n(b'x', MAX_EVENT_LINE * 3));
        wire.push(b'\n');
        wire.extend_from_slice(b"{\"event\":\"state_write_failed\"}\n");
        wire.extend_from_slice(serde_json::to_string(&events[2]).unwrap().as_bytes());
        wire.push(b'\n');
        // A last line without its newline (the enclave died mid-write).
        wire.extend_from_slice(b"{\"event\":\"refused\",");
        let recorder = Recorder::default();
        relay_events(wire.as_slice(), &recorder);
        assert_eq!(*recorder.0.lock().unwrap(), events);
    }

    #[test]
    fn a_failed_write_stops_the_forwarding() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writer = EventWriter::new(Box::new(Broken));
        writer.observe(&Event::StateWriteFailed);
        writer.response_written();
        assert!(writer.out.lock().unwrap().stream.is_none());
        writer.observe(&Event::StateWriteFailed);
        writer.response_written();
    }

    /// The events of a signature (its state write, its release) wait for
    /// the response and then leave in one write; a connection event leaves
    /// at once.
    #[test]
    fn a_requests_events_leave_in_one_write_after_its_response() {
        let shared = Shared::default();
        let writer = EventWriter::new(Box::new(shared.clone()));
        writer.observe(&Event::StateWritten {
            duration: Duration::from_micros(90),
        });
        writer.observe(&Event::Signed {
            kind: SignedKind::Prevote,
            height: 3,
            round: 0,
            extension: false,
            replayed: false,
        });
        assert_eq!(shared.0.lock().unwrap().1, 0, "written before the response");
        writer.response_written();
        let (bytes, writes) = shared.0.lock().unwrap().clone();
        assert_eq!(writes, 1);
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 2);
        writer.observe(&Event::Connected {
            address: "unix:///n.sock".into(),
        });
        assert_eq!(shared.0.lock().unwrap().1, 2);
    }

    #[test]
    fn steps_follow_cometbft_numbering() {
        assert_eq!(SignedKind::Proposal.step(), Some(1));
        assert_eq!(SignedKind::Prevote.step(), Some(2));
        assert_eq!(SignedKind::Precommit.step(), Some(3));
        assert_eq!(SignedKind::Bytes.step(), None);
    }
}
