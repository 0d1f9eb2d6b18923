//! The v1 `SignBytesRequest`: raw bytes are signed or refused, bytes that
//! are a `CanonicalVote` are never signed.

use crate::conn::SignerConn;
use crate::error::SimError;
use crate::sign_bytes::vote_sign_bytes;
use crate::spec::{validator_address, BlockIdSpec, VoteSpec};
use crate::verify::verify_signature;

use super::report::{Case, Expect, Outcome, Report};

/// v1 `SignBytesRequest`. Uses `height` (only inside the bytes).
///
/// * arbitrary bytes: a signature that verifies over the raw value, or a
///   refusal (policy);
/// * bytes that are valid `CanonicalVote` sign bytes: must be refused (or the
///   connection dropped) — signing them would produce a vote signature that
///   bypasses the double-sign guard.
pub fn sign_bytes(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut report = Report::new("sign bytes");
    if !conn.dialect().has_sign_bytes() {
        return Err(SimError::Unsupported(format!(
            "{} has no SignBytesRequest",
            conn.dialect()
        )));
    }
    let arbitrary = sign_bytes_case(
        conn,
        pubkey,
        "arbitrary bytes",
        Expect::OkOrError,
        b"tmkms-node-sim: arbitrary bytes",
    );
    let lost = arbitrary.outcome.lost_connection();
    report.cases.push(arbitrary);
    if lost {
        return Ok(report);
    }
    let vote = VoteSpec::prevote(height, 0, Some(BlockIdSpec::for_height(height)))
        .with_validator(validator_address(pubkey), 0);
    let canonical = vote_sign_bytes(chain_id, &vote)?;
    report.cases.push(sign_bytes_case(
        conn,
        pubkey,
        "bytes that are a CanonicalVote",
        Expect::ErrorOrDropped,
        &canonical,
    ));
    Ok(report)
}

fn sign_bytes_case(
    conn: &mut SignerConn,
    pubkey: &[u8; 32],
    name: &str,
    expect: Expect,
    value: &[u8],
) -> Case {
    let outcome = match conn.sign_bytes(value) {
        Ok(Ok(sig)) => match verify_signature(pubkey, value, &sig) {
            Ok(()) => Outcome::Ok,
            Err(_) => Outcome::Violation("the signature does not verify over the raw value".into()),
        },
        Ok(Err(refusal)) => Outcome::refused(refusal),
        Err(e) => Outcome::from_error(&e),
    };
    Case {
        name: name.to_owned(),
        expect,
        outcome,
    }
}
