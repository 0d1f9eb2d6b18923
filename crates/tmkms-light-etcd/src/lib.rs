//! The HA reservation kept in etcd.
//!
//! Every signer of a validator reserves each new height/round/step with one
//! etcd transaction that compares the key's `mod_revision` with the one it
//! last read ([`tmkms_light::ha::Watermark`]). etcd's transactions are
//! linearizable, so of two signers racing for one revision exactly one
//! commits; the other gets the winner's value back in the same answer.
//!
//! The client speaks etcd's v3 JSON gateway (`POST /v3/kv/range`,
//! `/v3/kv/txn`, served by every member on its client port) over HTTP/1.1
//! and rustls, on a byte stream a [`Dialer`] opens. Not the `etcd-client`
//! crate: it is tonic/tokio, and the SGX enclave (Fortanix EDP) has no
//! tokio; a plain `Read + Write` stream works in both enclaves, where TLS
//! ends inside the enclave and the host only relays bytes. The CA is
//! pinned: only the configured CA is trusted for the members' certificates.

// Public for the fuzz target of its answer parsers.
pub mod gateway;
mod tls;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmkms_light::config::{HaConfig, HaEndpoint};
use tmkms_light::ha::{encode_value, Outcome, Reservation, Watermark, WatermarkError};
use tmkms_light::types::SignState;
use tmkms_light_http::{self as http, Connection};

pub use tls::{client_config, TlsError, TlsFiles};

/// A bidirectional byte stream to one etcd member.
pub trait ReadWrite: io::Read + io::Write {}
impl<T: io::Read + io::Write + ?Sized> ReadWrite for T {}

/// A boxed stream as a [`Dialer`] returns it.
pub type Stream = Box<dyn ReadWrite + Send>;

/// Opens a byte stream to an etcd member whose reads and writes give up
/// after `timeout`. softsign dials TCP ([`TcpDialer`]); an enclave asks its
/// host for a relayed stream.
pub trait Dialer: Send {
    fn dial(&mut self, endpoint: &HaEndpoint, timeout: Duration) -> io::Result<Stream>;
}

/// TCP from this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial(&mut self, endpoint: &HaEndpoint, timeout: Duration) -> io::Result<Stream> {
        use std::net::ToSocketAddrs;
        let addrs = (endpoint.host.as_str(), endpoint.port).to_socket_addrs()?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(Box::new(stream));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The most bytes accepted in one gateway answer (a range of one key).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// First wait before trying the next member; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// One validator's reservation in an etcd cluster.
pub struct EtcdWatermark {
    endpoints: Vec<HaEndpoint>,
    tls: Option<Arc<rustls::ClientConfig>>,
    dialer: Box<dyn Dialer>,
    key: String,
    signer_id: String,
    /// Deadline of one read or reservation, across members and retries.
    timeout: Duration,
    /// The member tried next.
    next: usize,
    /// A kept-alive connection and the member it goes to.
    conn: Option<(usize, Stream)>,
}

impl std::fmt::Debug for EtcdWatermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdWatermark")
            .field("key", &self.key)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// What one attempt at one member failed with.
#[derive(Debug)]
enum AttemptError {
    /// The member may be fine later, or another one may answer.
    Retry(String),
    /// The answer arrived and is wrong in a way retrying cannot fix.
    Fatal(WatermarkError),
}

impl EtcdWatermark {
    /// A client for the reservation `key` (see
    /// [`tmkms_light::ha::reservation_key`]); `tls` is the client
    /// configuration for `https://` endpoints.
    pub fn new(
        config: &HaConfig,
        key: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        dialer: Box<dyn Dialer>,
    ) -> Self {
        Self {
            endpoints: config.endpoints.clone(),
            tls,
            dialer,
            key,
            signer_id: config.signer_id.clone(),
            timeout: config.timeout,
            next: 0,
            conn: None,
        }
    }

