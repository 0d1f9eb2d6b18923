//! The double-sign acceptance checks of the crash tests: a signer is killed
//! at random moments during continuous signing and restarted, over and
//! over, and the node keeps a ledger of every signature it received.
//!
//! A [`CrashRun`] drives one connected session of the restarted signer —
//! first a conflicting message at the last released height/round/step, then
//! the request that was in flight when the previous signer died, then new
//! heights until the connection is lost — and enforces, with typed
//! [`Violation`]s rather than panics:
//! * **no double sign**: at one height/round/step, every released signature
//!   is over the same sign bytes ([`Ledger::record`]);
//! * **every released signature verifies** against the signer's key;
//! * **a conflict is refused** after a restart with the double-sign code, and
//!   the request that was in flight is signed (same bytes) or the connection
//!   is lost, never refused;
//! * **state before signature**: the signer's durable state never goes
//!   backwards and is never behind a released signature
//!   ([`CrashRun::check_durable`]).
//!
//! What kills the signer, and how it is restarted, stays with each provider's
//! test; this module only plays the node. It knows nothing of the signer's
//! types: positions are plain `(height, round, step)` numbers.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use rand_core::RngCore;

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::sign_bytes::{proposal_sign_bytes, vote_sign_bytes};
use crate::spec::{codes, BlockIdSpec, ProposalSpec, VoteKind, VoteSpec};
use crate::verify::{verify_proposal, verify_vote};

/// Step numbers in CometBFT's privval order (`stepPropose` = 1, …), which
/// is also the order a validator signs in at one height and round.
pub mod step {
    pub const PROPOSE: u8 = 1;
    pub const PREVOTE: u8 = 2;
    pub const PRECOMMIT: u8 = 3;
}

/// A height/round/step, ordered the way a signer's state advances. The
/// default (0/0/0) is below everything signable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub height: i64,
    pub round: i64,
    /// One of [`step`]'s numbers.
    pub step: u8,
}

impl Position {
    pub fn new(height: i64, round: i64, step: u8) -> Self {
        Position {
            height,
            round,
            step,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.step {
            step::PROPOSE => "proposal",
            step::PREVOTE => "prevote",
            step::PRECOMMIT => "precommit",
            _ => "none",
        };
        write!(f, "{}/{}/{step}", self.height, self.round)
    }
}

/// A sign request of the crash tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Proposal(ProposalSpec),
    Vote(VoteSpec),
}

impl Msg {
    /// Where the message sits in the signer's height/round/step order.
    pub fn position(&self) -> Position {
        match self {
            Msg::Proposal(p) => Position::new(p.height, i64::from(p.round), step::PROPOSE),
            Msg::Vote(v) => {
                let s = match v.kind {
                    VoteKind::Prevote => step::PREVOTE,
                    VoteKind::Precommit => step::PRECOMMIT,
                };
                Position::new(v.height, i64::from(v.round), s)
            }
        }
    }

    /// The same message for another block: signing it after this one would
    /// be a double sign.
    pub fn conflicting(&self) -> Msg {
        let other = Some(BlockIdSpec::from_seed(b"conflict"));
        match self {
            Msg::Proposal(p) => Msg::Proposal(ProposalSpec {
                block_id: other,
                ..p.clone()
            }),
            Msg::Vote(v) => Msg::Vote(VoteSpec {
                block_id: other,
                ..v.clone()
            }),
        }
    }

    /// What a validator signs at height `h`, round 0, in order: proposal,
    /// prevote, precommit (with an extension, which dialects without
    /// extensions leave out).
    pub fn for_height(h: i64) -> [Msg; 3] {
        let block = Some(BlockIdSpec::for_height(h));
        let mut precommit = VoteSpec::precommit(h, 0, block);
        precommit.extension = format!("ext-{h}").into_bytes();
        [
            Msg::Proposal(ProposalSpec::new(h, 0, block)),
            Msg::Vote(VoteSpec::prevote(h, 0, block)),
            Msg::Vote(precommit),
        ]
    }
}

