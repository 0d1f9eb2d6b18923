//! Our key file format (see the [module docs](super)): base64 of the 32-byte
//! seed, or of seed and public key, and nothing else.

use base64::{engine::general_purpose::STANDARD, Engine as _};
#[cfg(unix)]
use std::path::Path;
use zeroize::Zeroizing;

use super::error::FormatProblem;
#[cfg(unix)]
use super::error::{format_error, KeyError};
use super::secret::Ed25519Secret;
#[cfg(unix)]
use super::secret_file::read_key_file;
use super::{KEYPAIR_LEN, SEED_LEN};

/// Base64 length of a 32-byte seed.
pub(super) const SEED_B64_LEN: usize = 44;
/// Base64 length of 64 bytes.
pub(super) const KEYPAIR_B64_LEN: usize = 88;
/// Decode buffer: `decode_slice` wants room for its rounded-up estimate.
pub(super) const DECODE_BUF_LEN: usize = 66;

#[cfg(unix)]
/// Reads a key file in our format only.
pub(super) fn load_key_file(path: &Path) -> Result<Ed25519Secret, KeyError> {
    let contents = read_key_file(path)?;
    let text = key_text(&contents).map_err(format_error(path))?;
    if looks_like_json(text) {
        return Err(format_error(path)(FormatProblem::JsonNotKeyFile));
    }
    parse_base64_key(text).map_err(format_error(path))
}

/// The trimmed text of a key file.
pub(super) fn key_text(contents: &[u8]) -> Result<&str, FormatProblem> {
    let text = std::str::from_utf8(contents)
        .map_err(|_| FormatProblem::NotText)?
        .trim();
    if text.is_empty() {
        return Err(FormatProblem::Empty);
    }
    Ok(text)
}

/// JSON documents start with an object or array; base64 never does.
pub(super) fn looks_like_json(text: &str) -> bool {
    text.starts_with(['{', '['])
}

/// Base64 of a 32-byte seed, or of 64 bytes (seed, public key).
pub(super) fn parse_base64_key(text: &str) -> Result<Ed25519Secret, FormatProblem> {
    let len = text.len();
    if len != SEED_B64_LEN && len != KEYPAIR_B64_LEN {
        return Err(FormatProblem::Base64Length { found: len });
    }
    let mut buf = Zeroizing::new([0u8; DECODE_BUF_LEN]);
    let written = STANDARD
        .decode_slice(text, buf.as_mut_slice())
        .map_err(|_| FormatProblem::Base64)?;
    secret_from_decoded(&buf, written)
}

/// Builds the key from the first `written` bytes of `buf` (32: seed; 64:
/// seed and public key, which must match).
pub(super) fn secret_from_decoded(
    buf: &[u8; DECODE_BUF_LEN],
    written: usize,
) -> Result<Ed25519Secret, FormatProblem> {
    let wrong_length = FormatProblem::DecodedLength { found: written };
    if written == SEED_LEN {
        let seed = Zeroizing::new(*buf.first_chunk::<SEED_LEN>().ok_or(wrong_length)?);
        Ok(Ed25519Secret::from_seed(&seed))
    } else if written == KEYPAIR_LEN {
        let pair = Zeroizing::new(*buf.first_chunk::<KEYPAIR_LEN>().ok_or(wrong_length)?);
        Ed25519Secret::from_keypair(&pair).ok_or(FormatProblem::EmbeddedPublicKeyMismatch)
    } else {
        Err(wrong_length)
    }
}
