//! Scripted scenarios against one signer connection.
//!
//! Every scenario returns a typed report: a list of [`Case`]s, each with what
//! was expected ([`Expect`]) and what happened ([`Outcome`]). Errors are kept
//! for what the simulator itself cannot do (an invalid spec, a failed accept);
//! anything the signer does, including dropping the connection, is an outcome.
//!
//! Heights: every scenario uses the heights it is given and a few above
//! (see each function); [`run_all`] hands out fresh heights, so the signer's
//! last signed state is always below the next scenario's first request.

use std::fmt;
use std::time::{Duration, Instant};

use tendermint_proto::v0_38::types::Vote as RawVote;

use crate::codec::{encode_frame, encode_uvarint};
use crate::conn::{NodeListener, Readiness, SignerConn, MAX_VOTE_EXTENSION_SIZE};
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::sign_bytes::vote_sign_bytes;
use crate::spec::{
    codes, validator_address, BlockIdSpec, ProposalSpec, RemoteError, SignedProposal, SignedVote,
    VoteSpec,
};
use crate::stats::{Latencies, Summary};
use crate::verify::{verify_proposal, verify_signature, verify_vote};

/// What a case requires of the signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A correct answer (verified signature, pong, …).
    Ok,
    /// A `RemoteSignerError` with this code; the connection stays usable.
    Refused(i32),
    /// A `RemoteSignerError` with this code, or a dropped connection.
    RefusedOrDropped(i32),
    /// Any `RemoteSignerError`, or a dropped connection.
    ErrorOrDropped,
    /// A correct answer or a `RemoteSignerError` with this code (a policy
    /// choice of the signer).
    OkOrRefused(i32),
    /// A correct answer or any `RemoteSignerError`.
    OkOrError,
}

/// What the signer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered correctly (signature verified, pong received, …).
    Ok,
    /// Refused with a `RemoteSignerError`.
    Refused { code: i32, description: String },
    /// Closed the connection.
    Dropped,
    /// No answer within the deadline.
    NoAnswer,
    /// Answered, but the answer breaks a protocol rule.
    Violation(String),
}

impl Outcome {
    fn refused(e: RemoteError) -> Self {
        Outcome::Refused {
            code: e.code,
            description: e.description,
        }
    }

    /// Maps a simulator error to what the signer did.
    pub fn from_error(e: &SimError) -> Self {
        match e {
            SimError::Closed | SimError::Io { .. } => Outcome::Dropped,
            SimError::Timeout(_) => Outcome::NoAnswer,
            SimError::Remote(r) => Outcome::refused(r.clone()),
            other => Outcome::Violation(other.to_string()),
        }
    }

    /// Whether the connection is gone after this outcome.
    pub fn lost_connection(&self) -> bool {
        matches!(self, Outcome::Dropped | Outcome::NoAnswer)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Refused { code, description } => {
                write!(f, "refused (code {code}: {description})")
            }
            Outcome::Dropped => f.write_str("connection dropped"),
            Outcome::NoAnswer => f.write_str("no answer"),
            Outcome::Violation(why) => write!(f, "violation: {why}"),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Ok => f.write_str("ok"),
            Expect::Refused(c) => write!(f, "refused with code {c}"),
            Expect::RefusedOrDropped(c) => write!(f, "refused with code {c} or dropped"),
            Expect::ErrorOrDropped => f.write_str("an error response or a dropped connection"),
            Expect::OkOrRefused(c) => write!(f, "ok or refused with code {c}"),
            Expect::OkOrError => f.write_str("ok or an error response"),
        }
    }
}

/// One request (or abuse) and its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub expect: Expect,
    pub outcome: Outcome,
}

impl Case {
    /// Whether the outcome is what was expected.
    pub fn passed(&self) -> bool {
        match (self.expect, &self.outcome) {
            (Expect::Ok | Expect::OkOrRefused(_) | Expect::OkOrError, Outcome::Ok) => true,
            (
                Expect::Refused(want) | Expect::RefusedOrDropped(want) | Expect::OkOrRefused(want),
                Outcome::Refused { code, .. },
            ) => *code == want,
            (Expect::ErrorOrDropped | Expect::OkOrError, Outcome::Refused { .. }) => true,
            (Expect::RefusedOrDropped(_) | Expect::ErrorOrDropped, Outcome::Dropped) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.name, self.outcome)?;
        if !self.passed() {
            write!(f, " (expected {})", self.expect)?;
        }
        Ok(())
    }
}

/// The cases of one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    pub cases: Vec<Case>,
}

impl Report {
    fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_owned(),
            cases: Vec::new(),
        }
    }

    /// Whether every case passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(Case::passed)
    }

    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The cases that failed.
    pub fn failures(&self) -> Vec<&Case> {
        self.cases.iter().filter(|c| !c.passed()).collect()
    }

    /// Whether the last case left the connection dropped or silent.
    pub fn connection_lost(&self) -> bool {
        self.cases
            .last()
            .is_some_and(|c| c.outcome.lost_connection())
    }
}

