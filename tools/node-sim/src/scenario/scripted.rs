//! The scripted scenarios, one table: each is a straight list of cases on
//! one connection, started the same way (a dialect check, then a run named
//! after the scenario) whatever it tests.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::error::SimError;

use super::report::Report;
use super::run::Run;
use super::{extensions, sign_bytes_request, signing_policy};

/// One scripted scenario. [`Scripted::run`] sends its requests from a given
/// height and judges every answer; each variant says which heights it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scripted {
    /// Same-H/R/S requests that must be answered from the stored state. Uses
    /// `height` and `height + 1`.
    ///
    /// * an identical vote → the same signature;
    /// * a vote differing only in its timestamp → the stored signature
    ///   **and** the stored timestamp;
    /// * a precommit replay → the same vote signature and a valid extension
    ///   signature, also over a changed extension (extension signatures are
    ///   never cached);
    /// * a proposal differing only in its timestamp → a valid signature over
    ///   the new proposal (the node ignores a returned proposal timestamp).
    Replays,
    /// Requests below the last signed H/R/S must be refused with code 2 and
    /// the connection must stay open. Uses `height - 1` and `height`.
    Regressions,
    /// Different data at an already signed H/R/S must be refused with code 2.
    /// Uses `height` and `height + 1`.
    Conflicts,
    /// Requests for another chain must be refused with code 1 without moving
    /// the signer's state. Uses `height`.
    WrongChainId,
    /// Requests above the signer's configured `max_height` must be refused
    /// with code 3. `height` must be above it.
    AboveMaxHeight,
    /// Extension-signature presence rules (v0.38/v1). Uses `height` and
    /// `height + 1`.
    ///
    /// * a prevote or nil precommit that (against the rules) carries
    ///   extension bytes: signed **without** an extension signature, or
    ///   refused with code 4;
    /// * a non-nil precommit with an empty extension: signed with one;
    /// * a plain nil precommit: signed without one;
    /// * v1 only: a non-nil precommit with `skip_extension_signing` needs
    ///   none.
    ExtensionRules,
    /// A precommit with a `len`-byte extension (v0.38/v1; CometBFT allows up
    /// to [`MAX_VOTE_EXTENSION_SIZE`](crate::MAX_VOTE_EXTENSION_SIZE)) must
    /// be signed and answered within the node's 10 KiB response cap, i.e.
    /// without echoing the extension. Uses `height`.
    LargeExtension { len: usize },
    /// v1 `SignBytesRequest`. Uses `height` (only inside the bytes).
    ///
    /// * arbitrary bytes: a signature that verifies over the raw value, or a
    ///   refusal (policy);
    /// * bytes that are valid `CanonicalVote` sign bytes: must be refused (or
    ///   the connection dropped) — signing them would produce a vote
    ///   signature that bypasses the double-sign guard.
    SignBytes,
}

impl Scripted {
    /// The scenario's name in its [`Report`].
    pub fn name(self) -> &'static str {
        match self {
            Scripted::Replays => "replays",
            Scripted::Regressions => "regressions",
            Scripted::Conflicts => "conflicts",
            Scripted::WrongChainId => "wrong chain id",
            Scripted::AboveMaxHeight => "above max height",
            Scripted::ExtensionRules => "extension rules",
            Scripted::LargeExtension { .. } => "large extension",
            Scripted::SignBytes => "sign bytes",
        }
    }

    /// Whether `dialect` has what this scenario tests.
    pub fn applies_to(self, dialect: Dialect) -> bool {
        self.missing_in(dialect).is_none()
    }

    /// What `dialect` lacks for this scenario, if anything.
    fn missing_in(self, dialect: Dialect) -> Option<&'static str> {
        match self {
            Scripted::ExtensionRules | Scripted::LargeExtension { .. }
                if !dialect.has_extensions() =>
            {
                Some("vote extensions")
            }
            Scripted::SignBytes if !dialect.has_sign_bytes() => Some("SignBytesRequest"),
            _ => None,
        }
    }

    /// Runs the scenario on `conn` from `height`, as the signer with
    /// `pubkey` on `chain_id`. Fails only if the scenario does not apply to
    /// the connection's dialect, or its requests cannot be built; anything
    /// the signer does is in the report.
    pub fn run(
        self,
        conn: &mut SignerConn,
        chain_id: &str,
        height: i64,
        pubkey: &[u8; 32],
    ) -> Result<Report, SimError> {
        let dialect = conn.dialect();
        if let Some(missing) = self.missing_in(dialect) {
            return Err(SimError::Unsupported(format!("{dialect} has no {missing}")));
        }
        let run = Run::new(conn, chain_id, pubkey, self.name());
        Ok(match self {
            Scripted::Replays => signing_policy::replays(run, height),
            Scripted::Regressions => signing_policy::regressions(run, height),
            Scripted::Conflicts => signing_policy::conflicts(run, height),
            Scripted::WrongChainId => signing_policy::wrong_chain_id(run, height),
            Scripted::AboveMaxHeight => signing_policy::above_max_height(run, height),
            Scripted::ExtensionRules => extensions::extension_rules(run, height),
            Scripted::LargeExtension { len } => extensions::large_extension(run, height, len),
            Scripted::SignBytes => sign_bytes_request::sign_bytes(run, height)?,
        })
    }
}
