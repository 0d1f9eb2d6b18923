//! Public keys, the addresses and ids derived from them, and the forms they
//! are shown in (bech32 with the amino prefix, Cosmos JSON, base64, hex).

use std::fmt;
use std::str::FromStr;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::{AMINO_ED25519_PUBKEY_PREFIX, PEER_ID_LEN, PUBLIC_KEY_LEN};
use crate::types::{ADDRESS_LEN, SIGNATURE_LEN};

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

/// A bech32 human-readable prefix (`-b`) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{hrp:?} cannot be used as a bech32 prefix ({reason}); use e.g. \"cosmosvalconspub\" for keys or \"cosmosvalcons\" for addresses")]
pub struct Bech32Error {
    pub hrp: String,
    pub reason: String,
}

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Standard base64, as in CometBFT's `pub_key.value`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Uppercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// The Cosmos SDK's JSON form, as `gaiad tx staking create-validator
    /// --pubkey` takes it.
    pub fn to_cosmos_json(&self) -> String {
        format!(
            "{{\"@type\":\"/cosmos.crypto.ed25519.PubKey\",\"key\":\"{}\"}}",
            self.to_base64()
        )
    }

    /// The amino encoding: [`AMINO_ED25519_PUBKEY_PREFIX`] then the key.
    pub fn to_amino_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(AMINO_ED25519_PUBKEY_PREFIX.len() + PUBLIC_KEY_LEN);
        out.extend_from_slice(&AMINO_ED25519_PUBKEY_PREFIX);
        out.extend_from_slice(&self.0);
        out
    }

    /// Bech32 of the amino encoding, e.g. `cosmosvalconspub1zcjduepq…` for
    /// the prefix `cosmosvalconspub`.
    pub fn to_bech32(&self, hrp: &str) -> Result<String, Bech32Error> {
        bech32_encode(hrp, &self.to_amino_bytes())
    }

    /// Validator address: the first 20 bytes of SHA-256 of the key.
    pub fn validator_address(&self) -> [u8; ADDRESS_LEN] {
        truncated_sha256(&self.0)
    }

    /// Validator address as CometBFT shows it (uppercase hex).
    pub fn validator_address_hex(&self) -> String {
        hex::encode_upper(self.validator_address())
    }

    /// Bech32 of the 20 address bytes, e.g. with the prefix `cosmosvalcons`.
    pub fn validator_address_bech32(&self, hrp: &str) -> Result<String, Bech32Error> {
        bech32_encode(hrp, &self.validator_address())
    }

    /// Node (peer) id, as used in `tcp://<id>@host:port`: the same truncated
    /// hash as the validator address.
    pub fn peer_id(&self) -> [u8; PEER_ID_LEN] {
        truncated_sha256(&self.0)
    }

    /// Node id as CometBFT prints it (lowercase hex).
    pub fn peer_id_hex(&self) -> String {
        hex::encode(self.peer_id())
    }

    /// Verify an Ed25519 signature (strict: rejects small-order keys and
    /// non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &signature).is_ok()
    }

    /// The key in the chosen format; `bech32_hrp` is only used for
    /// [`PubkeyFormat::Bech32`].
    pub fn format(&self, format: PubkeyFormat, bech32_hrp: &str) -> Result<String, Bech32Error> {
        Ok(match format {
            PubkeyFormat::Bech32 => self.to_bech32(bech32_hrp)?,
            PubkeyFormat::Base64 => self.to_base64(),
            PubkeyFormat::Json => self.to_cosmos_json(),
            PubkeyFormat::Hex => self.to_hex(),
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

fn truncated_sha256(bytes: &[u8]) -> [u8; 20] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 20];
    out.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
    out
}

fn bech32_encode(hrp: &str, data: &[u8]) -> Result<String, Bech32Error> {
    let err = |reason: String| Bech32Error {
        hrp: hrp.to_owned(),
        reason,
    };
    let parsed = bech32::Hrp::parse(hrp).map_err(|e| err(e.to_string()))?;
    bech32::encode::<bech32::Bech32>(parsed, data).map_err(|e| err(e.to_string()))
}

/// How `pubkey` prints a public key (`-p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PubkeyFormat {
    /// Bech32 of the amino encoding (`cosmosvalconspub1…`).
    #[default]
    Bech32,
    /// Standard base64 of the 32 key bytes.
    Base64,
    /// Cosmos SDK JSON (`{"@type":"/cosmos.crypto.ed25519.PubKey","key":…}`).
    Json,
    /// Uppercase hex of the 32 key bytes.
    Hex,
}

impl PubkeyFormat {
    pub const ALL: [PubkeyFormat; 4] = [
        PubkeyFormat::Bech32,
        PubkeyFormat::Base64,
        PubkeyFormat::Json,
        PubkeyFormat::Hex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PubkeyFormat::Bech32 => "bech32",
            PubkeyFormat::Base64 => "base64",
            PubkeyFormat::Json => "json",
            PubkeyFormat::Hex => "hex",
        }
    }
}

impl fmt::Display for PubkeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown public key format {0:?}; expected one of bech32, base64, json, hex")]
pub struct UnknownPubkeyFormat(pub String);

impl FromStr for PubkeyFormat {
    type Err = UnknownPubkeyFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownPubkeyFormat(s.to_owned()))
    }
}