/// A scenario in progress: runs cases until the connection is lost.
struct Run<'a> {
    conn: &'a mut SignerConn,
    chain_id: &'a str,
    pubkey: [u8; 32],
    report: Report,
}

type Check<'c, T> = &'c dyn Fn(&T) -> Result<(), String>;

impl<'a> Run<'a> {
    fn new(conn: &'a mut SignerConn, chain_id: &'a str, pubkey: &[u8; 32], scenario: &str) -> Self {
        Run {
            conn,
            chain_id,
            pubkey: *pubkey,
            report: Report::new(scenario),
        }
    }

    fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    fn live(&self) -> bool {
        !self.report.connection_lost()
    }

    fn record(&mut self, name: impl Into<String>, expect: Expect, outcome: Outcome) {
        self.report.cases.push(Case {
            name: name.into(),
            expect,
            outcome,
        });
    }

    /// Signs `vote`, verifies the answer, then applies `check`.
    fn vote(
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
    fn proposal(
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

    fn ping(&mut self, name: &str) {
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

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Whether v1 nodes set `skip_extension_signing` on this vote: they send
/// `!extensionsEnabled`, and extensions are enabled only for precommits.
fn node_skips_extension(dialect: Dialect, vote: &VoteSpec) -> bool {
    dialect == Dialect::V1 && vote.kind != crate::spec::VoteKind::Precommit
}

/// The extension a healthy application would attach at `height`.
fn extension_for(dialect: Dialect, height: i64) -> Vec<u8> {
    if dialect.has_extensions() {
        format!("vote-extension-{height}").into_bytes()
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------
// Normal operation and benchmark
// ---------------------------------------------------------------------------

/// Latencies and counters of a run of sign requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub first_height: i64,
    pub last_height: i64,
    pub requests: usize,
    pub latencies: Latencies,
    pub elapsed: Duration,
    /// Fresh votes whose returned timestamp differs from the requested one.
    pub timestamps_changed: usize,
    /// The largest response body seen.
    pub max_response_len: usize,
}

impl Stats {
    /// Percentiles and throughput.
    pub fn summary(&self) -> Summary {
        self.latencies.summary(self.elapsed)
    }
}

/// The `i`-th request of a consensus-like sequence starting at `start_height`:
/// proposal, prevote, precommit (with an extension where the dialect has
/// them) per height, all at round 0 for one block per height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Proposal(ProposalSpec),
    Vote(VoteSpec),
}

/// See [`Step`].
pub fn step(dialect: Dialect, pubkey: &[u8; 32], start_height: i64, i: u64) -> Step {
    let offset = i64::try_from(i / 3).unwrap_or(i64::MAX);
    let height = start_height.saturating_add(offset);
    let block = Some(BlockIdSpec::for_height(height));
    let address = validator_address(pubkey);
    match i % 3 {
        0 => Step::Proposal(ProposalSpec::new(height, 0, block)),
        1 => Step::Vote(VoteSpec::prevote(height, 0, block).with_validator(address, 0)),
        _ => Step::Vote(
            VoteSpec::precommit(height, 0, block)
                .with_validator(address, 0)
                .with_extension(extension_for(dialect, height)),
        ),
    }
}

/// Sends `requests` requests of the [`step`] sequence, verifying each;
/// `progress` is called after every request with its index.
///
/// A refusal is [`SimError::Remote`]; a verification failure
/// [`SimError::Verify`].
pub fn drive(
    conn: &mut SignerConn,
    chain_id: &str,
    start_height: i64,
    requests: u64,
    pubkey: &[u8; 32],
    progress: &mut dyn FnMut(u64, &Stats),
) -> Result<Stats, SimError> {
    let dialect = conn.dialect();
    let mut stats = Stats {
        first_height: start_height,
        last_height: start_height,
        ..Stats::default()
    };
    let started = Instant::now();
    for i in 0..requests {
        match step(dialect, pubkey, start_height, i) {
            Step::Proposal(p) => {
                let signed = conn
                    .sign_proposal(chain_id, &p)?
                    .map_err(SimError::Remote)?;
                verify_proposal(pubkey, chain_id, &p, &signed).map_err(|source| {
                    SimError::Verify {
                        context: format!("proposal at height {}", p.height),
                        source,
                    }
                })?;
                stats.last_height = p.height;
            }
            Step::Vote(v) => {
                let skip = node_skips_extension(dialect, &v);
                let signed = conn
                    .sign_vote(chain_id, &v, skip)?
                    .map_err(SimError::Remote)?;
                verify_vote(pubkey, chain_id, &v, &signed, dialect, skip).map_err(|source| {
                    SimError::Verify {
                        context: format!("{} at height {}", v.kind, v.height),
                        source,
                    }
                })?;
                if signed.timestamp != v.timestamp {
                    stats.timestamps_changed += 1;
                }
                stats.last_height = v.height;
            }
        }
        stats.requests += 1;
        stats.latencies.record(conn.last_round_trip());
        stats.max_response_len = stats.max_response_len.max(conn.last_response_len());
        stats.elapsed = started.elapsed();
        progress(i, &stats);
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// Signs `count` heights from `start_height` (proposal, prevote, precommit
/// each, with an extension on precommits for v0.38/v1) and verifies every
/// signature. `dialect` must be the connection's.
pub fn normal_heights(
    conn: &mut SignerConn,
    chain_id: &str,
    start_height: i64,
    count: i64,
    pubkey: &[u8; 32],
    dialect: Dialect,
) -> Result<Stats, SimError> {
    if dialect != conn.dialect() {
        return Err(SimError::Unsupported(format!(
            "asked for {dialect} on a {} connection",
            conn.dialect()
        )));
    }
    let requests = u64::try_from(count).unwrap_or(0).saturating_mul(3);
    drive(
        conn,
        chain_id,
        start_height,
        requests,
        pubkey,
        &mut |_, _| {},
    )
}

// ---------------------------------------------------------------------------
// Replays, regressions, conflicts, chain id
// ---------------------------------------------------------------------------

/// Same-H/R/S requests that must be answered from the stored state. Uses
/// `height` and `height + 1`.
///
/// * an identical vote → the same signature;
/// * a vote differing only in its timestamp → the stored signature **and**
///   the stored timestamp;
/// * a precommit replay → the same vote signature and a valid extension
///   signature, also over a changed extension (extension signatures are
///   never cached);
/// * a proposal differing only in its timestamp → a valid signature over the
///   new proposal (the node ignores a returned proposal timestamp).
pub fn replays(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "replays");
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));

    let prevote = VoteSpec::prevote(height, 0, block).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote);
    if let Some(first) = run.vote("prevote", Expect::Ok, &prevote, skip, &any) {
        let same = |s: &SignedVote| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a new signature instead of the stored one".to_owned())
            }
        };
        run.vote("identical prevote", Expect::Ok, &prevote, skip, &same);
        let (secs, nanos) = prevote.timestamp;
        let moved = prevote.clone().with_timestamp(secs + 5, nanos + 1000);
        let stored = |s: &SignedVote| {
            if s.signature != first.signature {
                Err("a new signature instead of the stored one".to_owned())
            } else if s.timestamp != first.timestamp {
                Err(format!(
                    "returned timestamp {:?}, expected the stored {:?}",
                    s.timestamp, first.timestamp
                ))
            } else {
                Ok(())
            }
        };
        run.vote(
            "prevote differing only in timestamp",
            Expect::Ok,
            &moved,
            skip,
            &stored,
        );
    }

