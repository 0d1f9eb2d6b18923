//! State records as an enclave and its host exchange them on the control
//! connection: JSON, each 512-byte record in base64.
//!
//! Both TEE protocols (SGX and Nitro) carry the same records the same way,
//! so the wire types live here, next to the record format, and the protocol
//! crates re-export them. The length is checked when a record is taken off
//! the wire, not when the JSON is parsed, so that a wrong length is an error
//! naming the record rather than a JSON error.

use serde::{Deserialize, Serialize};

use super::record::SLOT_LEN;
use crate::enclave::ImportedRecords;

/// One state record, base64 on the wire (its length checked on use).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireSlot(#[serde(with = "crate::link::b64")] pub Vec<u8>);

impl std::fmt::Debug for WireSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireSlot({} bytes)", self.0.len())
    }
}

impl From<&[u8; SLOT_LEN]> for WireSlot {
    fn from(record: &[u8; SLOT_LEN]) -> Self {
        Self(record.to_vec())
    }
}

impl WireSlot {
    /// The record, if it has the record length.
    pub fn record(&self) -> Result<[u8; SLOT_LEN], WireError> {
        self.0
            .as_slice()
            .try_into()
            .map_err(|_| WireError::SlotLength(self.0.len()))
    }
}

/// A state record that parsed as JSON but is not a record.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("a state record of {0} bytes, expected {SLOT_LEN}")]
    SlotLength(usize),
}

/// Both records of a new state file (slot 0, slot 1), for the wire.
pub fn pair_to_wire(records: &[[u8; SLOT_LEN]; 2]) -> [WireSlot; 2] {
    let [a, b] = records;
    [a.into(), b.into()]
}

/// Both records of a new state file, off the wire.
pub fn pair_from_wire(slots: &[WireSlot; 2]) -> Result<[[u8; SLOT_LEN]; 2], WireError> {
    let [a, b] = slots;
    Ok([a.record()?, b.record()?])
}

/// An existing file's raw slots (`None`: a slot that could not be read), for
/// the wire.
pub fn slots_to_wire(raw: &[Option<[u8; SLOT_LEN]>; 2]) -> [Option<WireSlot>; 2] {
    let [a, b] = raw;
    [
        a.as_ref().map(WireSlot::from),
        b.as_ref().map(WireSlot::from),
    ]
}

/// An existing file's raw slots, off the wire.
pub fn slots_from_wire(
    slots: &[Option<WireSlot>; 2],
) -> Result<[Option<[u8; SLOT_LEN]>; 2], WireError> {
    let [a, b] = slots;
    Ok([
        a.as_ref().map(WireSlot::record).transpose()?,
        b.as_ref().map(WireSlot::record).transpose()?,
    ])
}

/// The records `state import` produced, for the host to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum WireRecords {
    /// A new state file: slot 0, slot 1.
    Create([WireSlot; 2]),
    /// The next record of the existing file.
    Append(WireSlot),
}

impl From<&ImportedRecords> for WireRecords {
    fn from(records: &ImportedRecords) -> Self {
        match records {
            ImportedRecords::Create(pair) => Self::Create(pair_to_wire(pair)),
            ImportedRecords::Append(record) => Self::Append(record.into()),
        }
    }
}

impl TryFrom<&WireRecords> for ImportedRecords {
    type Error = WireError;

    fn try_from(records: &WireRecords) -> Result<Self, WireError> {
        Ok(match records {
            WireRecords::Create(pair) => Self::Create(pair_from_wire(pair)?),
            WireRecords::Append(record) => Self::Append(record.record()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_check_the_record_length() {
        let good = WireRecords::Append(WireSlot(vec![0; SLOT_LEN]));
        assert!(ImportedRecords::try_from(&good).is_ok());
        let short = WireRecords::Create([WireSlot(vec![0; SLOT_LEN]), WireSlot(vec![0; 511])]);
        let err = ImportedRecords::try_from(&short).unwrap_err();
        assert!(err.to_string().contains("511 bytes, expected 512"), "{err}");
        let back = WireRecords::from(&ImportedRecords::Append([3; SLOT_LEN]));
        assert_eq!(back, WireRecords::Append(WireSlot(vec![3; SLOT_LEN])));
    }

    #[test]
    fn the_wire_form_is_tagged_snake_case_base64() {
        let create = WireRecords::from(&ImportedRecords::Create([[0; SLOT_LEN], [1; SLOT_LEN]]));
        let json = serde_json::to_string(&create).unwrap();
        assert!(json.starts_with(r#"{"create":[""#), "{json}");
        assert_eq!(serde_json::from_str::<WireRecords>(&json).unwrap(), create);
        let append = serde_json::to_string(&WireRecords::Append(WireSlot(vec![0xff; 3]))).unwrap();
        assert_eq!(append, r#"{"append":"////"}"#);
        assert!(serde_json::from_str::<WireRecords>(r#"{"append":"AA==","x":1}"#).is_err());
    }

    #[test]
    fn slots_round_trip_and_keep_unreadable_ones_empty() {
        let raw = [Some([7; SLOT_LEN]), None];
        let wire = slots_to_wire(&raw);
        assert_eq!(wire, [Some(WireSlot(vec![7; SLOT_LEN])), None]);
        assert_eq!(slots_from_wire(&wire).unwrap(), raw);
        let short = [None, Some(WireSlot(vec![0; 10]))];
        assert!(matches!(
            slots_from_wire(&short),
            Err(WireError::SlotLength(10))
        ));
        let pair = [[1; SLOT_LEN], [2; SLOT_LEN]];
        assert_eq!(pair_from_wire(&pair_to_wire(&pair)).unwrap(), pair);
    }

    #[test]
    fn debug_shows_the_length_not_the_bytes() {
        assert_eq!(format!("{:?}", WireSlot(vec![9; 4])), "WireSlot(4 bytes)");
    }
}
