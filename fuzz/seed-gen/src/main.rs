//! Writes the seed corpus of every fuzz target into `fuzz/seeds/<target>/`.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml -p
//! tmkms-light-fuzz-seeds`. The output is deterministic, so re-running it
//! only changes files when a generator below changes. Each target's
//! directory is rewritten as a whole.
//!
//! Privval requests are encoded by the node simulator (`tmkms_node_sim`),
//! which speaks the protocol through tendermint-rs's types, i.e. the same
//! bytes the simulator sends on the wire — independent of the signer's own
//! codec under test.

mod tee;

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tmkms_light::config::{render_template, Address, TemplateParams};
use tmkms_light::keys::ConsensusKey;
use tmkms_light::state::import::to_cometbft_json;
use tmkms_light::state::record::encode_slot;
use tmkms_light::types::{ChainId, Height, Position, Round, SignState, Signature, Step};
use tmkms_node_sim::codec::{encode_frame, encode_request, Request};
use tmkms_node_sim::{BlockIdSpec, Dialect, ProposalSpec, VoteSpec};

/// Must match `CHAIN_ID` of the `session` target.
const SESSION_CHAIN_ID: &str = "fuzz-chain";

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Seeds {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("clearing {}: {e}", dir.display()));
        }
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Seeds { dir, count: 0 }
    }

    fn add(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(name);
        assert!(!path.exists(), "duplicate seed name {name}");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.count += 1;
    }
}

fn sim_dialect(index: usize) -> Dialect {
    Dialect::ALL[index]
}

/// A node's request to sign the vote `spec` (with extension signing).
fn sign_vote(spec: VoteSpec, chain_id: &str) -> Request {
    Request::SignVote {
        vote: spec.to_raw(),
        chain_id: chain_id.to_owned(),
        skip_extension_signing: false,
    }
}

/// A node's request to sign the proposal `spec`.
fn sign_proposal(spec: ProposalSpec, chain_id: &str) -> Request {
    Request::SignProposal {
        proposal: spec.to_raw(),
        chain_id: chain_id.to_owned(),
    }
}

/// The requests a node of `dialect` sends, each with a short name.
fn requests(dialect: Dialect, chain_id: &str) -> Vec<(&'static str, Request)> {
    let block = |h: i64| Some(BlockIdSpec::for_height(h));
    let address = [0x11; 20];
    let vote = |spec: VoteSpec| sign_vote(spec.with_validator(address, 3), chain_id);
    let proposal = |spec: ProposalSpec| sign_proposal(spec, chain_id);
    let mut out = vec![
        (
            "pubkey",
            Request::PubKey {
                chain_id: chain_id.to_owned(),
            },
        ),
        ("ping", Request::Ping),
        ("proposal", proposal(ProposalSpec::new(1, 0, block(1)))),
        (
            "proposal-pol",
            proposal(ProposalSpec::new(2, 3, block(2)).with_pol_round(1)),
        ),
        ("prevote", vote(VoteSpec::prevote(1, 0, block(1)))),
        ("prevote-nil", vote(VoteSpec::prevote(1, 1, None))),
        ("precommit", vote(VoteSpec::precommit(1, 0, block(1)))),
        ("precommit-nil", vote(VoteSpec::precommit(1, 1, None))),
        (
            "precommit-late",
            vote(
                VoteSpec::precommit(7_000_000, 2, block(7))
                    .with_timestamp(1_800_000_000, 999_999_999),
            ),
        ),
        (
            "pubkey-other-chain",
            Request::PubKey {
                chain_id: "other-chain".to_owned(),
            },
        ),
    ];
    if dialect.has_extensions() {
        out.push((
            "precommit-ext",
            vote(VoteSpec::precommit(1, 0, block(1)).with_extension(b"vote extension".to_vec())),
        ));
        out.push((
            "precommit-ext-large",
            vote(VoteSpec::precommit(2, 0, block(2)).with_extension(vec![0xab; 2000])),
        ));
    }
    if dialect.has_sign_bytes() {
        out.push((
            "precommit-skip-ext",
            Request::SignVote {
                vote: VoteSpec::precommit(1, 0, block(1))
                    .with_extension(b"x".to_vec())
                    .to_raw(),
                chain_id: chain_id.to_owned(),
                skip_extension_signing: true,
            },
        ));
        out.push((
            "sign-bytes",
            Request::SignBytes {
                value: b"arbitrary bytes".to_vec(),
            },
        ));
    }
    out
}