    let precommit = VoteSpec::precommit(height, 0, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    if let Some(first) = run.vote("precommit", Expect::Ok, &precommit, false, &any) {
        let same = |s: &SignedVote| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a new vote signature instead of the stored one".to_owned())
            }
        };
        run.vote("identical precommit", Expect::Ok, &precommit, false, &same);
        if dialect.has_extensions() {
            let other = precommit
                .clone()
                .with_extension(b"another extension".to_vec());
            run.vote(
                "precommit with another extension",
                Expect::Ok,
                &other,
                false,
                &same,
            );
        }
    }

    let proposal = ProposalSpec::new(height + 1, 0, Some(BlockIdSpec::for_height(height + 1)));
    if let Some(first) = run.proposal("proposal", Expect::Ok, &proposal, &any) {
        let same = |s: &SignedProposal| {
            if s.signature == first.signature {
                Ok(())
            } else {
                Err("a different signature for identical sign bytes".to_owned())
            }
        };
        run.proposal("identical proposal", Expect::Ok, &proposal, &same);
        let (secs, nanos) = proposal.timestamp;
        let moved = proposal.clone().with_timestamp(secs + 2, nanos);
        // verify_proposal checks the signature over the *new* timestamp.
        run.proposal(
            "proposal differing only in timestamp",
            Expect::Ok,
            &moved,
            &any,
        );
    }
    run.ping("connection still open");
    Ok(run.report)
}

