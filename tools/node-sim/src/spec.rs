//! What the simulated node asks the signer to sign, and what comes back.
//!
//! These are plain values a test writes down; they turn into wire messages in
//! [`crate::codec`] and into sign bytes in [`crate::sign_bytes`].

use std::fmt;

use sha2::{Digest, Sha256};
use tendermint_proto::google::protobuf::Timestamp;
use tendermint_proto::v0_38::types::{
    BlockId as RawBlockId, PartSetHeader as RawPartSetHeader, Proposal as RawProposal,
    Vote as RawVote,
};

/// `SignedMsgType` values of `tendermint.types`.
pub mod msg_type {
    /// `PREVOTE_TYPE`
    pub const PREVOTE: i32 = 1;
    /// `PRECOMMIT_TYPE`
    pub const PRECOMMIT: i32 = 2;
    /// `PROPOSAL_TYPE`
    pub const PROPOSAL: i32 = 32;
}

/// `RemoteSignerError.code` values of this project's signer (DESIGN §3).
pub mod codes {
    /// The request names another chain than the one configured.
    pub const WRONG_CHAIN_ID: i32 = 1;
    /// Double sign, conflicting data at the same height/round/step, or a regression.
    pub const DOUBLE_SIGN: i32 = 2;
    /// The request is above the configured `max_height`.
    pub const ABOVE_MAX_HEIGHT: i32 = 3;
    /// The request is malformed.
    pub const MALFORMED: i32 = 4;
    /// The signer could not persist its state; nothing was signed.
    pub const PERSIST_FAILED: i32 = 5;
}

/// Seconds of 2024-01-01T00:00:00Z; the default timestamps count from here.
pub const BASE_UNIX_TIME: i64 = 1_704_067_200;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds. CometBFT's
/// `Vote.timestamp` and `Proposal.timestamp` are non-nullable, so a response
/// that omits the field is read by the node as this instant.
pub const GO_ZERO_TIME_SECS: i64 = -62_135_596_800;

/// A deterministic default timestamp for `height`: [`BASE_UNIX_TIME`] plus
/// `height` seconds.
pub fn default_timestamp(height: i64) -> (i64, i32) {
    (BASE_UNIX_TIME.saturating_add(height), 0)
}

/// The 20-byte validator address of an Ed25519 consensus key: the first 20
/// bytes of SHA-256 of the public key.
pub fn validator_address(pubkey: &[u8; 32]) -> [u8; 20] {
    let digest = Sha256::digest(pubkey);
    let mut out = [0u8; 20];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// Prevote or precommit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    /// The `SignedMsgType` on the wire.
    pub fn raw(self) -> i32 {
        match self {
            VoteKind::Prevote => msg_type::PREVOTE,
            VoteKind::Precommit => msg_type::PRECOMMIT,
        }
    }
}

impl fmt::Display for VoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VoteKind::Prevote => "prevote",
            VoteKind::Precommit => "precommit",
        })
    }
}

/// A non-nil block id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockIdSpec {
    pub hash: [u8; 32],
    pub parts_total: u32,
    pub parts_hash: [u8; 32],
}

impl BlockIdSpec {
    /// A block id whose hashes are derived from `seed` (SHA-256 of
    /// `"block:" ‖ seed` and `"parts:" ‖ seed`), with one part.
    pub fn from_seed(seed: &[u8]) -> Self {
        let hash = Sha256::new()
            .chain_update(b"block:")
            .chain_update(seed)
            .finalize();
        let parts = Sha256::new()
            .chain_update(b"parts:")
            .chain_update(seed)
            .finalize();
        BlockIdSpec {
            hash: hash.into(),
            parts_total: 1,
            parts_hash: parts.into(),
        }
    }

    /// A block id derived from a number (see [`BlockIdSpec::from_seed`]).
    pub fn for_height(height: i64) -> Self {
        Self::from_seed(&height.to_be_bytes())
    }

    pub(crate) fn to_raw(self) -> RawBlockId {
        RawBlockId {
            hash: self.hash.to_vec(),
            part_set_header: Some(RawPartSetHeader {
                total: self.parts_total,
                hash: self.parts_hash.to_vec(),
            }),
        }
    }
}

/// The block id a CometBFT node puts on the wire: `BlockID` is non-nullable in
/// its `Vote` and `Proposal`, so a nil vote carries an empty `BlockID` whose
/// (also non-nullable) `part_set_header` is encoded as an empty message:
/// `22 02 12 00` in a vote.
pub(crate) fn raw_block_id(block_id: Option<BlockIdSpec>) -> RawBlockId {
    match block_id {
        Some(id) => id.to_raw(),
        None => RawBlockId {
            hash: Vec::new(),
            part_set_header: Some(RawPartSetHeader::default()),
        },
    }
}

pub(crate) fn raw_timestamp((seconds, nanos): (i64, i32)) -> Timestamp {
    Timestamp { seconds, nanos }
}

