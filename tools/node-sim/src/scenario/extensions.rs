//! Vote extensions (v0.38/v1): which precommits carry an extension signature,
//! and the largest extension CometBFT allows.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{codes, BlockIdSpec, SignedVote};

use super::report::{Expect, Report};
use super::run::{any, same_signature, Run};

/// Extension-signature presence rules (v0.38/v1). Uses `height` and
/// `height + 1`.
///
/// * a prevote or nil precommit that (against the rules) carries extension
///   bytes: signed **without** an extension signature, or refused with code 4;
/// * a non-nil precommit with an empty extension: signed with one;
/// * a plain nil precommit: signed without one;
/// * v1 only: a non-nil precommit with `skip_extension_signing` needs none.
pub fn extension_rules(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "extension rules");
    run.require_extensions()?;
    let block = Some(BlockIdSpec::for_height(height));
    let stray = b"stray extension".to_vec();
    let tolerant = Expect::OkOrRefused(codes::MALFORMED);

    let prevote = run.prevote(height, 0, block).with_extension(stray.clone());
    run.vote("prevote carrying extension bytes", tolerant, &prevote);
    let nil = run.bare_precommit(height, 0, None).with_extension(stray);
    run.vote("nil precommit carrying extension bytes", tolerant, &nil);
    let empty = run.bare_precommit(height, 1, block);
    let name = "non-nil precommit with an empty extension";
    run.vote(name, Expect::Ok, &empty);
    let plain_nil = run.bare_precommit(height, 2, None);
    run.vote("nil precommit", Expect::Ok, &plain_nil);
    if run.dialect() == Dialect::V1 {
        let next = height + 1;
        let skipped = run.precommit(next, 0, Some(BlockIdSpec::for_height(next)));
        let name = "non-nil precommit with skip_extension_signing";
        run.vote_with_skip(name, Expect::Ok, &skipped, true, &any);
    }
    Ok(run.finish_with_ping())
}

/// A precommit with an `extension_len`-byte extension (v0.38/v1; CometBFT
/// allows up to [`MAX_VOTE_EXTENSION_SIZE`](crate::MAX_VOTE_EXTENSION_SIZE))
/// must be signed and answered within the node's 10 KiB response cap, i.e.
/// without echoing the extension. Uses `height`.
pub fn large_extension(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
    extension_len: usize,
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "large extension");
    run.require_extensions()?;
    let extension: Vec<u8> = (0..extension_len).map(|i| (i % 251) as u8).collect();
    let vote = run
        .bare_precommit(height, 0, Some(BlockIdSpec::for_height(height)))
        .with_extension(extension);
    let name = format!("precommit with a {extension_len}-byte extension");
    if let Some(first) = run.vote(&name, Expect::Ok, &vote) {
        let same =
            same_signature::<SignedVote>(&first, "a new vote signature instead of the stored one");
        run.vote_checked("replay of the large precommit", Expect::Ok, &vote, &same);
    }
    Ok(run.finish_with_ping())
}
