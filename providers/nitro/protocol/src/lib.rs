//! What the Nitro helper (host) and the enclave agree on, and nothing that
//! runs only on one side of the boundary:
//!
//! * [`messages`] — the control requests and answers, and the stream names;
//! * [`kms_policy`] — the one rule for the KMS region, key id and endpoint
//!   (the enclave enforces it, the helper checks its config with it);
//! * [`user_data`] — the init attestation's user data, written by the
//!   enclave and verified by `tmkms-nitro-helper verify`;
//! * [`encryption_context`] — the KMS encryption context of the key
//!   ciphertexts.
//!
//! The helper depends on this crate instead of on the enclave's, so that
//! neither side's code ends up in the other's binary by accident.

pub mod encryption_context;
pub mod kms_policy;
pub mod messages;
pub mod user_data;
