//! The CometBFT v1 privval messages (`cometbft.privval.v1`), which
//! tendermint-proto 0.41 does not ship, from the published
//! `iq-cometbft-proto` crate rather than declared by hand: the simulator
//! stays independent of the signer's own copy in `tmkms-light`.
//!
//! `cometbft.types.v1.Vote` and `Proposal` have the same fields and numbers
//! as `tendermint.types` of v0.38, which the rest of the simulator builds
//! and verifies; [`transcode`] moves a message between the two.

pub use iq_cometbft_proto::privval::v1::message::Sum;
pub use iq_cometbft_proto::privval::v1::{
    Message, PingRequest, PingResponse, PubKeyRequest, PubKeyResponse, RemoteSignerError,
    SignBytesRequest, SignBytesResponse, SignProposalRequest, SignVoteRequest,
    SignedProposalResponse, SignedVoteResponse,
};
pub use iq_cometbft_proto::types::v1::{Proposal, Vote};

/// Re-reads `message` as `T`, a type with the same field numbers (a v0.38
/// vote or proposal as its v1 counterpart, or back).
pub fn transcode<T: prost::Message + Default>(
    message: &impl prost::Message,
) -> Result<T, prost::DecodeError> {
    T::decode(message.encode_to_vec().as_slice())
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::spec::{BlockIdSpec, ProposalSpec, VoteSpec};

    #[test]
    fn v0_38_votes_and_proposals_are_v1_ones_byte_for_byte() {
        let vote = VoteSpec::precommit(7, 2, Some(BlockIdSpec::for_height(7)))
            .with_validator([3; 20], 4)
            .with_extension(b"ext".to_vec())
            .to_raw();
        let v1: Vote = transcode(&vote).unwrap();
        assert_eq!(v1.encode_to_vec(), vote.encode_to_vec());
        assert_eq!(v1.extension, b"ext");
        assert_eq!(
            transcode::<tendermint_proto::v0_38::types::Vote>(&v1).unwrap(),
            vote
        );

        let proposal = ProposalSpec::new(7, 1, Some(BlockIdSpec::for_height(7)))
            .with_pol_round(0)
            .to_raw();
        let v1: Proposal = transcode(&proposal).unwrap();
        assert_eq!(v1.encode_to_vec(), proposal.encode_to_vec());
        assert_eq!(v1.pol_round, 0);
    }
}
