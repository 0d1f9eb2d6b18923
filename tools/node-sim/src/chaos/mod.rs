//! The high-availability chaos suite: two or three signers of one validator
//! (one consensus key, a state file each) sharing a reservation in a
//! three-member etcd cluster, one or two simulated nodes asking all of them
//! for every height/round/step (with conflicting block ids and timestamps
//! across signers, on purpose), and faults at random moments: signers
//! SIGKILLed or SIGSTOPped, their clocks jumped, the etcd leader SIGKILLed,
//! a member cut off from its clients, the quorum lost and regained.
//!
//! The judge is the [`ledger::Ledger`] of every signature any signer
//! returned: two conflicting ones at one height/round/step fail the run.
//! The driver binary is `tmkms-ha-chaos`; `scripts/ha.sh` runs it.

pub mod faults;
pub mod ledger;
pub mod node;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod signers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::etcd::{EtcdCluster, EtcdError};
use crate::{Dialect, NodeListener};

pub use report::Report;

/// The chain the signers are made for.
pub const CHAIN_ID: &str = "ha-chaos";

/// What the driver was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    pub signer_bin: PathBuf,
    pub signers: usize,
    pub sentries: usize,
    pub duration: Duration,
    pub max_faults: u64,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// The signers' `[ha] timeout_ms`.
    pub ha_timeout_ms: u64,
    /// How long the node waits for one answer.
    pub request_timeout: Duration,
    /// Clock jumps need libfaketime; `false` turns them off.
    pub clock_jumps: bool,
}

/// What stops the driver before or outside the judgement.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error("setup: {0}")]
    Setup(String),
}

/// Runs the suite and returns its report (conflicts are in the report, not
/// an error).
pub fn run(cfg: &Config) -> Result<Report, ChaosError> {
    if !(2..=3).contains(&cfg.signers) || !(1..=2).contains(&cfg.sentries) {
        return Err(ChaosError::Setup(format!(
            "2 or 3 signers and 1 or 2 sentries, not {} and {}",
            cfg.signers, cfg.sentries
        )));
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(|source| ChaosError::Io {
        context: format!("creating {}", cfg.out_dir.display()),
        source,
    })?;
    let mut cluster = EtcdCluster::start(&cfg.out_dir.join("etcd"), 3)?;
    let proxies = start_proxies(&cluster)?;
    let endpoints: Vec<String> = proxies
        .iter()
        .map(|p| format!("https://{}", p.addr()))
        .collect();

    // One listener per signer per node.
    let mut workers = Vec::new();
    let mut addresses = vec![Vec::new(); cfg.signers];
    for node in 0..cfg.sentries {
        for (signer, addrs) in addresses.iter_mut().enumerate() {
            let listener =
                NodeListener::bind_tcp("127.0.0.1:0", Dialect::V0_38).map_err(|source| {
                    ChaosError::Io {
                        context: "binding a node listener".into(),
                        source,
                    }
                })?;
            addrs.push(listener.local_addr());
            workers.push(node::Worker {
                node,
                signer,
                listener,
            });
        }
    }
    let faketime = if cfg.clock_jumps {
        signers::find_faketime()
    } else {
        None
    };
    let clock_note = match (&faketime, cfg.clock_jumps) {
        (Some(lib), _) => format!("clock jumps through {}", lib.display()),
        (None, true) => "clock jumps OFF: libfaketime not found (apt-get install faketime)".into(),
        (None, false) => "clock jumps OFF (asked)".into(),
    };
    let spec = signers::HomeSpec {
        chain_id: CHAIN_ID,
        endpoints,
        ca: cluster.ca_path(),
        cert: cluster.client_cert_path(),
        key: cluster.client_key_path(),
        timeout_ms: cfg.ha_timeout_ms,
    };
    let mut signers =
        signers::Signers::init(&cfg.signer_bin, faketime, &cfg.out_dir, &addresses, &spec)?;
    for i in 0..cfg.signers {
        signers.spawn(i)?;
    }

    let shared = Arc::new(node::Shared::new(
        CHAIN_ID,
        Dialect::V0_38,
        cfg.seed,
        cfg.request_timeout,
    ));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|w| {
            let s = Arc::clone(&shared);
            thread::spawn(move || w.run(&s))
        })
        .collect();

    // Warm-up: the first signature before any fault.
    let warm = Instant::now();
    while shared.ledger.signatures() == 0 {
        if warm.elapsed() > Duration::from_secs(60) {
            shared.stop.store(true, Ordering::SeqCst);
            return Err(ChaosError::Setup(format!(
                "no signature within 60 s of starting; see the logs under {}",
                cfg.out_dir.display()
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }

    let started = Instant::now();
    let budget = faults::Budget::new(cfg.duration, cfg.max_faults);
    let etcd_rng = rng::Rng::new(cfg.seed, 1);
    let signer_rng = rng::Rng::new(cfg.seed, 2);
    thread::scope(|scope| {
        let (budget, shared) = (&budget, &shared);
        let (cluster, proxies, signers) = (&mut cluster, &proxies, &mut signers);
        let etcd = scope.spawn(move || faults::etcd_lane(etcd_rng, cluster, proxies, budget));
        let sig = scope.spawn(move || faults::signer_lane(signer_rng, signers, shared, budget));
        let _ = etcd.join();
        let _ = sig.join();
    });
    let chaos_time = started.elapsed();

    // After the last fault healed, signing must resume.
    let before = shared.ledger.signatures();
    let healed = Instant::now();
    let mut recovery = None;
    while healed.elapsed() < Duration::from_secs(30) {
        if shared.ledger.signatures() > before + 3 {
            recovery = Some(healed.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    shared.stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = h.join();
    }
    signers.kill_all();
    for p in &proxies {
        p.stop();
    }
    let starts = signers.procs.iter().map(|p| p.starts).collect();
    drop(cluster);
    Ok(Report::new(
        cfg, &budget, &shared, chaos_time, recovery, starts, clock_note,
    ))
}

fn start_proxies(cluster: &EtcdCluster) -> Result<Vec<proxy::Proxy>, ChaosError> {
    cluster
        .endpoints()
        .iter()
        .map(|e| {
            let hostport = e.trim_start_matches("https://");
            let upstream: SocketAddr = hostport
                .parse()
                .map_err(|_| ChaosError::Setup(format!("endpoint {e} is not host:port")))?;
            proxy::Proxy::start(upstream).map_err(|source| ChaosError::Io {
                context: format!("starting a proxy for {e}"),
                source,
            })
        })
        .collect()
}

/// The output directory's path for a file.
pub fn out_file(cfg: &Config, name: &str) -> PathBuf {
    Path::new(&cfg.out_dir).join(name)
}