/// Requests below the last signed H/R/S must be refused with code 2 and the
/// connection must stay open. Uses `height - 1` and `height`.
pub fn regressions(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "regressions");
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));
    let top = VoteSpec::precommit(height, 1, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    run.vote("precommit at H/1", Expect::Ok, &top, false, &any);

    let refused = Expect::Refused(codes::DOUBLE_SIGN);
    let lower_height = VoteSpec::prevote(height - 1, 0, Some(BlockIdSpec::for_height(height - 1)))
        .with_validator(address, 0);
    run.vote(
        "prevote at H-1 (lower height)",
        refused,
        &lower_height,
        node_skips_extension(dialect, &lower_height),
        &any,
    );
    let lower_round = VoteSpec::precommit(height, 0, block)
        .with_validator(address, 0)
        .with_extension(extension_for(dialect, height));
    run.vote(
        "precommit at H/0 (lower round)",
        refused,
        &lower_round,
        false,
        &any,
    );
    let lower_step = VoteSpec::prevote(height, 1, block).with_validator(address, 0);
    run.vote(
        "prevote at H/1 (lower step)",
        refused,
        &lower_step,
        node_skips_extension(dialect, &lower_step),
        &any,
    );
    run.proposal(
        "proposal at H/1 (lower step)",
        refused,
        &ProposalSpec::new(height, 1, block),
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
}

/// Different data at an already signed H/R/S must be refused with code 2.
/// Uses `height` and `height + 1`.
pub fn conflicts(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "conflicts");
    let dialect = run.dialect();
    let address = validator_address(pubkey);
    let a = Some(BlockIdSpec::from_seed(b"block A"));
    let b = Some(BlockIdSpec::from_seed(b"block B"));
    let refused = Expect::Refused(codes::DOUBLE_SIGN);

    let prevote_a = VoteSpec::prevote(height, 0, a).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote_a);
    run.vote("prevote for block A", Expect::Ok, &prevote_a, skip, &any);
    let prevote_b = VoteSpec::prevote(height, 0, b).with_validator(address, 0);
    run.vote(
        "prevote for block B at the same H/R/S",
        refused,
        &prevote_b,
        skip,
        &any,
    );
    let prevote_nil = VoteSpec::prevote(height, 0, None).with_validator(address, 0);
    run.vote(
        "nil prevote at the same H/R/S",
        refused,
        &prevote_nil,
        skip,
        &any,
    );

    let ext = extension_for(dialect, height);
    let precommit_a = VoteSpec::precommit(height, 0, a)
        .with_validator(address, 0)
        .with_extension(ext.clone());
    run.vote(
        "precommit for block A",
        Expect::Ok,
        &precommit_a,
        false,
        &any,
    );
    let precommit_b = VoteSpec::precommit(height, 0, b)
        .with_validator(address, 0)
        .with_extension(ext);
    run.vote(
        "precommit for block B at the same H/R/S",
        refused,
        &precommit_b,
        false,
        &any,
    );

    let next = height + 1;
    run.proposal(
        "proposal for block A",
        Expect::Ok,
        &ProposalSpec::new(next, 0, a),
        &any,
    );
    run.proposal(
        "proposal for block B at the same H/R",
        refused,
        &ProposalSpec::new(next, 0, b),
        &any,
    );
    let with_pol = ProposalSpec::new(next, 1, a).with_pol_round(0);
    run.proposal(
        "proposal at round 1 with POL round 0",
        Expect::Ok,
        &with_pol,
        &any,
    );
    let without_pol = ProposalSpec::new(next, 1, a);
    run.proposal(
        "the same proposal without POL round",
        refused,
        &without_pol,
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
}

/// Requests for another chain must be refused with code 1 without moving the
/// signer's state. Uses `height`.
pub fn wrong_chain_id(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let other = if chain_id == "other-chain" {
        "another-chain"
    } else {
        "other-chain"
    };
    let dialect = conn.dialect();
    let address = validator_address(pubkey);
    let block = Some(BlockIdSpec::for_height(height));
    let prevote = VoteSpec::prevote(height, 0, block).with_validator(address, 0);
    let skip = node_skips_extension(dialect, &prevote);
    let proposal = ProposalSpec::new(height, 0, block);
    let refused = Expect::Refused(codes::WRONG_CHAIN_ID);

    let mut wrong = Run::new(conn, other, pubkey, "wrong chain id");
    wrong.proposal("proposal for another chain", refused, &proposal, &any);
    wrong.vote("prevote for another chain", refused, &prevote, skip, &any);
    let mut report = wrong.report;
    if report.connection_lost() {
        return Ok(report);
    }
    let mut right = Run::new(conn, chain_id, pubkey, "wrong chain id");
    right.proposal(
        "the same proposal on the configured chain",
        Expect::Ok,
        &proposal,
        &any,
    );
    right.vote(
        "the same prevote on the configured chain",
        Expect::Ok,
        &prevote,
        skip,
        &any,
    );
    report.cases.append(&mut right.report.cases);
    Ok(report)
}

/// Requests above the signer's configured `max_height` must be refused with
/// code 3. `height` must be above it.
pub fn above_max_height(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    pubkey: &[u8; 32],
) -> Result<Report, SimError> {
    let mut run = Run::new(conn, chain_id, pubkey, "above max height");
    let dialect = run.dialect();
    let block = Some(BlockIdSpec::for_height(height));
    let refused = Expect::Refused(codes::ABOVE_MAX_HEIGHT);
    run.proposal(
        "proposal above max_height",
        refused,
        &ProposalSpec::new(height, 0, block),
        &any,
    );
    let prevote = VoteSpec::prevote(height, 0, block).with_validator(validator_address(pubkey), 0);
    run.vote(
        "prevote above max_height",
        refused,
        &prevote,
        node_skips_extension(dialect, &prevote),
        &any,
    );
    run.ping("connection still open");
    Ok(run.report)
}

