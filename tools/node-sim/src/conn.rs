//! The node's transport: it listens, the signer dials in.
//!
//! `tcp://` connections run the SecretConnection handshake with an ephemeral
//! node identity (as stock CometBFT does per start); `unix://` is plaintext.
//! Every read and write has a deadline (5 s by default, like the node's
//! `defaultTimeoutReadWriteSeconds`).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_consensus::SigningKey;
use sha2::{Digest, Sha256};
use tendermint_p2p::secret_connection::{SecretConnection, Version};
use tendermint_proto::v0_38::types::{Proposal as RawProposal, Vote as RawVote};

use crate::codec::{decode_response, encode_frame, encode_request, FrameBuffer, Request, Response};
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{
    ProposalSpec, RemoteError, SignedProposal, SignedVote, VoteSpec, GO_ZERO_TIME_SECS,
};

/// The node's read/write deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Responses larger than this are not even buffered (the node's own cap is
/// 10 KiB; this only bounds the simulator's memory when a signer misbehaves).
pub const MAX_BUFFERED_RESPONSE: usize = 4 * 1024 * 1024;

/// Every transport read goes through a buffer of this size: tendermint-p2p's
/// `SecretConnection::read` panics when handed less than one decrypted frame
/// (1024 data bytes).
const READ_CHUNK: usize = 4096;

/// Largest CometBFT vote extension (`types.MaxVoteExtensionSize`, 1 MiB).
pub const MAX_VOTE_EXTENSION_SIZE: usize = 1024 * 1024;

enum Listening {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

/// A listening node. Keeps one identity for its lifetime, like a CometBFT
/// process keeps one for its privval listener.
pub struct NodeListener {
    listening: Listening,
    dialect: Dialect,
    identity: SigningKey,
    node_id: [u8; 20],
}

impl fmt::Debug for NodeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeListener")
            .field("addr", &self.local_addr())
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

fn peer_id_of(pubkey: &[u8; 32]) -> [u8; 20] {
    let digest = Sha256::digest(pubkey);
    let mut id = [0u8; 20];
    for (o, d) in id.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    id
}

impl NodeListener {
    /// Listens on `listen`: `tcp://host:port`, `host:port` or `unix:///path`.
    pub fn bind(listen: &str, dialect: Dialect) -> io::Result<Self> {
        if let Some(path) = listen.strip_prefix("unix://") {
            Self::bind_unix(path, dialect)
        } else {
            let addr = listen.strip_prefix("tcp://").unwrap_or(listen);
            // Tolerate a `<node-id>@` prefix copied from a signer's config.
            let addr = addr.rsplit_once('@').map_or(addr, |(_, a)| a);
            Self::bind_tcp(addr, dialect)
        }
    }

