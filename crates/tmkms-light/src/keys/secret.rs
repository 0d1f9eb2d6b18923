//! The in-memory Ed25519 secret that both key roles wrap.

#[cfg(unix)]
use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use zeroize::Zeroizing;

#[cfg(unix)]
use super::key_file::SEED_B64_LEN;
use super::public_key::PublicKey;
use super::{KEYPAIR_LEN, PUBLIC_KEY_LEN, SEED_LEN};
use crate::types::SIGNATURE_LEN;

/// An Ed25519 secret key. `ed25519_dalek::SigningKey` zeroizes itself on
/// drop (crate feature `zeroize`).
pub(super) struct Ed25519Secret(SigningKey);

impl Ed25519Secret {
    pub(super) fn generate() -> Self {
        Self(SigningKey::generate(&mut OsRng))
    }

    pub(super) fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// From seed followed by public key; the public key must match the seed.
    pub(super) fn from_keypair(bytes: &[u8; KEYPAIR_LEN]) -> Option<Self> {
        let seed = Zeroizing::new(*bytes.first_chunk::<SEED_LEN>()?);
        let embedded: &[u8; PUBLIC_KEY_LEN] = bytes.last_chunk()?;
        let secret = Self::from_seed(&seed);
        (secret.public_key().0 == *embedded).then_some(secret)
    }

    pub(super) fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub(super) fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub(super) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        ed25519_dalek::Signer::sign(&self.0, message).to_bytes()
    }

    #[cfg(unix)]
    /// The key file contents: base64 of the seed and a newline. The buffer
    /// is allocated once at its final size, so no unzeroized copy is left
    /// behind by a reallocation.
    pub(super) fn key_file_contents(&self) -> Zeroizing<String> {
        let seed = self.seed();
        let mut out = Zeroizing::new(String::with_capacity(SEED_B64_LEN + 1));
        STANDARD.encode_string(seed.as_slice(), &mut out);
        out.push('\n');
        out
    }
}
