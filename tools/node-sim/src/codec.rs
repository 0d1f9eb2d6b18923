//! The node's side of the privval wire: uvarint-length-delimited
//! `privval.Message` frames, requests encoded per dialect, responses decoded
//! into one dialect-neutral [`Response`].
//!
//! No I/O here: [`FrameBuffer`] takes whatever bytes arrived, in whatever
//! pieces, and hands out complete message bodies.

use prost::Message as _;
use tendermint_proto::v0_38::privval as pv38;
use tendermint_proto::v0_38::types::{Proposal as RawProposal, Vote as RawVote};

use crate::dialect::Dialect;
use crate::proto_v1 as pv1;
use crate::spec::RemoteError;

/// A uvarint is at most 10 bytes long.
pub const MAX_VARINT_LEN: usize = 10;

/// A framing error: the byte stream cannot be split into messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix does not end within 10 bytes or overflows 64 bits.
    #[error("malformed uvarint length prefix")]
    BadLengthPrefix,
    /// The declared length is above the reader's limit.
    #[error("declared message length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
}

/// Decodes a uvarint from the front of `buf`. `Ok(None)` means more bytes are
/// needed; otherwise returns the value and the number of bytes it took.
pub fn decode_uvarint(buf: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut value: u64 = 0;
    for (i, byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        let low = u64::from(byte & 0x7f);
        // The tenth byte may only contribute the 64th bit.
        if i == MAX_VARINT_LEN - 1 && *byte > 1 {
            return Err(FrameError::BadLengthPrefix);
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        Err(FrameError::BadLengthPrefix)
    } else {
        Ok(None)
    }
}

/// Encodes `value` as a uvarint.
pub fn encode_uvarint(value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_VARINT_LEN);
    prost::encoding::encode_varint(value, &mut out);
    out
}

/// Prefixes `body` with its uvarint length.
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut out = encode_uvarint(body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// Bytes received so far, split into complete length-delimited bodies on
/// demand. Bytes after a complete message stay for the next one.
#[derive(Debug, Clone)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    max_len: usize,
}

impl FrameBuffer {
    /// A buffer that refuses messages declared longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        FrameBuffer {
            buf: Vec::new(),
            max_len,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Number of received bytes not yet returned as part of a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The declared length of the next message, once its prefix is complete.
    pub fn declared_len(&self) -> Result<Option<u64>, FrameError> {
        Ok(decode_uvarint(&self.buf)?.map(|(len, _)| len))
    }

    /// Takes the next complete message body, or `Ok(None)` if more bytes are
    /// needed. A length above the limit is an error before any body byte is
    /// awaited.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some((len, prefix)) = decode_uvarint(&self.buf)? else {
            return Ok(None);
        };
        let body_len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.max_len)
            .ok_or(FrameError::TooLarge {
                len,
                max: self.max_len,
            })?;
        let Some(end) = prefix.checked_add(body_len) else {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        };
        if self.buf.len() < end {
            return Ok(None);
        }
        let rest = self.buf.split_off(end);
        let mut frame = std::mem::replace(&mut self.buf, rest);
        frame.drain(..prefix);
        Ok(Some(frame))
    }
}

/// A request the node sends. Votes and proposals are given in the v0.38 field
/// set; older dialects drop what they do not have.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    PubKey {
        chain_id: String,
    },
    SignVote {
        vote: RawVote,
        chain_id: String,
        /// Exists only in v1; must be `false` for other dialects.
        skip_extension_signing: bool,
    },
    SignProposal {
        proposal: RawProposal,
        chain_id: String,
    },
    Ping,
    /// Exists only in v1.
    SignBytes {
        value: Vec<u8>,
    },
}

impl Request {
    /// The message name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Request::PubKey { .. } => "PubKeyRequest",
            Request::SignVote { .. } => "SignVoteRequest",
            Request::SignProposal { .. } => "SignProposalRequest",
            Request::Ping => "PingRequest",
            Request::SignBytes { .. } => "SignBytesRequest",
        }
    }
}

/// A request or response the dialect cannot express, or bytes that do not
/// decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{what} does not exist in protocol {dialect}")]
    Unsupported {
        dialect: Dialect,
        what: &'static str,
    },
    #[error("response does not decode as a {dialect} privval.Message: {reason}")]
    Decode { dialect: Dialect, reason: String },
    #[error("the {what} does not re-read as its cometbft.types.v1 counterpart: {reason}")]
    Transcode { what: &'static str, reason: String },
}