    /// Listens on a TCP address such as `127.0.0.1:0`.
    pub fn bind_tcp(addr: &str, dialect: Dialect) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Self::with_listening(Listening::Tcp(listener), dialect))
    }

    /// Listens on a Unix socket at `path` (a `unix://` prefix is accepted).
    /// A stale socket file at `path` is replaced; any other file is an error.
    pub fn bind_unix(path: impl AsRef<Path>, dialect: Dialect) -> io::Result<Self> {
        let raw = path.as_ref();
        let path = raw
            .to_str()
            .and_then(|s| s.strip_prefix("unix://"))
            .map_or_else(|| raw.to_path_buf(), PathBuf::from);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_socket() {
                std::fs::remove_file(&path)?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
        }
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(Self::with_listening(
            Listening::Unix { listener, path },
            dialect,
        ))
    }

    fn with_listening(listening: Listening, dialect: Dialect) -> Self {
        let identity = SigningKey::new(rand_core::OsRng);
        let node_id = peer_id_of(&identity.verification_key().to_bytes());
        NodeListener {
            listening,
            dialect,
            identity,
            node_id,
        }
    }

    /// The dialect every accepted connection speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The address a signer dials: `tcp://<node-id>@host:port` or `unix:///path`.
    pub fn local_addr(&self) -> String {
        match &self.listening {
            Listening::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp://{}@{}", self.node_id(), a),
                Err(_) => format!("tcp://{}@?", self.node_id()),
            },
            Listening::Unix { path, .. } => format!("unix://{}", path.display()),
        }
    }

    /// The node's ID: hex of the first 20 bytes of SHA-256 of its ephemeral
    /// Ed25519 identity key (as CometBFT derives node IDs).
    pub fn node_id(&self) -> String {
        hex::encode(self.node_id)
    }

    /// Waits up to `timeout` for a signer to dial in, then runs the
    /// SecretConnection handshake (tcp) under the connection's deadline.
    pub fn accept(&self, timeout: Duration) -> Result<SignerConn, SimError> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = match &self.listening {
                Listening::Tcp(l) => l.accept().map(|(s, _)| Accepted::Tcp(s)),
                Listening::Unix { listener, .. } => {
                    listener.accept().map(|(s, _)| Accepted::Unix(s))
                }
            };
            match accepted {
                Ok(Accepted::Tcp(stream)) => return self.finish_tcp(stream),
                Ok(Accepted::Unix(stream)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(|e| SimError::io("configuring the socket", e))?;
                    return SignerConn::from_unix_stream(stream, self.dialect);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(SimError::Timeout("waiting for the signer to connect"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SimError::io("accepting a connection", e)),
            }
        }
    }

    fn finish_tcp(&self, stream: TcpStream) -> Result<SignerConn, SimError> {
        let setup = |e| SimError::io("configuring the socket", e);
        stream.set_nonblocking(false).map_err(setup)?;
        // Go's net package sets TCP_NODELAY by default; so does the node.
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_timeouts(Some(DEFAULT_TIMEOUT)).map_err(setup)?;
        let ctl = stream.try_clone().map_err(setup)?;
        let sc = SecretConnection::new(stream, self.identity.clone(), Version::V0_34)
            .map_err(|e| SimError::Handshake(e.to_string()))?;
        let remote = sc.remote_pubkey().ed25519().map(|k| k.to_bytes());
        Ok(SignerConn::new(
            Transport::Secret(Box::new(sc)),
            Control::Tcp(ctl),
            self.dialect,
            remote,
        ))
    }
}

impl Drop for NodeListener {
    fn drop(&mut self) {
        if let Listening::Unix { path, .. } = &self.listening {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Read and write timeouts, set the same way on both transports.
trait SocketTimeouts {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl SocketTimeouts for TcpStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

impl SocketTimeouts for UnixStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The byte stream requests and responses travel on.
enum Transport {
    Secret(Box<SecretConnection<TcpStream>>),
    Plain(UnixStream),
}

impl Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Secret(sc) => sc.read(buf),
            Transport::Plain(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Secret(sc) => {
                sc.write_all(bytes)?;
                sc.flush()
            }
            Transport::Plain(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
        }
    }
}

/// A second handle on the socket, for deadlines, peeking and shutdown
/// without touching the SecretConnection's cipher state.
enum Control {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Control {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Control::Tcp(s) => s.set_read_timeout(t),
            Control::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Control::Tcp(s) => s.set_write_timeout(t),
            Control::Unix(s) => s.set_write_timeout(t),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Control::Tcp(s) => s.shutdown(how),
            Control::Unix(s) => s.shutdown(how),
        }
    }
}

/// What [`SignerConn::wait_readable`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Bytes from the signer are waiting to be read.
    Data,
    /// The signer closed (or reset) the connection.
    Closed,
    /// Nothing happened within the wait.
    Idle,
}

/// One accepted signer connection.
pub struct SignerConn {
    transport: Transport,
    control: Control,
    dialect: Dialect,
    rx: FrameBuffer,
    timeout: Duration,
    response_cap: Option<usize>,
    last_response_len: usize,
    last_round_trip: Duration,
    remote_pubkey: Option<[u8; 32]>,
}

impl fmt::Debug for SignerConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerConn")
            .field("dialect", &self.dialect)
            .field(
                "secret_connection",
                &matches!(self.transport, Transport::Secret(_)),
            )
            .field("remote_peer_id", &self.remote_peer_id().map(hex::encode))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn signature(bytes: &[u8], what: &'static str) -> Result<[u8; 64], SimError> {
    <[u8; 64]>::try_from(bytes).map_err(|_| SimError::InvalidResponse {
        what,
        reason: format!("{} bytes, expected 64", bytes.len()),
    })
}

fn timestamp_of(t: Option<&tendermint_proto::google::protobuf::Timestamp>) -> (i64, i32) {
    t.map_or((GO_ZERO_TIME_SECS, 0), |t| (t.seconds, t.nanos))
}

impl SignerConn {
    fn new(
        transport: Transport,
        control: Control,
        dialect: Dialect,
        remote_pubkey: Option<[u8; 32]>,
    ) -> Self {
        SignerConn {
            transport,
            control,
            dialect,
            rx: FrameBuffer::new(MAX_BUFFERED_RESPONSE),
            timeout: DEFAULT_TIMEOUT,
            response_cap: Some(dialect.response_cap()),
            last_response_len: 0,
            last_round_trip: Duration::ZERO,
            remote_pubkey,
        }
    }

