//! Import of the JSON state files operators migrate from, and export of ours
//! in CometBFT's format.
//!
//! Two formats exist in the wild:
//!
//! * **CometBFT** `priv_validator_state.json` (its file signer,
//!   `privval/file.go`, `FilePVLastSignState`): `height` is an `int64`, which
//!   CometBFT's JSON encoder writes as a string; `round` (`int32`) and `step`
//!   (`int8`: 0 none, 1 propose, 2 prevote, 3 precommit) are numbers;
//!   `signature` (base64) and `signbytes` (hex) are left out when empty.
//! * **tmkms** state files, also written by the original tmkms-light
//!   (tendermint-rs `consensus::State`): `height` and
//!   `round` are both strings, `step` is a number with 0 proposal, 1 prevote,
//!   2 precommit, and `block_id` is `null` or a block id object. There are no
//!   sign bytes or signature, so an imported tmkms state can never replay a
//!   signature; the guard refuses a same-position request instead.
//!
//! Parsing is strict because a wrong state is a slashing risk: unknown or
//! duplicate fields, wrong JSON types, out-of-range numbers and inconsistent
//! combinations are errors naming the field, never silently defaulted.
//!
//! [`ImportFormat::Auto`] decides by these rules, in order:
//! 1. a `signature` or `signbytes` field → CometBFT;
//! 2. a `block_id` field → tmkms (both 1 and 2 → error);
//! 3. otherwise by the JSON type of `round`: a number → CometBFT, a string →
//!    tmkms (so `{"height":"5","round":"0","step":1}` is tmkms, step prevote).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use super::record::MAX_SIGN_BYTES;
use super::StateError;
use crate::types::{Height, Position, Round, SignState, Signature, Step, HASH_LEN, SIGNATURE_LEN};

/// Which JSON state format a text is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ImportFormat {
    /// Detect by the rules in the module documentation.
    #[default]
    Auto,
    /// CometBFT `priv_validator_state.json`.
    CometBft,
    /// tmkms / tendermint-rs `consensus::State`.
    Tmkms,
}

impl FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cometbft" => Ok(Self::CometBft),
            "tmkms" => Ok(Self::Tmkms),
            other => Err(format!(
                "unknown state format `{other}`, expected auto, cometbft or tmkms"
            )),
        }
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::CometBft => "cometbft",
            Self::Tmkms => "tmkms",
        })
    }
}