/// One vote the node asks the signer to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteSpec {
    pub kind: VoteKind,
    pub height: i64,
    pub round: i32,
    /// `None` is a nil vote.
    pub block_id: Option<BlockIdSpec>,
    /// Unix seconds and nanoseconds.
    pub timestamp: (i64, i32),
    pub validator_address: [u8; 20],
    pub validator_index: i32,
    /// Sent only by dialects with vote extensions, and only on non-nil precommits.
    pub extension: Vec<u8>,
}

impl VoteSpec {
    /// A vote with [`default_timestamp`], a zero validator address, index 0 and
    /// no extension.
    pub fn new(kind: VoteKind, height: i64, round: i32, block_id: Option<BlockIdSpec>) -> Self {
        VoteSpec {
            kind,
            height,
            round,
            block_id,
            timestamp: default_timestamp(height),
            validator_address: [0u8; 20],
            validator_index: 0,
            extension: Vec::new(),
        }
    }

    /// A prevote (see [`VoteSpec::new`]).
    pub fn prevote(height: i64, round: i32, block_id: Option<BlockIdSpec>) -> Self {
        Self::new(VoteKind::Prevote, height, round, block_id)
    }

    /// A precommit (see [`VoteSpec::new`]).
    pub fn precommit(height: i64, round: i32, block_id: Option<BlockIdSpec>) -> Self {
        Self::new(VoteKind::Precommit, height, round, block_id)
    }

    /// The same vote with another timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, secs: i64, nanos: i32) -> Self {
        self.timestamp = (secs, nanos);
        self
    }

    /// The same vote with an extension.
    #[must_use]
    pub fn with_extension(mut self, extension: Vec<u8>) -> Self {
        self.extension = extension;
        self
    }

    /// The same vote from another validator slot.
    #[must_use]
    pub fn with_validator(mut self, address: [u8; 20], index: i32) -> Self {
        self.validator_address = address;
        self.validator_index = index;
        self
    }

    /// Whether this is a nil vote.
    pub fn is_nil(&self) -> bool {
        self.block_id.is_none()
    }

    /// Whether CometBFT expects an extension signature on this vote (before
    /// looking at the dialect and `skip_extension_signing`).
    pub fn is_non_nil_precommit(&self) -> bool {
        self.kind == VoteKind::Precommit && !self.is_nil()
    }

    /// The vote as a CometBFT node encodes it (v0.38 field set; the codec
    /// strips fields 9 and 10 for older dialects).
    pub fn to_raw(&self) -> RawVote {
        RawVote {
            r#type: self.kind.raw(),
            height: self.height,
            round: self.round,
            block_id: Some(raw_block_id(self.block_id)),
            timestamp: Some(raw_timestamp(self.timestamp)),
            validator_address: self.validator_address.to_vec(),
            validator_index: self.validator_index,
            signature: Vec::new(),
            extension: self.extension.clone(),
            extension_signature: Vec::new(),
        }
    }
}

/// One proposal the node asks the signer to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalSpec {
    pub height: i64,
    pub round: i32,
    /// `-1` when there is no proof-of-lock round.
    pub pol_round: i32,
    pub block_id: Option<BlockIdSpec>,
    pub timestamp: (i64, i32),
}

impl ProposalSpec {
    /// A proposal with `pol_round = -1` and [`default_timestamp`].
    pub fn new(height: i64, round: i32, block_id: Option<BlockIdSpec>) -> Self {
        ProposalSpec {
            height,
            round,
            pol_round: -1,
            block_id,
            timestamp: default_timestamp(height),
        }
    }

    /// The same proposal with another timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, secs: i64, nanos: i32) -> Self {
        self.timestamp = (secs, nanos);
        self
    }

    /// The same proposal with a proof-of-lock round.
    #[must_use]
    pub fn with_pol_round(mut self, pol_round: i32) -> Self {
        self.pol_round = pol_round;
        self
    }

    /// The proposal as a CometBFT node encodes it.
    pub fn to_raw(&self) -> RawProposal {
        RawProposal {
            r#type: msg_type::PROPOSAL,
            height: self.height,
            round: self.round,
            pol_round: self.pol_round,
            block_id: Some(raw_block_id(self.block_id)),
            timestamp: Some(raw_timestamp(self.timestamp)),
            signature: Vec::new(),
        }
    }
}

/// What the node takes from a `SignedVoteResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedVote {
    pub signature: [u8; 64],
    /// `None` when the response carried no (empty) extension signature.
    pub extension_signature: Option<[u8; 64]>,
    /// The timestamp of the returned vote; the node copies it into its vote.
    /// A missing field reads as Go's zero time ([`GO_ZERO_TIME_SECS`], 0).
    pub timestamp: (i64, i32),
    /// Length of the response body (without its length prefix).
    pub raw_len: usize,
    /// Length of the `extension` field the signer echoed back.
    pub echoed_extension_len: usize,
}

/// What the node takes from a `SignedProposalResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedProposal {
    pub signature: [u8; 64],
    /// The timestamp of the returned proposal (the node ignores it).
    pub timestamp: (i64, i32),
    /// Length of the response body (without its length prefix).
    pub raw_len: usize,
}

/// A `RemoteSignerError` the signer sent back instead of a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    pub code: i32,
    pub description: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote signer error {}: {}", self.code, self.description)
    }
}

impl std::error::Error for RemoteError {}
