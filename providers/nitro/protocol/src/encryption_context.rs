//! The KMS encryption context of the enclave's key ciphertexts. `init`
//! encrypts with it, `start` and `state import` decrypt with it, and the
//! key policy an operator writes (or a test's own KMS call) names the same
//! pairs: KMS decrypts only with the exact context a ciphertext was made with.

use std::collections::BTreeMap;

use tmkms_light::enclave::BoundPolicy;

/// Encryption context of the consensus key's ciphertext.
pub const CONTEXT_CONSENSUS: &str = "consensus-key";
/// Encryption context of the identity key's ciphertext.
pub const CONTEXT_IDENTITY: &str = "identity-key";
/// Encryption-context key under which the purpose is recorded.
pub const CONTEXT_KEY: &str = "tmkms-light";
/// Encryption-context key of the bound policy's digest
/// ([`BoundPolicy::digest_hex`]): KMS decrypts a key only for the policy it
/// was encrypted with.
pub const CONTEXT_POLICY: &str = "tmkms-light-policy";
/// Encryption-context key of the bound chain id (readable in KMS audit logs;
/// the digest covers it too).
pub const CONTEXT_CHAIN_ID: &str = "tmkms-light-chain-id";

/// The KMS encryption context of a key's ciphertext: what it is, and the
/// policy (and, readably, the chain) bound to it at init.
pub fn context(purpose: &str, policy: &BoundPolicy) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CONTEXT_KEY.to_owned(), purpose.to_owned()),
        (CONTEXT_POLICY.to_owned(), policy.digest_hex()),
        (CONTEXT_CHAIN_ID.to_owned(), policy.chain_id.clone()),
    ])
}
