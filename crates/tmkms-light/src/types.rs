//! Validated domain types.
//!
//! Raw protobuf messages from the node are converted into these types at the
//! codec boundary (`privval`); nothing past that boundary sees a raw type, so
//! every value here already satisfies the invariants its name promises.

use std::fmt;

use thiserror::Error;

/// Longest chain id CometBFT accepts (`MaxChainIDLen`).
pub const MAX_CHAIN_ID_LEN: usize = 50;

/// Length of a block or part-set hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// Length of a validator address (truncated SHA-256 of the public key).
pub const ADDRESS_LEN: usize = 20;

/// Ed25519 signature length.
pub const SIGNATURE_LEN: usize = 64;

/// Why a value from the outside world is not a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidValue {
    #[error("chain id is empty")]
    EmptyChainId,
    #[error("chain id is {len} bytes long, the maximum is {MAX_CHAIN_ID_LEN}")]
    ChainIdTooLong { len: usize },
    #[error("chain id may only contain printable ASCII characters, without spaces")]
    ChainIdCharacters,
    #[error("height {0} is negative")]
    NegativeHeight(i64),
    #[error("height must be at least 1")]
    ZeroHeight,
    #[error("round {0} is negative")]
    NegativeRound(i64),
    #[error("proof-of-lock round {0} is below -1")]
    InvalidPolRound(i64),
    #[error("proof-of-lock round {pol_round} is not below the proposal round {round}")]
    PolRoundNotBelowRound { pol_round: i64, round: u32 },
    #[error("unknown signed message type {0}")]
    UnknownMessageType(i32),
    #[error("{field} hash is {len} bytes, expected 0 or {HASH_LEN}")]
    HashLength { field: &'static str, len: usize },
    #[error("block id has a hash but no part-set header, or the other way round")]
    PartialBlockId,
    #[error("timestamp is missing")]
    MissingTimestamp,
    #[error("timestamp nanos {0} out of range")]
    TimestampNanos(i32),
    #[error("validator address is {0} bytes, expected 0 or {ADDRESS_LEN}")]
    AddressLength(usize),
    #[error("validator index {0} is negative")]
    NegativeValidatorIndex(i32),
    #[error("a {0} must not carry a vote extension")]
    UnexpectedExtension(&'static str),
    #[error("step {0} is not a known signing step")]
    UnknownStep(u8),
}

/// A chain id as CometBFT validates it: 1–50 bytes of printable ASCII.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChainId(String);

impl ChainId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChainId {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Err(InvalidValue::EmptyChainId);
        }
        if value.len() > MAX_CHAIN_ID_LEN {
            return Err(InvalidValue::ChainIdTooLong { len: value.len() });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue::ChainIdCharacters);
        }
        Ok(Self(value))
    }
}

impl TryFrom<&str> for ChainId {
    type Error = InvalidValue;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::try_from(value.to_owned())
    }
}

impl std::str::FromStr for ChainId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({:?})", self.0)
    }
}

/// A block height. Heights in requests are at least 1; a stored state may be
/// at height 0, meaning "nothing signed yet".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height(u64);

impl Height {
    pub const ZERO: Height = Height(0);

    pub fn value(self) -> u64 {
        self.0
    }

    /// The height as the signed integer the wire and sign bytes use.
    /// Values above `i64::MAX` cannot be constructed.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl TryFrom<i64> for Height {
    type Error = InvalidValue;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .map(Height)
            .map_err(|_| InvalidValue::NegativeHeight(value))
    }
}

impl From<u32> for Height {
    fn from(value: u32) -> Self {
        Height(u64::from(value))
    }
}

impl TryFrom<u64> for Height {
    type Error = InvalidValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        if i64::try_from(value).is_err() {
            return Err(InvalidValue::NegativeHeight(i64::MIN));
        }
        Ok(Height(value))
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A consensus round (non-negative `int32` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Round(u32);

impl Round {
    pub fn value(self) -> u32 {
        self.0
    }

    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    pub fn as_i32(self) -> i32 {
        i32::try_from(self.0).unwrap_or(i32::MAX)
    }
}

impl TryFrom<i64> for Round {
    type Error = InvalidValue;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        i32::try_from(value)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .map(Round)
            .ok_or(InvalidValue::NegativeRound(value))
    }
}

impl From<u16> for Round {
    fn from(value: u16) -> Self {
        Round(u32::from(value))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Signing step within a round, numbered as CometBFT's file signer numbers
/// them (`priv_validator_state.json`). `None` only appears in stored state:
/// "nothing signed at this height yet".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Step {
    #[default]
    None = 0,
    Propose = 1,
    Prevote = 2,
    Precommit = 3,
}

impl Step {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::None => "none",
            Step::Propose => "proposal",
            Step::Prevote => "prevote",
            Step::Precommit => "precommit",
        }
    }
}

