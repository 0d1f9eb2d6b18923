//! The two roles an Ed25519 key plays: the consensus key that signs votes
//! and proposals, and the identity key that authenticates SecretConnection.
//! Each role is its own type so one cannot be passed where the other is
//! expected.

use std::fmt;
#[cfg(unix)]
use std::path::Path;

use zeroize::Zeroizing;

#[cfg(unix)]
use super::error::KeyError;
#[cfg(unix)]
use super::key_file::load_key_file;
use super::public_key::PublicKey;
use super::secret::Ed25519Secret;
#[cfg(unix)]
use super::secret_file::{write_secret_file, WriteMode};
use super::{PEER_ID_LEN, SEED_LEN};
use crate::signer::{ConsensusSigner, SignError};
use crate::types::{Signature, SIGNATURE_LEN};

/// The constructors, accessors and file methods both roles share, written
/// once for each role type (a newtype over [`Ed25519Secret`]).
macro_rules! shared_key_methods {
    ($role:ident, $import:literal) => {
        impl $role {
            /// A new random key from the operating system's CSPRNG.
            pub fn generate() -> Self {
                Self(Ed25519Secret::generate())
            }

            pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
                Self(Ed25519Secret::from_seed(seed))
            }

            /// The secret seed, for a provider that seals or encrypts it. Do
            /// not log or display it.
            pub fn secret_seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
                self.0.seed()
            }

            pub fn public_key(&self) -> PublicKey {
                self.0.public_key()
            }

            #[cfg(unix)]
            #[doc = concat!(
                        "Read a key file in our format (see the [module docs](super)). Use [`",
                        $import,
                        "`](super::",
                        $import,
                        ") to also accept CometBFT's JSON."
                    )]
            pub fn load(path: &Path) -> Result<Self, KeyError> {
                load_key_file(path).map(Self)
            }

            #[cfg(unix)]
            /// Write the key file (mode 0600; missing parent directories 0700).
            pub fn write(&self, path: &Path, mode: WriteMode) -> Result<(), KeyError> {
                write_secret_file(path, self.0.key_file_contents().as_bytes(), mode)
            }
        }
    };
}

/// The validator's consensus key: signs votes, proposals and (v1) raw bytes.
pub struct ConsensusKey(pub(super) Ed25519Secret);

shared_key_methods!(ConsensusKey, "import_key_file");

impl ConsensusKey {
    /// Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message)
    }
}

impl fmt::Debug for ConsensusKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsensusKey")
            .field("public_key", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ConsensusSigner for ConsensusKey {
    fn public_key(&self) -> [u8; 32] {
        self.0.public_key().0
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignError> {
        Ok(Signature(self.0.sign(message)))
    }
}

/// The signer's SecretConnection identity key (`id_key_path`). Kept apart
/// from the consensus key by type so the two cannot be mixed up.
pub struct IdentityKey(pub(super) Ed25519Secret);

shared_key_methods!(IdentityKey, "import_identity_key_file");

impl IdentityKey {
    /// Our node id as the node sees it (first 20 bytes of SHA-256 of the
    /// public key).
    pub fn peer_id(&self) -> [u8; PEER_ID_LEN] {
        self.public_key().peer_id()
    }

    /// [`Self::peer_id`] in lowercase hex, as CometBFT prints node ids.
    pub fn peer_id_hex(&self) -> String {
        self.public_key().peer_id_hex()
    }

    /// The key in the form tendermint-p2p's SecretConnection takes. That type
    /// implements `Zeroize` but does not zeroize itself on drop.
    pub fn to_p2p_signing_key(&self) -> ed25519_consensus::SigningKey {
        let seed = self.0.seed();
        ed25519_consensus::SigningKey::from(*seed)
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKey")
            .field("peer_id", &self.peer_id_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}