fn body(dialect: Dialect, request: &Request) -> Vec<u8> {
    encode_request(dialect, request).unwrap_or_else(|e| panic!("encoding {}: {e}", request.name()))
}

/// A node's conversation for two heights in `dialect`, framed.
fn conversation(dialect: Dialect, chain_id: &str) -> Vec<u8> {
    let mut stream = Vec::new();
    let push = |stream: &mut Vec<u8>, request: Request| {
        stream.extend_from_slice(&encode_frame(&body(dialect, &request)));
    };
    push(
        &mut stream,
        Request::PubKey {
            chain_id: chain_id.to_owned(),
        },
    );
    push(&mut stream, Request::Ping);
    for h in 1..=2 {
        let block = Some(BlockIdSpec::for_height(h));
        push(
            &mut stream,
            sign_proposal(ProposalSpec::new(h, 0, block), chain_id),
        );
        let mut precommit = VoteSpec::precommit(h, 0, block);
        if dialect.has_extensions() {
            precommit = precommit.with_extension(b"ext".to_vec());
        }
        for spec in [VoteSpec::prevote(h, 0, block), precommit.clone()] {
            push(&mut stream, sign_vote(spec, chain_id));
        }
        // The node asking again after a restart: a replay.
        push(
            &mut stream,
            sign_vote(precommit.with_timestamp(1_900_000_000, 0), chain_id),
        );
    }
    // A conflicting prevote (refused) and a regression (refused).
    for spec in [
        VoteSpec::prevote(2, 0, Some(BlockIdSpec::from_seed(b"other"))),
        VoteSpec::prevote(1, 0, None),
    ] {
        push(&mut stream, sign_vote(spec, chain_id));
    }
    if dialect.has_sign_bytes() {
        push(
            &mut stream,
            Request::SignBytes {
                value: b"bytes".to_vec(),
            },
        );
    }
    push(
        &mut stream,
        Request::PubKey {
            chain_id: "wrong-chain".to_owned(),
        },
    );
    stream
}

