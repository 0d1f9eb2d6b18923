//! Byte-exact vectors for sign bytes and privval messages.
//!
//! Two kinds of sources:
//! * vectors derived by hand from the protobuf encoding rules (each test
//!   spells out the derivation field by field);
//! * vectors copied from CometBFT's own tests, cited by file and tag.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sha2::{Digest, Sha256};
use tmkms_node_sim::codec::{decode_response, encode_request, Request, Response};
use tmkms_node_sim::{
    extension_sign_bytes, proposal_sign_bytes, vote_sign_bytes, BlockIdSpec, Dialect, ProposalSpec,
    RemoteError, VoteSpec, GO_ZERO_TIME_SECS,
};

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

// ---------------------------------------------------------------------------
// Hand-derived sign bytes
// ---------------------------------------------------------------------------

/// The block of the hand-derived vectors: hash 32 × `11`, 3 parts with hash
/// 32 × `22`.
fn hand_block() -> BlockIdSpec {
    BlockIdSpec {
        hash: [0x11; 32],
        parts_total: 3,
        parts_hash: [0x22; 32],
    }
}

/// The 72-byte `CanonicalBlockID` body of [`hand_block`]: `0a 20` + hash,
/// `12 24` part_set_header (36 bytes: `08 03` total = 3, `12 20` + parts
/// hash).
fn hand_block_id_hex() -> String {
    [
        "0a20",
        &"11".repeat(32),
        "1224",
        "0803",
        "1220",
        &"22".repeat(32),
    ]
    .concat()
}

/// A nil precommit at height 1, round 0, timestamp 1970-01-01T00:00:00Z, on
/// chain "test-chain".
///
/// `CanonicalVote` fields, in field order:
/// * `type` = 1, varint, PRECOMMIT = 2 → `08 02`
/// * `height` = 2, sfixed64 (wire type 1) → key `11`, then 1 as 8 little-endian
///   bytes `01 00 00 00 00 00 00 00`
/// * `round` = 3, sfixed64, 0 → omitted (proto3 default)
/// * `block_id` = 4 → omitted: a nil vote has no canonical block id
///   (CometBFT's `CanonicalizeBlockID` returns nil for a zero `BlockID`)
/// * `timestamp` = 5, message; the Unix epoch is `Timestamp{0, 0}`, whose
///   fields are both defaults, so an empty message → `2a 00`. It is still
///   emitted: the field is non-nullable in CometBFT.
/// * `chain_id` = 6, string, 10 bytes → `32 0a` + "test-chain"
///
/// Body: 2 + 9 + 2 + 12 = 25 bytes, so the uvarint length prefix is `19`.
#[test]
fn nil_precommit_sign_bytes_by_hand() {
    let vote = VoteSpec::precommit(1, 0, None).with_timestamp(0, 0);
    let want = concat!(
        "19",                       // length 25
        "0802",                     // type = PRECOMMIT
        "110100000000000000",       // height = 1
        "2a00",                     // timestamp = {}
        "320a746573742d636861696e"  // chain_id = "test-chain"
    );
    assert_eq!(hex(&vote_sign_bytes("test-chain", &vote).unwrap()), want);
}

