//! Human-readable summary of a verified document, for the helper's `verify` command.

use std::fmt::Write as _;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::verify::AttestationDoc;

/// Lists module id, timestamp, non-zero PCRs in hex (all-zero ones by index only), and the
/// size and SHA-256 of `public_key`, `user_data`, `nonce` and the signing certificate.
#[must_use]
pub fn describe(doc: &AttestationDoc) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "module_id:   {}", doc.module_id());
    let ms = doc.timestamp_ms();
    let when = der::DateTime::from_unix_duration(Duration::from_millis(ms))
        .map_or_else(|_| "out of range".to_owned(), |t| t.to_string());
    let _ = writeln!(out, "timestamp:   {ms} ms ({when})");
    let _ = writeln!(out, "digest:      SHA384");
    let (zero, set): (Vec<_>, Vec<_>) = doc
        .pcrs()
        .iter()
        .partition(|(_, v)| v.iter().all(|b| *b == 0));
    let _ = writeln!(out, "pcrs:        {} present", doc.pcrs().len());
    for (index, value) in set {
        let _ = writeln!(out, "  PCR{index:<2} {}", hex::encode(value));
    }
    if !zero.is_empty() {
        let list: Vec<String> = zero.iter().map(|(i, _)| i.to_string()).collect();
        let _ = writeln!(out, "  all-zero:  {}", list.join(","));
    }
    field(&mut out, "public_key", doc.public_key());
    field(&mut out, "user_data", doc.user_data());
    field(&mut out, "nonce", doc.nonce());
    field(&mut out, "certificate", Some(doc.certificate()));
    let _ = writeln!(out, "cabundle:    {} certificates", doc.cabundle().len());
    out
}

fn field(out: &mut String, name: &str, value: Option<&[u8]>) {
    let _ = match value {
        Some(v) => writeln!(
            out,
            "{:<12} {} bytes, sha256 {}",
            format!("{name}:"),
            v.len(),
            hex::encode(Sha256::digest(v))
        ),
        None => writeln!(out, "{:<12} absent", format!("{name}:")),
    };
}
