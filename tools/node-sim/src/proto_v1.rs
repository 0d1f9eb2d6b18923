//! The CometBFT v1 privval messages (`cometbft.privval.v1`), which
//! tendermint-proto 0.41 does not ship.
//!
//! Field numbers follow `proto/cometbft/privval/v1/types.proto` at CometBFT
//! v1.0.1. `cometbft.types.v1.Vote` and `Proposal` have the same fields and
//! numbers as `tendermint.types` of v0.38, so those messages are reused.

use tendermint_proto::v0_38::privval::RemoteSignerError;
use tendermint_proto::v0_38::types::{Proposal, Vote};

/// `PubKeyRequest { string chain_id = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct PubKeyRequest {
    #[prost(string, tag = "1")]
    pub chain_id: String,
}

/// `PubKeyResponse { RemoteSignerError error = 2; bytes pub_key_bytes = 3;
/// string pub_key_type = 4; reserved 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct PubKeyResponse {
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
    #[prost(bytes = "vec", tag = "3")]
    pub pub_key_bytes: Vec<u8>,
    #[prost(string, tag = "4")]
    pub pub_key_type: String,
}

/// `SignVoteRequest { Vote vote = 1; string chain_id = 2;
/// bool skip_extension_signing = 3; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignVoteRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(string, tag = "2")]
    pub chain_id: String,
    #[prost(bool, tag = "3")]
    pub skip_extension_signing: bool,
}

/// `SignedVoteResponse { Vote vote = 1; RemoteSignerError error = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedVoteResponse {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `SignProposalRequest { Proposal proposal = 1; string chain_id = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignProposalRequest {
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    #[prost(string, tag = "2")]
    pub chain_id: String,
}

/// `SignedProposalResponse { Proposal proposal = 1; RemoteSignerError error = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedProposalResponse {
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `SignBytesRequest { bytes value = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignBytesRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
}

/// `SignBytesResponse { bytes signature = 1; RemoteSignerError error = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignBytesResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub signature: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `PingRequest {}`
#[derive(Clone, PartialEq, prost::Message)]
pub struct PingRequest {}

/// `PingResponse {}`
#[derive(Clone, PartialEq, prost::Message)]
pub struct PingResponse {}

/// `Message { oneof sum { … } }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(oneof = "Sum", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub sum: Option<Sum>,
}

/// The `sum` oneof of [`Message`].
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