impl TryFrom<u8> for Step {
    type Error = InvalidValue;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Step::None),
            1 => Ok(Step::Propose),
            2 => Ok(Step::Prevote),
            3 => Ok(Step::Precommit),
            other => Err(InvalidValue::UnknownStep(other)),
        }
    }
}

/// Height/round/step: the position in consensus that the guard orders.
/// The derived `Ord` is lexicographic in field order, which is exactly the
/// order consensus moves through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub height: Height,
    pub round: Round,
    pub step: Step,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.height, self.round, self.step.name())
    }
}

/// A protobuf `Timestamp`, validated (nanos in range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn new(seconds: i64, nanos: i32) -> Result<Self, InvalidValue> {
        if !(0..1_000_000_000).contains(&nanos) {
            return Err(InvalidValue::TimestampNanos(nanos));
        }
        Ok(Self { seconds, nanos })
    }
}

/// Part-set header of a block id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartSetHeader {
    pub total: u32,
    pub hash: [u8; HASH_LEN],
}

/// A non-nil block id. A nil vote carries `Option::None` instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockId {
    pub hash: [u8; HASH_LEN],
    pub part_set_header: PartSetHeader,
}

/// Vote kinds; proposals are their own type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    pub fn step(self) -> Step {
        match self {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }

    /// `SignedMsgType` value on the wire.
    pub fn wire_type(self) -> i32 {
        match self {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        }
    }
}

/// `SignedMsgType` value of a proposal on the wire.
pub const PROPOSAL_WIRE_TYPE: i32 = 32;

/// A vote to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub block_id: Option<BlockId>,
    pub timestamp: Timestamp,
    pub validator_address: Vec<u8>,
    pub validator_index: u32,
    /// Application vote extension (v0.38+). Only a non-nil precommit may carry one.
    pub extension: Vec<u8>,
}

impl Vote {
    pub fn position(&self) -> Position {
        Position {
            height: self.height,
            round: self.round,
            step: self.kind.step(),
        }
    }

    /// Votes whose extension must be signed (when the dialect has extensions
    /// and the node did not ask to skip): non-nil precommits only.
    pub fn is_non_nil_precommit(&self) -> bool {
        self.kind == VoteKind::Precommit && self.block_id.is_some()
    }
}

/// A block proposal to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    /// Proof-of-lock round; `None` for -1.
    pub pol_round: Option<Round>,
    pub block_id: Option<BlockId>,
    pub timestamp: Timestamp,
}

impl Proposal {
    pub fn position(&self) -> Position {
        Position {
            height: self.height,
            round: self.round,
            step: Step::Propose,
        }
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode_upper(self.0))
    }
}

/// The last thing signed for a chain: what the guard compares the next
/// request with, and what the state store makes durable.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SignState {
    pub position: Position,
    /// Sign bytes of the last signed message; empty when unknown (a fresh
    /// or imported state without them).
    pub sign_bytes: Vec<u8>,
    /// Signature over `sign_bytes`; `None` when unknown.
    pub signature: Option<Signature>,
}

impl SignState {
    /// State of a signer that has signed nothing at or above `height`.
    pub fn at_height(height: Height) -> Self {
        Self {
            position: Position {
                height,
                round: Round::default(),
                step: Step::None,
            },
            sign_bytes: Vec::new(),
            signature: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_height_then_round_then_step() {
        let p = |h: u32, r: u16, s| Position {
            height: Height::from(h),
            round: Round::from(r),
            step: s,
        };
        assert!(p(1, 5, Step::Precommit) < p(2, 0, Step::Propose));
        assert!(p(2, 0, Step::Precommit) < p(2, 1, Step::Propose));
        assert!(p(2, 1, Step::Propose) < p(2, 1, Step::Prevote));
        assert!(p(2, 1, Step::Prevote) < p(2, 1, Step::Precommit));
        assert!(p(2, 1, Step::None) < p(2, 1, Step::Propose));
    }

    #[test]
    fn rejects_bad_chain_ids() {
        assert_eq!(ChainId::try_from(""), Err(InvalidValue::EmptyChainId));
        assert!(matches!(
            ChainId::try_from("x".repeat(51)),
            Err(InvalidValue::ChainIdTooLong { len: 51 })
        ));
        assert_eq!(
            ChainId::try_from("a b"),
            Err(InvalidValue::ChainIdCharacters)
        );
        assert!(ChainId::try_from("cosmoshub-4").is_ok());
    }

    #[test]
    fn rejects_negative_numbers() {
        assert!(Height::try_from(-1i64).is_err());
        assert!(Round::try_from(-1i64).is_err());
        assert!(Round::try_from(i64::from(i32::MAX) + 1).is_err());
        assert!(Timestamp::new(0, 1_000_000_000).is_err());
        assert!(Timestamp::new(0, -1).is_err());
    }
}
