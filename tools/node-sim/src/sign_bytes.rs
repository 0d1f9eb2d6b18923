//! Sign bytes, computed independently of the signer with the tendermint-rs
//! domain types.
//!
//! All three encodings are length-prefixed protobufs built with the node's
//! chain id:
//! * votes: `CanonicalVote` (type=1 varint, height=2 sfixed64, round=3
//!   sfixed64, block_id=4 omitted when nil, timestamp=5, chain_id=6);
//! * proposals: `CanonicalProposal` (type=1, height=2 sfixed64, round=3
//!   sfixed64, pol_round=4 **varint** int64, block_id=5, timestamp=6,
//!   chain_id=7);
//! * vote extensions: `CanonicalVoteExtension` (extension=1, height=2
//!   sfixed64, round=3 sfixed64, chain_id=4).
//!
//! tendermint-rs has no helper for the extension bytes, so they are built
//! from the raw `CanonicalVoteExtension` message the same way CometBFT's
//! `VoteExtensionSignBytes` does (`protoio.MarshalDelimited`).

use prost::Message as _;
use tendermint::block::{self, parts, Height, Round};
use tendermint::chain::Id as ChainId;
use tendermint::hash::{Algorithm, Hash};
use tendermint::proposal::{Proposal, Type as ProposalType};
use tendermint::vote::{Type as VoteType, ValidatorIndex, Vote};
use tendermint::{account, Time};
use tendermint_proto::v0_38::types::CanonicalVoteExtension;

use crate::spec::{BlockIdSpec, ProposalSpec, VoteKind, VoteSpec};

/// A spec that cannot be turned into sign bytes (the domain types reject it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build sign bytes: invalid {field}: {reason}")]
pub struct SpecError {
    pub field: &'static str,
    pub reason: String,
}

impl SpecError {
    fn new(field: &'static str, reason: impl ToString) -> Self {
        SpecError {
            field,
            reason: reason.to_string(),
        }
    }
}

fn parse_chain_id(chain_id: &str) -> Result<ChainId, SpecError> {
    ChainId::try_from(chain_id).map_err(|e| SpecError::new("chain id", e))
}

fn time((secs, nanos): (i64, i32)) -> Result<Time, SpecError> {
    let nanos = u32::try_from(nanos).map_err(|e| SpecError::new("timestamp nanos", e))?;
    Time::from_unix_timestamp(secs, nanos).map_err(|e| SpecError::new("timestamp", e))
}

fn block_id(id: Option<BlockIdSpec>) -> Result<Option<block::Id>, SpecError> {
    id.map(|id| {
        let hash = Hash::from_bytes(Algorithm::Sha256, &id.hash)
            .map_err(|e| SpecError::new("block hash", e))?;
        let parts_hash = Hash::from_bytes(Algorithm::Sha256, &id.parts_hash)
            .map_err(|e| SpecError::new("part set hash", e))?;
        let part_set_header = parts::Header::new(id.parts_total, parts_hash)
            .map_err(|e| SpecError::new("part set header", e))?;
        Ok(block::Id {
            hash,
            part_set_header,
        })
    })
    .transpose()
}

fn height(h: i64) -> Result<Height, SpecError> {
    Height::try_from(h).map_err(|e| SpecError::new("height", e))
}

fn round(r: i32) -> Result<Round, SpecError> {
    Round::try_from(r).map_err(|e| SpecError::new("round", e))
}

/// The `CanonicalVote` sign bytes of `vote` on `chain_id`.
pub fn vote_sign_bytes(chain_id: &str, vote: &VoteSpec) -> Result<Vec<u8>, SpecError> {
    let chain = parse_chain_id(chain_id)?;
    let domain = Vote {
        vote_type: match vote.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        },
        height: height(vote.height)?,
        round: round(vote.round)?,
        block_id: block_id(vote.block_id)?,
        timestamp: Some(time(vote.timestamp)?),
        validator_address: account::Id::new(vote.validator_address),
        validator_index: ValidatorIndex::try_from(vote.validator_index)
            .map_err(|e| SpecError::new("validator index", e))?,
        signature: None,
        extension: vote.extension.clone(),
        extension_signature: None,
    };
    Ok(domain.into_signable_vec(chain))
}

/// The `CanonicalProposal` sign bytes of `proposal` on `chain_id`.
pub fn proposal_sign_bytes(chain_id: &str, p: &ProposalSpec) -> Result<Vec<u8>, SpecError> {
    let chain = parse_chain_id(chain_id)?;
    let pol_round = match p.pol_round {
        -1 => None,
        r => Some(round(r).map_err(|e| SpecError::new("pol round", e.reason))?),
    };
    let domain = Proposal {
        msg_type: ProposalType::Proposal,
        height: height(p.height)?,
        round: round(p.round)?,
        pol_round,
        block_id: block_id(p.block_id)?,
        timestamp: Some(time(p.timestamp)?),
        signature: None,
    };
    Ok(domain.into_signable_vec(chain))
}

/// The `CanonicalVoteExtension` sign bytes of `vote`'s extension on `chain_id`.
pub fn extension_sign_bytes(chain_id: &str, vote: &VoteSpec) -> Result<Vec<u8>, SpecError> {
    let chain = parse_chain_id(chain_id)?;
    // Validate like the vote itself, so both sign-bytes functions agree on
    // which specs are signable.
    height(vote.height)?;
    round(vote.round)?;
    let canonical = CanonicalVoteExtension {
        extension: vote.extension.clone(),
        height: vote.height,
        round: i64::from(vote.round),
        chain_id: chain.as_str().to_owned(),
    };
    Ok(canonical.encode_length_delimited_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_specs_the_domain_types_reject() {
        let v = VoteSpec::prevote(-1, 0, None);
        assert_eq!(vote_sign_bytes("c", &v).unwrap_err().field, "height");
        let v = VoteSpec::prevote(1, -1, None);
        assert_eq!(vote_sign_bytes("c", &v).unwrap_err().field, "round");
        let v = VoteSpec::prevote(1, 0, None);
        assert_eq!(vote_sign_bytes("", &v).unwrap_err().field, "chain id");
        assert_eq!(vote_sign_bytes("a b", &v).unwrap_err().field, "chain id");
        let v = VoteSpec::prevote(1, 0, None).with_timestamp(0, -1);
        assert_eq!(
            vote_sign_bytes("c", &v).unwrap_err().field,
            "timestamp nanos"
        );
        let mut id = BlockIdSpec::for_height(1);
        id.parts_total = 0;
        let v = VoteSpec::prevote(1, 0, Some(id));
        assert_eq!(
            vote_sign_bytes("c", &v).unwrap_err().field,
            "part set header"
        );
        let p = ProposalSpec::new(1, 0, None).with_pol_round(-2);
        assert_eq!(proposal_sign_bytes("c", &p).unwrap_err().field, "pol round");
        assert!(extension_sign_bytes("c", &VoteSpec::precommit(-5, 0, None)).is_err());
    }

    #[test]
    fn extension_bytes_do_not_depend_on_block_or_timestamp() {
        let a = VoteSpec::precommit(7, 1, Some(BlockIdSpec::for_height(7)))
            .with_extension(b"x".to_vec());
        let b = VoteSpec::precommit(7, 1, Some(BlockIdSpec::for_height(8)))
            .with_extension(b"x".to_vec())
            .with_timestamp(99, 0);
        assert_eq!(
            extension_sign_bytes("c", &a).unwrap(),
            extension_sign_bytes("c", &b).unwrap()
        );
    }
}
