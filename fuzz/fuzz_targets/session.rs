//! A whole session (`session::serve`) over an in-memory stream whose input
//! is the fuzz data, with a real `ChainSigner` (chain `fuzz-chain`, key
//! `[7; 32]`, in-memory state).
//!
//! Input layout: byte 0 picks the dialect (bits 0-1), whether sign-bytes
//! requests are allowed (bit 2), a `max_height` of 3 (bit 3) and the frame
//! cap (bits 4-5); the rest is what the node sends.
//!
//! Checked: `serve` ends without panicking, the answered count matches the
//! frames written, every written frame decodes as a response of the dialect
//! and answers the request at the same index with the matching type, v0.x
//! responses fit the node's 10 KiB cap, and every released vote and proposal
//! signature (and extension signature) verifies over what the response says
//! was signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tendermint_proto::v0_38::types as raw_types;
use tmkms_light::chain::ChainPolicy;
use tmkms_light::privval::frame::FrameReader;
use tmkms_light::privval::{decode_request, Dialect, Request};
use tmkms_light::session::{serve, SessionConfig, SessionError, NODE_RESPONSE_CAP};
use tmkms_light::state::MemoryStore;
use tmkms_light::types::{
    BlockId, ChainId, Height, PartSetHeader, Round, Timestamp, Vote, VoteKind,
};
use tmkms_light_fuzz::pipe::Pipe;
use tmkms_light_fuzz::response::{decode_answer, Answer};
use tmkms_light_fuzz::signer::{self, ReleasedSignatures};

const CHAIN_ID: &str = "fuzz-chain";
const CAPS: [usize; 4] = [
    16 * 1024,
    1024,
    100,
    tmkms_light::privval::frame::DEFAULT_MAX_FRAME_BYTES,
];

fn block_id(raw: Option<&raw_types::BlockId>) -> Option<BlockId> {
    let raw = raw?;
    if raw.hash.is_empty() {
        return None;
    }
    let psh = raw.part_set_header.as_ref().expect("part-set header");
    Some(BlockId {
        hash: raw.hash.as_slice().try_into().expect("32-byte hash"),
        part_set_header: PartSetHeader {
            total: psh.total,
            hash: psh.hash.as_slice().try_into().expect("32-byte hash"),
        },
    })
}

fn timestamp(raw: Option<&tendermint_proto::google::protobuf::Timestamp>) -> Timestamp {
    let raw = raw.expect("timestamp present");
    Timestamp::new(raw.seconds, raw.nanos).expect("valid timestamp")
}

fuzz_target!(|data: &[u8]| {
    let [flags, input @ ..] = data else { return };
    let dialect = Dialect::ALL[usize::from(flags & 3)];
    let max_frame_bytes = CAPS[usize::from((flags >> 4) & 3)];
    let chain_id = ChainId::try_from(CHAIN_ID).expect("valid chain id");
    let policy = ChainPolicy {
        max_height: (flags & 8 != 0).then(|| Height::from(3u32)),
        danger_allow_sign_bytes: flags & 4 != 0,
        ..signer::policy(chain_id.clone())
    };
    let Ok(chain) = signer::open(policy, MemoryStore::default()) else {
        return;
    };
    let signatures = ReleasedSignatures::for_chain(chain_id);
    let mut pipe = Pipe::new(input);
    let config = SessionConfig {
        dialect,
        max_frame_bytes,
        clock: None,
    };
    let (answered, reason) = serve(&mut pipe, &chain, config);
    assert!(
        !matches!(reason, SessionError::Write(_)),
        "in-memory writes cannot fail"
    );

    // The requests, framed the same way, pair up with the responses.
    let mut requests = Vec::new();
    let mut request_frames = FrameReader::new(max_frame_bytes);
    let mut rest = input;
    while let Ok(body) = request_frames.next_message(&mut rest) {
        requests.push(decode_request(dialect, body));
    }
    let mut responses = FrameReader::new(usize::MAX);
    let mut written = pipe.output.as_slice();
    let mut count = 0u64;
    while let Ok(body) = responses.next_message(&mut written) {
        if dialect != Dialect::V1 {
            assert!(
                body.len() <= NODE_RESPONSE_CAP,
                "response of {} bytes exceeds the node's 10 KiB cap",
                body.len()
            );
        }
        let answer = decode_answer(dialect, &body);
        let request = requests
            .get(count as usize)
            .expect("a response without a request");
        count += 1;
        let request = match request {
            Ok(request) => request,
            // Invalid requests are answered with an error of their kind.
            Err(_) => {
                let code = match answer {
                    Answer::PubKey(c)
                    | Answer::Vote(c, _)
                    | Answer::Proposal(c, _)
                    | Answer::Bytes(c) => c,
                    Answer::Ping => panic!("invalid request answered with a ping"),
                };
                assert_eq!(code, Some(4), "invalid request not answered with code 4");
                continue;
            }
        };
        match (request, answer) {
            (Request::Ping, Answer::Ping) | (Request::PubKey { .. }, Answer::PubKey(_)) => {}
            (Request::SignBytes { .. }, Answer::Bytes(_)) => {}
            (
                Request::SignVote {
                    vote: asked,
                    skip_extension_signing,
                    ..
                },
                Answer::Vote(None, Some(signed)),
            ) => {
                let vote = Vote {
                    kind: match signed.r#type {
                        1 => VoteKind::Prevote,
                        2 => VoteKind::Precommit,
                        other => panic!("vote type {other}"),
                    },
                    height: Height::try_from(signed.height).expect("height"),
                    round: Round::try_from(i64::from(signed.round)).expect("round"),
                    block_id: block_id(signed.block_id.as_ref()),
                    timestamp: timestamp(signed.timestamp.as_ref()),
                    validator_address: signed.validator_address.clone(),
                    validator_index: u32::try_from(signed.validator_index).expect("index"),
                    extension: asked.extension.clone(),
                };
                assert_eq!(vote.position(), asked.position());
                assert_eq!(vote.block_id, asked.block_id);
                signatures.verify_vote(&vote, &signed.signature);
                let wants_extension_signature = dialect.has_vote_extensions()
                    && vote.is_non_nil_precommit()
                    && !skip_extension_signing;
                assert_eq!(
                    !signed.extension_signature.is_empty(),
                    wants_extension_signature,
                    "extension signature presence"
                );
                if wants_extension_signature {
                    signatures.verify_extension(&vote, &signed.extension_signature);
                }
            }
            (Request::SignVote { .. }, Answer::Vote(Some(code), None)) => {
                assert!((1..=5).contains(&code), "error code {code}");
            }
            (
                Request::SignProposal {
                    proposal: asked, ..
                },
                Answer::Proposal(None, Some(signed)),
            ) => {
                let mut proposal = asked.clone();
                proposal.timestamp = timestamp(signed.timestamp.as_ref());
                assert_eq!(signed.height, asked.height.as_i64());
                assert_eq!(signed.round, asked.round.as_i32());
                signatures.verify_proposal(&proposal, &signed.signature);
            }
            (Request::SignProposal { .. }, Answer::Proposal(Some(code), None)) => {
                assert!((1..=5).contains(&code), "error code {code}");
            }
            (request, _) => panic!("{:?} answered with the wrong response type", request.kind()),
        }
    }
    assert_eq!(count, answered, "frames written vs. requests answered");
    assert!(written.is_empty(), "trailing bytes after the last response");
});
