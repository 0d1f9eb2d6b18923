//! Vote extensions (v0.38/v1): which precommits carry an extension signature,
//! and the largest extension CometBFT allows.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{codes, validator_address, BlockIdSpec, SignedVote, VoteSpec};

use super::report::{Expect, Report};
use super::run::{any, extension_for, node_skips_extension, Run};

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
    let dialect = run.dialect();
    if !dialect.has_extensions() {
        return Err(SimError::Unsupported(format!(
            "{dialect} has no vote extensions"
        )));
    }
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));
    let stray = b"stray extension".to_vec();
    let tolerant = Expect::OkOrRefused(codes::MALFORMED);

    let prevote = VoteSpec::prevote(height, 0, block)
        .with_validator(address, 0)
        .with_extension(stray.clone());
    run.vote(
        "prevote carrying extension bytes",
        tolerant,
        &prevote,
        node_skips_extension(dialect, &prevote),
        &any,
    );
    let nil = VoteSpec::precommit(height, 0, None)
        .with_validator(address, 0)
        .with_extension(stray);
    run.vote(
        "nil precommit carrying extension bytes",
        tolerant,
        &nil,
        false,
        &any,
    );
    let empty = VoteSpec::precommit(height, 1, block).with_validator(address, 0);
    run.vote(
        "non-nil precommit with an empty extension",
        Expect::Ok,
        &empty,
        false,
        &any,
    );
    let plain_nil = VoteSpec::precommit(height, 2, None).with_validator(address, 0);
    run.vote("nil precommit", Expect::Ok, &plain_nil, false, &any);
    if dialect == Dialect::V1 {
        let skipped = VoteSpec::precommit(height + 1, 0, Some(BlockIdSpec::for_height(height + 1)))
            .with_validator(address, 0)
            .with_extension(extension_for(dialect, height + 1));
        run.vote(
            "non-nil precommit with skip_extension_signing",
            Expect::Ok,
            &skipped,
            true,
            &any,
        );
    }
    run.ping("connection still open");
    Ok(run.report)
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
    let dialect = run.dialect();
    if !dialect.has_extensions() {
        return Err(SimError::Unsupported(format!(
            "{dialect} has no vote extensions"
        )));
    }
    let extension: Vec<u8> = (0..extension_len).map(|i| (i % 251) as u8).collect();
    let vote = VoteSpec::precommit(height, 0, Some(BlockIdSpec::for_height(height)))
        .with_validator(validator_address(pubkey), 0)
        .with_extension(extension);
    let name = format!("precommit with a {extension_len}-byte extension");
    let first = run.vote(&name, Expect::Ok, &vote, false, &any);
    if let Some(first) = first {
        let same = |s: &SignedVote| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a new vote signature instead of the stored one".to_owned())
            }
        };
        run.vote(
            "replay of the large precommit",
            Expect::Ok,
            &vote,
            false,
            &same,
        );
    }
    run.ping("connection still open");
    Ok(run.report)
}