    fn endpoints_text(&self) -> String {
        self.endpoints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How long one member gets before the next is tried: a stopped or
    /// partitioned member must not use up the whole deadline.
    fn attempt_timeout(&self) -> Duration {
        let members = u32::try_from(self.endpoints.len().max(1)).unwrap_or(u32::MAX);
        (self.timeout / members.min(3)).max(Duration::from_millis(20))
    }

    /// POST `body` to `path` on some member, within the deadline.
    fn call(&mut self, path: &str, body: &[u8]) -> Result<serde_json::Value, WatermarkError> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let reason = match self.attempt(path, body) {
                Ok(answer) => return Ok(answer),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(reason)) => reason,
            };
            self.conn = None;
            self.next = (self.next + 1) % self.endpoints.len().max(1);
            if Instant::now() + backoff >= deadline {
                return Err(WatermarkError::Unreachable {
                    endpoints: self.endpoints_text(),
                    reason: format!(
                        "no answer within {} ms; last: {reason}",
                        self.timeout.as_millis()
                    ),
                });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn attempt(&mut self, path: &str, body: &[u8]) -> Result<serde_json::Value, AttemptError> {
        let index = self.next;
        let endpoint =
            self.endpoints.get(index).cloned().ok_or_else(|| {
                AttemptError::Fatal(WatermarkError::Invalid("no endpoints".into()))
            })?;
        let mut stream = match self.conn.take() {
            Some((i, stream)) if i == index => stream,
            _ => self.connect(&endpoint)?,
        };
        let authority = format!("{}:{}", endpoint.host, endpoint.port);
        http::write_request(
            &mut stream,
            "POST",
            path,
            &authority,
            &[("Content-Type", "application/json")],
            body,
            Connection::KeepAlive,
        )
        .map_err(|e| AttemptError::Retry(format!("{endpoint}: {e}")))?;
        let response = http::read_response(&mut stream, MAX_RESPONSE_BYTES)
            .map_err(|e| AttemptError::Retry(format!("{endpoint}: {e}")))?;
        if response.reusable {
            self.conn = Some((index, stream));
        }
        if response.status != 200 {
            // The gateway reports etcd's gRPC errors (no leader, timeouts,
            // too many requests) as 4xx/5xx with a JSON message: another
            // member, or the same one later, may answer.
            return Err(AttemptError::Retry(format!(
                "{endpoint}: HTTP {}: {}",
                response.status,
                gateway::error_message(&response.body)
            )));
        }
        serde_json::from_slice(&response.body).map_err(|e| {
            AttemptError::Fatal(WatermarkError::Invalid(format!(
                "{endpoint}{path}: not JSON: {e}"
            )))
        })
    }

    fn connect(&mut self, endpoint: &HaEndpoint) -> Result<Stream, AttemptError> {
        let stream = self
            .dialer
            .dial(endpoint, self.attempt_timeout())
            .map_err(|e| AttemptError::Retry(format!("{endpoint}: connect: {e}")))?;
        match (&self.tls, endpoint.tls) {
            (Some(config), true) => {
                tls::wrap(config.clone(), &endpoint.host, stream).map_err(|e| {
                    AttemptError::Fatal(WatermarkError::Invalid(format!("{endpoint}: {e}")))
                })
            }
            (None, false) => Ok(stream),
            _ => Err(AttemptError::Fatal(WatermarkError::Invalid(format!(
                "{endpoint}: TLS settings do not match the endpoint's scheme"
            )))),
        }
    }
}

/// Why `[ha]` cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The reservation of the validator with `public_key` on `chain_id`, as
/// `[ha]` configures it: the TLS files read, TCP from this process.
pub fn open(
    config: &HaConfig,
    chain_id: &tmkms_light::types::ChainId,
    public_key: &[u8],
) -> Result<EtcdWatermark, SetupError> {
    let tls = match &config.tls {
        Some(files) => Some(client_config(&TlsFiles::read(
            &files.ca_file,
            &files.cert_file,
            &files.key_file,
        )?)?),
        None => None,
    };
    let key = tmkms_light::ha::reservation_key(&config.key_prefix, chain_id, public_key);
    Ok(EtcdWatermark::new(config, key, tls, Box::new(TcpDialer)))
}

impl Watermark for EtcdWatermark {
    fn describe(&self) -> String {
        format!("etcd [{}] key {}", self.endpoints_text(), self.key)
    }

    fn read(&mut self) -> Result<Reservation, WatermarkError> {
        let answer = self.call("/v3/kv/range", &gateway::range_request(&self.key))?;
        gateway::reservation_of_range(&answer, &self.key)
    }

    fn reserve(
        &mut self,
        expected_revision: i64,
        next: &SignState,
    ) -> Result<Outcome, WatermarkError> {
        let value = encode_value(next, &self.signer_id);
        let request = gateway::txn_request(&self.key, expected_revision, &value);
        let answer = self.call("/v3/kv/txn", &request)?;
        gateway::outcome_of_txn(&answer, &self.key, next)
    }
}