// ---------------------------------------------------------------------------
// Vote extensions and v1 features
// ---------------------------------------------------------------------------

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
/// allows up to [`MAX_VOTE_EXTENSION_SIZE`]) must be signed and answered
/// within the node's 10 KiB response cap, i.e. without echoing the extension.
/// Uses `height`.
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

// ---------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------

/// A request that is well-framed but invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidRequest {
    NegativeHeight,
    NegativeRound,
    UnknownVoteType,
    ShortBlockHash,
    ShortPartSetHash,
    MissingVote,
    ProposalNegativeHeight,
    ProposalPolRoundBelowMinusOne,
    ProposalPolRoundNotBelowRound,
}

impl InvalidRequest {
    /// Every kind.
    pub const ALL: [InvalidRequest; 9] = [
        InvalidRequest::NegativeHeight,
        InvalidRequest::NegativeRound,
        InvalidRequest::UnknownVoteType,
        InvalidRequest::ShortBlockHash,
        InvalidRequest::ShortPartSetHash,
        InvalidRequest::MissingVote,
        InvalidRequest::ProposalNegativeHeight,
        InvalidRequest::ProposalPolRoundBelowMinusOne,
        InvalidRequest::ProposalPolRoundNotBelowRound,
    ];

    /// A short description, used as the case name.
    pub fn name(self) -> &'static str {
        match self {
            InvalidRequest::NegativeHeight => "vote with a negative height",
            InvalidRequest::NegativeRound => "vote with a negative round",
            InvalidRequest::UnknownVoteType => "vote of an unknown type",
            InvalidRequest::ShortBlockHash => "vote with a 31-byte block hash",
            InvalidRequest::ShortPartSetHash => "vote with a 31-byte part set hash",
            InvalidRequest::MissingVote => "SignVoteRequest without a vote",
            InvalidRequest::ProposalNegativeHeight => "proposal with a negative height",
            InvalidRequest::ProposalPolRoundBelowMinusOne => "proposal with pol_round -2",
            InvalidRequest::ProposalPolRoundNotBelowRound => "proposal with pol_round >= round",
        }
    }
}