/// A broken acceptance check: what the signer did that it must never do.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    /// Two different sign bytes were signed at one height/round/step.
    #[error("DOUBLE SIGN at {0}: two different messages were signed there")]
    DoubleSign(Position),
    /// A released signature does not verify against the signer's key.
    #[error("the signature released at {position} does not verify: {reason}")]
    BadSignature { position: Position, reason: String },
    /// The sign bytes of a request cannot be built (a bug in the test).
    #[error("cannot build the sign bytes at {position}: {reason}")]
    Spec { position: Position, reason: String },
    /// A message conflicting with a released one was signed after a restart.
    #[error("a message conflicting with the one released at {0} was signed after a restart")]
    ConflictSigned(Position),
    /// A conflict was refused, but not as a double sign.
    #[error(
        "the conflict at {position} was refused with code {code}, not double sign ({})",
        codes::DOUBLE_SIGN
    )]
    ConflictWrongCode { position: Position, code: i32 },
    /// The request that was in flight at the kill was refused after the
    /// restart (it must be signed again, with the same bytes).
    #[error("the in-flight request at {position} was refused with code {code} after the restart")]
    InFlightRefused { position: Position, code: i32 },
    /// A new request above everything signed was refused.
    #[error("unexpected refusal with code {code} at {position}")]
    Refused { position: Position, code: i32 },
    /// The durable state moved backwards.
    #[error("the durable state went backwards: {from} -> {to}")]
    StateWentBack { from: Position, to: Position },
    /// The durable state is behind a signature already released: the
    /// signature left before the state that covers it was persisted.
    #[error("the durable state {durable} is behind the released signature at {released}")]
    StateBehindSignature {
        durable: Position,
        released: Position,
    },
    /// The run was too thin to mean anything.
    #[error("too little happened: {0}")]
    TooLittle(String),
}

/// Every signature released so far, by position: the sign bytes signed.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    signed: HashMap<Position, Vec<u8>>,
    highest: Position,
}

impl Ledger {
    /// Records a released signature over `bytes` at `position`; a second
    /// signature there over other bytes is a [`Violation::DoubleSign`] (a
    /// re-sign of the very same bytes is allowed: that is how a signer
    /// answers a request it already signed).
    pub fn record(&mut self, position: Position, bytes: Vec<u8>) -> Result<(), Violation> {
        let previous = self.signed.entry(position).or_insert_with(|| bytes.clone());
        if *previous != bytes {
            return Err(Violation::DoubleSign(position));
        }
        self.highest = self.highest.max(position);
        Ok(())
    }

    /// The highest position a signature was released at.
    pub fn highest(&self) -> Position {
        self.highest
    }

    /// How many positions have a released signature.
    pub fn len(&self) -> usize {
        self.signed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signed.is_empty()
    }
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Signed; the signature verified and is in the ledger.
    Signed,
    /// Refused with this `RemoteSignerError` code.
    Refused(i32),
    /// No answer: the connection broke (the signer was killed).
    Lost,
}

/// The chain and dialect a crash test signs in, and how it reads a
/// persistence failure.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    pub chain_id: String,
    pub dialect: Dialect,
    /// Whether a `PERSIST_FAILED` refusal counts as a lost connection rather
    /// than a refusal: true where one process signs and another persists
    /// (an enclave whose host was just killed cannot persist; nothing was
    /// signed and its connection is about to go).
    pub persist_failure_is_loss: bool,
}

impl CrashConfig {
    pub fn new(chain_id: &str, dialect: Dialect) -> Self {
        CrashConfig {
            chain_id: chain_id.to_owned(),
            dialect,
            persist_failure_is_loss: false,
        }
    }
}

/// Sends `msg`; a signature that comes back must verify against `pubkey`
/// and is recorded in `ledger` (see [`Ledger::record`]). Transport failures
/// of any kind are [`Sent::Lost`].
pub fn send(
    conn: &mut SignerConn,
    cfg: &CrashConfig,
    pubkey: &[u8; 32],
    msg: &Msg,
    ledger: &mut Ledger,
) -> Result<Sent, Violation> {
    let chain = cfg.chain_id.as_str();
    let position = msg.position();
    let bad = |reason: String| Violation::BadSignature { position, reason };
    let spec = |reason: String| Violation::Spec { position, reason };
    let refused = match msg {
        Msg::Vote(v) => match conn.sign_vote(chain, v, false) {
            Ok(Ok(signed)) => {
                verify_vote(pubkey, chain, v, &signed, cfg.dialect, false)
                    .map_err(|e| bad(e.to_string()))?;
                // The node broadcasts the vote with the signer's timestamp.
                let mut as_signed = v.clone();
                as_signed.timestamp = signed.timestamp;
                let bytes = vote_sign_bytes(chain, &as_signed).map_err(|e| spec(e.to_string()))?;
                ledger.record(position, bytes)?;
                return Ok(Sent::Signed);
            }
            Ok(Err(e)) => e.code,
            Err(_) => return Ok(Sent::Lost),
        },
        Msg::Proposal(p) => match conn.sign_proposal(chain, p) {
            Ok(Ok(signed)) => {
                verify_proposal(pubkey, chain, p, &signed).map_err(|e| bad(e.to_string()))?;
                let bytes = proposal_sign_bytes(chain, p).map_err(|e| spec(e.to_string()))?;
                ledger.record(position, bytes)?;
                return Ok(Sent::Signed);
            }
            Ok(Err(e)) => e.code,
            Err(_) => return Ok(Sent::Lost),
        },
    };
    if refused == codes::PERSIST_FAILED && cfg.persist_failure_is_loss {
        return Ok(Sent::Lost);
    }
    Ok(Sent::Refused(refused))
}

