//! Raw protobuf types of the CometBFT v1 privval protocol
//! (`cometbft.privval.v1`).
//!
//! `tendermint-proto` 0.41 ships the v0.34/v0.37/v0.38 privval types but not
//! v1's. Of v1's messages, `PubKeyResponse` and `SignVoteRequest` differ
//! from v0.38's, the sign-bytes pair is new, and `Message` holds them all:
//! these are declared here with prost's derives. Every other message is
//! wire-identical to its v0.38 namesake (same fields, same tags) and is that
//! type, as are votes and proposals.

use tendermint_proto::v0_38::privval::RemoteSignerError;
pub use tendermint_proto::v0_38::privval::{
    PingRequest, PingResponse, PubKeyRequest, SignProposalRequest, SignedProposalResponse,
    SignedVoteResponse,
};
use tendermint_proto::v0_38::types::Vote;

/// Field 1 (the v0.x `PublicKey` oneof) is reserved in v1.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PubKeyResponse {
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
    #[prost(bytes = "vec", tag = "3")]
    pub pub_key_bytes: Vec<u8>,
    #[prost(string, tag = "4")]
    pub pub_key_type: String,
}

/// v0.38's with `skip_extension_signing` (field 3) added.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignVoteRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(string, tag = "2")]
    pub chain_id: String,
    #[prost(bool, tag = "3")]
    pub skip_extension_signing: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignBytesRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignBytesResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub signature: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(oneof = "Sum", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub sum: Option<Sum>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Sum {
    #[prost(message, tag = "1")]
    PubKeyRequest(PubKeyRequest),
    #[prost(message, tag = "2")]
    PubKeyResponse(PubKeyResponse),
    #[prost(message, tag = "3")]
    SignVoteRequest(SignVoteRequest),
    #[prost(message, tag = "4")]
    SignedVoteResponse(SignedVoteResponse),
    #[prost(message, tag = "5")]
    SignProposalRequest(SignProposalRequest),
    #[prost(message, tag = "6")]
    SignedProposalResponse(SignedProposalResponse),
    #[prost(message, tag = "7")]
    PingRequest(PingRequest),
    #[prost(message, tag = "8")]
    PingResponse(PingResponse),
    #[prost(message, tag = "9")]
    SignBytesRequest(SignBytesRequest),
    #[prost(message, tag = "10")]
    SignBytesResponse(SignBytesResponse),
}