fn privval_seeds(root: &Path) {
    let mut decode = Seeds::new(root, "privval_decode");
    let mut frame = Seeds::new(root, "privval_frame");
    let mut session = Seeds::new(root, "session");
    for index in 0..4 {
        let dialect = sim_dialect(index);
        let mut framed = Vec::new();
        for (name, request) in requests(dialect, "test-chain") {
            let bytes = body(dialect, &request);
            decode.add(&format!("{dialect}-{name}"), &bytes);
            framed.extend_from_slice(&encode_frame(&bytes));
        }
        // Frame seeds: cap index 5 (16 KiB), chunk sizes, then the stream.
        let sizes: &[&[u8]] = &[&[255], &[1], &[7, 0, 200, 3]];
        for (i, sizes) in sizes.iter().enumerate() {
            let mut seed = vec![5, (sizes.len() - 1) as u8];
            seed.extend_from_slice(sizes);
            seed.extend_from_slice(&framed);
            frame.add(&format!("{dialect}-chunks{i}"), &seed);
        }

        // Session seeds: flags (dialect in bits 0-1, sign-bytes allowed in
        // bit 2), then a whole conversation.
        let stream = conversation(dialect, SESSION_CHAIN_ID);
        for (suffix, flags) in [("", 0u8), ("-sign-bytes", 4), ("-max-height", 8)] {
            let mut seed = vec![index as u8 | flags];
            seed.extend_from_slice(&stream);
            session.add(&format!("{dialect}-conversation{suffix}"), &seed);
        }
        for (name, request) in requests(dialect, SESSION_CHAIN_ID) {
            let mut seed = vec![index as u8 | 4];
            seed.extend_from_slice(&encode_frame(&body(dialect, &request)));
            session.add(&format!("{dialect}-{name}"), &seed);
        }
    }
    // Edge cases of the framing itself.
    frame.add(
        "overlong-varint",
        &[
            5, 0, 255, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    );
    frame.add("too-large", &[3, 0, 255, 0x80, 0x80, 0x04]);
    frame.add("truncated", &[5, 0, 255, 0x05, 1, 2]);
    frame.add("empty-bodies", &[5, 0, 1, 0, 0, 0, 0]);
    println!(
        "privval_decode: {}, privval_frame: {}, session: {}",
        decode.count, frame.count, session.count
    );
}

/// One operation byte of the `guard_sequence` target.
mod guard_op {
    pub fn vote(precommit: bool, height: u8, round: u8, block: u8) -> u8 {
        (u8::from(precommit) << 5) | ((height - 1) << 3) | (round << 2) | block
    }
    pub fn proposal(height: u8, round: u8, block_b: bool, pol: bool) -> u8 {
        0x80 | ((height - 1) << 3) | (round << 2) | (u8::from(block_b) << 1) | u8::from(pol)
    }
    pub const RESTART: u8 = 0xe0;
    pub const TOGGLE_FAILING_WRITES: u8 = 0xc0;
    /// Import a state without sign bytes at `height`, round 0, `step`.
    pub fn import(height: u8, step: u8) -> u8 {
        0xd0 | ((height - 1) << 2) | step
    }
    /// Modifier byte: second timestamp, extension, skip extension signing.
    pub fn modifiers(second_ts: bool, ext: bool, skip: bool) -> u8 {
        u8::from(second_ts) | (u8::from(ext) << 1) | (u8::from(skip) << 2)
    }
}

fn guard_seeds(root: &Path) {
    use guard_op::*;
    let mut seeds = Seeds::new(root, "guard_sequence");
    let plain = modifiers(false, false, false);
    for dialect in 0..4u8 {
        // Normal consensus over three heights with extensions.
        let mut normal = vec![dialect];
        for h in 1..=3 {
            normal.extend([proposal(h, 0, false, false), plain]);
            normal.extend([vote(false, h, 0, 1), plain]);
            normal.extend([vote(true, h, 0, 1), modifiers(false, true, false)]);
        }
        seeds.add(&format!("d{dialect}-normal"), &normal);

        // Replays with a new timestamp around a restart, then conflicts.
        let replays = vec![
            dialect,
            vote(false, 1, 0, 1),
            plain,
            RESTART,
            vote(false, 1, 0, 1),
            modifiers(true, false, false),
            vote(false, 1, 0, 2),
            plain,
            vote(true, 1, 0, 1),
            modifiers(false, true, true),
            vote(true, 1, 0, 1),
            modifiers(true, true, false),
            RESTART,
            vote(true, 1, 0, 0),
            plain,
            proposal(1, 1, false, true),
            plain,
            proposal(1, 1, false, true),
            modifiers(true, false, false),
            proposal(1, 1, true, true),
            plain,
        ];
        seeds.add(&format!("d{dialect}-replays"), &replays);

        // Storage failing in the middle of a height.
        let failing = vec![
            dialect,
            proposal(2, 0, false, false),
            plain,
            TOGGLE_FAILING_WRITES,
            vote(false, 2, 0, 1),
            plain,
            proposal(2, 0, false, false),
            plain,
            RESTART,
            vote(false, 2, 0, 1),
            plain,
            TOGGLE_FAILING_WRITES,
            vote(false, 2, 0, 1),
            plain,
            vote(true, 2, 1, 2),
            modifiers(false, true, false),
            RESTART,
            vote(true, 2, 1, 2),
            modifiers(true, true, false),
            vote(false, 1, 1, 1),
            plain,
        ];
        seeds.add(&format!("d{dialect}-failing-writes"), &failing);

        // Migrating from another signer: an imported state, then requests
        // at, around and after it.
        let imported = vec![
            dialect,
            vote(false, 1, 0, 1),
            plain,
            import(2, 2),
            vote(false, 2, 0, 1),
            plain,
            vote(true, 2, 0, 1),
            modifiers(false, true, false),
            import(2, 3),
            import(3, 0),
            proposal(3, 0, false, false),
            plain,
            vote(false, 3, 0, 2),
            plain,
        ];
        seeds.add(&format!("d{dialect}-imported"), &imported);
    }
    println!("guard_sequence: {}", seeds.count);
}

fn sample_states() -> Vec<(&'static str, SignState)> {
    let chain = ChainId::try_from("test-chain").expect("valid chain id");
    let key = ConsensusKey::from_seed(&[7; 32]);
    let vote = tmkms_light::types::Vote {
        kind: tmkms_light::types::VoteKind::Precommit,
        height: Height::from(1234u32),
        round: Round::from(2u16),
        block_id: Some(tmkms_light::types::BlockId {
            hash: [0xaa; 32],
            part_set_header: tmkms_light::types::PartSetHeader {
                total: 3,
                hash: [0xbb; 32],
            },
        }),
        timestamp: tmkms_light::types::Timestamp::new(1_700_000_000, 42).expect("valid"),
        validator_address: vec![0x11; 20],
        validator_index: 0,
        extension: Vec::new(),
    };
    let sign_bytes = tmkms_light::sign_bytes::vote_sign_bytes(&chain, &vote);
    let signature = Signature(key.sign(&sign_bytes));
    vec![
        ("empty", SignState::default()),
        ("height-only", SignState::at_height(Height::from(500u32))),
        (
            "precommit",
            SignState {
                position: vote.position(),
                sign_bytes,
                signature: Some(signature),
            },
        ),
        (
            "max-position",
            SignState {
                position: Position {
                    height: Height::try_from(i64::MAX).expect("valid"),
                    round: Round::try_from(i64::from(i32::MAX)).expect("valid"),
                    step: Step::Precommit,
                },
                sign_bytes: vec![0xff; tmkms_light::state::record::MAX_SIGN_BYTES],
                signature: Some(Signature([0xff; 64])),
            },
        ),
    ]
}

fn state_seeds(root: &Path) {
    let mut records = Seeds::new(root, "state_record");
    let mut json = Seeds::new(root, "state_json");
    for (name, state) in sample_states() {
        for seq in [0u64, 1, u64::MAX] {
            let slot = encode_slot(seq, &state).expect("encodable");
            records.add(&format!("{name}-seq{seq}"), &slot);
        }
        json.add(
            &format!("cometbft-{name}"),
            to_cometbft_json(&state).as_bytes(),
        );
    }
    // A torn write: the first half of a record over zeros.
    let mut torn = [0u8; 512];
    let full = encode_slot(9, &sample_states()[2].1).expect("encodable");
    torn[..256].copy_from_slice(&full[..256]);
    records.add("torn", &torn);

    // As CometBFT and tmkms write them.
    json.add(
        "cometbft-fresh",
        br#"{"height": "0", "round": 0, "step": 0}"#,
    );
    json.add(
        "cometbft-signed",
        br#"{
  "height": "1234",
  "round": 2,
  "step": 3,
  "signature": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
  "signbytes": "760802110100000000000000"
}"#,
    );
    json.add(
        "tmkms-fresh",
        br#"{"height":"0","round":"0","step":0,"block_id":null}"#,
    );
    json.add(
        "tmkms-signed",
        br#"{"height":"77","round":"1","step":2,"block_id":{"hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","part_set_header":{"total":1,"hash":"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}}}"#,
    );
    json.add(
        "tmkms-no-block-id",
        br#"{"height":"5","round":"0","step":1}"#,
    );
    println!(
        "state_record: {}, state_json: {}",
        records.count, json.count
    );
}

