//! The two fault lanes. The signer lane SIGKILLs (and later restarts),
//! SIGSTOPs (and later continues) signers and jumps their clocks; the etcd
//! lane SIGKILLs the leader, cuts a member off from its clients, and takes
//! the quorum away (two of three members killed or stopped) and gives it
//! back. Each lane draws from its own seeded stream, so one seed gives one
//! schedule of kinds, victims and delays (which member leads at that
//! moment is the cluster's choice).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::node::Shared;
use super::proxy::Proxy;
use super::rng::Rng;
use super::signers::Signers;
use super::ChaosError;
use crate::etcd::EtcdCluster;

/// Fault kinds, as printed.
pub const SIGNER_SIGKILL: &str = "signer-sigkill";
pub const SIGNER_SIGSTOP: &str = "signer-sigstop";
pub const SIGNER_CLOCK_JUMP: &str = "signer-clock-jump";
pub const ETCD_LEADER_KILL: &str = "etcd-leader-sigkill";
pub const ETCD_MEMBER_CUT: &str = "etcd-member-cut-off";
pub const ETCD_QUORUM_LOSS: &str = "etcd-quorum-lost-regained";

/// When the lanes stop and what they counted.
#[derive(Debug)]
pub struct Budget {
    pub deadline: Instant,
    pub max_faults: u64,
    pub total: AtomicU64,
    pub by_kind: Mutex<BTreeMap<&'static str, u64>>,
    pub lane_errors: Mutex<Vec<String>>,
    pub skipped: AtomicU64,
    pub log: Mutex<Vec<String>>,
    started: Instant,
}

impl Budget {
    pub fn new(duration: Duration, max_faults: u64) -> Self {
        let now = Instant::now();
        Self {
            deadline: now + duration,
            max_faults,
            total: AtomicU64::new(0),
            by_kind: Mutex::new(BTreeMap::new()),
            lane_errors: Mutex::new(Vec::new()),
            skipped: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            started: now,
        }
    }

    fn exhausted(&self) -> bool {
        Instant::now() >= self.deadline || self.total.load(Ordering::SeqCst) >= self.max_faults
    }

    fn count(&self, kind: &'static str, detail: String) {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .by_kind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!(
                "{:>9.3}s {kind} {detail}",
                self.started.elapsed().as_secs_f64()
            ));
    }

    fn error(&self, e: String) {
        eprintln!("chaos: {e}");
        self.lane_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// Sleeps `d`, or less when the run ends meanwhile.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }
}

/// Runs the signer lane until the budget is spent, then heals.
pub fn signer_lane(mut rng: Rng, signers: &mut Signers, shared: &Arc<Shared>, budget: &Budget) {
    let n = signers.procs.len();
    while !budget.exhausted() {
        budget.sleep(rng.millis(50, 400));
        if budget.exhausted() {
            break;
        }
        for i in 0..n {
            if let Some(status) = signers.exited(i) {
                budget.error(format!(
                    "signer {i} exited by itself ({status}); restarting"
                ));
                let _ = signers.spawn(i);
            }
        }
        let s = rng.index(n);
        let roll = rng.range(0..100);
        let result = if roll < 40 {
            shared.ledger.signer_fault(s);
            let down = rng.millis(100, 1200);
            signers.kill(s).and_then(|()| {
                budget.count(
                    SIGNER_SIGKILL,
                    format!("signer {s}, restart after {down:?}"),
                );
                budget.sleep(down);
                signers.spawn(s)
            })
        } else if roll < 80 || !signers.can_jump_clocks() {
            shared.ledger.signer_fault(s);
            let pause = rng.millis(200, 3000);
            signers.pause(s, true).and_then(|()| {
                budget.count(SIGNER_SIGSTOP, format!("signer {s} for {pause:?}"));
                budget.sleep(pause);
                signers.pause(s, false)
            })
        } else {
            let magnitude = rng.range(30..(2 * 86_400));
            let offset = if rng.chance(50) {
                format!("+{magnitude}")
            } else {
                format!("-{magnitude}")
            };
            let hold = rng.millis(300, 2000);
            signers.set_clock(s, &offset).and_then(|()| {
                budget.count(
                    SIGNER_CLOCK_JUMP,
                    format!("signer {s} by {offset} s for {hold:?}"),
                );
                budget.sleep(hold);
                signers.set_clock(s, "+0")
            })
        };
        if let Err(e) = result {
            budget.error(format!("signer lane: {e}"));
        }
    }
    if let Err(e) = signers.heal() {
        budget.error(format!("healing the signers: {e}"));
    }
}