/// A prevote for a block at height 10, round 2, timestamp
/// 2023-11-14T22:13:20.000000005Z (1_700_000_000 s, 5 ns), chain "test-chain",
/// block hash 32 × `11`, 3 parts with hash 32 × `22`.
///
/// * `08 01` type = PREVOTE
/// * `11 0a00000000000000` height = 10
/// * `19 0200000000000000` round = 2
/// * `22 48` block_id (72 bytes): `0a 20` + hash, `12 24` part_set_header
///   (36 bytes: `08 03` total = 3, `12 20` + parts hash)
/// * `2a 08` timestamp: `08 80e2cfaa06` seconds = 1_700_000_000 (varint),
///   `10 05` nanos = 5
/// * `32 0a` "test-chain"
///
/// Body 116 bytes → prefix `74`.
#[test]
fn block_prevote_sign_bytes_by_hand() {
    let block = hand_block();
    let vote = VoteSpec::prevote(10, 2, Some(block)).with_timestamp(1_700_000_000, 5);
    let want = [
        "74",
        "0801",
        "110a00000000000000",
        "190200000000000000",
        "2248",
        &hand_block_id_hex(),
        "2a08",
        "0880e2cfaa06",
        "1005",
        "320a746573742d636861696e",
    ]
    .concat();
    assert_eq!(hex(&vote_sign_bytes("test-chain", &vote).unwrap()), want);
    // Validator address, index and extension are not part of the sign bytes.
    let other = vote
        .clone()
        .with_validator([9; 20], 7)
        .with_extension(b"x".to_vec());
    assert_eq!(
        vote_sign_bytes("test-chain", &other).unwrap(),
        vote_sign_bytes("test-chain", &vote).unwrap()
    );
}

/// A proposal at height 5, round 1, no POL round, the block above, timestamp
/// 1_700_000_000 s.
///
/// `CanonicalProposal`:
/// * `08 20` type = PROPOSAL (32)
/// * `11 0500000000000000` height = 5
/// * `19 0100000000000000` round = 1
/// * `20 ffffffffffffffffff01` pol_round = -1: unlike height and round this
///   field is a plain `int64` (varint, wire type 0), so -1 is the 10-byte
///   varint of 2^64 - 1
/// * `2a 48` block_id as in the prevote
/// * `32 06 0880e2cfaa06` timestamp (nanos 0 omitted)
/// * `3a 0a` "test-chain" (field 7)
///
/// Body 125 bytes → prefix `7d`.
#[test]
fn proposal_sign_bytes_by_hand() {
    let block = hand_block();
    let p = ProposalSpec::new(5, 1, Some(block)).with_timestamp(1_700_000_000, 0);
    let want = [
        "7d",
        "0820",
        "110500000000000000",
        "190100000000000000",
        "20ffffffffffffffffff01",
        "2a48",
        &hand_block_id_hex(),
        "3206",
        "0880e2cfaa06",
        "3a0a746573742d636861696e",
    ]
    .concat();
    assert_eq!(hex(&proposal_sign_bytes("test-chain", &p).unwrap()), want);
}

/// `CanonicalVoteExtension` for extension "ext" at height 1, round 0:
/// * `0a 03 657874` extension
/// * `11 0100000000000000` height = 1 (sfixed64)
/// * round = 0 omitted
/// * `22 0a` "test-chain" (field 4)
///
/// Body 26 bytes → prefix `1a`. With an empty extension at height 7, round 3
/// the extension field is omitted (proto3 default), round is `19 03…`: body
/// 30 bytes → prefix `1e`. Block id and timestamp never enter.
#[test]
fn extension_sign_bytes_by_hand() {
    let block = Some(BlockIdSpec::for_height(1));
    let vote = VoteSpec::precommit(1, 0, block).with_extension(b"ext".to_vec());
    assert_eq!(
        hex(&extension_sign_bytes("test-chain", &vote).unwrap()),
        "1a0a03657874110100000000000000220a746573742d636861696e"
    );
    let empty = VoteSpec::precommit(7, 3, block);
    assert_eq!(
        hex(&extension_sign_bytes("test-chain", &empty).unwrap()),
        "1e110700000000000000190300000000000000220a746573742d636861696e"
    );
}

// ---------------------------------------------------------------------------
// CometBFT's vectors
// ---------------------------------------------------------------------------