/// Counts of a crash run, for its summary line and the "enough happened"
/// checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Sessions driven (the restarted signer connected).
    pub sessions: usize,
    /// Conflicting messages refused as double signs.
    pub refused_conflicts: usize,
    /// In-flight requests signed again after a restart.
    pub replays: usize,
    /// In-flight re-sends cut short by the next kill.
    pub lost_replays: usize,
}

/// A crash test's node side across all restarts of the signer.
#[derive(Debug)]
pub struct CrashRun {
    cfg: CrashConfig,
    ledger: Ledger,
    /// The request sent when the connection was lost, not known to be signed.
    in_flight: Option<Msg>,
    last_released: Option<Msg>,
    /// The height whose messages are signed next.
    height: i64,
    last_durable: Position,
    tally: Tally,
}

impl CrashRun {
    pub fn new(cfg: CrashConfig) -> Self {
        CrashRun {
            cfg,
            ledger: Ledger::default(),
            in_flight: None,
            last_released: None,
            height: 1,
            last_durable: Position::default(),
            tally: Tally::default(),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The height whose messages are signed next.
    pub fn height(&self) -> i64 {
        self.height
    }

    /// Drives one session of a freshly (re)started signer until its
    /// connection is lost:
    /// 1. the message conflicting with the last one released must be refused
    ///    as a double sign (or the connection lost);
    /// 2. the request in flight when the previous signer died must be signed
    ///    (over the same bytes, if it had been signed before) or lost — never
    ///    refused;
    /// 3. the next heights are signed, each request refused only at the
    ///    cost of a [`Violation`].
    pub fn session(&mut self, conn: &mut SignerConn, pubkey: &[u8; 32]) -> Result<(), Violation> {
        self.tally.sessions += 1;
        if let Some(last) = &self.last_released {
            let conflict = last.conflicting();
            let position = conflict.position();
            match send(conn, &self.cfg, pubkey, &conflict, &mut self.ledger)? {
                Sent::Refused(codes::DOUBLE_SIGN) => self.tally.refused_conflicts += 1,
                Sent::Refused(code) => return Err(Violation::ConflictWrongCode { position, code }),
                Sent::Signed => return Err(Violation::ConflictSigned(position)),
                Sent::Lost => return Ok(()),
            }
        }
        if let Some(msg) = self.in_flight.take() {
            match send(conn, &self.cfg, pubkey, &msg, &mut self.ledger)? {
                Sent::Signed => {
                    self.tally.replays += 1;
                    self.last_released = Some(msg);
                }
                Sent::Refused(code) => {
                    let position = msg.position();
                    return Err(Violation::InFlightRefused { position, code });
                }
                Sent::Lost => {
                    self.tally.lost_replays += 1;
                    self.in_flight = Some(msg);
                    return Ok(());
                }
            }
        }
        loop {
            for msg in Msg::for_height(self.height) {
                if msg.position() <= self.ledger.highest {
                    continue;
                }
                match send(conn, &self.cfg, pubkey, &msg, &mut self.ledger)? {
                    Sent::Signed => self.last_released = Some(msg),
                    Sent::Refused(code) => {
                        let position = msg.position();
                        return Err(Violation::Refused { position, code });
                    }
                    Sent::Lost => {
                        self.in_flight = Some(msg);
                        return Ok(());
                    }
                }
            }
            self.height += 1;
        }
    }

    /// Checks the signer's durable state after it died: never behind where
    /// it was after the previous death, and never behind a released
    /// signature (the state covering a signature is persisted before the
    /// signature leaves the signer).
    pub fn check_durable(&mut self, durable: Position) -> Result<(), Violation> {
        if durable < self.last_durable {
            return Err(Violation::StateWentBack {
                from: self.last_durable,
                to: durable,
            });
        }
        if durable < self.ledger.highest {
            return Err(Violation::StateBehindSignature {
                durable,
                released: self.ledger.highest,
            });
        }
        self.last_durable = durable;
        Ok(())
    }

    /// Checks that a run of `kills` kills exercised something: more
    /// signatures than kills, at least `min_sessions` connected sessions and
    /// at least `min_refused_conflicts` refused conflicts.
    pub fn check_enough(
        &self,
        kills: usize,
        min_sessions: usize,
        min_refused_conflicts: usize,
    ) -> Result<(), Violation> {
        let t = &self.tally;
        if self.ledger.len() <= kills {
            return Err(Violation::TooLittle(format!(
                "{} signatures in {kills} kills",
                self.ledger.len()
            )));
        }
        if t.sessions < min_sessions {
            return Err(Violation::TooLittle(format!(
                "{} of {kills} kills hit a connected signer, want {min_sessions}",
                t.sessions
            )));
        }
        if t.refused_conflicts < min_refused_conflicts {
            return Err(Violation::TooLittle(format!(
                "{} conflicts refused, want {min_refused_conflicts}",
                t.refused_conflicts
            )));
        }
        Ok(())
    }

    /// Where the run stands, for tracing a failing run: durable state, last
    /// release, request in flight.
    pub fn trace(&self) -> String {
        format!(
            "durable {} released {:?} in-flight {:?}",
            self.last_durable,
            self.last_released
                .as_ref()
                .map(|m| m.position().to_string()),
            self.in_flight.as_ref().map(|m| m.position().to_string())
        )
    }
}

impl fmt::Display for CrashRun {
    /// The run's summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "{} connected sessions, {} signatures, last height {}, {} conflicts refused, \
             {} in-flight requests re-signed ({} re-sends cut by the next kill)",
            t.sessions,
            self.ledger.len(),
            self.height,
            t.refused_conflicts,
            t.replays,
            t.lost_replays
        )
    }
}