fn config_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "config_toml");
    let chain = ChainId::try_from("cosmoshub-4").expect("valid chain id");
    let addresses = [
        "tcp://127.0.0.1:26658",
        "tcp://f00df00df00df00df00df00df00df00df00df00d@node.example:26658",
        "tcp://[::1]:26658",
        "unix:///run/tmkms/validator.sock",
    ];
    for (i, address) in addresses.iter().enumerate() {
        let address: Address = address.parse().expect("valid address");
        let dialect = ["v0.34", "v0.37", "v0.38", "v1"][i]
            .parse()
            .expect("valid dialect");
        let text = render_template(&TemplateParams::new(chain.clone(), address, dialect));
        seeds.add(&format!("template-{i}"), text.as_bytes());
    }
    seeds.add(
        "minimal-unix",
        br#"chain_id = "test-chain"
consensus_key_path = "consensus.key"
state_file_path = "/var/lib/tmkms/state"

[[validator]]
address = "unix:///tmp/v.sock"
"#,
    );
    seeds.add(
        "every-field",
        br#"chain_id = "test-chain"
consensus_key_path = "secrets/consensus.key"
id_key_path = "secrets/id.key"
state_file_path = "state/consensus.state"
max_height = 1000000
max_frame_bytes = 65536
danger_allow_sign_bytes = true

[[validator]]
address = "tcp://127.0.0.1:26658"
protocol_version = "v0.38"
timeout_secs = 10
reconnect_max_backoff_secs = 30

[[validator]]
address = "tcp://[fe80::1]:1"
protocol_version = "v1"
"#,
    );
    println!("config_toml: {}", seeds.count);
}

