//! CometBFT's key files: a validator's `priv_validator_key.json` (checked
//! against its own public key and address) and a node's `node_key.json`.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use super::error::FormatProblem;
use super::key_file::{secret_from_decoded, DECODE_BUF_LEN};
use super::public_key::PublicKey;
use super::secret::Ed25519Secret;
use super::{KEYPAIR_LEN, PUBLIC_KEY_LEN};
use crate::types::ADDRESS_LEN;

/// CometBFT's JSON type names for Ed25519 keys.
pub(super) const COMET_PUBKEY_TYPE: &str = "tendermint/PubKeyEd25519";
pub(super) const COMET_PRIVKEY_TYPE: &str = "tendermint/PrivKeyEd25519";

/// JSON documents start with an object or array; base64 never does.
pub(super) fn looks_like_json(text: &str) -> bool {
    text.starts_with(['{', '['])
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonKind {
    PrivValidatorKey,
    NodeKey,
}

/// A JSON string holding secret material: zeroized on drop.
struct SecretString(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretString(Zeroizing::new(s)))
    }
}

#[derive(Deserialize)]
struct CometKeyFile {
    address: Option<String>,
    pub_key: Option<CometTyped<String>>,
    priv_key: Option<CometTyped<SecretString>>,
}

#[derive(Deserialize)]
struct CometTyped<V> {
    #[serde(rename = "type")]
    key_type: String,
    value: V,
}

/// Limits how much of a peer-written string goes into an error message.
pub(super) fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

pub(super) fn check_type(
    field: &'static str,
    found: &str,
    expected: &'static str,
) -> Result<(), FormatProblem> {
    if found == expected {
        Ok(())
    } else {
        Err(FormatProblem::KeyType {
            field,
            found: shorten(found),
            expected,
        })
    }
}

pub(super) fn parse_comet_json(text: &str, kind: JsonKind) -> Result<Ed25519Secret, FormatProblem> {
    // serde_json's messages can quote input values, so only positions are kept.
    let file: CometKeyFile = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => FormatProblem::JsonShape { line, column },
            _ => FormatProblem::Json { line, column },
        }
    })?;
    let file_name = match kind {
        JsonKind::PrivValidatorKey => "priv_validator_key.json",
        JsonKind::NodeKey => "node_key.json",
    };
    let looks_like_node_key = file.address.is_none() && file.pub_key.is_none();
    match kind {
        JsonKind::PrivValidatorKey if looks_like_node_key && file.priv_key.is_some() => {
            return Err(FormatProblem::NodeKeyNotConsensusKey);
        }
        JsonKind::NodeKey if !looks_like_node_key => {
            return Err(FormatProblem::ConsensusKeyNotIdentityKey);
        }
        _ => {}
    }

    let priv_key = required(file.priv_key, "priv_key", file_name)?;
    check_type("priv_key.type", &priv_key.key_type, COMET_PRIVKEY_TYPE)?;
    let mut buf = Zeroizing::new([0u8; DECODE_BUF_LEN]);
    let written = STANDARD
        .decode_slice(priv_key.value.0.trim(), buf.as_mut_slice())
        .ok()
        .filter(|n| *n == KEYPAIR_LEN)
        .ok_or(FormatProblem::FieldValue {
            field: "priv_key.value",
            expected: "base64 of 64 bytes (seed followed by public key)",
        })?;
    let secret =
        secret_from_decoded(&buf, written).map_err(|_| FormatProblem::PrivKeyInconsistent)?;
    let derived = secret.public_key();

    if kind == JsonKind::NodeKey {
        return Ok(secret);
    }

    let pub_key = required(file.pub_key, "pub_key", file_name)?;
    check_type("pub_key.type", &pub_key.key_type, COMET_PUBKEY_TYPE)?;
    let found_pub: [u8; PUBLIC_KEY_LEN] = exact_bytes(
        STANDARD.decode(pub_key.value.trim()).ok(),
        "pub_key.value",
        "base64 of a 32-byte Ed25519 public key",
    )?;
    if found_pub != derived.0 {
        return Err(FormatProblem::PublicKeyMismatch {
            found: PublicKey(found_pub).to_base64(),
            derived: derived.to_base64(),
        });
    }

    let address = required(file.address, "address", file_name)?;
    let found_address: [u8; ADDRESS_LEN] = exact_bytes(
        hex::decode(address.trim()).ok(),
        "address",
        "40 hex characters (20 bytes)",
    )?;
    if found_address != derived.validator_address() {
        return Err(FormatProblem::AddressMismatch {
            found: hex::encode_upper(found_address),
            derived: derived.validator_address_hex(),
        });
    }
    Ok(secret)
}

/// A field every CometBFT `file` has.
fn required<T>(
    value: Option<T>,
    field: &'static str,
    file: &'static str,
) -> Result<T, FormatProblem> {
    value.ok_or(FormatProblem::MissingField { field, file })
}

/// A field's decoded bytes (`None`: they did not decode), which must be
/// exactly `N` long.
fn exact_bytes<const N: usize>(
    decoded: Option<Vec<u8>>,
    field: &'static str,
    expected: &'static str,
) -> Result<[u8; N], FormatProblem> {
    decoded
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or(FormatProblem::FieldValue { field, expected })
}