/// CometBFT v0.38.17, `types/vote_test.go`, `TestVoteSignBytesTestVectors`,
/// cases 1 and 2: `Vote{Height: 1, Round: 1, Type: …}` with Go's zero
/// `time.Time` and chain id "". tendermint-rs rejects an empty chain id, so
/// the chain-id field of case 4 of the same test (`0x32, 0xd,
/// "test_chain_id"`) is appended and the length prefix recomputed
/// (0x21 + 15 = 0x30).
#[test]
fn cometbft_vote_sign_bytes_vectors() {
    // Case 1 (precommit) without its length prefix.
    let case1_body = [
        0x8, 0x2, 0x11, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x19, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x0, 0x0, 0x2a, 0xb, 0x8, 0x80, 0x92, 0xb8, 0xc3, 0x98, 0xfe, 0xff, 0xff, 0xff, 0x1,
    ];
    // Case 2 (prevote) differs only in the type byte.
    let mut case2_body = case1_body;
    case2_body[1] = 0x1;
    // Case 4: the chain id field.
    let chain_field = [
        0x32, 0xd, 0x74, 0x65, 0x73, 0x74, 0x5f, 0x63, 0x68, 0x61, 0x69, 0x6e, 0x5f, 0x69, 0x64,
    ];
    for (body, vote) in [
        (case1_body, VoteSpec::precommit(1, 1, None)),
        (case2_body, VoteSpec::prevote(1, 1, None)),
    ] {
        let mut want = vec![0x30];
        want.extend_from_slice(&body);
        want.extend_from_slice(&chain_field);
        let vote = vote.with_timestamp(GO_ZERO_TIME_SECS, 0);
        assert_eq!(
            hex(&vote_sign_bytes("test_chain_id", &vote).unwrap()),
            hex(&want)
        );
    }
}

/// The vote of `exampleVote()` in CometBFT's `privval/msgs_test.go`.
fn cometbft_example_vote(kind_precommit: bool) -> VoteSpec {
    let block = BlockIdSpec {
        hash: Sha256::digest(b"blockID_hash").into(),
        parts_total: 1_000_000,
        parts_hash: Sha256::digest(b"blockID_part_set_header_hash").into(),
    };
    let mut address = [0u8; 20];
    address.copy_from_slice(&Sha256::digest(b"validator_address")[..20]);
    // 2019-10-13T16:14:44Z
    let stamp = 1_570_983_284;
    let vote = if kind_precommit {
        VoteSpec::precommit(3, 2, Some(block))
    } else {
        VoteSpec::prevote(3, 2, Some(block))
    };
    vote.with_timestamp(stamp, 0).with_validator(address, 56789)
}

fn vote_request(vote: &VoteSpec) -> Request {
    Request::SignVote {
        vote: vote.to_raw(),
        chain_id: String::new(),
        skip_extension_signing: false,
    }
}

/// CometBFT v0.38.17 and v1.0.1, `privval/msgs_test.go`, `TestPrivvalVectors`,
/// "Vote Request": a precommit with extension "extension", chain id "".
const VOTE_REQUEST_V0_38: &str = "1a81010a7f080210031802224a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a2a0608f49a8ded0532146af1f4111082efb388211bc72c55bcd61e9ac3d538d5bb034a09657874656e73696f6e";

/// CometBFT v0.34.35 and v0.37.15, same test: a prevote without extension.
const VOTE_REQUEST_V0_34: &str = "1a760a74080110031802224a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a2a0608f49a8ded0532146af1f4111082efb388211bc72c55bcd61e9ac3d538d5bb03";

#[test]
fn cometbft_privval_vote_request_vectors() {
    let precommit = cometbft_example_vote(true).with_extension(b"extension".to_vec());
    for d in [Dialect::V0_38, Dialect::V1] {
        assert_eq!(
            hex(&encode_request(d, &vote_request(&precommit)).unwrap()),
            VOTE_REQUEST_V0_38,
            "{d}"
        );
    }
    let prevote = cometbft_example_vote(false);
    for d in [Dialect::V0_34, Dialect::V0_37] {
        assert_eq!(
            hex(&encode_request(d, &vote_request(&prevote)).unwrap()),
            VOTE_REQUEST_V0_34,
            "{d}"
        );
    }
}

