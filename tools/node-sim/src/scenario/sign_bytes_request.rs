//! The v1 `SignBytesRequest`: raw bytes are signed or refused, bytes that
//! are a `CanonicalVote` are never signed.

use crate::conn::SignerConn;
use crate::error::SimError;
use crate::sign_bytes::vote_sign_bytes;
use crate::spec::BlockIdSpec;

use super::report::{Expect, Report};
use super::run::Run;

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
    let mut run = Run::new(conn, chain_id, pubkey, "sign bytes");
    run.require_sign_bytes()?;
    let arbitrary = b"tmkms-node-sim: arbitrary bytes";
    run.sign_bytes("arbitrary bytes", Expect::OkOrError, arbitrary);
    let vote = run.prevote(height, 0, Some(BlockIdSpec::for_height(height)));
    let canonical = vote_sign_bytes(chain_id, &vote)?;
    let name = "bytes that are a CanonicalVote";
    run.sign_bytes(name, Expect::ErrorOrDropped, &canonical);
    Ok(run.finish())
}
