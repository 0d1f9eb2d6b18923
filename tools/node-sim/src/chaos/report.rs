//! The summary a run prints and writes (`summary.json`, `faults.log`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::faults::Budget;
use super::node::Shared;
use super::Config;

/// Everything the judge concluded.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub signers: usize,
    pub sentries: usize,
    pub chaos_secs: f64,
    pub faults_total: u64,
    pub faults: BTreeMap<String, u64>,
    pub faults_skipped: u64,
    pub fault_log: Vec<String>,
    pub lane_errors: Vec<String>,
    pub requests: u64,
    pub signed: u64,
    pub replay_asks: u64,
    pub refused: BTreeMap<String, u64>,
    pub transport_errors: u64,
    pub connections: u64,
    pub round_bumps: u64,
    pub positions_signed: u64,
    pub highest_height: i64,
    pub signatures_by_signer: BTreeMap<String, u64>,
    pub signer_starts: Vec<u64>,
    pub conflicts: u64,
    pub conflict_details: Vec<String>,
    pub invalid_signatures: Vec<String>,
    pub wrong_pubkey: u64,
    pub failovers: usize,
    pub failover_p50_ms: Option<u128>,
    pub failover_max_ms: Option<u128>,
    /// From the end of the last fault to signatures again.
    pub recovery_ms: Option<u128>,
    pub clock: String,
}

fn lock<T: Clone>(m: &std::sync::Mutex<T>) -> T {
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Report {
    pub fn new(
        cfg: &Config,
        budget: &Budget,
        shared: &Shared,
        chaos: Duration,
        recovery: Option<Duration>,
        signer_starts: Vec<u64>,
        clock: String,
    ) -> Self {
        let stats = shared.stats();
        let ledger = shared.ledger.summary();
        let mut failovers = ledger.failovers.clone();
        failovers.sort_unstable();
        let p50 = failovers.get(failovers.len() / 2).map(Duration::as_millis);
        let max = failovers.last().map(Duration::as_millis);
        Report {
            seed: cfg.seed,
            signers: cfg.signers,
            sentries: cfg.sentries,
            chaos_secs: chaos.as_secs_f64(),
            faults_total: budget.total.load(Ordering::SeqCst),
            faults: lock(&budget.by_kind)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            faults_skipped: budget.skipped.load(Ordering::SeqCst),
            fault_log: lock(&budget.log),
            lane_errors: lock(&budget.lane_errors),
            requests: stats.requests,
            signed: stats.signed,
            replay_asks: stats.replay_asks,
            refused: stats
                .refused
                .iter()
                .map(|(code, n)| (code_name(*code), *n))
                .collect(),
            transport_errors: stats.transport_errors,
            connections: stats.connections,
            round_bumps: stats.round_bumps,
            positions_signed: ledger.positions,
            highest_height: ledger.highest,
            signatures_by_signer: ledger
                .by_signer
                .iter()
                .map(|(s, n)| (format!("signer-{s}"), *n))
                .collect(),
            signer_starts,
            conflicts: ledger.conflicts,
            conflict_details: ledger
                .kept
                .iter()
                .map(|c| {
                    format!(
                        "H/R/type {:?}: signer {} via node {} signed block {} ts {:?}, signer {} via node {} signed block {} ts {:?}",
                        c.hrs,
                        c.first.signer,
                        c.first.node,
                        short(c.first.block),
                        c.first.timestamp,
                        c.second.signer,
                        c.second.node,
                        short(c.second.block),
                        c.second.timestamp
                    )
                })
                .collect(),
            invalid_signatures: stats.invalid.clone(),
            wrong_pubkey: stats.wrong_pubkey,
            failovers: failovers.len(),
            failover_p50_ms: p50,
            failover_max_ms: max,
            recovery_ms: recovery.map(|d| d.as_millis()),
            clock,
        }
    }

    /// Whether the judge finds the run clean.
    pub fn clean(&self) -> bool {
        self.conflicts == 0 && self.invalid_signatures.is_empty() && self.wrong_pubkey == 0
    }

    /// The human-readable summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "== HA chaos summary (seed {}) ==", self.seed);
        let _ = writeln!(
            s,
            "signers {}, sentries {}, 3 etcd members, chaos {:.1} s; {}",
            self.signers, self.sentries, self.chaos_secs, self.clock
        );
        let _ = writeln!(
            s,
            "faults injected: {} (skipped: {})",
            self.faults_total, self.faults_skipped
        );
        for (k, v) in &self.faults {
            let _ = writeln!(s, "  {k:<28} {v}");
        }
        let _ = writeln!(
            s,
            "requests sent {}, signed {} ({} positions, up to height {}), replay asks {}",
            self.requests,
            self.signed,
            self.positions_signed,
            self.highest_height,
            self.replay_asks
        );
        let _ = writeln!(s, "signatures by signer: {:?}", self.signatures_by_signer);
        let _ = writeln!(s, "signer starts: {:?}", self.signer_starts);
        let _ = writeln!(s, "refused by code: {:?}", self.refused);
        let _ = writeln!(
            s,
            "transport errors (timeouts, broken connections) {}, connections {}, round bumps {}",
            self.transport_errors, self.connections, self.round_bumps
        );
        let ms = |v: Option<u128>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
        let _ = writeln!(
            s,
            "failover (last signer killed/stopped -> next signature): {} measured, p50 {}, max {}",
            self.failovers,
            ms(self.failover_p50_ms),
            ms(self.failover_max_ms)
        );
        let _ = writeln!(s, "recovery after the last fault: {}", ms(self.recovery_ms));
        if !self.lane_errors.is_empty() {
            let _ = writeln!(s, "driver errors: {}", self.lane_errors.len());
            for e in self.lane_errors.iter().take(5) {
                let _ = writeln!(s, "  {e}");
            }
        }
        let _ = writeln!(s, "invalid signatures: {}", self.invalid_signatures.len());
        for e in self.invalid_signatures.iter().take(5) {
            let _ = writeln!(s, "  {e}");
        }
        let _ = writeln!(s, "conflicting signatures: {}", self.conflicts);
        for c in &self.conflict_details {
            let _ = writeln!(s, "  {c}");
        }
        s
    }
}

fn short(block: Option<[u8; 32]>) -> String {
    block.map_or("nil".to_owned(), |b| {
        hex::encode(b.get(..4).unwrap_or_default())
    })
}

fn code_name(code: i32) -> String {
    let name = match code {
        crate::codes::WRONG_CHAIN_ID => "wrong-chain-id",
        crate::codes::DOUBLE_SIGN => "double-sign",
        crate::codes::ABOVE_MAX_HEIGHT => "above-max-height",
        crate::codes::MALFORMED => "malformed",
        crate::codes::PERSIST_FAILED => "persist-failed",
        _ => "other",
    };
    format!("{code} {name}")
}
