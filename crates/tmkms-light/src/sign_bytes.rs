//! Canonical sign bytes: what the consensus key actually signs.
//!
//! Each is a length-delimited protobuf of a `Canonical*` message built with
//! the chain id from *our* configuration (the guard has already checked the
//! request's chain id against it). The canonical message types come from
//! `tendermint-proto`; the encoding is prost's.

use prost::Message as _;
use tendermint_proto::google::protobuf::Timestamp as RawTimestamp;
use tendermint_proto::v0_38::types::{
    CanonicalBlockId, CanonicalPartSetHeader, CanonicalProposal, CanonicalVote,
    CanonicalVoteExtension,
};

use crate::privval::frame::put_uvarint;
use crate::types::{BlockId, ChainId, Proposal, Timestamp, Vote, PROPOSAL_WIRE_TYPE};

fn canonical_block_id(block_id: Option<&BlockId>) -> Option<CanonicalBlockId> {
    block_id.map(|id| CanonicalBlockId {
        hash: id.hash.to_vec(),
        part_set_header: Some(CanonicalPartSetHeader {
            total: id.part_set_header.total,
            hash: id.part_set_header.hash.to_vec(),
        }),
    })
}

fn raw_timestamp(ts: Timestamp) -> RawTimestamp {
    RawTimestamp {
        seconds: ts.seconds,
        nanos: ts.nanos,
    }
}

/// The `CanonicalVote` of `vote`, as a raw message (used by the guard to
/// compare two votes while ignoring their timestamps).
pub(crate) fn canonical_vote(chain_id: &ChainId, vote: &Vote) -> CanonicalVote {
    CanonicalVote {
        r#type: vote.kind.wire_type(),
        height: vote.height.as_i64(),
        round: vote.round.as_i64(),
        block_id: canonical_block_id(vote.block_id.as_ref()),
        timestamp: Some(raw_timestamp(vote.timestamp)),
        chain_id: chain_id.as_str().to_owned(),
    }
}

pub(crate) fn canonical_proposal(chain_id: &ChainId, proposal: &Proposal) -> CanonicalProposal {
    CanonicalProposal {
        r#type: PROPOSAL_WIRE_TYPE,
        height: proposal.height.as_i64(),
        round: proposal.round.as_i64(),
        pol_round: proposal.pol_round.map_or(-1, |r| r.as_i64()),
        block_id: canonical_block_id(proposal.block_id.as_ref()),
        timestamp: Some(raw_timestamp(proposal.timestamp)),
        chain_id: chain_id.as_str().to_owned(),
    }
}

/// Sign bytes of a prevote or precommit.
pub fn vote_sign_bytes(chain_id: &ChainId, vote: &Vote) -> Vec<u8> {
    canonical_vote(chain_id, vote).encode_length_delimited_to_vec()
}

/// Sign bytes of a proposal.
pub fn proposal_sign_bytes(chain_id: &ChainId, proposal: &Proposal) -> Vec<u8> {
    canonical_proposal(chain_id, proposal).encode_length_delimited_to_vec()
}

/// Key of `CanonicalVoteExtension.extension`: field 1, length-delimited.
const EXTENSION_FIELD_KEY: u8 = (1 << 3) | 2;

/// Sign bytes of a precommit's vote extension (v0.38+). Signed for every
/// non-nil precommit, also when the extension is empty.
///
/// The encoding of `CanonicalVoteExtension`, with its first field, the
/// extension (up to 1 MiB), written here from the borrowed vote: prost would
/// need the message to own a copy of it, one more copy than the sign bytes
/// themselves. The other fields are prost's encoding, which follows the
/// extension since protobuf fields are written in field-number order and an
/// empty field is left out.
pub fn vote_extension_sign_bytes(chain_id: &ChainId, vote: &Vote) -> Vec<u8> {
    let rest = CanonicalVoteExtension {
        extension: Vec::new(),
        height: vote.height.as_i64(),
        round: vote.round.as_i64(),
        chain_id: chain_id.as_str().to_owned(),
    }
    .encode_to_vec();
    let extension = vote.extension.as_slice();
    let extension_field_len = if extension.is_empty() {
        0
    } else {
        1 + prost::length_delimiter_len(extension.len()) + extension.len()
    };
    let len = extension_field_len + rest.len();
    let mut out = Vec::with_capacity(prost::length_delimiter_len(len) + len);
    put_uvarint(&mut out, len as u64);
    if !extension.is_empty() {
        out.push(EXTENSION_FIELD_KEY);
        put_uvarint(&mut out, extension.len() as u64);
        out.extend_from_slice(extension);
    }
    out.extend_from_slice(&rest);
    out
}

/// Decode stored vote sign bytes back into their canonical form, so that a
/// new vote at the same height/round/step can be compared with the stored
/// one field by field. `None` if the bytes are not a canonical vote.
pub(crate) fn decode_canonical_vote(sign_bytes: &[u8]) -> Option<CanonicalVote> {
    CanonicalVote::decode_length_delimited(sign_bytes).ok()
}

pub(crate) fn decode_canonical_proposal(sign_bytes: &[u8]) -> Option<CanonicalProposal> {
    CanonicalProposal::decode_length_delimited(sign_bytes).ok()
}

