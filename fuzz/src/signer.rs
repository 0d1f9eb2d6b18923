//! The real `ChainSigner` the signing targets drive, and the check that
//! what it released verifies.

use ed25519_dalek::{Signature, SigningKey, Verifier as _, VerifyingKey};
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::sign_bytes::{proposal_sign_bytes, vote_extension_sign_bytes, vote_sign_bytes};
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::{ChainId, Proposal, Vote};

/// The consensus key of every signing target: fixed, so a finding replays.
fn consensus_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A policy for `chain_id` without a height limit, refusing sign-bytes;
/// targets change the fields they vary.
pub fn policy(chain_id: ChainId) -> ChainPolicy {
    ChainPolicy {
        chain_id,
        max_height: None,
        danger_allow_sign_bytes: false,
    }
}

/// The real signer with the fixed consensus key, starting from `store`.
pub fn open(
    policy: ChainPolicy,
    store: impl StateStore + 'static,
) -> Result<ChainSigner<SigningKey>, StateError> {
    ChainSigner::open(policy, consensus_key(), Box::new(store))
}

/// Verifies released signatures over the sign bytes of what the response
/// says was signed, for one chain; a failure is a finding.
pub struct ReleasedSignatures {
    key: VerifyingKey,
    chain_id: ChainId,
}

impl ReleasedSignatures {
    pub fn for_chain(chain_id: ChainId) -> Self {
        ReleasedSignatures {
            key: consensus_key().verifying_key(),
            chain_id,
        }
    }

    /// Checks a vote signature; returns the vote's sign bytes.
    pub fn verify_vote(&self, vote: &Vote, signature: &[u8]) -> Vec<u8> {
        let bytes = vote_sign_bytes(&self.chain_id, vote);
        self.verify(&bytes, signature);
        bytes
    }

    /// Checks an extension signature over `vote`'s extension.
    pub fn verify_extension(&self, vote: &Vote, signature: &[u8]) {
        self.verify(&vote_extension_sign_bytes(&self.chain_id, vote), signature);
    }

    /// Checks a proposal signature.
    pub fn verify_proposal(&self, proposal: &Proposal, signature: &[u8]) {
        self.verify(&proposal_sign_bytes(&self.chain_id, proposal), signature);
    }

    fn verify(&self, message: &[u8], signature: &[u8]) {
        let signature = Signature::from_slice(signature).expect("64-byte signature");
        self.key
            .verify(message, &signature)
            .expect("released signature verifies");
    }
}
