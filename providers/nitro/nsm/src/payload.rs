//! The attestation document proper: the CBOR map inside the COSE_Sign1 payload.
//!
//! Parsed field by field against the AWS rules (attestation_process.md §3.2.2): required
//! fields present, types exact, sizes bounded, no unknown or duplicate keys. `null` for an
//! optional field means "absent": current NSMs emit it that way.

use std::collections::BTreeMap;

use ciborium::Value;

use crate::error::VerifyError;
use crate::request::{MAX_NONCE_LEN, MAX_PUBLIC_KEY_LEN, MAX_USER_DATA_LEN};

/// Largest payload the format allows (`bstr .size (1..16384)`).
pub(crate) const MAX_PAYLOAD_LEN: usize = 16384;
/// Largest DER certificate in `certificate` / `cabundle`.
pub(crate) const MAX_CERT_LEN: usize = 1024;
/// PCR indices are `0..32`.
pub(crate) const PCR_COUNT: u16 = 32;
/// The only digest the NSM uses.
pub(crate) const DIGEST_SHA384: &str = "SHA384";
/// No real chain is longer than a handful of CAs; bounds the work spent on hostile input.
pub(crate) const MAX_CABUNDLE_LEN: usize = 16;

/// The payload's fields, typed but not yet authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    pub module_id: String,
    pub timestamp_ms: u64,
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    pub certificate: Vec<u8>,
    pub cabundle: Vec<Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

fn err(msg: impl Into<String>) -> VerifyError {
    VerifyError::Payload(msg.into())
}

