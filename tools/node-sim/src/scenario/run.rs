//! Running one scenario's cases over a connection: each request is sent,
//! its answer verified and recorded, until the connection is lost.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::spec::{validator_address, BlockIdSpec, VoteSpec};
use crate::verify::verify_signature;

use super::report::{Expect, Outcome, Report};
use super::request::{Reply, SignRequest, Signed, Verifier};

/// A scenario in progress: runs cases until the connection is lost. Once it
/// is, every further request is skipped, so a scenario can be written as a
/// straight list of requests.
pub(super) struct Run<'a> {
    conn: &'a mut SignerConn,
    /// The chain the requests name; a scenario may switch it between cases.
    pub(super) chain_id: &'a str,
    pubkey: [u8; 32],
    report: Report,
}

/// A scenario-specific check of a verified answer (e.g. "the stored
/// signature came back").
pub(super) type Check<'c, T> = &'c dyn Fn(&T) -> Result<(), String>;

impl<'a> Run<'a> {
    pub(super) fn new(
        conn: &'a mut SignerConn,
        chain_id: &'a str,
        pubkey: &[u8; 32],
        scenario: &str,
    ) -> Self {
        Run {
            conn,
            chain_id,
            pubkey: *pubkey,
            report: Report::new(scenario),
        }
    }

    pub(super) fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// A prevote by the signer's validator (index 0), without extension.
    pub(super) fn prevote(&self, height: i64, round: i32, block: Option<BlockIdSpec>) -> VoteSpec {
        VoteSpec::prevote(height, round, block).with_validator(validator_address(&self.pubkey), 0)
    }

    /// A precommit by the signer's validator (index 0), without extension.
    pub(super) fn bare_precommit(
        &self,
        height: i64,
        round: i32,
        block: Option<BlockIdSpec>,
    ) -> VoteSpec {
        VoteSpec::precommit(height, round, block).with_validator(validator_address(&self.pubkey), 0)
    }

    /// A precommit by the signer's validator carrying the extension a
    /// healthy application attaches at `height` (none before v0.38).
    pub(super) fn precommit(
        &self,
        height: i64,
        round: i32,
        block: Option<BlockIdSpec>,
    ) -> VoteSpec {
        self.bare_precommit(height, round, block)
            .with_extension(extension_for(self.dialect(), height))
    }

    fn live(&self) -> bool {
        !self.report.connection_lost()
    }

    /// Sends `request` and verifies the answer as the node does.
    pub(super) fn sign<R: SignRequest>(
        &mut self,
        name: &str,
        expect: Expect,
        request: &R,
    ) -> Option<R::Answer> {
        self.sign_checked(name, expect, request, &any)
    }

    /// [`Run::sign`], then applies `check` to the verified answer.
    pub(super) fn sign_checked<R: SignRequest>(
        &mut self,
        name: &str,
        expect: Expect,
        request: &R,
        check: Check<'_, R::Answer>,
    ) -> Option<R::Answer> {
        let (pubkey, dialect) = (self.pubkey, self.dialect());
        let send = |conn: &mut SignerConn, chain_id: &str| request.send(conn, chain_id);
        self.signing_case(name, expect, send, |chain_id, answer| {
            let by = Verifier {
                pubkey: &pubkey,
                chain_id,
                dialect,
            };
            request
                .verify(by, answer)
                .map_err(|e| e.to_string())
                .and_then(|()| check(answer))
        })
    }

    /// Sends a `SignBytesRequest` for `value` and verifies the signature over
    /// the raw value.
    pub(super) fn sign_bytes(&mut self, name: &str, expect: Expect, value: &[u8]) {
        let pubkey = self.pubkey;
        let send = |conn: &mut SignerConn, _: &str| conn.sign_bytes(value);
        self.signing_case(name, expect, send, |_, sig| {
            verify_signature(&pubkey, value, sig)
                .map_err(|_| "the signature does not verify over the raw value".to_owned())
        });
    }

    /// One signing request as a case, skipped once the connection is lost:
    /// `send` asks for the signature on the run's chain, `verify` judges the
    /// answer, which is returned only if it passes.
    fn signing_case<T>(
        &mut self,
        name: &str,
        expect: Expect,
        send: impl FnOnce(&mut SignerConn, &str) -> Reply<T>,
        verify: impl FnOnce(&str, &T) -> Result<(), String>,
    ) -> Option<T> {
        if !self.live() {
            return None;
        }
        let chain_id = self.chain_id;
        let (outcome, signed) = match send(self.conn, chain_id) {
            Ok(Ok(signed)) => match verify(chain_id, &signed) {
                Ok(()) => (Outcome::Ok, Some(signed)),
                Err(why) => (Outcome::Violation(why), None),
            },
            Ok(Err(refusal)) => (Outcome::refused(refusal), None),
            Err(e) => (Outcome::from_error(&e), None),
        };
        self.report.push(name, expect, outcome);
        signed
    }

    pub(super) fn ping(&mut self, name: &str) {
        if !self.live() {
            return;
        }
        let outcome = Outcome::of(&self.conn.ping());
        self.report.push(name, Expect::Ok, outcome);
    }

    /// Checks that the connection survived the scenario, and returns its
    /// report.
    pub(super) fn finish_with_ping(mut self) -> Report {
        self.ping("connection still open");
        self.report
    }

    /// The report, without a final ping.
    pub(super) fn finish(self) -> Report {
        self.report
    }
}

/// A [`Check`] that compares an answer's signature with an earlier one:
/// `why` says what a different one means.
pub(super) fn same_signature<'s, T: Signed>(
    first: &'s T,
    why: &'s str,
) -> impl Fn(&T) -> Result<(), String> + 's {
    move |s: &T| {
        if s.signature() == first.signature() {
            Ok(())
        } else {
            Err(why.to_owned())
        }
    }
}

pub(super) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// The extension a healthy application would attach at `height`.
pub(super) fn extension_for(dialect: Dialect, height: i64) -> Vec<u8> {
    if dialect.has_extensions() {
        format!("vote-extension-{height}").into_bytes()
    } else {
        Vec::new()
    }
}