fn key_seeds(root: &Path) {
    let mut seeds = Seeds::new(root, "key_file");
    let key = ConsensusKey::from_seed(&[7; 32]);
    let seed = key.secret_seed();
    let public = key.public_key();
    seeds.add(
        "base64-seed",
        format!("{}\n", STANDARD.encode(seed.as_slice())).as_bytes(),
    );
    let mut pair = seed.to_vec();
    pair.extend_from_slice(&public.0);
    seeds.add(
        "base64-keypair",
        format!("  {}\r\n", STANDARD.encode(&pair)).as_bytes(),
    );
    let address = hex::encode_upper(&Sha256::digest(public.0)[..20]);
    let priv_validator_key = format!(
        r#"{{
  "address": "{address}",
  "pub_key": {{
    "type": "tendermint/PubKeyEd25519",
    "value": "{}"
  }},
  "priv_key": {{
    "type": "tendermint/PrivKeyEd25519",
    "value": "{}"
  }}
}}"#,
        STANDARD.encode(public.0),
        STANDARD.encode(&pair)
    );
    seeds.add("priv_validator_key.json", priv_validator_key.as_bytes());
    let node_key = format!(
        r#"{{"priv_key":{{"type":"tendermint/PrivKeyEd25519","value":"{}"}}}}"#,
        STANDARD.encode(&pair)
    );
    seeds.add("node_key.json", node_key.as_bytes());
    println!("key_file: {}", seeds.count);
}

fn main() {
    // `--tee` also regenerates the randomized TEE seeds and key fixtures.
    let force_tee = std::env::args_os().any(|a| a == "--tee");
    let root = std::env::args_os()
        .skip(1)
        .find(|a| a != "--tee")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds"));
    privval_seeds(&root);
    guard_seeds(&root);
    state_seeds(&root);
    config_seeds(&root);
    key_seeds(&root);
    tee::tee_seeds(&root, force_tee);
}
