//! A CometBFT node simulator for the privval (remote signer) protocol.
//!
//! It plays the node: it listens (`tcp://` with SecretConnection, or
//! `unix://`), the signer dials in, and it sends the requests a validator
//! node sends — public key, ping, proposals and votes — in one of the wire
//! dialects ([`Dialect`]). Every answer is checked independently of the
//! signer: sign bytes come from the tendermint-rs domain types, signatures
//! are verified with `ed25519-consensus`, and the vote-extension rules of
//! CometBFT's `SignAndCheckVote` are enforced.
//!
//! ```no_run
//! use std::time::Duration;
//! use tmkms_node_sim::{scenario, Dialect, NodeListener};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38)?;
//! println!("point the signer at {}", listener.local_addr());
//! let mut conn = listener.accept(Duration::from_secs(30))?;
//! let pubkey = conn.pubkey("test-chain")??;
//! let stats = scenario::normal_heights(&mut conn, "test-chain", 1, 10, &pubkey, Dialect::V0_38)?;
//! println!("p99 {:?}", stats.latencies.percentile(99.0));
//! # Ok(())
//! # }
//! ```
//!
//! This crate deliberately does not depend on the signer's own crates.

pub mod chaos;
pub mod codec;
pub mod conformance;
mod conn;
pub mod crash;
mod dialect;
mod error;
pub mod etcd;
pub mod etcd_serve;
pub mod harness;
pub mod home;
pub mod proto_v1;
pub mod scenario;
mod sign_bytes;
mod spec;
pub mod stats;
mod verify;

pub use conn::{
    NodeListener, Readiness, SignerConn, DEFAULT_TIMEOUT, MAX_BUFFERED_RESPONSE,
    MAX_VOTE_EXTENSION_SIZE,
};
pub use dialect::{Dialect, UnknownDialect};
pub use error::SimError;
pub use sign_bytes::{extension_sign_bytes, proposal_sign_bytes, vote_sign_bytes, SpecError};
pub use spec::{
    codes, default_timestamp, msg_type, validator_address, BlockIdSpec, ProposalSpec, RemoteError,
    SignedProposal, SignedVote, VoteKind, VoteSpec, BASE_UNIX_TIME, GO_ZERO_TIME_SECS,
};
pub use verify::{
    expects_extension_signature, verify_proposal, verify_signature, verify_vote, VerifyError,
};
