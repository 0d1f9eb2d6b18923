//! Why a key could not be read, imported or written.

use std::io;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

use thiserror::Error;

use super::comet_json::COMET_PRIVKEY_TYPE;
use super::key_file::{KEYPAIR_B64_LEN, SEED_B64_LEN};
use super::MAX_KEY_FILE_LEN;

/// Why a key file could not be read, imported or written. Every variant names
/// the file.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("could not {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("key file {} already exists; refusing to replace a key (move the old file away first if you really mean to replace it)", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("{} is not a regular file; expected a key file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} exists but is not a directory; key files need a directory there", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} has no file name; give the path of a key file", path.display())]
    NoFileName { path: PathBuf },
    #[error("key file {} is larger than {MAX_KEY_FILE_LEN} bytes; expected a small text file (base64 of a 32-byte Ed25519 seed, or a CometBFT key JSON)", path.display())]
    TooLarge { path: PathBuf },
    #[error("key file {}: {problem}", path.display())]
    Format {
        path: PathBuf,
        problem: FormatProblem,
    },
}

/// What is wrong with the contents of a key file. Messages describe what was
/// expected and never quote secret material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatProblem {
    #[error("is empty; expected the base64 of a 32-byte Ed25519 seed")]
    Empty,
    #[error("is not UTF-8 text; expected the base64 of a 32-byte Ed25519 seed")]
    NotText,
    #[error("has {found} characters; expected {SEED_B64_LEN} characters of base64 (a 32-byte Ed25519 seed) or {KEYPAIR_B64_LEN} (64 bytes: seed followed by public key), on one line")]
    Base64Length { found: usize },
    #[error(
        "is not valid base64; expected the standard base64 alphabet with '=' padding, on one line"
    )]
    Base64,
    #[error("decodes to {found} bytes; expected 32 (an Ed25519 seed) or 64 (seed followed by public key)")]
    DecodedLength { found: usize },
    #[error("holds a seed and a public key that do not belong together (the file is corrupt or was assembled by hand)")]
    EmbeddedPublicKeyMismatch,
    #[error("is not valid JSON (line {line}, column {column}); expected a CometBFT priv_validator_key.json or node_key.json, or a base64 key file")]
    Json { line: usize, column: usize },
    #[error("does not have the shape of a CometBFT key file (line {line}, column {column}); expected {{\"priv_key\":{{\"type\":\"{COMET_PRIVKEY_TYPE}\",\"value\":\"<base64>\"}}, ...}}")]
    JsonShape { line: usize, column: usize },
    #[error("has no \"{field}\"; a CometBFT {file} always has one")]
    MissingField {
        field: &'static str,
        file: &'static str,
    },
    #[error(
        "has \"{field}\" {found:?}; expected \"{expected}\" (tmkms-light only uses Ed25519 keys)"
    )]
    KeyType {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("\"{field}\" is not {expected}")]
    FieldValue {
        field: &'static str,
        expected: &'static str,
    },
    #[error("\"priv_key\" holds a seed and a public key that do not belong together (the file is corrupt)")]
    PrivKeyInconsistent,
    #[error("\"pub_key\" is {found} but \"priv_key\" belongs to the public key {derived}; the file mixes two keys")]
    PublicKeyMismatch { found: String, derived: String },
    #[error("\"address\" is {found} but the key's address is {derived}; the file mixes two keys")]
    AddressMismatch { found: String, derived: String },
    #[error("is JSON, but a key file (base64 of a 32-byte Ed25519 seed) is expected here; import the CometBFT key into a key file first")]
    JsonNotKeyFile,
    #[error("is a CometBFT node_key.json (the node's p2p identity), not a validator consensus key; import the node's priv_validator_key.json instead")]
    NodeKeyNotConsensusKey,
    #[error("is a CometBFT priv_validator_key.json (a validator consensus key); the identity key must be a different key: generate one or import a node_key.json")]
    ConsensusKeyNotIdentityKey,
}

#[cfg(unix)]
pub(super) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |error| KeyError::Io {
        action,
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(unix)]
pub(super) fn format_error(path: &Path) -> impl FnOnce(FormatProblem) -> KeyError + '_ {
    move |problem| KeyError::Format {
        path: path.to_path_buf(),
        problem,
    }
}
