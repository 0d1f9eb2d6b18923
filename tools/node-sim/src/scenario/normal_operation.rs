//! Normal operation and benchmark: a consensus-like sequence of proposals
//! and votes, every answer verified.

use std::time::{Duration, Instant};

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{validator_address, BlockIdSpec, ProposalSpec, VoteSpec};
use crate::stats::{Latencies, Summary};

use super::request::sign_verified;
use super::run::extension_for;

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
                let context = || format!("proposal at height {}", p.height);
                sign_verified(conn, chain_id, pubkey, &p, context)?;
                stats.last_height = p.height;
            }
            Step::Vote(v) => {
                let context = || format!("{} at height {}", v.kind, v.height);
                let signed = sign_verified(conn, chain_id, pubkey, &v, context)?;
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