/// Same test, "Proposal Request": `Type: 1`, height 3, round 2, POL round 2,
/// signature "it's a signature" (the test's proposal is odd on purpose).
#[test]
fn cometbft_privval_proposal_request_vector() {
    let example = cometbft_example_vote(false);
    let mut raw = ProposalSpec::new(3, 2, example.block_id)
        .with_pol_round(2)
        .with_timestamp(example.timestamp.0, 0)
        .to_raw();
    raw.r#type = 1;
    raw.signature = b"it's a signature".to_vec();
    let request = Request::SignProposal {
        proposal: raw,
        chain_id: String::new(),
    };
    let want = "2a700a6e08011003180220022a4a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a320608f49a8ded053a10697427732061207369676e6174757265";
    for d in Dialect::ALL {
        assert_eq!(hex(&encode_request(d, &request).unwrap()), want, "{d}");
    }
}

/// Same test: ping and public-key requests, v1 public-key responses
/// (v1.0.1), legacy public-key responses (v0.38.17).
#[test]
fn cometbft_privval_small_message_vectors() {
    assert_eq!(
        hex(&encode_request(Dialect::V0_38, &Request::Ping).unwrap()),
        "3a00"
    );
    let pk_req = Request::PubKey {
        chain_id: String::new(),
    };
    assert_eq!(hex(&encode_request(Dialect::V1, &pk_req).unwrap()), "0a00");
    assert_eq!(
        decode_response(Dialect::V0_38, &hex::decode("4200").unwrap()).unwrap(),
        Response::Ping
    );

    let key =
        hex::decode("556a436f1218d30942efe798420f51dc9b6a311b929c578257457d05c5fcf230").unwrap();
    let legacy = "12240a220a20556a436f1218d30942efe798420f51dc9b6a311b929c578257457d05c5fcf230";
    let v1 = "122b1a20556a436f1218d30942efe798420f51dc9b6a311b929c578257457d05c5fcf230220765643235353139";
    for (d, bytes) in [
        (Dialect::V0_34, legacy),
        (Dialect::V0_38, legacy),
        (Dialect::V1, v1),
    ] {
        assert_eq!(
            decode_response(d, &hex::decode(bytes).unwrap()).unwrap(),
            Response::PubKey {
                key_type: "ed25519".into(),
                key_bytes: key.clone(),
                error: None
            },
            "{d}"
        );
    }
    let remote = RemoteError {
        code: 1,
        description: "it's a error".into(),
    };
    let v1_err = "121212100801120c697427732061206572726f72";
    let r = decode_response(Dialect::V1, &hex::decode(v1_err).unwrap()).unwrap();
    assert_eq!(r.error(), Some(&remote));
}

/// Same test, "Vote Response with error": the Go node encodes a zero `Vote`
/// as `{block_id: {part_set_header: {}}, timestamp: <year 1>}` — the empty
/// block id and Go's zero time are what a nil/empty vote looks like on the
/// wire.
#[test]
fn cometbft_privval_error_response_vectors() {
    let remote = RemoteError {
        code: 1,
        description: "it's a error".into(),
    };
    let vote_err = "22250a11220212002a0b088092b8c398feffffff0112100801120c697427732061206572726f72";
    let r = decode_response(Dialect::V0_38, &hex::decode(vote_err).unwrap()).unwrap();
    let Response::SignedVote { vote, error } = r else {
        panic!("not a vote response: {r:?}")
    };
    assert_eq!(error, Some(remote.clone()));
    let vote = vote.unwrap();
    assert!(vote.block_id.unwrap().hash.is_empty());
    assert_eq!(vote.timestamp.unwrap().seconds, GO_ZERO_TIME_SECS);

    let proposal_err =
        "32250a112a021200320b088092b8c398feffffff0112100801120c697427732061206572726f72";
    let r = decode_response(Dialect::V1, &hex::decode(proposal_err).unwrap()).unwrap();
    assert!(matches!(r, Response::SignedProposal { .. }));
    assert_eq!(r.error(), Some(&remote));

    // Our own nil vote encodes its block id the same way.
    let raw = VoteSpec::prevote(1, 0, None).to_raw();
    let bid = raw.block_id.unwrap();
    assert!(bid.hash.is_empty());
    assert_eq!(bid.part_set_header, Some(Default::default()));
}