/// Why a JSON text is not an importable state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object at the top level")]
    NotAnObject,
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
    #[error("unknown field `{field}` for the {format} format (expected {expected})")]
    UnknownField {
        field: String,
        format: ImportFormat,
        expected: &'static str,
    },
    #[error("missing field `{field}`, which the {format} format requires")]
    MissingField {
        field: &'static str,
        format: ImportFormat,
    },
    #[error("field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error(
        "cannot tell whether this is a CometBFT or a tmkms state: {0}; name the format explicitly"
    )]
    UnknownFormat(&'static str),
    #[error("inconsistent state: {0}")]
    Inconsistent(&'static str),
}

impl ImportError {
    /// The store-level error for a file at `path`.
    pub fn at(self, path: &Path) -> StateError {
        StateError::Import {
            path: path.display().to_string(),
            reason: self.to_string(),
        }
    }
}

/// Parse a state file's text.
pub fn parse_state_json(text: &str, format: ImportFormat) -> Result<SignState, ImportError> {
    let fields = Fields::parse(text)?;
    let format = match format {
        ImportFormat::Auto => detect(&fields)?,
        explicit => explicit,
    };
    match format {
        ImportFormat::Tmkms => parse_tmkms(fields),
        ImportFormat::CometBft | ImportFormat::Auto => parse_cometbft(fields),
    }
}

/// Render `state` as CometBFT writes `priv_validator_state.json`, so that
/// `state show` output can be fed back to CometBFT or to `state import`.
pub fn to_cometbft_json(state: &SignState) -> String {
    let p = state.position;
    let mut out = format!(
        "{{\n  \"height\": \"{}\",\n  \"round\": {},\n  \"step\": {}",
        p.height.value(),
        p.round.value(),
        p.step.as_u8()
    );
    if let Some(sig) = &state.signature {
        out.push_str(&format!(",\n  \"signature\": \"{}\"", BASE64.encode(sig.0)));
    }
    if !state.sign_bytes.is_empty() {
        out.push_str(&format!(
            ",\n  \"signbytes\": \"{}\"",
            hex::encode_upper(&state.sign_bytes)
        ));
    }
    out.push_str("\n}");
    out
}

fn detect(fields: &Fields) -> Result<ImportFormat, ImportError> {
    let cometbft_only = fields.has("signature") || fields.has("signbytes");
    let tmkms_only = fields.has("block_id");
    match (cometbft_only, tmkms_only) {
        (true, true) => Err(ImportError::UnknownFormat(
            "it has both CometBFT fields (signature/signbytes) and a tmkms field (block_id)",
        )),
        (true, false) => Ok(ImportFormat::CometBft),
        (false, true) => Ok(ImportFormat::Tmkms),
        (false, false) => match fields.get("round") {
            Some(Value::Number(_)) => Ok(ImportFormat::CometBft),
            Some(Value::String(_)) => Ok(ImportFormat::Tmkms),
            Some(_) => Err(ImportError::UnknownFormat(
                "`round` is neither a number (CometBFT) nor a string (tmkms)",
            )),
            None => Err(ImportError::UnknownFormat("there is no `round` field")),
        },
    }
}

const COMETBFT_FIELDS: &str = "height, round, step, signature, signbytes";
const TMKMS_FIELDS: &str = "height, round, step, block_id";

/// The `height` both formats write: an `int64` as a decimal string.
fn height(fields: &mut Fields, format: ImportFormat) -> Result<u64, ImportError> {
    decimal_string("height", fields.require("height", format)?, i64::MAX as u64)
}

fn parse_cometbft(mut fields: Fields) -> Result<SignState, ImportError> {
    const F: ImportFormat = ImportFormat::CometBft;
    let height = height(&mut fields, F)?;
    let round = json_integer("round", fields.require("round", F)?, i32::MAX as u64)?;
    let step = json_integer("step", fields.require("step", F)?, 3)?;
    let signature = match fields.take_unless_null("signature") {
        None => None,
        Some(value) => signature("signature", value)?,
    };
    let sign_bytes = match fields.take_unless_null("signbytes") {
        None => Vec::new(),
        Some(value) => sign_bytes("signbytes", value)?,
    };
    fields.finish(F, COMETBFT_FIELDS)?;

    if !sign_bytes.is_empty() && signature.is_none() {
        return Err(ImportError::Inconsistent(
            "`signbytes` without a `signature` (CometBFT itself refuses to sign with this state)",
        ));
    }
    Ok(SignState {
        position: position(height, round, step)?,
        sign_bytes,
        signature,
    })
}

fn parse_tmkms(mut fields: Fields) -> Result<SignState, ImportError> {
    const F: ImportFormat = ImportFormat::Tmkms;
    let height = height(&mut fields, F)?;
    let round = decimal_string("round", fields.require("round", F)?, i32::MAX as u64)?;
    let tmkms_step = json_integer("step", fields.require("step", F)?, 2)?;
    // A block id is checked, not kept.
    let has_block_id = fields
        .take_unless_null("block_id")
        .map(block_id)
        .transpose()?
        .is_some();
    fields.finish(F, TMKMS_FIELDS)?;

    if height == 0 && round == 0 && tmkms_step == 0 && !has_block_id {
        // What tmkms writes before it has signed anything.
        return Ok(SignState::default());
    }
    // tmkms numbers proposal/prevote/precommit 0/1/2, we (like CometBFT) 1/2/3.
    // A tmkms step 0 can also mean "height set by a hook, nothing signed";
    // reading it as a signed proposal is the safe side: at most one proposal
    // at the imported height and round is refused.
    Ok(SignState {
        position: position(height, round, tmkms_step.saturating_add(1))?,
        sign_bytes: Vec::new(),
        signature: None,
    })
}

fn position(height: u64, round: u64, step: u64) -> Result<Position, ImportError> {
    let invalid = |field: &'static str, reason: String| ImportError::InvalidField { field, reason };
    let height = Height::try_from(height).map_err(|e| invalid("height", e.to_string()))?;
    let round = i64::try_from(round)
        .ok()
        .and_then(|r| Round::try_from(r).ok())
        .ok_or_else(|| invalid("round", format!("{round} is out of range")))?;
    let step = u8::try_from(step)
        .ok()
        .and_then(|s| Step::try_from(s).ok())
        .ok_or_else(|| invalid("step", format!("{step} is not a known step")))?;
    Ok(Position {
        height,
        round,
        step,
    })
}

/// A non-negative integer written as a JSON string of decimal digits, at most `max`.
fn decimal_string(field: &'static str, value: Value, max: u64) -> Result<u64, ImportError> {
    let invalid = |reason: String| ImportError::InvalidField { field, reason };
    let text = string(field, value, "a decimal number in a string, like \"123\"")?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "\"{text}\" is not a non-negative decimal number"
        )));
    }
    text.parse::<u64>()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| invalid(format!("{text} is larger than the maximum {max}")))
}