impl Payload {
    /// Parses and validates the CBOR payload.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.is_empty() || bytes.len() > MAX_PAYLOAD_LEN {
            return Err(err(format!(
                "payload is {} bytes, expected 1..={MAX_PAYLOAD_LEN}",
                bytes.len()
            )));
        }
        let mut reader = bytes;
        let value: Value = ciborium::de::from_reader(&mut reader)
            .map_err(|e| err(format!("not valid CBOR: {e}")))?;
        if !reader.is_empty() {
            return Err(err(format!(
                "{} trailing bytes after the CBOR map",
                reader.len()
            )));
        }
        let Value::Map(entries) = value else {
            return Err(err("the payload is not a CBOR map"));
        };

        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(err("a map key is not a text string"));
            };
            if !matches!(
                key.as_str(),
                "module_id"
                    | "digest"
                    | "timestamp"
                    | "pcrs"
                    | "certificate"
                    | "cabundle"
                    | "public_key"
                    | "user_data"
                    | "nonce"
            ) {
                return Err(err(format!("unknown field `{}`", truncate(&key))));
            }
            if fields.contains_key(&key) {
                return Err(err(format!("field `{key}` appears twice")));
            }
            fields.insert(key, value);
        }

        let module_id = match fields.remove("module_id") {
            Some(Value::Text(s)) if !s.is_empty() => s,
            Some(_) => return Err(err("`module_id` must be a non-empty text string")),
            None => return Err(err("required field `module_id` is missing")),
        };
        match fields.remove("digest") {
            Some(Value::Text(s)) if s == DIGEST_SHA384 => {}
            Some(Value::Text(s)) => {
                return Err(err(format!(
                    "`digest` is `{}`, only `SHA384` is allowed",
                    truncate(&s)
                )))
            }
            Some(_) => return Err(err("`digest` must be a text string")),
            None => return Err(err("required field `digest` is missing")),
        }
        let timestamp_ms = match fields.remove("timestamp") {
            Some(Value::Integer(i)) => match u64::try_from(i) {
                Ok(t) if t > 0 => t,
                _ => return Err(err("`timestamp` must be a positive 64-bit integer")),
            },
            Some(_) => return Err(err("`timestamp` must be an integer")),
            None => return Err(err("required field `timestamp` is missing")),
        };
        let pcrs = match fields.remove("pcrs") {
            Some(Value::Map(m)) => decode_pcrs(m)?,
            Some(_) => return Err(err("`pcrs` must be a map")),
            None => return Err(err("required field `pcrs` is missing")),
        };
        let certificate = match fields.remove("certificate") {
            Some(Value::Bytes(b)) if (1..=MAX_CERT_LEN).contains(&b.len()) => b,
            Some(_) => {
                return Err(err(format!(
                    "`certificate` must be a byte string of 1..={MAX_CERT_LEN} bytes"
                )))
            }
            None => return Err(err("required field `certificate` is missing")),
        };
        let cabundle = match fields.remove("cabundle") {
            Some(Value::Array(a)) => decode_cabundle(a)?,
            Some(_) => return Err(err("`cabundle` must be an array")),
            None => return Err(err("required field `cabundle` is missing")),
        };
        let public_key = optional_bytes(
            fields.remove("public_key"),
            "public_key",
            1,
            MAX_PUBLIC_KEY_LEN,
        )?;
        let user_data = optional_bytes(
            fields.remove("user_data"),
            "user_data",
            0,
            MAX_USER_DATA_LEN,
        )?;
        let nonce = optional_bytes(fields.remove("nonce"), "nonce", 0, MAX_NONCE_LEN)?;

        Ok(Self {
            module_id,
            timestamp_ms,
            pcrs,
            certificate,
            cabundle,
            public_key,
            user_data,
            nonce,
        })
    }

    /// Encodes the payload as the NSM does: a definite-length map in the AWS field order,
    /// absent optional fields as `null`.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        let opt = |v: &Option<Vec<u8>>| v.clone().map_or(Value::Null, Value::Bytes);
        let pcrs = self
            .pcrs
            .iter()
            .map(|(i, v)| (Value::Integer((*i).into()), Value::Bytes(v.clone())))
            .collect();
        let map = Value::Map(vec![
            (text("module_id"), Value::Text(self.module_id.clone())),
            (text("digest"), text(DIGEST_SHA384)),
            (text("timestamp"), Value::Integer(self.timestamp_ms.into())),
            (text("pcrs"), Value::Map(pcrs)),
            (text("certificate"), Value::Bytes(self.certificate.clone())),
            (
                text("cabundle"),
                Value::Array(self.cabundle.iter().cloned().map(Value::Bytes).collect()),
            ),
            (text("public_key"), opt(&self.public_key)),
            (text("user_data"), opt(&self.user_data)),
            (text("nonce"), opt(&self.nonce)),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&map, &mut out)
            .map_err(|e| format!("cannot encode the payload: {e}"))?;
        Ok(out)
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Keeps hostile strings out of error messages beyond a short prefix.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

fn decode_pcrs(entries: Vec<(Value, Value)>) -> Result<BTreeMap<u16, Vec<u8>>, VerifyError> {
    if entries.is_empty() || entries.len() > usize::from(PCR_COUNT) {
        return Err(err(format!(
            "`pcrs` has {} entries, expected 1..={PCR_COUNT}",
            entries.len()
        )));
    }
    let mut pcrs = BTreeMap::new();
    for (index, value) in entries {
        let index = match index {
            Value::Integer(i) => match u16::try_from(i) {
                Ok(i) if i < PCR_COUNT => i,
                _ => return Err(err(format!("a PCR index is outside 0..{PCR_COUNT}"))),
            },
            _ => return Err(err("a PCR index is not an integer")),
        };
        let value = match value {
            Value::Bytes(b) if matches!(b.len(), 32 | 48 | 64) => b,
            _ => {
                return Err(err(format!(
                    "PCR{index} must be a byte string of 32, 48 or 64 bytes"
                )))
            }
        };
        if pcrs.insert(index, value).is_some() {
            return Err(err(format!("PCR{index} appears twice")));
        }
    }
    Ok(pcrs)
}

fn decode_cabundle(entries: Vec<Value>) -> Result<Vec<Vec<u8>>, VerifyError> {
    if entries.is_empty() || entries.len() > MAX_CABUNDLE_LEN {
        return Err(err(format!(
            "`cabundle` has {} certificates, expected 1..={MAX_CABUNDLE_LEN}",
            entries.len()
        )));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bytes(b) if (1..=MAX_CERT_LEN).contains(&b.len()) => Ok(b),
            _ => Err(err(format!(
                "cabundle[{i}] must be a byte string of 1..={MAX_CERT_LEN} bytes"
            ))),
        })
        .collect()
}

fn optional_bytes(
    value: Option<Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, VerifyError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bytes(b)) if (min..=max).contains(&b.len()) => Ok(Some(b)),
        Some(Value::Bytes(b)) => Err(err(format!(
            "`{name}` is {} bytes, expected {min}..={max}",
            b.len()
        ))),
        Some(_) => Err(err(format!("`{name}` must be a byte string or null"))),
    }
}
