//! Vote extensions (v0.38/v1): which precommits carry an extension signature,
//! and the largest extension CometBFT allows.

use crate::dialect::Dialect;
use crate::spec::{codes, BlockIdSpec, SignedVote};

use super::report::{Expect, Report};
use super::request::FlaggedVote;
use super::run::{same_signature, Run};

/// [`Scripted::ExtensionRules`](super::Scripted::ExtensionRules).
pub(super) fn extension_rules(mut run: Run<'_>, height: i64) -> Report {
    let block = Some(BlockIdSpec::for_height(height));
    let stray = b"stray extension".to_vec();
    let tolerant = Expect::OkOrRefused(codes::MALFORMED);

    let prevote = run.prevote(height, 0, block).with_extension(stray.clone());
    run.sign("prevote carrying extension bytes", tolerant, &prevote);
    let nil = run.bare_precommit(height, 0, None).with_extension(stray);
    run.sign("nil precommit carrying extension bytes", tolerant, &nil);
    let empty = run.bare_precommit(height, 1, block);
    let name = "non-nil precommit with an empty extension";
    run.sign(name, Expect::Ok, &empty);
    let plain_nil = run.bare_precommit(height, 2, None);
    run.sign("nil precommit", Expect::Ok, &plain_nil);
    if run.dialect() == Dialect::V1 {
        let next = height + 1;
        let vote = run.precommit(next, 0, Some(BlockIdSpec::for_height(next)));
        let skipped = FlaggedVote {
            vote: &vote,
            skip: true,
        };
        let name = "non-nil precommit with skip_extension_signing";
        run.sign(name, Expect::Ok, &skipped);
    }
    run.finish_with_ping()
}

/// [`Scripted::LargeExtension`](super::Scripted::LargeExtension) with an
/// `extension_len`-byte extension.
pub(super) fn large_extension(mut run: Run<'_>, height: i64, extension_len: usize) -> Report {
    let extension: Vec<u8> = (0..extension_len).map(|i| (i % 251) as u8).collect();
    let vote = run
        .bare_precommit(height, 0, Some(BlockIdSpec::for_height(height)))
        .with_extension(extension);
    let name = format!("precommit with a {extension_len}-byte extension");
    if let Some(first) = run.sign(&name, Expect::Ok, &vote) {
        let same =
            same_signature::<SignedVote>(&first, "a new vote signature instead of the stored one");
        run.sign_checked("replay of the large precommit", Expect::Ok, &vote, &same);
    }
    run.finish_with_ping()
}
