//! The consensus-key signing capability, behind a trait so that providers
//! can keep the key wherever they protect it (a file, an enclave).

use thiserror::Error;

use crate::types::Signature;

#[derive(Debug, Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Signs with the validator's consensus key.
pub trait ConsensusSigner: Send + Sync {
    /// The Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// Sign `message` (already the full canonical sign bytes).
    fn sign(&self, message: &[u8]) -> Result<Signature, SignError>;
}

impl ConsensusSigner for ed25519_dalek::SigningKey {
    fn public_key(&self) -> [u8; 32] {
        self.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignError> {
        use ed25519_dalek::Signer as _;
        Ok(Signature(
            self.try_sign(message)
                .map_err(|e| SignError(e.to_string()))?
                .to_bytes(),
        ))
    }
}

impl<T: ConsensusSigner + ?Sized> ConsensusSigner for std::sync::Arc<T> {
    fn public_key(&self) -> [u8; 32] {
        (**self).public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignError> {
        (**self).sign(message)
    }
}
