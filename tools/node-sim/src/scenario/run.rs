//! Running one scenario's cases over a connection: each request is sent,
//! its answer verified and recorded, until the connection is lost.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::spec::{ProposalSpec, SignedProposal, SignedVote, VoteKind, VoteSpec};
use crate::verify::{verify_proposal, verify_vote};

use super::report::{Case, Expect, Outcome, Report};

/// A scenario in progress: runs cases until the connection is lost.
pub(super) struct Run<'a> {
    pub(super) conn: &'a mut SignerConn,
    pub(super) chain_id: &'a str,
    pub(super) pubkey: [u8; 32],
    pub(super) report: Report,
}

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

    pub(super) fn live(&self) -> bool {
        !self.report.connection_lost()
    }

    pub(super) fn record(&mut self, name: impl Into<String>, expect: Expect, outcome: Outcome) {
        self.report.cases.push(Case {
            name: name.into(),
            expect,
            outcome,
        });
    }

    /// Signs `vote`, verifies the answer, then applies `check`.
    pub(super) fn vote(
        &mut self,
        name: &str,
        expect: Expect,
        vote: &VoteSpec,
        skip: bool,
        check: Check<'_, SignedVote>,
    ) -> Option<SignedVote> {
        if !self.live() {
            return None;
        }
        let result = self.conn.sign_vote(self.chain_id, vote, skip);
        let (outcome, signed) = match result {
            Ok(Ok(signed)) => {
                let verified = verify_vote(
                    &self.pubkey,
                    self.chain_id,
                    vote,
                    &signed,
                    self.dialect(),
                    skip,
                )
                .map_err(|e| e.to_string())
                .and_then(|()| check(&signed));
                match verified {
                    Ok(()) => (Outcome::Ok, Some(signed)),
                    Err(why) => (Outcome::Violation(why), None),
                }
            }
            Ok(Err(refusal)) => (Outcome::refused(refusal), None),
            Err(e) => (Outcome::from_error(&e), None),
        };
        self.record(name, expect, outcome);
        signed
    }

    /// Signs `proposal`, verifies the answer over the requested proposal, then
    /// applies `check`.
    pub(super) fn proposal(
        &mut self,
        name: &str,
        expect: Expect,
        proposal: &ProposalSpec,
        check: Check<'_, SignedProposal>,
    ) -> Option<SignedProposal> {
        if !self.live() {
            return None;
        }
        let result = self.conn.sign_proposal(self.chain_id, proposal);
        let (outcome, signed) = match result {
            Ok(Ok(signed)) => {
                let verified = verify_proposal(&self.pubkey, self.chain_id, proposal, &signed)
                    .map_err(|e| e.to_string())
                    .and_then(|()| check(&signed));
                match verified {
                    Ok(()) => (Outcome::Ok, Some(signed)),
                    Err(why) => (Outcome::Violation(why), None),
                }
            }
            Ok(Err(refusal)) => (Outcome::refused(refusal), None),
            Err(e) => (Outcome::from_error(&e), None),
        };
        self.record(name, expect, outcome);
        signed
    }

    pub(super) fn ping(&mut self, name: &str) {
        if !self.live() {
            return;
        }
        let outcome = match self.conn.ping() {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::from_error(&e),
        };
        self.record(name, Expect::Ok, outcome);
    }
}

pub(super) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Whether v1 nodes set `skip_extension_signing` on this vote: they send
/// `!extensionsEnabled`, and extensions are enabled only for precommits.
pub(super) fn node_skips_extension(dialect: Dialect, vote: &VoteSpec) -> bool {
    dialect == Dialect::V1 && vote.kind != VoteKind::Precommit
}

/// The extension a healthy application would attach at `height`.
pub(super) fn extension_for(dialect: Dialect, height: i64) -> Vec<u8> {
    if dialect.has_extensions() {
        format!("vote-extension-{height}").into_bytes()
    } else {
        Vec::new()
    }
}
