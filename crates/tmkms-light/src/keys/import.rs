//! Reading a key in either format, detected by content: our base64 key file
//! or CometBFT's JSON.

#[cfg(unix)]
use std::path::Path;

use super::comet_json::{looks_like_json, parse_comet_json, JsonKind};
use super::error::FormatProblem;
#[cfg(unix)]
use super::error::{format_error, KeyError};
use super::key_file::{key_text, parse_base64_key};
use super::key_roles::{ConsensusKey, IdentityKey};
use super::secret::Ed25519Secret;
#[cfg(unix)]
use super::secret_file::read_key_file;

#[cfg(unix)]
/// Read a consensus key from a key file in our (= tmkms's) base64 format or
/// from a CometBFT `priv_validator_key.json`, detected by content. The JSON's
/// key types, public key and address are all checked against the private key.
pub fn import_key_file(path: &Path) -> Result<ConsensusKey, KeyError> {
    let contents = read_key_file(path)?;
    parse_consensus_key_file(&contents).map_err(format_error(path))
}

#[cfg(unix)]
/// Read an identity key from a key file in our base64 format or from a
/// CometBFT `node_key.json`, detected by content.
pub fn import_identity_key_file(path: &Path) -> Result<IdentityKey, KeyError> {
    let contents = read_key_file(path)?;
    parse_identity_key_file(&contents).map_err(format_error(path))
}

/// The contents of a file [`import_key_file`] reads, parsed without any
/// file I/O.
pub fn parse_consensus_key_file(contents: &[u8]) -> Result<ConsensusKey, FormatProblem> {
    parse_key_contents(contents, JsonKind::PrivValidatorKey).map(ConsensusKey)
}

/// The contents of a file [`import_identity_key_file`] reads, parsed
/// without any file I/O.
pub fn parse_identity_key_file(contents: &[u8]) -> Result<IdentityKey, FormatProblem> {
    parse_key_contents(contents, JsonKind::NodeKey).map(IdentityKey)
}

pub(super) fn parse_key_contents(
    contents: &[u8],
    kind: JsonKind,
) -> Result<Ed25519Secret, FormatProblem> {
    let text = key_text(contents)?;
    if looks_like_json(text) {
        parse_comet_json(text, kind)
    } else {
        parse_base64_key(text)
    }
}
