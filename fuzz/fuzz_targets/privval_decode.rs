//! `decode_request` of every dialect on arbitrary message bodies.
//!
//! For every request that decodes, the responses the signer can send for it
//! (success and error) are encoded and must decode again as the dialect's
//! `privval.Message` of the matching response type, carrying the same
//! values. A signed vote answering a v0.x request must fit the node's 10 KiB
//! read cap, and old dialects must never carry an extension signature. The
//! real `ChainSigner` also answers every request (fresh state, so the first
//! vote or proposal is signed) and its answer must satisfy the same checks.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::privval::{
    decode_request, encode_response, DecodeError, Dialect, ErrorCode, RemoteError, Request,
    Response, SignedProposal, SignedVote,
};
use tmkms_light::session::NODE_RESPONSE_CAP;
use tmkms_light::state::{MemoryStore, ReleasedSignature};
use tmkms_light::types::{ChainId, Signature, Vote};
use tmkms_light_fuzz::response::{decode_answer, Answer};
use tmkms_light_fuzz::signer;

fn check_vote(dialect: Dialect, raw_vote: &tendermint_proto::v0_38::types::Vote, vote: &Vote) {
    assert_eq!(raw_vote.r#type, vote.kind.wire_type());
    assert_eq!(raw_vote.height, vote.height.as_i64());
    assert_eq!(raw_vote.round, vote.round.as_i32());
    let ts = raw_vote
        .timestamp
        .as_ref()
        .expect("signed vote has a timestamp");
    assert_eq!(
        (ts.seconds, ts.nanos),
        (vote.timestamp.seconds, vote.timestamp.nanos)
    );
    assert_eq!(raw_vote.validator_address, vote.validator_address);
    assert!(raw_vote.extension.is_empty(), "extension echoed back");
    assert_eq!(raw_vote.signature.len(), 64);
    let block_id = raw_vote.block_id.as_ref().expect("block id present");
    match &vote.block_id {
        None => assert!(block_id.hash.is_empty()),
        Some(id) => assert_eq!(block_id.hash, id.hash),
    }
    if !dialect.has_vote_extensions() {
        assert!(raw_vote.extension_signature.is_empty());
    }
}

/// Encode `response` (an answer to `request`) and check it reads back.
fn check_response(dialect: Dialect, request: &Request, response: &Response) {
    let body = encode_response(dialect, response);
    let answer = decode_answer(dialect, &body);
    let answers_v0_sign_bytes =
        dialect != Dialect::V1 && matches!(request, Request::SignBytes { .. });
    if !answers_v0_sign_bytes {
        assert_eq!(
            answer.answers(),
            request.kind(),
            "response type of {request:?}"
        );
    }
    match response {
        Response::SignedVote(Ok(signed)) => {
            let Answer::Vote(None, Some(raw_vote)) = &answer else {
                panic!("signed vote read back as {answer:?}");
            };
            check_vote(dialect, raw_vote, signed.vote());
            if dialect != Dialect::V1 {
                assert!(
                    body.len() <= NODE_RESPONSE_CAP,
                    "signed vote response of {} bytes exceeds the node's cap",
                    body.len()
                );
            }
        }
        Response::SignedProposal(Ok(signed)) => {
            let Answer::Proposal(None, Some(p)) = &answer else {
                panic!("signed proposal read back as {answer:?}");
            };
            assert_eq!(p.height, signed.proposal().height.as_i64());
            assert_eq!(p.round, signed.proposal().round.as_i32());
            assert_eq!(
                p.pol_round,
                signed.proposal().pol_round.map_or(-1, |r| r.as_i32())
            );
            assert_eq!(p.signature.len(), 64);
        }
        Response::PubKey(Err(e))
        | Response::SignedVote(Err(e))
        | Response::SignedProposal(Err(e))
        | Response::SignedBytes(Err(e))
            if !answers_v0_sign_bytes =>
        {
            assert_eq!(answer.error_code(), Some(e.code as i32));
        }
        _ => {}
    }
}

fn synthetic_responses(request: &Request) -> Vec<Response> {
    let error = RemoteError {
        code: ErrorCode::Malformed,
        description: "invalid request".to_owned(),
    };
    let signature = Signature([0x5a; 64]);
    match request {
        Request::PubKey { .. } => vec![Response::PubKey(Ok([1; 32])), Response::PubKey(Err(error))],
        Request::SignVote { vote, .. } => {
            // What the chain signer sends: the vote without its extension.
            let mut vote = vote.clone();
            vote.extension = Vec::new();
            vec![
                Response::SignedVote(Ok(SignedVote::new(
                    vote.clone(),
                    ReleasedSignature::unchecked(signature),
                    Some(signature),
                ))),
                Response::SignedVote(Ok(SignedVote::new(
                    vote,
                    ReleasedSignature::unchecked(signature),
                    None,
                ))),
                Response::SignedVote(Err(error)),
            ]
        }
        Request::SignProposal { proposal, .. } => vec![
            Response::SignedProposal(Ok(SignedProposal::new(
                proposal.clone(),
                ReleasedSignature::unchecked(signature),
            ))),
            Response::SignedProposal(Err(error)),
        ],
        Request::SignBytes { .. } => vec![
            Response::SignedBytes(Ok(signature)),
            Response::SignedBytes(Err(error)),
        ],
        Request::Ping => vec![Response::Ping],
    }
}

fn signer_for(chain_id: &str) -> Option<ChainSigner<SigningKey>> {
    let policy = ChainPolicy {
        danger_allow_sign_bytes: true,
        ..signer::policy(ChainId::try_from(chain_id).ok()?)
    };
    signer::open(policy, MemoryStore::default()).ok()
}

fuzz_target!(|data: &[u8]| {
    for dialect in Dialect::ALL {
        let request = match decode_request(dialect, data) {
            Ok(request) => request,
            Err(DecodeError::Invalid { kind, reason }) => {
                // The session answers these with an error of the request's kind.
                let error = RemoteError {
                    code: ErrorCode::Malformed,
                    description: format!("invalid request: {reason}"),
                };
                if let Some(response) = Response::error_for(kind, error) {
                    let body = encode_response(dialect, &response);
                    decode_answer(dialect, &body);
                }
                continue;
            }
            Err(_) => continue,
        };
        if matches!(request, Request::SignBytes { .. }) {
            assert_eq!(dialect, Dialect::V1, "sign-bytes request outside v1");
        }
        if let Request::SignVote {
            vote,
            skip_extension_signing,
            ..
        } = &request
        {
            if !dialect.has_vote_extensions() {
                assert!(vote.extension.is_empty());
            }
            if dialect != Dialect::V1 {
                assert!(!skip_extension_signing);
            }
        }
        for response in synthetic_responses(&request) {
            check_response(dialect, &request, &response);
        }
        let chain_id = match &request {
            Request::PubKey { chain_id }
            | Request::SignVote { chain_id, .. }
            | Request::SignProposal { chain_id, .. } => chain_id.as_str(),
            Request::SignBytes { .. } | Request::Ping => "fuzz-chain",
        };
        if let Some(signer) = signer_for(chain_id) {
            let response = signer.handle(dialect, request.clone());
            check_response(dialect, &request, &response);
        }
    }
});
