//! One node connection's request loop, generic over any byte stream.
//!
//! Knows nothing about TCP, Unix sockets, vsock or enclaves: it reads
//! framed requests, lets the [`ChainSigner`] answer them and writes the
//! responses. A request that is invalid but identifiable gets an error
//! response and the connection stays open; bytes that cannot be understood
//! end the connection (the caller reconnects).

use std::io::{Read, Write};

use thiserror::Error;
use tracing::{debug, info, warn};

use crate::chain::ChainSigner;
use crate::observe::{DisconnectReason, Event};
use crate::phases::{take_last_arrival, whole_micros, Laps, Phase, Phases};
use crate::privval::frame::{write_message, FrameError, FrameReader};
use crate::privval::{decode_request, encode_response, DecodeError, Dialect, Response};
use crate::refusal::{Answer, RequestError};
use crate::signer::ConsensusSigner;

/// Largest response a v0.34–v0.39 node reads (`maxRemoteSignerMsgSize`).
pub const NODE_RESPONSE_CAP: usize = 10 * 1024;

/// A monotonic clock, for latency figures in logs. Enclaves, which have no
/// trustworthy clock, pass `None`; nothing but logging depends on it.
pub type Clock = fn() -> std::time::Instant;

/// Per-connection protocol settings.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub dialect: Dialect,
    pub max_frame_bytes: usize,
    pub clock: Option<Clock>,
}

/// Why a session ended.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("node closed the connection")]
    Closed,
    #[error("reading from node: {0}")]
    Frame(#[from] FrameError),
    #[error("dropping connection: {0}")]
    Protocol(DecodeError),
    #[error("writing to node: {0}")]
    Write(std::io::Error),
    #[error("the signer stopped: its state store is gone")]
    Stopped,
}

impl SessionError {
    /// The bounded reason reported to the observer.
    pub fn reason(&self) -> DisconnectReason {
        match self {
            Self::Closed => DisconnectReason::Closed,
            Self::Frame(_) => DisconnectReason::Read,
            Self::Protocol(_) => DisconnectReason::Protocol,
            Self::Write(_) => DisconnectReason::Write,
            Self::Stopped => DisconnectReason::Stopped,
        }
    }
}

/// Serve requests on `io` until the peer closes it or it becomes unusable.
/// Returns the number of requests answered alongside the reason it ended.
pub fn serve<T, K>(io: &mut T, chain: &ChainSigner<K>, config: SessionConfig) -> (u64, SessionError)
where
    T: Read + Write,
    K: ConsensusSigner,
{
    let mut reader = FrameReader::new(config.max_frame_bytes);
    let mut answered = 0u64;
    loop {
        let body = reader.next_message(io);
        let mut laps = Laps::start_at(config.clock, take_last_arrival());
        laps.lap(Phase::Read);
        let started = config.clock.map(|now| now());
        let response = match body {
            Ok(body) => match decode_request(config.dialect, body) {
                Ok(request) => {
                    laps.lap(Phase::Decode);
                    debug!(kind = ?request.kind(), "request");
                    chain.handle_timed(config.dialect, request, &mut laps)
                }
                Err(error) => match answer_undecoded(error) {
                    Ok((response, code)) => {
                        chain.observe(&Event::Refused { code });
                        response
                    }
                    Err(reason) => return (answered, SessionError::Protocol(reason)),
                },
            },
            Err(FrameError::Closed) => return (answered, SessionError::Closed),
            Err(e) => return (answered, SessionError::Frame(e)),
        };
        let body = encode_response(config.dialect, &response);
        if config.dialect != Dialect::V1 && body.len() > NODE_RESPONSE_CAP {
            // Cannot happen with the encoder (extensions are never echoed);
            // kept as a tripwire because the node would drop us silently.
            warn!(
                len = body.len(),
                "response exceeds the node's 10 KiB read cap"
            );
        }
        if let Err(e) = write_message(io, &body) {
            return (answered, SessionError::Write(e));
        }
        laps.lap(Phase::Respond);
        answered += 1;
        if let Some(latency) = log_signed(&response, started, config.clock, laps.phases()) {
            chain.observe(&Event::Answered { latency });
        }
        chain.response_written();
        if chain.is_stopped() {
            return (answered, SessionError::Stopped);
        }
        reader.shrink();
    }
}

/// The answer to a message that did not decode into a request to sign: an
/// error response with its code, or why the connection is dropped.
fn answer_undecoded(error: DecodeError) -> Result<(Response, i32), DecodeError> {
    let kind = match &error {
        DecodeError::Invalid { kind, reason } => {
            warn!(?kind, %reason, "answering an invalid request with an error");
            Some(*kind)
        }
        _ => None,
    };
    match RequestError::from(error).answer() {
        // A ping has no error field to carry the refusal.
        Answer::Refuse(remote) => {
            let code = remote.code as i32;
            kind.and_then(|kind| Response::error_for(kind, remote))
                .map(|response| (response, code))
                .ok_or(DecodeError::UnknownMessage)
        }
        Answer::DropConnection(reason) => Err(reason),
    }
}

/// One info line per released signature, with the request's latency inside
/// the signer (decode, guard, durable write, signing, encode, write) and its
/// phases (the read phase is not part of the latency: it ends where the
/// latency starts); that latency, for a response that carried a signature
/// and where a clock exists.
fn log_signed(
    response: &Response,
    started: Option<std::time::Instant>,
    clock: Option<Clock>,
    phases: Phases,
) -> Option<std::time::Duration> {
    let latency = started
        .zip(clock)
        .map(|(started, now)| now().saturating_duration_since(started));
    let latency_us = latency.map_or(0, whole_micros);
    let (at, extension_signed) = match response {
        Response::SignedVote(Ok(signed)) => (
            signed.vote().position(),
            signed.extension_signature().is_some(),
        ),
        Response::SignedProposal(Ok(signed)) => (signed.proposal().position(), false),
        Response::SignedBytes(Ok(_)) => {
            debug!(latency_us, "signed raw bytes");
            return latency;
        }
        _ => return None,
    };
    info!(
        at = %at,
        height = at.height.value(),
        round = at.round.value(),
        step = at.step.name(),
        extension_signed,
        latency_us,
        read_us = phases.micros(Phase::Read),
        decode_us = phases.micros(Phase::Decode),
        guard_us = phases.micros(Phase::Guard),
        write_us = phases.micros(Phase::Write),
        sign_us = phases.micros(Phase::Sign),
        respond_us = phases.micros(Phase::Respond),
        "signed"
    );
    latency
}
