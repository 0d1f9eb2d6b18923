//! The tmkms-light AWS Nitro enclave application.
//!
//! The consensus key (and the SecretConnection identity key) exist in the
//! clear only here. `init` generates them inside the enclave and encrypts
//! them with AWS KMS; `start` asks KMS to decrypt them *for this enclave
//! only*: the request carries an NSM attestation document with a fresh RSA
//! public key, KMS (whose key policy checks the document's PCRs) returns the
//! plaintext encrypted to that key, and the enclave opens the envelope
//! itself. The host relays ciphertext only.
//!
//! The enclave reaches the outside through its host helper: one control
//! connection (requests below), named streams for state and node traffic
//! ([`tmkms_light::link`] announcements), one long-lived log stream, and
//! the KMS proxy. In production these are vsock endpoints; tests use Unix
//! sockets — the code is the same ([`tmkms_nitro_transport::Endpoint`]).

pub mod host;
pub mod keys;
pub mod protocol;

pub use tmkms_nitro_protocol::{kms_policy, user_data};