/// Which consensus message `bytes` are the sign bytes of, for *any* chain
/// id: `Some("vote" | "proposal" | "vote extension")` or `None`.
///
/// A verifier never parses what was signed: it rebuilds the canonical
/// encoding of the vote, proposal or extension it holds and checks the
/// signature over that. So the byte strings that can pass as a consensus
/// signature are exactly the canonical encodings — those that decode as a
/// `Canonical*` message and encode back to the same bytes (deterministic
/// protobuf: fields in order, defaults omitted, no unknown fields; the
/// encoding Go's marshaller and prost share). Recognising them by this
/// round trip catches every chain id and every field value, while leaving
/// other length-prefixed payloads alone.
pub fn consensus_message_kind(bytes: &[u8]) -> Option<&'static str> {
    fn round_trips<M: prost::Message + Default>(bytes: &[u8]) -> bool {
        M::decode_length_delimited(bytes).is_ok_and(|m| m.encode_length_delimited_to_vec() == bytes)
    }
    if round_trips::<CanonicalVote>(bytes) {
        Some("vote")
    } else if round_trips::<CanonicalProposal>(bytes) {
        Some("proposal")
    } else if round_trips::<CanonicalVoteExtension>(bytes) {
        Some("vote extension")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Height, PartSetHeader, Round, VoteKind};

    fn chain() -> ChainId {
        ChainId::try_from("test-chain").unwrap()
    }

    fn vote(kind: VoteKind, block: bool) -> Vote {
        Vote {
            kind,
            height: Height::from(1u32),
            round: Round::from(0u16),
            block_id: block.then_some(BlockId {
                hash: [0xAA; 32],
                part_set_header: PartSetHeader {
                    total: 1,
                    hash: [0xBB; 32],
                },
            }),
            timestamp: Timestamp::new(1_700_000_000, 5).unwrap(),
            validator_address: vec![0x11; 20],
            validator_index: 0,
            extension: b"ext".to_vec(),
        }
    }

    /// Hand-derived from the protobuf encoding rules of `CanonicalVote`
    /// (proto/tendermint/types/canonical.proto): type=2 varint, height and
    /// round sfixed64 (round 0 omitted), no block id for nil, timestamp
    /// {seconds=1700000000, nanos=5}, chain id.
    #[test]
    fn nil_precommit_sign_bytes_vector() {
        let bytes = vote_sign_bytes(&chain(), &vote(VoteKind::Precommit, false));
        let expected = hex::decode(concat!(
            "21",                 // length 33
            "0802",               // type = precommit
            "110100000000000000", // height = 1 (sfixed64)
            "2a08",
            "0880e2cfaa06",
            "1005", // timestamp (8 bytes)
            "320a",
            "746573742d636861696e", // chain id
        ))
        .unwrap();
        assert_eq!(hex::encode(&bytes), hex::encode(&expected));
    }

    #[test]
    fn extension_sign_bytes_vector() {
        let bytes = vote_extension_sign_bytes(&chain(), &vote(VoteKind::Precommit, true));
        let expected = hex::decode(concat!(
            "1a",                 // length 26
            "0a03657874",         // extension "ext"
            "110100000000000000", // height 1
            "220a",
            "746573742d636861696e",
        ))
        .unwrap();
        assert_eq!(hex::encode(&bytes), hex::encode(&expected));
    }

    /// The hand-written extension field gives the bytes prost gives for
    /// the whole message: empty and non-empty extensions, extension lengths
    /// on both sides of each uvarint size step (also of the total length
    /// prefix), round 0 (left out) and not, the largest extension.
    #[test]
    fn extension_sign_bytes_equal_prost_encoding() {
        for len in [0, 1, 100, 127, 128, 16_383, 16_384, 1 << 20] {
            for (height, round) in [(1u32, 0u16), (7, 3), (u32::MAX, u16::MAX)] {
                let mut v = vote(VoteKind::Precommit, true);
                v.extension = (0..len).map(|i| i as u8).collect();
                v.height = Height::from(height);
                v.round = Round::from(round);
                let expected = CanonicalVoteExtension {
                    extension: v.extension.clone(),
                    height: v.height.as_i64(),
                    round: v.round.as_i64(),
                    chain_id: chain().as_str().to_owned(),
                }
                .encode_length_delimited_to_vec();
                assert!(
                    vote_extension_sign_bytes(&chain(), &v) == expected,
                    "extension of {len} bytes at {height}/{round}"
                );
            }
        }
    }

    #[test]
    fn recognises_consensus_sign_bytes_of_any_chain() {
        let other = ChainId::try_from("other-chain").unwrap();
        for chain_id in [chain(), other] {
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                for block in [false, true] {
                    let v = vote(kind, block);
                    assert_eq!(
                        consensus_message_kind(&vote_sign_bytes(&chain_id, &v)),
                        Some("vote")
                    );
                    let ext = vote_extension_sign_bytes(&chain_id, &v);
                    assert!(consensus_message_kind(&ext).is_some());
                }
            }
            let p = Proposal {
                height: Height::from(9u32),
                round: Round::from(2u16),
                pol_round: None,
                block_id: vote(VoteKind::Precommit, true).block_id,
                timestamp: Timestamp::new(1_700_000_001, 0).unwrap(),
            };
            assert!(consensus_message_kind(&proposal_sign_bytes(&chain_id, &p)).is_some());
        }
    }

    #[test]
    fn leaves_other_payloads_alone() {
        // Not length-prefixed, a prefix that does not match, unknown fields.
        for bytes in [
            &b"celestia raw bytes"[..],
            &[0x05, 0x01][..],
            &hex::decode("05f80101020304").unwrap()[..],
        ] {
            assert_eq!(consensus_message_kind(bytes), None, "{bytes:02x?}");
        }
    }

    #[test]
    fn canonical_vote_round_trips_through_sign_bytes() {
        let v = vote(VoteKind::Prevote, true);
        let bytes = vote_sign_bytes(&chain(), &v);
        assert_eq!(
            decode_canonical_vote(&bytes),
            Some(canonical_vote(&chain(), &v))
        );
    }
}