/// Encodes `request` as a `privval.Message` body (no length prefix) of `dialect`.
pub fn encode_request(dialect: Dialect, request: &Request) -> Result<Vec<u8>, CodecError> {
    if let Request::SignVote {
        skip_extension_signing: true,
        ..
    } = request
    {
        if dialect != Dialect::V1 {
            return Err(CodecError::Unsupported {
                dialect,
                what: "skip_extension_signing",
            });
        }
    }
    match dialect {
        Dialect::V0_34 => legacy_v0_34::encode(request),
        Dialect::V0_37 => legacy_v0_37::encode(request),
        Dialect::V0_38 => encode_v0_38(request),
        Dialect::V1 => encode_v1(request),
    }
}

fn encode_v0_38(request: &Request) -> Result<Vec<u8>, CodecError> {
    use pv38::message::Sum;
    let sum = match request {
        Request::PubKey { chain_id } => Sum::PubKeyRequest(pv38::PubKeyRequest {
            chain_id: chain_id.clone(),
        }),
        Request::SignVote { vote, chain_id, .. } => Sum::SignVoteRequest(pv38::SignVoteRequest {
            vote: Some(vote.clone()),
            chain_id: chain_id.clone(),
        }),
        Request::SignProposal { proposal, chain_id } => {
            Sum::SignProposalRequest(pv38::SignProposalRequest {
                proposal: Some(proposal.clone()),
                chain_id: chain_id.clone(),
            })
        }
        Request::Ping => Sum::PingRequest(pv38::PingRequest {}),
        Request::SignBytes { .. } => {
            return Err(CodecError::Unsupported {
                dialect: Dialect::V0_38,
                what: "SignBytesRequest",
            })
        }
    };
    Ok(pv38::Message { sum: Some(sum) }.encode_to_vec())
}

fn encode_v1(request: &Request) -> Result<Vec<u8>, CodecError> {
    use pv1::Sum;
    let to_v1 = |what, e: prost::DecodeError| CodecError::Transcode {
        what,
        reason: e.to_string(),
    };
    let sum = match request {
        Request::PubKey { chain_id } => Sum::PubKeyRequest(pv1::PubKeyRequest {
            chain_id: chain_id.clone(),
        }),
        Request::SignVote {
            vote,
            chain_id,
            skip_extension_signing,
        } => Sum::SignVoteRequest(pv1::SignVoteRequest {
            vote: Some(pv1::transcode(vote).map_err(|e| to_v1("vote", e))?),
            chain_id: chain_id.clone(),
            skip_extension_signing: *skip_extension_signing,
        }),
        Request::SignProposal { proposal, chain_id } => {
            Sum::SignProposalRequest(pv1::SignProposalRequest {
                proposal: Some(pv1::transcode(proposal).map_err(|e| to_v1("proposal", e))?),
                chain_id: chain_id.clone(),
            })
        }
        Request::Ping => Sum::PingRequest(pv1::PingRequest {}),
        Request::SignBytes { value } => Sum::SignBytesRequest(pv1::SignBytesRequest {
            value: value.clone(),
        }),
    };
    Ok(pv1::Message { sum: Some(sum) }.encode_to_vec())
}