    /// Wraps an already connected plaintext Unix stream (e.g. one end of
    /// `UnixStream::pair()` in a test).
    pub fn from_unix_stream(stream: UnixStream, dialect: Dialect) -> Result<Self, SimError> {
        let setup = |e| SimError::io("configuring the socket", e);
        stream.set_timeouts(Some(DEFAULT_TIMEOUT)).map_err(setup)?;
        let control = stream.try_clone().map_err(setup)?;
        Ok(Self::new(
            Transport::Plain(stream),
            Control::Unix(control),
            dialect,
            None,
        ))
    }

    /// The dialect of this connection.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The SecretConnection peer ID of the signer (tcp only): the first 20
    /// bytes of SHA-256 of its identity key.
    pub fn remote_peer_id(&self) -> Option<[u8; 20]> {
        self.remote_pubkey.as_ref().map(peer_id_of)
    }

    /// The signer's SecretConnection identity key (tcp only).
    pub fn remote_identity_key(&self) -> Option<[u8; 32]> {
        self.remote_pubkey
    }

    /// The per-read and per-write deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the per-read and per-write deadline.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), SimError> {
        self.timeout = timeout;
        self.control
            .set_read_timeout(timeout)
            .and_then(|()| self.control.set_write_timeout(timeout))
            .map_err(|e| SimError::io("setting the deadline", e))
    }

    /// The largest response body accepted by the typed requests (default: the
    /// node's 10 KiB); `None` disables the check.
    pub fn set_response_cap(&mut self, cap: Option<usize>) {
        self.response_cap = cap;
    }

    /// Body length of the last message read.
    pub fn last_response_len(&self) -> usize {
        self.last_response_len
    }

    /// Time from the start of the last request's write to the end of its
    /// response's read.
    pub fn last_round_trip(&self) -> Duration {
        self.last_round_trip
    }