/// A kill at a random moment within a window, on a thread of its own, so
/// that it lands wherever the signer happens to be: starting up, between
/// requests, or between persisting and answering.
#[derive(Debug)]
pub struct ScheduledKill {
    /// How long after scheduling the kill runs.
    pub delay: Duration,
    thread: std::thread::JoinHandle<bool>,
}

impl ScheduledKill {
    /// Runs `kill` after a delay drawn uniformly from `[0, window)`; `kill`
    /// says whether it hit anything (a process it looks for may be gone).
    pub fn within(window: Duration, kill: impl FnOnce() -> bool + Send + 'static) -> Self {
        let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
        let delay = Duration::from_micros(rand_core::OsRng.next_u64() % micros);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            kill()
        });
        ScheduledKill { delay, thread }
    }

    /// Waits for the kill; whether it hit anything. A panic of the killing
    /// thread goes on in the caller.
    pub fn join(self) -> bool {
        match self.thread.join() {
            Ok(hit) => hit,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_like_a_signer_state() {
        let [p, pv, pc] = Msg::for_height(7).map(|m| m.position());
        assert!(Position::default() < p && p < pv && pv < pc);
        assert!(pc < Msg::for_height(8)[0].position());
        assert_eq!(pc.to_string(), "7/0/precommit");
    }

    #[test]
    fn ledger_rejects_other_bytes_at_one_position_and_allows_the_same() {
        let mut ledger = Ledger::default();
        let at = Position::new(3, 0, step::PREVOTE);
        ledger.record(at, vec![1]).unwrap();
        ledger.record(at, vec![1]).unwrap();
        assert!(matches!(
            ledger.record(at, vec![2]),
            Err(Violation::DoubleSign(p)) if p == at
        ));
        assert_eq!((ledger.len(), ledger.highest()), (1, at));
    }

    #[test]
    fn conflicting_message_has_the_same_position_and_other_bytes() {
        for msg in Msg::for_height(5) {
            let other = msg.conflicting();
            assert_eq!(other.position(), msg.position());
            assert_ne!(other, msg);
        }
    }

    #[test]
    fn a_scheduled_kill_runs_within_its_window_and_passes_on_a_panic() {
        let window = Duration::from_millis(20);
        let kill = ScheduledKill::within(window, || true);
        assert!(kill.delay < window);
        assert!(kill.join());
        let failing = ScheduledKill::within(window, || panic!("the kill failed"));
        let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| failing.join()));
        assert!(joined.is_err());
    }

    #[test]
    fn durable_state_may_not_go_back_or_lag_a_release() {
        let mut run = CrashRun::new(CrashConfig::new("c", Dialect::V0_38));
        let released = Position::new(4, 0, step::PREVOTE);
        run.ledger.record(released, vec![9]).unwrap();
        assert!(matches!(
            run.check_durable(Position::new(4, 0, step::PROPOSE)),
            Err(Violation::StateBehindSignature { .. })
        ));
        run.check_durable(Position::new(4, 0, step::PRECOMMIT))
            .unwrap();
        assert!(matches!(
            run.check_durable(released),
            Err(Violation::StateWentBack { .. })
        ));
    }
}