/// Encoders for the pre-extension dialects, through their own
/// tendermint-proto modules (their `Vote` has no fields 9 and 10).
macro_rules! legacy_encoder {
    ($module:ident, $dialect:expr) => {
        mod $module {
            use prost::Message as _;
            use tendermint_proto::v0_38::types as ty38;
            use tendermint_proto::$module::privval as pv;
            use tendermint_proto::$module::types as ty;

            use super::{CodecError, Request};

            fn block_id(id: &Option<ty38::BlockId>) -> Option<ty::BlockId> {
                id.as_ref().map(|id| ty::BlockId {
                    hash: id.hash.clone(),
                    part_set_header: id.part_set_header.as_ref().map(|p| ty::PartSetHeader {
                        total: p.total,
                        hash: p.hash.clone(),
                    }),
                })
            }

            pub(super) fn encode(request: &Request) -> Result<Vec<u8>, CodecError> {
                use pv::message::Sum;
                let sum = match request {
                    Request::PubKey { chain_id } => Sum::PubKeyRequest(pv::PubKeyRequest {
                        chain_id: chain_id.clone(),
                    }),
                    Request::SignVote { vote, chain_id, .. } => {
                        Sum::SignVoteRequest(pv::SignVoteRequest {
                            vote: Some(ty::Vote {
                                r#type: vote.r#type,
                                height: vote.height,
                                round: vote.round,
                                block_id: block_id(&vote.block_id),
                                timestamp: vote.timestamp.clone(),
                                validator_address: vote.validator_address.clone(),
                                validator_index: vote.validator_index,
                                signature: vote.signature.clone(),
                            }),
                            chain_id: chain_id.clone(),
                        })
                    }
                    Request::SignProposal { proposal, chain_id } => {
                        Sum::SignProposalRequest(pv::SignProposalRequest {
                            proposal: Some(ty::Proposal {
                                r#type: proposal.r#type,
                                height: proposal.height,
                                round: proposal.round,
                                pol_round: proposal.pol_round,
                                block_id: block_id(&proposal.block_id),
                                timestamp: proposal.timestamp.clone(),
                                signature: proposal.signature.clone(),
                            }),
                            chain_id: chain_id.clone(),
                        })
                    }
                    Request::Ping => Sum::PingRequest(pv::PingRequest {}),
                    Request::SignBytes { .. } => {
                        return Err(CodecError::Unsupported {
                            dialect: $dialect,
                            what: "SignBytesRequest",
                        })
                    }
                };
                Ok(pv::Message { sum: Some(sum) }.encode_to_vec())
            }
        }
    };
}

legacy_encoder!(v0_34, crate::dialect::Dialect::V0_34);
legacy_encoder!(v0_37, crate::dialect::Dialect::V0_37);
use self::v0_34 as legacy_v0_34;
use self::v0_37 as legacy_v0_37;

/// A response as the node sees it, whatever the dialect.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    PubKey {
        /// `"ed25519"`/`"secp256k1"` from the oneof of v0.34–v0.38, or
        /// `pub_key_type` of v1; empty when no key was sent.
        key_type: String,
        key_bytes: Vec<u8>,
        error: Option<RemoteError>,
    },
    SignedVote {
        vote: Option<RawVote>,
        error: Option<RemoteError>,
    },
    SignedProposal {
        proposal: Option<RawProposal>,
        error: Option<RemoteError>,
    },
    Ping,
    SignBytes {
        signature: Vec<u8>,
        error: Option<RemoteError>,
    },
    /// A message the signer has no business sending (a request type), by name.
    Unexpected(&'static str),
    /// A `Message` whose oneof is not set (or set to a tag this dialect does
    /// not know).
    Empty,
}

impl Response {
    /// The message name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Response::PubKey { .. } => "PubKeyResponse",
            Response::SignedVote { .. } => "SignedVoteResponse",
            Response::SignedProposal { .. } => "SignedProposalResponse",
            Response::Ping => "PingResponse",
            Response::SignBytes { .. } => "SignBytesResponse",
            Response::Unexpected(name) => name,
            Response::Empty => "empty Message",
        }
    }

    /// The `RemoteSignerError` this response carries, if any.
    pub fn error(&self) -> Option<&RemoteError> {
        match self {
            Response::PubKey { error, .. }
            | Response::SignedVote { error, .. }
            | Response::SignedProposal { error, .. }
            | Response::SignBytes { error, .. } => error.as_ref(),
            _ => None,
        }
    }
}

impl Response {
    /// A `SignedVoteResponse` of any dialect (they share field numbers).
    fn signed_vote(vote: Option<RawVote>, error: Option<pv38::RemoteSignerError>) -> Self {
        Response::SignedVote {
            vote,
            error: remote_error(error),
        }
    }

    /// A `SignedProposalResponse` of any dialect (they share field numbers).
    fn signed_proposal(
        proposal: Option<RawProposal>,
        error: Option<pv38::RemoteSignerError>,
    ) -> Self {
        Response::SignedProposal {
            proposal,
            error: remote_error(error),
        }
    }
}

fn remote_error(e: Option<pv38::RemoteSignerError>) -> Option<RemoteError> {
    e.map(|e| RemoteError {
        code: e.code,
        description: e.description,
    })
}