/// A non-negative JSON integer (not a string, not a fraction), at most `max`.
fn json_integer(field: &'static str, value: Value, max: u64) -> Result<u64, ImportError> {
    let invalid = |reason: String| ImportError::InvalidField { field, reason };
    match &value {
        Value::Number(n) => match n.as_u64() {
            Some(n) if n <= max => Ok(n),
            Some(n) => Err(invalid(format!("{n} is larger than the maximum {max}"))),
            None => Err(invalid(format!("{n} is not an integer from 0 to {max}"))),
        },
        other => Err(invalid(format!(
            "expected a JSON number from 0 to {max}, found {}",
            kind(other)
        ))),
    }
}

fn signature(field: &'static str, value: Value) -> Result<Option<Signature>, ImportError> {
    let invalid = |reason: String| ImportError::InvalidField { field, reason };
    let text = string(field, value, "a base64 string")?;
    if text.is_empty() {
        return Ok(None);
    }
    let bytes = BASE64
        .decode(text.as_bytes())
        .map_err(|e| invalid(format!("not valid base64: {e}")))?;
    let array: [u8; SIGNATURE_LEN] = bytes.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "{} bytes, an Ed25519 signature is {SIGNATURE_LEN}",
            bytes.len()
        ))
    })?;
    Ok(Some(Signature(array)))
}