/// Sends one invalid request at `height` (a fresh height) and expects code 4
/// or a dropped connection.
pub fn invalid_request(
    conn: &mut SignerConn,
    chain_id: &str,
    height: i64,
    kind: InvalidRequest,
) -> Result<Case, SimError> {
    let block = Some(BlockIdSpec::for_height(height));
    let prevote = || VoteSpec::prevote(height, 0, block).to_raw();
    let with_vote = |f: &dyn Fn(&mut RawVote)| {
        let mut v = prevote();
        f(&mut v);
        Some(v)
    };
    let signed_anyway = |what: &str| Outcome::Violation(format!("signed {what}"));
    let vote_outcome = |r: Result<Result<SignedVote, RemoteError>, SimError>| match r {
        Ok(Ok(_)) => signed_anyway("an invalid vote"),
        Ok(Err(e)) => Outcome::refused(e),
        Err(e) => Outcome::from_error(&e),
    };
    let proposal_outcome = |r: Result<Result<SignedProposal, RemoteError>, SimError>| match r {
        Ok(Ok(_)) => signed_anyway("an invalid proposal"),
        Ok(Err(e)) => Outcome::refused(e),
        Err(e) => Outcome::from_error(&e),
    };
    let outcome = match kind {
        InvalidRequest::NegativeHeight => {
            vote_outcome(conn.sign_vote_message(chain_id, with_vote(&|v| v.height = -1), false))
        }
        InvalidRequest::NegativeRound => {
            vote_outcome(conn.sign_vote_message(chain_id, with_vote(&|v| v.round = -1), false))
        }
        InvalidRequest::UnknownVoteType => {
            vote_outcome(conn.sign_vote_message(chain_id, with_vote(&|v| v.r#type = 3), false))
        }
        InvalidRequest::ShortBlockHash => vote_outcome(conn.sign_vote_message(
            chain_id,
            with_vote(&|v| {
                if let Some(id) = v.block_id.as_mut() {
                    id.hash.truncate(31);
                }
            }),
            false,
        )),
        InvalidRequest::ShortPartSetHash => vote_outcome(conn.sign_vote_message(
            chain_id,
            with_vote(&|v| {
                if let Some(psh) = v
                    .block_id
                    .as_mut()
                    .and_then(|id| id.part_set_header.as_mut())
                {
                    psh.hash.truncate(31);
                }
            }),
            false,
        )),
        InvalidRequest::MissingVote => vote_outcome(conn.sign_vote_message(chain_id, None, false)),
        InvalidRequest::ProposalNegativeHeight => {
            let mut p = ProposalSpec::new(height, 0, block).to_raw();
            p.height = -1;
            proposal_outcome(conn.sign_proposal_raw(chain_id, p))
        }
        InvalidRequest::ProposalPolRoundBelowMinusOne => {
            let p = ProposalSpec::new(height, 0, block)
                .with_pol_round(-2)
                .to_raw();
            proposal_outcome(conn.sign_proposal_raw(chain_id, p))
        }
        InvalidRequest::ProposalPolRoundNotBelowRound => {
            let p = ProposalSpec::new(height, 1, block)
                .with_pol_round(1)
                .to_raw();
            proposal_outcome(conn.sign_proposal_raw(chain_id, p))
        }
    };
    Ok(Case {
        name: kind.name().to_owned(),
        expect: Expect::RefusedOrDropped(codes::MALFORMED),
        outcome,
    })
}

/// Bytes that are not a well-formed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedFrame {
    /// A length prefix of 4 GiB followed by a few bytes.
    OversizeLength,
    /// Eleven `0xff` bytes: a uvarint that never ends.
    BadLengthPrefix,
    /// A well-framed body that is not a protobuf message.
    Garbage,
    /// A zero-length `Message` (no oneof set).
    EmptyMessage,
    /// A `PingResponse`, which only a signer may send.
    ResponseType,
    /// A frame declaring 100 bytes, 10 sent, then end of stream.
    Truncated,
    /// Bytes on the socket that are not SecretConnection frames (tcp only).
    CorruptCiphertext,
}

impl MalformedFrame {
    /// Every kind.
    pub const ALL: [MalformedFrame; 7] = [
        MalformedFrame::OversizeLength,
        MalformedFrame::BadLengthPrefix,
        MalformedFrame::Garbage,
        MalformedFrame::EmptyMessage,
        MalformedFrame::ResponseType,
        MalformedFrame::Truncated,
        MalformedFrame::CorruptCiphertext,
    ];

    /// A short description, used as the case name.
    pub fn name(self) -> &'static str {
        match self {
            MalformedFrame::OversizeLength => "oversize length prefix (4 GiB)",
            MalformedFrame::BadLengthPrefix => "unterminated length prefix",
            MalformedFrame::Garbage => "body that is not protobuf",
            MalformedFrame::EmptyMessage => "empty Message",
            MalformedFrame::ResponseType => "PingResponse sent to the signer",
            MalformedFrame::Truncated => "truncated frame, then end of stream",
            MalformedFrame::CorruptCiphertext => "bytes that are not SecretConnection frames",
        }
    }
}

/// Sends one malformed input and waits up to `wait` for the signer to answer
/// with an error or drop the connection. Expects either; a signer that stays
/// silent (e.g. waiting for 4 GiB) or answers normally fails. The connection
/// is not usable afterwards unless the outcome is a refusal.
pub fn malformed_frame(
    conn: &mut SignerConn,
    kind: MalformedFrame,
    wait: Duration,
) -> Result<Case, SimError> {
    let sent = match kind {
        MalformedFrame::OversizeLength => {
            let mut bytes = encode_uvarint(1 << 32);
            bytes.extend_from_slice(&[0u8; 16]);
            conn.send_raw(&bytes)
        }
        MalformedFrame::BadLengthPrefix => conn.send_raw(&[0xff; 11]),
        // Field 1, wire type 2, with a length running past the end.
        MalformedFrame::Garbage => {
            conn.send_raw(&encode_frame(&[0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
        }
        MalformedFrame::EmptyMessage => conn.send_raw(&encode_frame(&[])),
        // Message { ping_response (8) {} }
        MalformedFrame::ResponseType => conn.send_raw(&encode_frame(&[0x42, 0x00])),
        MalformedFrame::Truncated => {
            let mut bytes = encode_uvarint(100);
            bytes.extend_from_slice(&[0x3a; 10]);
            conn.send_raw(&bytes).and_then(|()| conn.shutdown_write())
        }
        MalformedFrame::CorruptCiphertext => {
            if conn.remote_identity_key().is_none() {
                return Err(SimError::Unsupported(
                    "plaintext connection: no ciphertext to corrupt".into(),
                ));
            }
            conn.send_unencrypted(&[0x5a; 1044])
        }
    };
    let outcome = match sent {
        Err(e) => Outcome::from_error(&e),
        Ok(()) => match conn.wait_readable(wait) {
            Readiness::Closed => Outcome::Dropped,
            Readiness::Idle => Outcome::NoAnswer,
            Readiness::Data => match conn.read_message_raw() {
                Err(e) => Outcome::from_error(&e),
                Ok(body) => match crate::codec::decode_response(conn.dialect(), &body) {
                    Err(e) => Outcome::Violation(format!("undecodable answer: {e}")),
                    Ok(r) => match r.error() {
                        Some(e) => Outcome::refused(e.clone()),
                        None => Outcome::Violation(format!("answered with {}", r.name())),
                    },
                },
            },
        },
    };
    Ok(Case {
        name: kind.name().to_owned(),
        expect: Expect::ErrorOrDropped,
        outcome,
    })
}

// ---------------------------------------------------------------------------
// The whole suite
// ---------------------------------------------------------------------------

/// Settings of [`run_all`].
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    pub chain_id: String,
    /// First height used; everything signed is at or above it.
    pub start_height: i64,
    /// Heights signed by the normal-operation scenario.
    pub normal_heights: i64,
    /// How long to wait for the signer to (re)connect.
    pub accept_timeout: Duration,
    /// How long to wait for the signer's reaction to malformed input.
    pub reaction_wait: Duration,
    /// The signer's `max_height`, if configured: adds the code-3 scenario.
    pub max_height: Option<i64>,
    /// Extension size of the large-extension scenario.
    pub large_extension_len: usize,
}

impl SuiteConfig {
    /// Defaults: start at height 1, 5 normal heights, 30 s to (re)connect,
    /// 2 s reaction wait, 1 MiB extension.
    pub fn new(chain_id: &str) -> Self {
        SuiteConfig {
            chain_id: chain_id.to_owned(),
            start_height: 1,
            normal_heights: 5,
            accept_timeout: Duration::from_secs(30),
            reaction_wait: Duration::from_secs(2),
            max_height: None,
            large_extension_len: MAX_VOTE_EXTENSION_SIZE,
        }
    }
}

/// The result of [`run_all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteReport {
    pub dialect: Dialect,
    pub pubkey: [u8; 32],
    pub reports: Vec<Report>,
    /// How many times the signer had to reconnect.
    pub reconnects: usize,
    /// The next unused height.
    pub next_height: i64,
}

impl SuiteReport {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        self.reports.iter().all(Report::passed)
    }

    /// One line per failed case, `scenario: case expected …, got …`, for a
    /// test's failure message.
    pub fn failure_lines(&self) -> Vec<String> {
        self.reports
            .iter()
            .flat_map(|r| {
                r.failures().into_iter().map(move |case| {
                    format!(
                        "{}: {} expected {}, got {}",
                        r.scenario, case.name, case.expect, case.outcome
                    )
                })
            })
            .collect()
    }

    /// The acceptance checks every provider's conformance run makes after
    /// [`run_all`], given what the test sees of the signer; returns one line
    /// per broken check (empty: all hold):
    /// * every case passed;
    /// * the key the signer used over the wire is its configured key;
    /// * malformed frames cost at least one connection (the signer dropped
    ///   a stream it could not parse, then reconnected and kept serving);
    /// * its durable state followed the signing: it is at least at the
    ///   height of the suite's last request, the recovery signing at
    ///   `next_height - 1` (persisted before that signature left);
    /// * nothing in its log panicked;
    /// * over TCP, it checked the node's pinned peer id.
    pub fn check_signer(&self, signer: &SignerAfterSuite<'_>) -> Vec<String> {
        let mut problems = self.failure_lines();
        if self.pubkey != signer.pubkey {
            problems.push(format!(
                "the key used over the wire ({}) is not the signer's key ({})",
                hex::encode(self.pubkey),
                hex::encode(signer.pubkey)
            ));
        }
        if self.reconnects == 0 {
            problems.push("malformed frames cost no connection".to_owned());
        }
        let signed_up_to = self.next_height.saturating_sub(1);
        if i64::try_from(signer.state_height).unwrap_or(i64::MAX) < signed_up_to {
            problems.push(format!(
                "the durable state is at height {}, behind the signing (height {signed_up_to})",
                signer.state_height
            ));
        }
        if signer.log.contains("panicked") {
            problems.push("the signer's log shows a panic".to_owned());
        }
        if signer.tcp && !signer.log.contains("node peer id verified") {
            problems.push("the signer did not verify the node's pinned peer id".to_owned());
        }
        problems
    }
}

/// What a conformance test sees of its signer after [`run_all`], for
/// [`SuiteReport::check_signer`].
#[derive(Clone, Copy, Debug)]
pub struct SignerAfterSuite<'a> {
    /// The consensus public key the signer was set up with (from its key
    /// file, `pubkey` command or init output — not from the wire).
    pub pubkey: [u8; 32],
    /// The height of its durable state.
    pub state_height: u64,
    /// Its log.
    pub log: &'a str,
    /// Whether it connected over TCP (SecretConnection with a pinned peer id).
    pub tcp: bool,
}

