//! A tiny in-test fake signer, shared by the integration tests.
//!
//! It is NOT a reference implementation: it exists only to exercise the
//! simulator's transport, codec, verification and scenario bookkeeping over
//! real sockets. It signs with `ed25519-consensus` over sign bytes it builds
//! from the raw `tendermint-proto` canonical messages (not the domain types
//! the simulator uses), keeps a minimal height/round/step memory, and can be
//! told to misbehave.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ed25519_consensus::SigningKey;
use prost::Message as _;
use tendermint_p2p::secret_connection::{SecretConnection, Version};
use tendermint_proto::google::protobuf::Timestamp;
use tendermint_proto::v0_38::privval as pv;
use tendermint_proto::v0_38::types as ty;
use tmkms_node_sim::proto_v1 as pv1;
use tmkms_node_sim::{codes, Dialect};

pub const CHAIN: &str = "loop-chain";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    None,
    /// Echo the request's extension back in the response.
    EchoExtension,
    /// Put an extension signature on every vote.
    ExtensionSignatureEverywhere,
}

// --- the fake signer -------------------------------------------------------

struct Last {
    hrs: (i64, i32, u8),
    sign_bytes: Vec<u8>,
    signature: Vec<u8>,
    timestamp: Option<Timestamp>,
}

struct Fake {
    key: SigningKey,
    dialect: Dialect,
    misbehave: Misbehaviour,
    last: Option<Last>,
}

/// A stored signature and timestamp to answer a replay with.
type Replay<'a> = (&'a Vec<u8>, &'a Option<Timestamp>);