fn sign_bytes(field: &'static str, value: Value) -> Result<Vec<u8>, ImportError> {
    let invalid = |reason: String| ImportError::InvalidField { field, reason };
    let bytes = hex_bytes(field, value)?;
    if bytes.len() > MAX_SIGN_BYTES {
        return Err(invalid(format!(
            "{} bytes, longer than any canonical vote or proposal (at most {MAX_SIGN_BYTES} are kept)",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Validate a tmkms `block_id` object. Its value is not kept: the guard
/// decides on sign bytes, which a tmkms state does not have.
fn block_id(value: Value) -> Result<(), ImportError> {
    let Value::Object(map) = value else {
        return Err(ImportError::InvalidField {
            field: "block_id",
            reason: format!("expected null or an object, found {}", kind(&value)),
        });
    };
    let mut fields = Fields(map.into_iter().collect());
    hash("block_id.hash", fields.require_nested("block_id.hash")?)?;
    let header = match (fields.take("part_set_header"), fields.take("parts")) {
        (Some(header), None) | (None, Some(header)) => header,
        (Some(_), Some(_)) => {
            return Err(ImportError::DuplicateField(
                "block_id.part_set_header (also written as `parts`)".into(),
            ))
        }
        (None, None) => {
            return Err(ImportError::InvalidField {
                field: "block_id.part_set_header",
                reason: "missing".into(),
            })
        }
    };
    fields.finish_nested("block_id", "hash, part_set_header")?;

    let Value::Object(map) = header else {
        return Err(ImportError::InvalidField {
            field: "block_id.part_set_header",
            reason: format!("expected an object, found {}", kind(&header)),
        });
    };
    let mut fields = Fields(map.into_iter().collect());
    // tendermint-rs reads `total` as a number or (before v0.34) a string.
    match fields.require_nested("block_id.part_set_header.total")? {
        total @ Value::String(_) => {
            decimal_string("block_id.part_set_header.total", total, u64::from(u32::MAX))?
        }
        total => json_integer("block_id.part_set_header.total", total, u64::from(u32::MAX))?,
    };
    hash(
        "block_id.part_set_header.hash",
        fields.require_nested("block_id.part_set_header.hash")?,
    )?;
    fields.finish_nested("block_id.part_set_header", "total, hash")
}

fn hash(field: &'static str, value: Value) -> Result<(), ImportError> {
    let invalid = |reason: String| ImportError::InvalidField { field, reason };
    let bytes = hex_bytes(field, value)?;
    if !bytes.is_empty() && bytes.len() != HASH_LEN {
        return Err(invalid(format!(
            "{} bytes, expected 0 or {HASH_LEN}",
            bytes.len()
        )));
    }
    Ok(())
}

/// The bytes of a field that must be a hex string.
fn hex_bytes(field: &'static str, value: Value) -> Result<Vec<u8>, ImportError> {
    let text = string(field, value, "a hex string")?;
    hex::decode(text.as_bytes()).map_err(|e| ImportError::InvalidField {
        field,
        reason: format!("not valid hex: {e}"),
    })
}

/// The text of a field that must be a JSON string holding `expected`.
fn string(field: &'static str, value: Value, expected: &str) -> Result<String, ImportError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(ImportError::InvalidField {
            field,
            reason: format!("expected {expected}, found {}", kind(&other)),
        }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of a JSON object in document order, duplicates kept so they
/// can be rejected (serde_json's own map keeps only the last one).
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn parse(text: &str) -> Result<Self, ImportError> {
        let fields: Fields = serde_json::from_str(text).map_err(|e| match e.classify() {
            // The only data error left is a top level that is not an object.
            serde_json::error::Category::Data => ImportError::NotAnObject,
            _ => ImportError::Json(e.to_string()),
        })?;
        for (i, (key, _)) in fields.0.iter().enumerate() {
            if fields.0.iter().skip(i + 1).any(|(k, _)| k == key) {
                return Err(ImportError::DuplicateField(key.clone()));
            }
        }
        Ok(fields)
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.swap_remove(at).1)
    }

    /// A field that may be left out or written as `null` (the same to both
    /// formats).
    fn take_unless_null(&mut self, name: &str) -> Option<Value> {
        self.take(name).filter(|value| !value.is_null())
    }

    fn require(&mut self, name: &'static str, format: ImportFormat) -> Result<Value, ImportError> {
        self.take(name).ok_or(ImportError::MissingField {
            field: name,
            format,
        })
    }

    fn require_nested(&mut self, path: &'static str) -> Result<Value, ImportError> {
        let name = path.rsplit('.').next().unwrap_or(path);
        self.take(name).ok_or(ImportError::InvalidField {
            field: path,
            reason: "missing".into(),
        })
    }

    /// Every field left over was not expected.
    fn finish(self, format: ImportFormat, expected: &'static str) -> Result<(), ImportError> {
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((field, _)) => Err(ImportError::UnknownField {
                field,
                format,
                expected,
            }),
        }
    }

    fn finish_nested(self, object: &'static str, expected: &str) -> Result<(), ImportError> {
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((field, _)) => Err(ImportError::InvalidField {
                field: object,
                reason: format!("unknown field `{field}` (expected {expected})"),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields: Vec<(String, Value)> = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(height: u64, round: u32, step: Step) -> Position {
        Position {
            height: Height::try_from(height).unwrap(),
            round: Round::try_from(i64::from(round)).unwrap(),
            step,
        }
    }

    /// The position of a state file's contents that must parse.
    fn position_of(text: &str, format: ImportFormat) -> Position {
        parse_state_json(text, format).unwrap().position
    }

    /// A CometBFT file right after `cometbft init`: `FilePVLastSignState`
    /// (privval/file.go, v0.38) marshalled with `cmtjson.MarshalIndent(lss, "", "  ")`;
    /// the empty signature and sign bytes are `omitempty`.
    const COMETBFT_FRESH: &str = "{\n  \"height\": \"0\",\n  \"round\": 0,\n  \"step\": 0\n}";

    /// Length-prefixed CanonicalVote (precommit, height 123, round 0, block
    /// hash sha256("block"), part set total 1 hash sha256("parts"), time
    /// 1700000000.123456789, chain id "test-chain-1"), built by hand field by
    /// field from CometBFT's `types/canonical.proto`.
    const VOTE_SIGN_BYTES: &str = "700802117B0000000000000022480A20496ACA80E4D8F29FB8E8CD816C3AFB48D3F103970B3A2EE1600C08CA67326DEE122408011220D887DB09649DAB0D83951D8D5D69B2E7D8BB70E79DAA2A3A279B4FD6B8346CEA2A0B0880E2CFAA0610959AEF3A320C746573742D636861696E2D31";
    /// 64 bytes (sha512("sig")) in standard padded base64, as Go's
    /// encoding/json writes a `[]byte`.
    const SIGNATURE_B64: &str =
        "AHPsJm1PtK2/PRBKpxT58RAy/Yq22IKfxAtSyG9khdeSjMLr1GRvP+PzdL4R2QW/S+J1+obziJ2CqffcXkHdMg==";

    fn cometbft_signed() -> String {
        // Same shape as COMETBFT_FRESH after `saveSigned` at 123/0/precommit.
        format!(
            "{{\n  \"height\": \"123\",\n  \"round\": 0,\n  \"step\": 3,\n  \"signature\": \"{SIGNATURE_B64}\",\n  \"signbytes\": \"{VOTE_SIGN_BYTES}\"\n}}"
        )
    }

    /// tmkms's initial state file: `serde_json::to_string` of a default
    /// tendermint-rs `consensus::State` with height 0 (tmkms
    /// `src/chain/state.rs`, `write_initial_state`).
    const TMKMS_FRESH: &str = r#"{"height":"0","round":"0","step":0,"block_id":null}"#;

    /// tmkms after a precommit for a block: tmkms `SignableMsg::consensus_state`
    /// gives step 2; the block id is tendermint-proto's `BlockId` JSON
    /// (hex hashes, `part_set_header.total` a number).
    const TMKMS_PRECOMMIT: &str = r#"{"height":"1234567","round":"1","step":2,"block_id":{"hash":"496ACA80E4D8F29FB8E8CD816C3AFB48D3F103970B3A2EE1600C08CA67326DEE","part_set_header":{"total":1,"hash":"D887DB09649DAB0D83951D8D5D69B2E7D8BB70E79DAA2A3A279B4FD6B8346CEA"}}}"#;

    /// Older spelling tendermint-rs still reads: `parts` and a string `total`
    /// (tendermint-rs `consensus/state.rs` test `state_deser_update_total_test`).
    const TMKMS_LEGACY_PARTS: &str = r#"{
        "height": "5",
        "round": "1",
        "step": 0,
        "block_id": {
          "hash": "1234567890123456789012345678901234567890123456789012345678901234",
          "parts": {
              "total": "1",
              "hash": "1234567890123456789012345678901234567890123456789012345678901234"
          }
        }
    }"#;

    fn err(text: &str, format: ImportFormat) -> ImportError {
        parse_state_json(text, format).unwrap_err()
    }

    fn field_of(e: ImportError) -> &'static str {
        match e {
            ImportError::InvalidField { field, .. } => field,
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_fresh_cometbft_state() {
        for format in [ImportFormat::Auto, ImportFormat::CometBft] {
            assert_eq!(
                parse_state_json(COMETBFT_FRESH, format).unwrap(),
                SignState::default()
            );
        }
    }

    #[test]
    fn reads_a_signed_cometbft_state() {
        let state = parse_state_json(&cometbft_signed(), ImportFormat::Auto).unwrap();
        assert_eq!(state.position, pos(123, 0, Step::Precommit));
        assert_eq!(state.sign_bytes, hex::decode(VOTE_SIGN_BYTES).unwrap());
        assert_eq!(
            state.signature.unwrap().0.to_vec(),
            BASE64.decode(SIGNATURE_B64).unwrap()
        );
    }

    #[test]
    fn reads_cometbft_steps_as_they_are() {
        for (n, step) in [
            (0, Step::None),
            (1, Step::Propose),
            (2, Step::Prevote),
            (3, Step::Precommit),
        ] {
            let text = format!(r#"{{"height":"7","round":2,"step":{n}}}"#);
            assert_eq!(position_of(&text, ImportFormat::Auto), pos(7, 2, step));
        }
    }

    #[test]
    fn reads_tmkms_states_and_shifts_their_steps() {
        assert_eq!(
            parse_state_json(TMKMS_FRESH, ImportFormat::Auto).unwrap(),
            SignState::default()
        );
        let state = parse_state_json(TMKMS_PRECOMMIT, ImportFormat::Auto).unwrap();
        assert_eq!(state.position, pos(1_234_567, 1, Step::Precommit));
        assert!(state.sign_bytes.is_empty());
        assert_eq!(state.signature, None);
        assert_eq!(
            position_of(TMKMS_LEGACY_PARTS, ImportFormat::Tmkms),
            pos(5, 1, Step::Propose)
        );
        for (n, step) in [(0, Step::Propose), (1, Step::Prevote), (2, Step::Precommit)] {
            let text = format!(r#"{{"height":"9","round":"0","step":{n},"block_id":null}}"#);
            assert_eq!(position_of(&text, ImportFormat::Tmkms), pos(9, 0, step));
        }
    }

    #[test]
    fn auto_detects_by_fields_then_by_the_type_of_round() {
        // No distinguishing fields: a string round is tmkms (step 1 = prevote)...
        assert_eq!(
            position_of(r#"{"height":"5","round":"0","step":1}"#, ImportFormat::Auto),
            pos(5, 0, Step::Prevote)
        );
        // ...a numeric round is CometBFT (step 1 = propose).
        assert_eq!(
            position_of(r#"{"height":"5","round":0,"step":1}"#, ImportFormat::Auto),
            pos(5, 0, Step::Propose)
        );
        assert!(matches!(
            err(
                r#"{"height":"5","round":0,"step":1,"signbytes":"","block_id":null}"#,
                ImportFormat::Auto
            ),
            ImportError::UnknownFormat(_)
        ));
        assert!(matches!(
            err(r#"{"height":"5","step":1}"#, ImportFormat::Auto),
            ImportError::UnknownFormat(_)
        ));
        assert!(matches!(
            err(
                r#"{"height":"5","round":true,"step":1}"#,
                ImportFormat::Auto
            ),
            ImportError::UnknownFormat(_)
        ));
    }

    #[test]
    fn rejects_each_malformed_cometbft_field_by_name() {
        let c = ImportFormat::CometBft;
        let cases: &[(&str, &str)] = &[
            (r#"{"height":123,"round":0,"step":3}"#, "height"),
            (r#"{"height":"-1","round":0,"step":3}"#, "height"),
            (r#"{"height":"+1","round":0,"step":3}"#, "height"),
            (r#"{"height":"","round":0,"step":3}"#, "height"),
            (r#"{"height":"1 ","round":0,"step":3}"#, "height"),
            (
                r#"{"height":"9223372036854775808","round":0,"step":3}"#,
                "height",
            ),
            (r#"{"height":"1","round":"0","step":3}"#, "round"),
            (r#"{"height":"1","round":-1,"step":3}"#, "round"),
            (r#"{"height":"1","round":0.5,"step":3}"#, "round"),
            (r#"{"height":"1","round":2147483648,"step":3}"#, "round"),
            (r#"{"height":"1","round":0,"step":4}"#, "step"),
            (r#"{"height":"1","round":0,"step":"3"}"#, "step"),
            (
                r#"{"height":"1","round":0,"step":3,"signature":"AAAA"}"#,
                "signature",
            ),
            (
                r#"{"height":"1","round":0,"step":3,"signature":"!!"}"#,
                "signature",
            ),
            (
                r#"{"height":"1","round":0,"step":3,"signature":5}"#,
                "signature",
            ),
            (
                r#"{"height":"1","round":0,"step":3,"signbytes":"ABC"}"#,
                "signbytes",
            ),
            (
                r#"{"height":"1","round":0,"step":3,"signbytes":"ZZ"}"#,
                "signbytes",
            ),
            (
                r#"{"height":"1","round":0,"step":3,"signbytes":[1]}"#,
                "signbytes",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(err(text, c)), *field, "{text}");
        }
        let too_long = format!(
            r#"{{"height":"1","round":0,"step":3,"signature":"{SIGNATURE_B64}","signbytes":"{}"}}"#,
            "AB".repeat(MAX_SIGN_BYTES + 1)
        );
        assert_eq!(field_of(err(&too_long, c)), "signbytes");
    }

    #[test]
    fn rejects_each_malformed_tmkms_field_by_name() {
        let t = ImportFormat::Tmkms;
        let hash = "496ACA80E4D8F29FB8E8CD816C3AFB48D3F103970B3A2EE1600C08CA67326DEE";
        let cases: Vec<(String, &str)> = vec![
            (r#"{"height":5,"round":"0","step":0}"#.into(), "height"),
            (r#"{"height":"5","round":0,"step":0}"#.into(), "round"),
            (r#"{"height":"5","round":"2147483648","step":0}"#.into(), "round"),
            // tmkms never writes step 3 (that is CometBFT's precommit).
            (r#"{"height":"5","round":"0","step":3}"#.into(), "step"),
            (r#"{"height":"5","round":"0","step":-1}"#.into(), "step"),
            (r#"{"height":"5","round":"0","step":0,"block_id":"x"}"#.into(), "block_id"),
            (
                r#"{"height":"5","round":"0","step":0,"block_id":{"hash":"ABCD","part_set_header":{"total":1,"hash":""}}}"#.into(),
                "block_id.hash",
            ),
            (
                format!(r#"{{"height":"5","round":"0","step":0,"block_id":{{"hash":"{hash}"}}}}"#),
                "block_id.part_set_header",
            ),
            (
                format!(r#"{{"height":"5","round":"0","step":0,"block_id":{{"hash":"{hash}","part_set_header":{{"total":1,"hash":""}},"extra":1}}}}"#),
                "block_id",
            ),
            (
                format!(r#"{{"height":"5","round":"0","step":0,"block_id":{{"hash":"{hash}","part_set_header":{{"total":-1,"hash":""}}}}}}"#),
                "block_id.part_set_header.total",
            ),
            (
                format!(r#"{{"height":"5","round":"0","step":0,"block_id":{{"hash":"{hash}","part_set_header":{{"total":1}}}}}}"#),
                "block_id.part_set_header.hash",
            ),
        ];
        for (text, field) in &cases {
            assert_eq!(field_of(err(text, t)), *field, "{text}");
        }
    }

    #[test]
    fn rejects_unknown_duplicate_and_missing_fields() {
        assert!(matches!(
            err(r#"{"height":"1","round":0,"step":3,"extra":1}"#, ImportFormat::CometBft),
            ImportError::UnknownField { field, .. } if field == "extra"
        ));
        // A tmkms field in a file read as CometBFT is unknown there.
        assert!(matches!(
            err(TMKMS_PRECOMMIT, ImportFormat::CometBft),
            ImportError::UnknownField { .. } | ImportError::InvalidField { .. }
        ));
        assert!(matches!(
            err(&cometbft_signed(), ImportFormat::Tmkms),
            ImportError::UnknownField { .. } | ImportError::InvalidField { .. }
        ));
        assert_eq!(
            err(
                r#"{"height":"1","height":"2","round":0,"step":3}"#,
                ImportFormat::Auto
            ),
            ImportError::DuplicateField("height".into())
        );
        assert_eq!(
            err(r#"{"height":"1","round":0}"#, ImportFormat::Auto),
            ImportError::MissingField {
                field: "step",
                format: ImportFormat::CometBft
            }
        );
        assert_eq!(
            err(
                r#"{"round":"0","step":0,"block_id":null}"#,
                ImportFormat::Auto
            ),
            ImportError::MissingField {
                field: "height",
                format: ImportFormat::Tmkms
            }
        );
    }

    #[test]
    fn rejects_non_objects_and_broken_json() {
        assert_eq!(err("[]", ImportFormat::Auto), ImportError::NotAnObject);
        assert_eq!(err("\"x\"", ImportFormat::Auto), ImportError::NotAnObject);
        assert!(matches!(err("", ImportFormat::Auto), ImportError::Json(_)));
        assert!(matches!(
            err(r#"{"height":"1""#, ImportFormat::Auto),
            ImportError::Json(_)
        ));
        assert!(matches!(
            err(&format!("{COMETBFT_FRESH} {{}}"), ImportFormat::Auto),
            ImportError::Json(_)
        ));
    }

    #[test]
    fn rejects_sign_bytes_without_a_signature() {
        let text =
            format!(r#"{{"height":"123","round":0,"step":3,"signbytes":"{VOTE_SIGN_BYTES}"}}"#);
        assert!(matches!(
            err(&text, ImportFormat::Auto),
            ImportError::Inconsistent(_)
        ));
        // Empty values are the same as absent ones.
        assert_eq!(
            parse_state_json(
                r#"{"height":"0","round":0,"step":0,"signature":"","signbytes":""}"#,
                ImportFormat::Auto
            )
            .unwrap(),
            SignState::default()
        );
    }

    #[test]
    fn writes_cometbft_json_that_reads_back() {
        assert_eq!(to_cometbft_json(&SignState::default()), COMETBFT_FRESH);
        assert_eq!(
            to_cometbft_json(&parse_state_json(&cometbft_signed(), ImportFormat::Auto).unwrap()),
            cometbft_signed()
        );
        let state = SignState {
            position: pos(
                u64::try_from(i64::MAX).unwrap(),
                i32::MAX as u32,
                Step::Prevote,
            ),
            sign_bytes: vec![0xab; MAX_SIGN_BYTES],
            signature: Some(Signature([9; SIGNATURE_LEN])),
        };
        let json = to_cometbft_json(&state);
        assert_eq!(parse_state_json(&json, ImportFormat::Auto).unwrap(), state);
        assert_eq!(
            parse_state_json(&json, ImportFormat::CometBft).unwrap(),
            state
        );
    }

    #[test]
    fn names_formats_for_the_cli() {
        for format in [
            ImportFormat::Auto,
            ImportFormat::CometBft,
            ImportFormat::Tmkms,
        ] {
            assert_eq!(format.to_string().parse::<ImportFormat>(), Ok(format));
        }
        assert!("json".parse::<ImportFormat>().is_err());
    }

    #[test]
    fn maps_into_a_state_error_naming_the_file() {
        let e = err("[]", ImportFormat::Auto).at(Path::new("/x/state.json"));
        assert!(e.to_string().contains("/x/state.json"), "{e}");
    }
}
