//! Ed25519 keys: the consensus key that signs votes and proposals, the
//! identity key that authenticates SecretConnection, their files, import from
//! CometBFT and tmkms, and the ways a public key is shown to operators.
//!
//! # Key file format
//!
//! A key file holds the standard base64 (with padding) of the 32-byte Ed25519
//! seed followed by a newline — the format of tmkms's softsign key files, so
//! those are read as they are. Reading also accepts base64 of 64 bytes (seed
//! followed by public key; the public key must match the seed) and surrounding
//! whitespace, nothing else. Files are written with mode 0600 into directories
//! created with mode 0700, atomically (temporary file, fsync, link or rename,
//! directory fsync).
//!
//! # Secrets
//!
//! Key types redact themselves in `Debug`; intermediate secret buffers are
//! [`Zeroizing`]; no error message or log line contains secret bytes (file
//! parse errors describe the expected shape instead of quoting the input).
//!
//! # Layout
//!
//! * [`public_key`] — public keys, addresses and the forms they are shown in;
//! * `secret` — the in-memory Ed25519 secret both key roles wrap;
//! * [`key_roles`] — the consensus and identity keys, kept apart by type;
//! * `key_file` — our (= tmkms's) base64 key file format;
//! * `comet_json` — CometBFT's `priv_validator_key.json` / `node_key.json`;
//! * `import` — reading either format, detected by content;
//! * `secret_file` — reading and atomically writing private files on disk;
//! * [`error`] — what can go wrong, naming the file.

mod comet_json;
pub mod error;
mod import;
mod key_file;
pub mod key_roles;
pub mod public_key;
mod secret;
mod secret_file;
#[cfg(test)]
mod tests;

pub use error::{FormatProblem, KeyError};
#[cfg(unix)]
pub use import::{import_identity_key_file, import_key_file};
pub use import::{parse_consensus_key_file, parse_identity_key_file};
pub use key_roles::{ConsensusKey, IdentityKey};
pub use public_key::{Bech32Error, PubkeyFormat, PublicKey, UnknownPubkeyFormat};
#[cfg(unix)]
pub use secret_file::write_secret_file;
pub use secret_file::{is_mode_too_open, WriteMode};

/// Length of an Ed25519 seed (the secret key as stored).
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of CometBFT's private-key encoding: seed followed by public key.
pub const KEYPAIR_LEN: usize = SEED_LEN + PUBLIC_KEY_LEN;
/// Length of a node (peer) id: the first 20 bytes of SHA-256 of the public key.
pub const PEER_ID_LEN: usize = 20;

/// Amino prefix of an Ed25519 public key (`tendermint/PubKeyEd25519`): the
/// 4-byte amino type prefix followed by the length byte 0x20. The Cosmos SDK
/// still puts it in front of the key in bech32 `…valconspub` strings.
pub const AMINO_ED25519_PUBKEY_PREFIX: [u8; 5] = [0x16, 0x24, 0xDE, 0x64, 0x20];

/// Mode of key files we write.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Mode of directories we create for key files.
pub const KEY_DIR_MODE: u32 = 0o700;

/// Largest key file we read. Key files are well below 1 KiB; anything bigger
/// is not a key file.
pub const MAX_KEY_FILE_LEN: u64 = 8 * 1024;