/// Defines one `#[test]` per dialect and transport — `v0_34_tcp`,
/// `v0_34_unix`, … `v1_unix` — each calling `$run(dialect, tcp)` with the
/// dialect's name as the signer's config spells it (`"v0.34"`, …) and
/// whether to connect over TCP (else a Unix socket). Every provider's
/// conformance suite covers the same matrix this way.
#[macro_export]
macro_rules! conformance_matrix {
    ($run:path) => {
        $crate::conformance_matrix!(@each $run;
            v0_34_tcp "v0.34" true, v0_34_unix "v0.34" false,
            v0_37_tcp "v0.37" true, v0_37_unix "v0.37" false,
            v0_38_tcp "v0.38" true, v0_38_unix "v0.38" false,
            v1_tcp "v1" true, v1_unix "v1" false);
    };
    (@each $run:path; $($name:ident $dialect:literal $tcp:literal),*) => {$(
        #[test]
        fn $name() {
            $run($dialect, $tcp);
        }
    )*};
}

struct Suite<'l> {
    listener: &'l NodeListener,
    cfg: &'l SuiteConfig,
    conn: Option<SignerConn>,
    reconnects: usize,
    height: i64,
}

impl Suite<'_> {
    fn conn(&mut self) -> Result<&mut SignerConn, SimError> {
        if self.conn.is_none() {
            let mut conn = self.listener.accept(self.cfg.accept_timeout)?;
            conn.ping()?;
            self.reconnects += 1;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or(SimError::Unsupported("no connection".into()))
    }

    /// Drops the connection if the last outcome lost it or a ping fails.
    fn settle(&mut self, lost: bool) {
        let healthy = !lost && self.conn.as_mut().is_some_and(|c| c.ping().is_ok());
        if !healthy {
            if let Some(c) = self.conn.take() {
                c.close();
            }
        }
    }

    fn heights(&mut self, n: i64) -> i64 {
        let h = self.height;
        self.height = self.height.saturating_add(n);
        h
    }
}