/// A refusal: the `RemoteSignerError` code and description.
type Refusal = (i32, &'static str);

/// A canonical message whose timestamp can be set aside, to tell a
/// timestamp-only change from a conflict.
trait Timed: prost::Message + Default + PartialEq {
    fn untimed(self) -> Self;
}

impl Timed for ty::CanonicalVote {
    fn untimed(self) -> Self {
        ty::CanonicalVote {
            timestamp: None,
            ..self
        }
    }
}

impl Timed for ty::CanonicalProposal {
    fn untimed(self) -> Self {
        ty::CanonicalProposal {
            timestamp: None,
            ..self
        }
    }
}

enum Req {
    PubKey,
    Ping,
    Vote(Option<ty::Vote>, String, bool),
    Proposal(Option<ty::Proposal>, String),
    Bytes(Vec<u8>),
}

/// A vote, proposal or error read as its counterpart of the other version
/// (v0.38 and v1 share their field numbers).
fn retype<T: prost::Message + Default>(part: Option<impl prost::Message>) -> Option<T> {
    part.map(|p| pv1::transcode(&p).unwrap())
}

fn err(code: i32, d: &str) -> Option<pv::RemoteSignerError> {
    Some(pv::RemoteSignerError {
        code,
        description: d.into(),
    })
}

fn canonical_block_id(id: &Option<ty::BlockId>) -> Option<ty::CanonicalBlockId> {
    let id = id.as_ref()?;
    let psh = id.part_set_header.clone().unwrap_or_default();
    if id.hash.is_empty() && psh.total == 0 && psh.hash.is_empty() {
        return None;
    }
    Some(ty::CanonicalBlockId {
        hash: id.hash.clone(),
        part_set_header: Some(ty::CanonicalPartSetHeader {
            total: psh.total,
            hash: psh.hash,
        }),
    })
}

/// A signing request's result as its response's fields: the signed message,
/// or the refusal.
fn fields<T>(result: Result<T, Refusal>) -> (Option<T>, Option<pv::RemoteSignerError>) {
    match result {
        Ok(message) => (Some(message), None),
        Err((code, d)) => (None, err(code, d)),
    }
}

/// The message of a signing request for `chain`, if the fake serves that
/// chain and the request carries one (`missing` says what is absent).
fn admit<T>(chain: &str, message: Option<T>, missing: &'static str) -> Result<T, Refusal> {
    if chain != CHAIN {
        return Err((codes::WRONG_CHAIN_ID, "wrong chain id"));
    }
    message.ok_or((codes::MALFORMED, missing))
}

fn hash_ok(id: &Option<ty::BlockId>) -> bool {
    id.as_ref().is_none_or(|id| {
        let psh = id.part_set_header.clone().unwrap_or_default();
        [id.hash.len(), psh.hash.len()]
            .iter()
            .all(|l| *l == 0 || *l == 32)
    })
}

impl Fake {
    fn decode(&self, body: &[u8]) -> Option<Req> {
        if self.dialect == Dialect::V1 {
            let m = pv1::Message::decode(body).ok()?;
            return match m.sum? {
                pv1::Sum::PubKeyRequest(_) => Some(Req::PubKey),
                pv1::Sum::PingRequest(_) => Some(Req::Ping),
                pv1::Sum::SignVoteRequest(r) => Some(Req::Vote(
                    retype(r.vote),
                    r.chain_id,
                    r.skip_extension_signing,
                )),
                pv1::Sum::SignProposalRequest(r) => {
                    Some(Req::Proposal(retype(r.proposal), r.chain_id))
                }
                pv1::Sum::SignBytesRequest(r) => Some(Req::Bytes(r.value)),
                _ => None,
            };
        }
        let m = pv::Message::decode(body).ok()?;
        match m.sum? {
            pv::message::Sum::PubKeyRequest(_) => Some(Req::PubKey),
            pv::message::Sum::PingRequest(_) => Some(Req::Ping),
            pv::message::Sum::SignVoteRequest(r) => Some(Req::Vote(r.vote, r.chain_id, false)),
            pv::message::Sum::SignProposalRequest(r) => Some(Req::Proposal(r.proposal, r.chain_id)),
            _ => None,
        }
    }

    /// The guard: `Ok(None)` = sign fresh, `Ok(Some(..))` = replay.
    fn check(
        &self,
        hrs: (i64, i32, u8),
        sign_bytes: &[u8],
        same_but_time: bool,
    ) -> Result<Option<Replay<'_>>, Refusal> {
        let Some(last) = &self.last else {
            return Ok(None);
        };
        if hrs < last.hrs {
            return Err((codes::DOUBLE_SIGN, "regression"));
        }
        if hrs > last.hrs {
            return Ok(None);
        }
        if last.sign_bytes == sign_bytes || same_but_time {
            Ok(Some((&last.signature, &last.timestamp)))
        } else {
            Err((codes::DOUBLE_SIGN, "conflicting data"))
        }
    }

    /// Whether `sign_bytes`, a `C` at `hrs`, differ from the last signed
    /// ones only in their timestamp.
    fn same_but_time<C: Timed>(&self, hrs: (i64, i32, u8), sign_bytes: &[u8]) -> bool {
        let untimed = |bytes: &[u8]| C::decode_length_delimited(bytes).unwrap().untimed();
        self.last
            .as_ref()
            .is_some_and(|l| l.hrs == hrs && untimed(&l.sign_bytes) == untimed(sign_bytes))
    }

    fn sign_vote(
        &mut self,
        vote: Option<ty::Vote>,
        chain: String,
        skip: bool,
    ) -> Result<ty::Vote, Refusal> {
        let mut vote = admit(&chain, vote, "no vote")?;
        if vote.height < 0
            || vote.round < 0
            || !(1..=2).contains(&vote.r#type)
            || !hash_ok(&vote.block_id)
        {
            return Err((codes::MALFORMED, "invalid vote"));
        }
        let sign_bytes = ty::CanonicalVote {
            r#type: vote.r#type,
            height: vote.height,
            round: i64::from(vote.round),
            block_id: canonical_block_id(&vote.block_id),
            timestamp: vote.timestamp,
            chain_id: chain.clone(),
        }
        .encode_length_delimited_to_vec();
        let hrs = (vote.height, vote.round, vote.r#type as u8);
        let same_but_time = self.same_but_time::<ty::CanonicalVote>(hrs, &sign_bytes);
        let (signature, timestamp) = match self.check(hrs, &sign_bytes, same_but_time)? {
            Some((sig, ts)) => (sig.clone(), *ts),
            None => (self.fresh(hrs, sign_bytes, vote.timestamp), vote.timestamp),
        };
        let non_nil_precommit = vote.r#type == 2 && canonical_block_id(&vote.block_id).is_some();
        let wants_ext = self.dialect.has_extensions() && non_nil_precommit && !skip;
        let ext_sig = if wants_ext || self.misbehave == Misbehaviour::ExtensionSignatureEverywhere {
            let ext = ty::CanonicalVoteExtension {
                extension: vote.extension.clone(),
                height: vote.height,
                round: i64::from(vote.round),
                chain_id: chain.clone(),
            };
            self.key
                .sign(&ext.encode_length_delimited_to_vec())
                .to_bytes()
                .to_vec()
        } else {
            Vec::new()
        };
        vote.signature = signature;
        vote.timestamp = timestamp;
        vote.extension_signature = ext_sig;
        if self.misbehave != Misbehaviour::EchoExtension {
            vote.extension.clear();
        }
        Ok(vote)
    }

    fn sign_proposal(
        &mut self,
        p: Option<ty::Proposal>,
        chain: String,
    ) -> Result<ty::Proposal, Refusal> {
        let mut p = admit(&chain, p, "no proposal")?;
        if p.height < 0
            || p.round < 0
            || p.pol_round < -1
            || (p.pol_round >= 0 && p.pol_round >= p.round)
            || !hash_ok(&p.block_id)
        {
            return Err((codes::MALFORMED, "invalid proposal"));
        }
        let sign_bytes = ty::CanonicalProposal {
            r#type: 32,
            height: p.height,
            round: i64::from(p.round),
            pol_round: i64::from(p.pol_round),
            block_id: canonical_block_id(&p.block_id),
            timestamp: p.timestamp,
            chain_id: chain.clone(),
        }
        .encode_length_delimited_to_vec();
        let hrs = (p.height, p.round, 0);
        // A proposal differing only in its timestamp is signed afresh.
        let same_but_time = self.same_but_time::<ty::CanonicalProposal>(hrs, &sign_bytes);
        p.signature = match self.check(hrs, &sign_bytes, false) {
            Ok(Some((sig, _))) => sig.clone(),
            Err(_) if same_but_time => self.fresh(hrs, sign_bytes, p.timestamp),
            Err(refusal) => return Err(refusal),
            Ok(None) => self.fresh(hrs, sign_bytes, p.timestamp),
        };
        Ok(p)
    }

    fn fresh(
        &mut self,
        hrs: (i64, i32, u8),
        sign_bytes: Vec<u8>,
        ts: Option<Timestamp>,
    ) -> Vec<u8> {
        let sig = self.key.sign(&sign_bytes).to_bytes().to_vec();
        self.last = Some(Last {
            hrs,
            sign_bytes,
            signature: sig.clone(),
            timestamp: ts,
        });
        sig
    }

    /// Answers one request body; `None` = drop the connection.
    fn answer(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let req = self.decode(body)?;
        let pubkey = self.key.verification_key().to_bytes().to_vec();
        if self.dialect == Dialect::V1 {
            let sum = match req {
                Req::PubKey => pv1::Sum::PubKeyResponse(pv1::PubKeyResponse {
                    error: None,
                    pub_key_bytes: pubkey,
                    pub_key_type: "ed25519".into(),
                }),
                Req::Ping => pv1::Sum::PingResponse(pv1::PingResponse {}),
                Req::Vote(v, c, skip) => {
                    let (vote, error) = fields(self.sign_vote(v, c, skip));
                    pv1::Sum::SignedVoteResponse(pv1::SignedVoteResponse {
                        vote: retype(vote),
                        error: retype(error),
                    })
                }
                Req::Proposal(p, c) => {
                    let (proposal, error) = fields(self.sign_proposal(p, c));
                    pv1::Sum::SignedProposalResponse(pv1::SignedProposalResponse {
                        proposal: retype(proposal),
                        error: retype(error),
                    })
                }
                Req::Bytes(value) => {
                    let looks_canonical =
                        ty::CanonicalVote::decode_length_delimited(value.as_slice())
                            .is_ok_and(|v| v.chain_id == CHAIN);
                    pv1::Sum::SignBytesResponse(if looks_canonical {
                        pv1::SignBytesResponse {
                            signature: Vec::new(),
                            error: retype(err(codes::MALFORMED, "refusing consensus bytes")),
                        }
                    } else {
                        pv1::SignBytesResponse {
                            signature: self.key.sign(&value).to_bytes().to_vec(),
                            error: None,
                        }
                    })
                }
            };
            return Some(pv1::Message { sum: Some(sum) }.encode_to_vec());
        }
        use pv::message::Sum;
        let sum = match req {
            Req::PubKey => Sum::PubKeyResponse(pv::PubKeyResponse {
                pub_key: Some(tendermint_proto::v0_38::crypto::PublicKey {
                    sum: Some(tendermint_proto::v0_38::crypto::public_key::Sum::Ed25519(
                        pubkey,
                    )),
                }),
                error: None,
            }),
            Req::Ping => Sum::PingResponse(pv::PingResponse {}),
            Req::Vote(v, c, skip) => {
                let (vote, error) = fields(self.sign_vote(v, c, skip));
                Sum::SignedVoteResponse(pv::SignedVoteResponse { vote, error })
            }
            Req::Proposal(p, c) => {
                let (proposal, error) = fields(self.sign_proposal(p, c));
                Sum::SignedProposalResponse(pv::SignedProposalResponse { proposal, error })
            }
            Req::Bytes(_) => return None,
        };
        Some(pv::Message { sum: Some(sum) }.encode_to_vec())
    }
}

/// Reads one length-delimited body through a 4 KiB buffer (SecretConnection
/// needs at least 1 KiB), keeping leftovers in `pending`.
pub fn read_frame(r: &mut impl Read, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        let mut len: u64 = 0;
        let mut complete = None;
        for (i, b) in pending.iter().enumerate().take(10) {
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                complete = Some(i + 1);
                break;
            }
        }
        if complete.is_none() && pending.len() >= 10 {
            return None;
        }
        if let Some(prefix) = complete {
            if len > 2 * 1024 * 1024 {
                return None;
            }
            let end = prefix + len as usize;
            if pending.len() >= end {
                let body = pending[prefix..end].to_vec();
                pending.drain(..end);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 4096];
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

fn serve(fake: &mut Fake, io: &mut (impl Read + Write)) {
    let mut pending = Vec::new();
    while let Some(body) = read_frame(io, &mut pending) {
        let Some(resp) = fake.answer(&body) else {
            return;
        };
        let mut out = Vec::new();
        prost::encoding::encode_varint(resp.len() as u64, &mut out);
        out.extend_from_slice(&resp);
        if io.write_all(&out).and_then(|()| io.flush()).is_err() {
            return;
        }
    }
}

pub struct FakeSigner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub pubkey: [u8; 32],
}

impl FakeSigner {
    /// Dials `addr` (as printed by the listener) and keeps redialing after
    /// every dropped connection until stopped.
    pub fn start(addr: String, dialect: Dialect, misbehave: Misbehaviour) -> Self {
        let key = SigningKey::from([42u8; 32]);
        let pubkey = key.verification_key().to_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut fake = Fake {
                key,
                dialect,
                misbehave,
                last: None,
            };
            let identity = SigningKey::from([43u8; 32]);
            while !stopping.load(Ordering::SeqCst) {
                if let Some(path) = addr.strip_prefix("unix://") {
                    if let Ok(mut s) = UnixStream::connect(path) {
                        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        serve(&mut fake, &mut s);
                        continue;
                    }
                } else {
                    let hostport = addr.rsplit_once('@').unwrap().1;
                    if let Ok(s) = TcpStream::connect(hostport) {
                        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        s.set_nodelay(true).unwrap();
                        if let Ok(mut sc) =
                            SecretConnection::new(s, identity.clone(), Version::V0_34)
                        {
                            serve(&mut fake, &mut sc);
                        }
                        continue;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FakeSigner {
            stop,
            thread: Some(thread),
            pubkey,
        }
    }
}

impl Drop for FakeSigner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The thread ends once its connection closes and a redial fails.
        // Not joined: a failing test may still hold the listener, and the
        // thread would then wait out its read timeout.
        drop(self.thread.take());
    }
}