/// A part of a v1 response (vote, proposal, error) read as its v0.38
/// counterpart, which has the same field numbers.
fn as_v0_38<T: prost::Message + Default>(
    part: Option<impl prost::Message>,
) -> Result<Option<T>, CodecError> {
    part.map(|p| pv1::transcode(&p))
        .transpose()
        .map_err(|e| CodecError::Decode {
            dialect: Dialect::V1,
            reason: e.to_string(),
        })
}

/// Decodes a response body of `dialect`.
///
/// Votes of every dialect are decoded with the v0.38 `Vote` (a superset of
/// the older one), so an extension signature a v0.34/v0.37 signer should not
/// have sent is seen rather than silently skipped.
pub fn decode_response(dialect: Dialect, body: &[u8]) -> Result<Response, CodecError> {
    let decode_err = |e: prost::DecodeError| CodecError::Decode {
        dialect,
        reason: e.to_string(),
    };
    if dialect == Dialect::V1 {
        use pv1::Sum;
        let msg = pv1::Message::decode(body).map_err(decode_err)?;
        return Ok(match msg.sum {
            None => Response::Empty,
            Some(Sum::PubKeyResponse(r)) => Response::PubKey {
                key_type: r.pub_key_type,
                key_bytes: r.pub_key_bytes,
                error: remote_error(as_v0_38(r.error)?),
            },
            Some(Sum::SignedVoteResponse(r)) => {
                Response::signed_vote(as_v0_38(r.vote)?, as_v0_38(r.error)?)
            }
            Some(Sum::SignedProposalResponse(r)) => {
                Response::signed_proposal(as_v0_38(r.proposal)?, as_v0_38(r.error)?)
            }
            Some(Sum::PingResponse(_)) => Response::Ping,
            Some(Sum::SignBytesResponse(r)) => Response::SignBytes {
                signature: r.signature,
                error: remote_error(as_v0_38(r.error)?),
            },
            Some(Sum::PubKeyRequest(_)) => Response::Unexpected("PubKeyRequest"),
            Some(Sum::SignVoteRequest(_)) => Response::Unexpected("SignVoteRequest"),
            Some(Sum::SignProposalRequest(_)) => Response::Unexpected("SignProposalRequest"),
            Some(Sum::PingRequest(_)) => Response::Unexpected("PingRequest"),
            Some(Sum::SignBytesRequest(_)) => Response::Unexpected("SignBytesRequest"),
        });
    }
    use pv38::message::Sum;
    use tendermint_proto::v0_38::crypto::public_key::Sum as Key;
    let msg = pv38::Message::decode(body).map_err(decode_err)?;
    Ok(match msg.sum {
        None => Response::Empty,
        Some(Sum::PubKeyResponse(r)) => {
            let (key_type, key_bytes) = match r.pub_key.and_then(|k| k.sum) {
                Some(Key::Ed25519(b)) => ("ed25519".to_owned(), b),
                Some(Key::Secp256k1(b)) => ("secp256k1".to_owned(), b),
                None => (String::new(), Vec::new()),
            };
            Response::PubKey {
                key_type,
                key_bytes,
                error: remote_error(r.error),
            }
        }
        Some(Sum::SignedVoteResponse(r)) => Response::signed_vote(r.vote, r.error),
        Some(Sum::SignedProposalResponse(r)) => Response::signed_proposal(r.proposal, r.error),
        Some(Sum::PingResponse(_)) => Response::Ping,
        Some(Sum::PubKeyRequest(_)) => Response::Unexpected("PubKeyRequest"),
        Some(Sum::SignVoteRequest(_)) => Response::Unexpected("SignVoteRequest"),
        Some(Sum::SignProposalRequest(_)) => Response::Unexpected("SignProposalRequest"),
        Some(Sum::PingRequest(_)) => Response::Unexpected("PingRequest"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BlockIdSpec, VoteSpec};

    #[test]
    fn uvarint_round_trips() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            10_240,
            1 << 20,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let enc = encode_uvarint(v);
            assert_eq!(decode_uvarint(&enc).unwrap(), Some((v, enc.len())), "{v}");
            // Every strict prefix is incomplete, not an error.
            for cut in 0..enc.len() {
                assert_eq!(decode_uvarint(&enc[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn rejects_overlong_uvarints() {
        assert_eq!(
            decode_uvarint(&[0xff; 10]),
            Err(FrameError::BadLengthPrefix)
        );
        assert_eq!(
            decode_uvarint(&[0xff; 11]),
            Err(FrameError::BadLengthPrefix)
        );
        // Ten bytes whose last one carries more than the 64th bit.
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(decode_uvarint(&overflow), Err(FrameError::BadLengthPrefix));
    }

    #[test]
    fn reassembles_a_message_split_across_many_reads() {
        let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let wire = encode_frame(&body);
        let mut fb = FrameBuffer::new(1 << 20);
        for (i, byte) in wire.iter().enumerate() {
            assert_eq!(fb.next_frame().unwrap(), None, "complete too early at {i}");
            fb.push(std::slice::from_ref(byte));
        }
        assert_eq!(fb.next_frame().unwrap(), Some(body));
        assert_eq!(fb.pending(), 0);
        assert_eq!(fb.next_frame().unwrap(), None);
    }

    #[test]
    fn keeps_leftover_bytes_for_the_next_message() {
        let a = encode_frame(b"first");
        let b = encode_frame(b"");
        let c = encode_frame(&[7u8; 200]);
        let mut all = a.clone();
        all.extend_from_slice(&b);
        all.extend_from_slice(&c[..50]);
        let mut fb = FrameBuffer::new(1024);
        fb.push(&all);
        assert_eq!(fb.next_frame().unwrap(), Some(b"first".to_vec()));
        assert_eq!(fb.next_frame().unwrap(), Some(Vec::new()));
        assert_eq!(fb.next_frame().unwrap(), None);
        assert_eq!(fb.pending(), 50);
        fb.push(&c[50..]);
        assert_eq!(fb.next_frame().unwrap(), Some(vec![7u8; 200]));
        assert_eq!(fb.pending(), 0);
    }

    #[test]
    fn refuses_oversize_length_before_the_body_arrives() {
        let mut fb = FrameBuffer::new(10_240);
        fb.push(&encode_uvarint(10_241));
        assert_eq!(
            fb.next_frame(),
            Err(FrameError::TooLarge {
                len: 10_241,
                max: 10_240
            })
        );
        let mut fb = FrameBuffer::new(10_240);
        fb.push(&encode_uvarint(u64::MAX));
        assert!(matches!(fb.next_frame(), Err(FrameError::TooLarge { .. })));
    }

    fn precommit_with_extension() -> VoteSpec {
        VoteSpec::precommit(5, 0, Some(BlockIdSpec::for_height(5))).with_extension(b"ext".to_vec())
    }

    #[test]
    fn legacy_dialects_drop_extension_fields() {
        let req = Request::SignVote {
            vote: precommit_with_extension().to_raw(),
            chain_id: "c".into(),
            skip_extension_signing: false,
        };
        let v34 = encode_request(Dialect::V0_34, &req).unwrap();
        let v37 = encode_request(Dialect::V0_37, &req).unwrap();
        let v38 = encode_request(Dialect::V0_38, &req).unwrap();
        assert_eq!(v34, v37);
        assert!(v38.len() > v34.len());
        // Decoding the v0.34 bytes with the v0.38 types: no extension.
        let decoded = pv38::Message::decode(v34.as_slice()).unwrap();
        let Some(pv38::message::Sum::SignVoteRequest(r)) = decoded.sum else {
            panic!("wrong message")
        };
        assert!(r.vote.unwrap().extension.is_empty());
        // Without an extension the v0.34 and v0.38 encodings are identical.
        let req = Request::SignVote {
            vote: VoteSpec::prevote(5, 0, None).to_raw(),
            chain_id: "c".into(),
            skip_extension_signing: false,
        };
        assert_eq!(
            encode_request(Dialect::V0_34, &req).unwrap(),
            encode_request(Dialect::V0_38, &req).unwrap()
        );
    }

    #[test]
    fn nil_vote_carries_an_empty_block_id_like_cometbft() {
        let req = Request::SignVote {
            vote: VoteSpec::prevote(1, 0, None).with_timestamp(0, 0).to_raw(),
            chain_id: "c".into(),
            skip_extension_signing: false,
        };
        let body = encode_request(Dialect::V0_38, &req).unwrap();
        // Message.sign_vote_request (tag 3) { vote (1) { type=1, height=1,
        // block_id (4) { part_set_header (2) {} }, timestamp (5) {},
        // validator_address (6) [20 zero bytes] }, chain_id (2) "c" }
        let mut vote = vec![
            0x08, 0x01, 0x10, 0x01, 0x22, 0x02, 0x12, 0x00, 0x2a, 0x00, 0x32, 0x14,
        ];
        vote.extend_from_slice(&[0u8; 20]);
        let mut inner = vec![0x0a, vote.len() as u8];
        inner.extend_from_slice(&vote);
        inner.extend_from_slice(&[0x12, 0x01, b'c']);
        let mut want = vec![0x1a, inner.len() as u8];
        want.extend_from_slice(&inner);
        assert_eq!(hex::encode(&body), hex::encode(&want));
    }

    #[test]
    fn v1_only_features_are_refused_elsewhere() {
        let bytes = Request::SignBytes { value: vec![1] };
        let skip = Request::SignVote {
            vote: precommit_with_extension().to_raw(),
            chain_id: "c".into(),
            skip_extension_signing: true,
        };
        for d in [Dialect::V0_34, Dialect::V0_37, Dialect::V0_38] {
            assert!(matches!(
                encode_request(d, &bytes),
                Err(CodecError::Unsupported { .. })
            ));
            assert!(matches!(
                encode_request(d, &skip),
                Err(CodecError::Unsupported { .. })
            ));
        }
        let body = encode_request(Dialect::V1, &skip).unwrap();
        let msg = pv1::Message::decode(body.as_slice()).unwrap();
        let Some(pv1::Sum::SignVoteRequest(r)) = msg.sum else {
            panic!("wrong message")
        };
        assert!(r.skip_extension_signing);
        assert_eq!(r.vote.unwrap().extension, b"ext");
        let body = encode_request(Dialect::V1, &bytes).unwrap();
        assert_eq!(body, [0x4a, 0x03, 0x0a, 0x01, 0x01]);
    }

    #[test]
    fn decodes_pubkey_responses_per_dialect() {
        // v0.38: Message.pub_key_response (2) { pub_key (1) { ed25519 (1) [32] } }
        let mut legacy = vec![0x12, 36, 0x0a, 34, 0x0a, 32];
        legacy.extend_from_slice(&[9u8; 32]);
        let r = decode_response(Dialect::V0_38, &legacy).unwrap();
        assert_eq!(
            r,
            Response::PubKey {
                key_type: "ed25519".into(),
                key_bytes: vec![9u8; 32],
                error: None
            }
        );
        // The same bytes read by a v1 node: field 1 is reserved, no key.
        let r = decode_response(Dialect::V1, &legacy).unwrap();
        assert!(matches!(r, Response::PubKey { ref key_bytes, .. } if key_bytes.is_empty()));
        // v1: { pub_key_bytes (3) [32], pub_key_type (4) "ed25519" }
        let mut v1 = vec![0x12, 43, 0x1a, 32];
        v1.extend_from_slice(&[9u8; 32]);
        v1.extend_from_slice(&[0x22, 7]);
        v1.extend_from_slice(b"ed25519");
        let r = decode_response(Dialect::V1, &v1).unwrap();
        assert_eq!(
            r,
            Response::PubKey {
                key_type: "ed25519".into(),
                key_bytes: vec![9u8; 32],
                error: None
            }
        );
    }

    #[test]
    fn decodes_errors_and_odd_messages() {
        // SignedVoteResponse { error { code 2, description "x" } }
        let body = [0x22, 0x07, 0x12, 0x05, 0x08, 0x02, 0x12, 0x01, b'x'];
        let r = decode_response(Dialect::V0_34, &body).unwrap();
        assert_eq!(
            r.error(),
            Some(&RemoteError {
                code: 2,
                description: "x".into()
            })
        );
        assert_eq!(
            decode_response(Dialect::V0_38, &[]).unwrap(),
            Response::Empty
        );
        // A PingRequest coming from the signer.
        assert_eq!(
            decode_response(Dialect::V0_38, &[0x3a, 0x00]).unwrap(),
            Response::Unexpected("PingRequest")
        );
        // Tag 10 is unknown before v1.
        assert_eq!(
            decode_response(Dialect::V0_38, &[0x52, 0x00]).unwrap(),
            Response::Empty
        );
        assert!(matches!(
            decode_response(Dialect::V1, &[0x52, 0x00]).unwrap(),
            Response::SignBytes { .. }
        ));
        assert!(decode_response(Dialect::V0_38, &[0x22, 0x05, 0x01]).is_err());
    }
}