    /// Writes `bytes` as they are (inside the SecretConnection for tcp).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.transport
            .write_all(bytes)
            .map_err(|e| SimError::io("writing to the signer", e))
    }

    /// Writes `bytes` straight onto the socket, bypassing the SecretConnection
    /// encryption (tcp only): the signer must see an authentication failure.
    pub fn send_unencrypted(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        match &mut self.control {
            Control::Tcp(s) => s
                .write_all(bytes)
                .map_err(|e| SimError::io("writing to the socket", e)),
            Control::Unix(_) => Err(SimError::Unsupported(
                "unix:// connections have no encryption to bypass".into(),
            )),
        }
    }

    /// Closes the node's sending half: the signer reads end-of-stream.
    pub fn shutdown_write(&mut self) -> Result<(), SimError> {
        self.control
            .shutdown(Shutdown::Write)
            .map_err(|e| SimError::io("shutting down the connection", e))
    }

    /// Closes the connection in both directions.
    pub fn close(self) {
        let _ = self.control.shutdown(Shutdown::Both);
    }

    fn fill(&mut self) -> Result<(), SimError> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self
            .transport
            .read(&mut chunk)
            .map_err(|e| SimError::io("reading from the signer", e))?;
        if n == 0 {
            return Err(SimError::Closed);
        }
        self.rx.push(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    /// Reads one length-delimited message body, waiting at most the deadline
    /// for all of it. Bytes after it stay buffered for the next read.
    pub fn read_message_raw(&mut self) -> Result<Vec<u8>, SimError> {
        let deadline = Instant::now() + self.timeout;
        // The socket's read timeout is the full deadline; only a message
        // that takes several reads needs it shortened (and restored after).
        let mut first_read = true;
        let mut shortened = false;
        let result = loop {
            match self.rx.next_frame() {
                Ok(Some(body)) => break Ok(body),
                Ok(None) => {}
                Err(e) => break Err(SimError::Frame(e)),
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break Err(SimError::Timeout("waiting for the signer's response"));
            }
            if !first_read {
                shortened = true;
                if let Err(e) = self.control.set_read_timeout(remaining) {
                    break Err(SimError::io("setting the deadline", e));
                }
            }
            first_read = false;
            if let Err(e) = self.fill() {
                break Err(e);
            }
        };
        if shortened {
            let _ = self.control.set_read_timeout(self.timeout);
        }
        let body = result?;
        self.last_response_len = body.len();
        Ok(body)
    }

    /// Waits up to `wait` for the signer to send something or go away,
    /// without consuming a message. Pending bytes count as data.
    pub fn wait_readable(&mut self, wait: Duration) -> Readiness {
        if self.rx.pending() > 0 {
            return Readiness::Data;
        }
        if self.control.set_read_timeout(wait).is_err() {
            return Readiness::Closed;
        }
        let seen = match &mut self.control {
            // Peek on the raw socket: a timed-out read inside the
            // SecretConnection would poison it.
            Control::Tcp(s) => match s.peek(&mut [0u8; 1]) {
                Ok(0) => Readiness::Closed,
                Ok(_) => Readiness::Data,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Readiness::Idle
                }
                Err(_) => Readiness::Closed,
            },
            // Plaintext: reading into the frame buffer loses nothing.
            Control::Unix(_) => match self.fill() {
                Ok(()) => Readiness::Data,
                Err(SimError::Timeout(_)) => Readiness::Idle,
                Err(_) => Readiness::Closed,
            },
        };
        let _ = self.control.set_read_timeout(self.timeout);
        seen
    }

    /// Whether the signer drops the connection within `wait`. Messages it
    /// sends meanwhile are read and discarded.
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            match self.wait_readable(remaining) {
                Readiness::Closed => return true,
                Readiness::Idle => return false,
                Readiness::Data => {
                    // Drain what arrived; a failing read means the peer is gone.
                    let drained = match self.rx.next_frame() {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => self.fill(),
                        Err(e) => Err(SimError::Frame(e)),
                    };
                    match drained {
                        Ok(()) => {}
                        Err(SimError::Timeout(_)) => return false,
                        Err(_) => return true,
                    }
                }
            }
        }
    }

    /// Sends `request` and reads one response, enforcing the response cap.
    pub fn request(&mut self, request: &Request) -> Result<Response, SimError> {
        let body = encode_request(self.dialect, request)?;
        let frame = encode_frame(&body);
        let started = Instant::now();
        self.send_raw(&frame)?;
        let response = self.read_message_raw()?;
        self.last_round_trip = started.elapsed();
        if let Some(cap) = self.response_cap {
            if response.len() > cap {
                return Err(SimError::ResponseTooLarge {
                    len: response.len(),
                    cap,
                });
            }
        }
        Ok(decode_response(self.dialect, &response)?)
    }

    /// `PingRequest` → `PingResponse`.
    pub fn ping(&mut self) -> Result<(), SimError> {
        match self.request(&Request::Ping)? {
            Response::Ping => Ok(()),
            other => Err(SimError::UnexpectedResponse {
                expected: "PingResponse",
                got: other.name(),
            }),
        }
    }

    /// `PubKeyRequest` → the signer's Ed25519 consensus key.
    pub fn pubkey(&mut self, chain_id: &str) -> Result<Result<[u8; 32], RemoteError>, SimError> {
        let response = self.request(&Request::PubKey {
            chain_id: chain_id.to_owned(),
        })?;
        let dialect = self.dialect;
        let take = |r| match r {
            Response::PubKey {
                key_type,
                key_bytes,
                error,
            } => Some(((key_type, key_bytes), error)),
            _ => None,
        };
        answer(response, "PubKeyResponse", take, |(key_type, key_bytes)| {
            if key_type != "ed25519" {
                return Err(SimError::InvalidResponse {
                    what: if dialect == Dialect::V1 {
                        "pub_key_type"
                    } else {
                        "pub_key"
                    },
                    reason: if key_type.is_empty() {
                        "no Ed25519 key in the response".to_owned()
                    } else {
                        format!("{key_type:?}, expected \"ed25519\"")
                    },
                });
            }
            <[u8; 32]>::try_from(key_bytes.as_slice()).map_err(|_| SimError::InvalidResponse {
                what: "public key",
                reason: format!("{} bytes, expected 32", key_bytes.len()),
            })
        })
    }

    /// Signs `vote`. `skip_extension_signing` exists only in v1.
    pub fn sign_vote(
        &mut self,
        chain_id: &str,
        vote: &VoteSpec,
        skip_extension_signing: bool,
    ) -> Result<Result<SignedVote, RemoteError>, SimError> {
        self.sign_vote_raw(chain_id, vote.to_raw(), skip_extension_signing)
    }

    /// Signs a raw vote as given (for requests no well-formed spec describes).
    pub fn sign_vote_raw(
        &mut self,
        chain_id: &str,
        vote: RawVote,
        skip_extension_signing: bool,
    ) -> Result<Result<SignedVote, RemoteError>, SimError> {
        self.sign_vote_message(chain_id, Some(vote), skip_extension_signing)
    }

    /// Sends a `SignVoteRequest` whose vote may be absent.
    pub fn sign_vote_message(
        &mut self,
        chain_id: &str,
        vote: Option<RawVote>,
        skip_extension_signing: bool,
    ) -> Result<Result<SignedVote, RemoteError>, SimError> {
        let request = match vote {
            Some(vote) => Request::SignVote {
                vote,
                chain_id: chain_id.to_owned(),
                skip_extension_signing,
            },
            None => {
                // A request without its vote: encode by hand, the codec
                // always sends one.
                return self
                    .send_and_parse_vote(&vote_request_without_vote(self.dialect, chain_id)?);
            }
        };
        let response = self.request(&request)?;
        self.parse_vote(response)
    }

    fn send_and_parse_vote(
        &mut self,
        body: &[u8],
    ) -> Result<Result<SignedVote, RemoteError>, SimError> {
        let started = Instant::now();
        self.send_raw(&encode_frame(body))?;
        let response = self.read_message_raw()?;
        self.last_round_trip = started.elapsed();
        let response = decode_response(self.dialect, &response)?;
        self.parse_vote(response)
    }

    fn parse_vote(&self, response: Response) -> Result<Result<SignedVote, RemoteError>, SimError> {
        let take = |r| match r {
            Response::SignedVote { vote, error } => Some((vote, error)),
            _ => None,
        };
        answer(response, "SignedVoteResponse", take, |vote| {
            let vote = required(vote, "vote")?;
            let extension_signature = if vote.extension_signature.is_empty() {
                None
            } else {
                Some(signature(&vote.extension_signature, "extension signature")?)
            };
            Ok(SignedVote {
                signature: signature(&vote.signature, "signature")?,
                extension_signature,
                timestamp: timestamp_of(vote.timestamp.as_ref()),
                raw_len: self.last_response_len,
                echoed_extension_len: vote.extension.len(),
            })
        })
    }

    /// Signs `proposal`.
    pub fn sign_proposal(
        &mut self,
        chain_id: &str,
        proposal: &ProposalSpec,
    ) -> Result<Result<SignedProposal, RemoteError>, SimError> {
        self.sign_proposal_raw(chain_id, proposal.to_raw())
    }

    /// Signs a raw proposal as given.
    pub fn sign_proposal_raw(
        &mut self,
        chain_id: &str,
        proposal: RawProposal,
    ) -> Result<Result<SignedProposal, RemoteError>, SimError> {
        let response = self.request(&Request::SignProposal {
            proposal,
            chain_id: chain_id.to_owned(),
        })?;
        let take = |r| match r {
            Response::SignedProposal { proposal, error } => Some((proposal, error)),
            _ => None,
        };
        answer(response, "SignedProposalResponse", take, |proposal| {
            let proposal = required(proposal, "proposal")?;
            Ok(SignedProposal {
                signature: signature(&proposal.signature, "signature")?,
                timestamp: timestamp_of(proposal.timestamp.as_ref()),
                raw_len: self.last_response_len,
            })
        })
    }

    /// `SignBytesRequest` (v1 only) → a signature over `value`.
    pub fn sign_bytes(&mut self, value: &[u8]) -> Result<Result<[u8; 64], RemoteError>, SimError> {
        let response = self.request(&Request::SignBytes {
            value: value.to_vec(),
        })?;
        let take = |r| match r {
            Response::SignBytes { signature, error } => Some((signature, error)),
            _ => None,
        };
        answer(response, "SignBytesResponse", take, |sig| {
            signature(&sig, "signature")
        })
    }
}