/// Accepts a signer on `listener` and runs every scenario that applies to
/// the listener's dialect, re-accepting whenever a scenario cost the
/// connection. Fails only if the simulator cannot go on (the signer does not
/// (re)connect, or refuses its public key).
pub fn run_all(listener: &NodeListener, cfg: &SuiteConfig) -> Result<SuiteReport, SimError> {
    let dialect = listener.dialect();
    let mut suite = Suite {
        listener,
        cfg,
        conn: None,
        reconnects: 0,
        height: cfg.start_height.max(2),
    };
    let chain = cfg.chain_id.as_str();
    let pubkey = suite.conn()?.pubkey(chain)?.map_err(SimError::Remote)?;
    suite.reconnects = 0;
    let mut reports = Vec::new();

    // Normal operation.
    let start = suite.heights(cfg.normal_heights.max(1));
    let conn = suite.conn()?;
    let outcome = match normal_heights(
        conn,
        chain,
        start,
        cfg.normal_heights.max(1),
        &pubkey,
        dialect,
    ) {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::from_error(&e),
    };
    let mut normal = Report::new("normal heights");
    normal.cases.push(Case {
        name: format!("{} heights from {start}", cfg.normal_heights.max(1)),
        expect: Expect::Ok,
        outcome,
    });
    let lost = normal.connection_lost();
    reports.push(normal);
    suite.settle(lost);

    type Scenario = fn(&mut SignerConn, &str, i64, &[u8; 32]) -> Result<Report, SimError>;
    let mut scripted: Vec<Scenario> = vec![replays, regressions, conflicts, wrong_chain_id];
    if dialect.has_extensions() {
        scripted.push(extension_rules);
    }
    if dialect.has_sign_bytes() {
        scripted.push(sign_bytes);
    }
    for scenario in scripted {
        let h = suite.heights(10);
        let report = scenario(suite.conn()?, chain, h, &pubkey)?;
        let lost = report.connection_lost();
        reports.push(report);
        suite.settle(lost);
    }
    if dialect.has_extensions() {
        let h = suite.heights(10);
        let len = cfg.large_extension_len;
        let report = large_extension(suite.conn()?, chain, h, &pubkey, len)?;
        let lost = report.connection_lost();
        reports.push(report);
        suite.settle(lost);
    }
    if let Some(max) = cfg.max_height {
        let report = above_max_height(suite.conn()?, chain, max.saturating_add(1), &pubkey)?;
        let lost = report.connection_lost();
        reports.push(report);
        suite.settle(lost);
    }

    let mut invalid = Report::new("invalid requests");
    for kind in InvalidRequest::ALL {
        let h = suite.heights(1);
        let case = invalid_request(suite.conn()?, chain, h, kind)?;
        let lost = case.outcome.lost_connection();
        invalid.cases.push(case);
        suite.settle(lost);
    }
    reports.push(invalid);

    let mut malformed = Report::new("malformed frames");
    for kind in MalformedFrame::ALL {
        let conn = suite.conn()?;
        if kind == MalformedFrame::CorruptCiphertext && conn.remote_identity_key().is_none() {
            continue;
        }
        let case = malformed_frame(conn, kind, cfg.reaction_wait)?;
        // Only a refusal leaves the stream in a known state.
        let lost = !matches!(case.outcome, Outcome::Refused { .. });
        malformed.cases.push(case);
        suite.settle(lost);
    }
    reports.push(malformed);

    // After all that, the signer must still sign.
    let mut recovery = Report::new("recovery");
    let h = suite.heights(1);
    let outcome = match suite
        .conn()
        .and_then(|c| normal_heights(c, chain, h, 1, &pubkey, dialect))
    {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::from_error(&e),
    };
    recovery.cases.push(Case {
        name: "signs a new height after all scenarios".into(),
        expect: Expect::Ok,
        outcome,
    });
    reports.push(recovery);

    Ok(SuiteReport {
        dialect,
        pubkey,
        reports,
        reconnects: suite.reconnects,
        next_height: suite.height,
    })
}
