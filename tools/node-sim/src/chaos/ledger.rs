//! The judge: every signature any signer returned, by height/round/step.
//!
//! Two votes at one height/round/type that differ in anything (block id,
//! timestamp, signature) conflict: a replay must return the reserved
//! message, timestamp included. Two proposals conflict when they differ in
//! anything but the timestamp (the node ignores a proposal's returned
//! timestamp, and re-signing it with another one is allowed).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a message sits: height, round and type (1 prevote, 2 precommit,
/// 32 proposal).
pub type Hrs = (i64, i32, i32);

/// What one returned signature committed the validator to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The block hash (`None`: nil).
    pub block: Option<[u8; 32]>,
    /// The vote's returned timestamp; for proposals the requested one.
    pub timestamp: (i64, i32),
    /// Proposals only (`-1` for votes).
    pub pol_round: i32,
    pub signature: [u8; 64],
    pub signer: usize,
    pub node: usize,
}

/// Two signatures that must not both exist.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub hrs: Hrs,
    pub first: Signed,
    pub second: Signed,
}

/// Kept conflicts (all are counted).
const KEPT_CONFLICTS: usize = 20;

#[derive(Debug, Default)]
struct Inner {
    /// The first signature at each position (later ones are compared to it).
    by_hrs: HashMap<Hrs, Signed>,
    signatures: u64,
    by_signer: HashMap<usize, u64>,
    conflicts: u64,
    kept: Vec<Conflict>,
    last_signer: Option<usize>,
    /// Signer faults still waiting for the next signature: (when, victim).
    pending_failovers: Vec<Instant>,
    failovers: Vec<Duration>,
    highest: i64,
}

/// The shared ledger.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

/// What the ledger holds at the end.
#[derive(Debug, Clone, Default)]
pub struct LedgerSummary {
    pub signatures: u64,
    pub positions: u64,
    pub by_signer: Vec<(usize, u64)>,
    pub conflicts: u64,
    pub kept: Vec<Conflict>,
    pub failovers: Vec<Duration>,
    pub highest: i64,
}

impl Ledger {
    /// Records a verified signature; returns the conflict it makes, if any.
    pub fn record(&self, hrs: Hrs, signed: Signed) -> Option<Conflict> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.signatures += 1;
        *inner.by_signer.entry(signed.signer).or_default() += 1;
        inner.last_signer = Some(signed.signer);
        inner.highest = inner.highest.max(hrs.0);
        let pending = std::mem::take(&mut inner.pending_failovers);
        inner.failovers.extend(
            pending
                .into_iter()
                .map(|at| now.saturating_duration_since(at)),
        );
        let conflict = match inner.by_hrs.get(&hrs) {
            None => {
                inner.by_hrs.insert(hrs, signed);
                return None;
            }
            Some(first) if !conflicts(hrs, first, &signed) => return None,
            Some(first) => Conflict {
                hrs,
                first: first.clone(),
                second: signed,
            },
        };
        inner.conflicts += 1;
        if inner.kept.len() < KEPT_CONFLICTS {
            inner.kept.push(conflict.clone());
        }
        Some(conflict)
    }

    /// A fault is about to hit `signer`: if it signed last, time until the
    /// next signature from anyone is a failover.
    pub fn signer_fault(&self, signer: usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.last_signer == Some(signer) {
            inner.pending_failovers.push(Instant::now());
        }
    }

    /// Signatures recorded so far.
    pub fn signatures(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .signatures
    }

    pub fn summary(&self) -> LedgerSummary {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_signer: Vec<(usize, u64)> =
            inner.by_signer.iter().map(|(s, n)| (*s, *n)).collect();
        by_signer.sort_unstable();
        LedgerSummary {
            signatures: inner.signatures,
            positions: inner.by_hrs.len() as u64,
            by_signer,
            conflicts: inner.conflicts,
            kept: inner.kept.clone(),
            failovers: inner.failovers.clone(),
            highest: inner.highest,
        }
    }
}

fn conflicts(hrs: Hrs, a: &Signed, b: &Signed) -> bool {
    if hrs.2 == crate::msg_type::PROPOSAL {
        a.block != b.block || a.pol_round != b.pol_round
    } else {
        a.block != b.block || a.timestamp != b.timestamp || a.signature != b.signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(block: u8, ts: i64) -> Signed {
        Signed {
            block: Some([block; 32]),
            timestamp: (ts, 0),
            pol_round: -1,
            signature: [block; 64],
            signer: 0,
            node: 0,
        }
    }

    #[test]
    fn votes_conflict_on_any_difference() {
        let l = Ledger::default();
        assert!(l.record((1, 0, 1), signed(1, 5)).is_none());
        assert!(l.record((1, 0, 1), signed(1, 5)).is_none(), "a replay");
        assert!(
            l.record((1, 0, 1), signed(1, 6)).is_some(),
            "other timestamp"
        );
        assert!(l.record((1, 0, 1), signed(2, 5)).is_some(), "other block");
        assert!(l.record((1, 0, 2), signed(2, 5)).is_none(), "other step");
        assert_eq!(l.summary().conflicts, 2);
    }

    #[test]
    fn proposals_may_differ_in_timestamp_only() {
        let l = Ledger::default();
        let mut a = signed(1, 5);
        assert!(l.record((1, 0, 32), a.clone()).is_none());
        a.timestamp = (9, 0);
        a.signature = [7; 64];
        assert!(l.record((1, 0, 32), a).is_none());
        assert!(l.record((1, 0, 32), signed(2, 5)).is_some());
    }

    #[test]
    fn failover_is_measured_from_the_last_signer() {
        let l = Ledger::default();
        l.record((1, 0, 1), signed(1, 5));
        l.signer_fault(1);
        assert!(
            l.summary().failovers.is_empty(),
            "signer 1 did not sign last"
        );
        l.signer_fault(0);
        l.record((1, 0, 2), signed(1, 5));
        assert_eq!(l.summary().failovers.len(), 1);
    }
}