/// Splits the answer to a signing request: `take` picks the payload and
/// error out of the expected response type (any other is a protocol
/// error); a refusal is returned as is, a payload goes through `accept`.
fn answer<P, T>(
    response: Response,
    expected: &'static str,
    take: impl FnOnce(Response) -> Option<(P, Option<RemoteError>)>,
    accept: impl FnOnce(P) -> Result<T, SimError>,
) -> Result<Result<T, RemoteError>, SimError> {
    let got = response.name();
    let (payload, error) = take(response).ok_or(SimError::UnexpectedResponse { expected, got })?;
    match error {
        Some(refusal) => Ok(Err(refusal)),
        None => accept(payload).map(Ok),
    }
}

/// A message field the answer must carry.
fn required<T>(field: Option<T>, what: &'static str) -> Result<T, SimError> {
    field.ok_or(SimError::InvalidResponse {
        what,
        reason: "missing".into(),
    })
}

/// `Message { sign_vote_request { chain_id } }` with no vote field.
fn vote_request_without_vote(dialect: Dialect, chain_id: &str) -> Result<Vec<u8>, SimError> {
    use prost::Message as _;
    use tendermint_proto::v0_38::privval as pv;
    if dialect == Dialect::V1 {
        return Ok(crate::proto_v1::Message {
            sum: Some(crate::proto_v1::Sum::SignVoteRequest(
                crate::proto_v1::SignVoteRequest {
                    vote: None,
                    chain_id: chain_id.to_owned(),
                    skip_extension_signing: false,
                },
            )),
        }
        .encode_to_vec());
    }
    // Same bytes in every pre-v1 dialect: the vote field is what differs.
    Ok(pv::Message {
        sum: Some(pv::message::Sum::SignVoteRequest(pv::SignVoteRequest {
            vote: None,
            chain_id: chain_id.to_owned(),
        })),
    }
    .encode_to_vec())
}
