//! The v1 `SignBytesRequest`: raw bytes are signed or refused, bytes that
//! are a `CanonicalVote` are never signed.

use crate::error::SimError;
use crate::sign_bytes::vote_sign_bytes;
use crate::spec::BlockIdSpec;

use super::report::{Expect, Report};
use super::run::Run;

/// [`Scripted::SignBytes`](super::Scripted::SignBytes). Fails only if the
/// vote's sign bytes cannot be built.
pub(super) fn sign_bytes(mut run: Run<'_>, height: i64) -> Result<Report, SimError> {
    let arbitrary = b"tmkms-node-sim: arbitrary bytes";
    run.sign_bytes("arbitrary bytes", Expect::OkOrError, arbitrary);
    let vote = run.prevote(height, 0, Some(BlockIdSpec::for_height(height)));
    let canonical = vote_sign_bytes(run.chain_id, &vote)?;
    let name = "bytes that are a CanonicalVote";
    run.sign_bytes(name, Expect::ErrorOrDropped, &canonical);
    Ok(run.finish())
}