/// Runs the etcd lane until the budget is spent, then heals.
pub fn etcd_lane(mut rng: Rng, cluster: &mut EtcdCluster, proxies: &[Proxy], budget: &Budget) {
    let members = cluster.len();
    while !budget.exhausted() {
        budget.sleep(rng.millis(100, 600));
        if budget.exhausted() {
            break;
        }
        let roll = rng.range(0..100);
        let result = if roll < 35 {
            leader_kill(&mut rng, cluster, budget)
        } else if roll < 70 {
            let m = rng.index(members);
            let target = if rng.chance(50) {
                cluster.leader().unwrap_or(m)
            } else {
                m
            };
            let hold = rng.millis(300, 2000);
            match proxies.get(target) {
                Some(p) => {
                    p.set_cut(true);
                    budget.count(ETCD_MEMBER_CUT, format!("member {target} for {hold:?}"));
                    budget.sleep(hold);
                    p.set_cut(false);
                    Ok(())
                }
                None => Err(ChaosError::Setup(format!("no proxy for member {target}"))),
            }
        } else {
            quorum_loss(&mut rng, cluster, budget)
        };
        if let Err(e) = result {
            budget.error(format!("etcd lane: {e}"));
            if let Err(e) = heal_cluster(cluster) {
                budget.error(format!("healing the cluster: {e}"));
            }
        }
    }
    for p in proxies {
        p.set_cut(false);
    }
    if let Err(e) = heal_cluster(cluster) {
        budget.error(format!("healing the cluster: {e}"));
    }
}

fn leader_kill(
    rng: &mut Rng,
    cluster: &mut EtcdCluster,
    budget: &Budget,
) -> Result<(), ChaosError> {
    let down = rng.millis(300, 2000);
    let Some(leader) = cluster.leader() else {
        budget.skipped.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    };
    cluster.kill_member(leader)?;
    budget.count(
        ETCD_LEADER_KILL,
        format!("member {leader}, back after {down:?}"),
    );
    budget.sleep(down);
    cluster.restart_member(leader)?;
    Ok(())
}

fn quorum_loss(
    rng: &mut Rng,
    cluster: &mut EtcdCluster,
    budget: &Budget,
) -> Result<(), ChaosError> {
    let members = cluster.len();
    let a = rng.index(members);
    let b = (a + 1 + rng.index(members.saturating_sub(1))) % members.max(1);
    let by_kill = rng.chance(50);
    let hold = rng.millis(800, 3000);
    for m in [a, b] {
        if by_kill {
            cluster.kill_member(m)?;
        } else {
            cluster.pause_member(m)?;
        }
    }
    let how = if by_kill { "SIGKILL" } else { "SIGSTOP" };
    budget.count(
        ETCD_QUORUM_LOSS,
        format!("members {a} and {b} by {how} for {hold:?}"),
    );
    budget.sleep(hold);
    for m in [a, b] {
        if by_kill {
            cluster.spawn_member(m)?;
        } else {
            cluster.resume_member(m)?;
        }
    }
    cluster.wait_healthy(Duration::from_secs(30))?;
    Ok(())
}

/// Every member running, continued and healthy.
pub fn heal_cluster(cluster: &mut EtcdCluster) -> Result<(), ChaosError> {
    for m in 0..cluster.len() {
        if cluster.is_paused(m) {
            cluster.resume_member(m)?;
        }
        if !cluster.is_running(m) {
            cluster.spawn_member(m)?;
        }
    }
    cluster.wait_healthy(Duration::from_secs(30))?;
    Ok(())
}
