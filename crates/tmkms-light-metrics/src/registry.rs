//! The exported metric families and the per-chain observer that feeds them.
//!
//! Names and labels are a contract with the alert rules and the dashboard
//! under `deploy/` (listed in `deploy/metrics.txt`, checked by a test).
//! Per-chain handles are resolved once when a chain is added, so recording
//! an event on the signing path is a few atomic operations: no label
//! hashing, no allocation, no lock held while a scrape encodes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tmkms_light::observe::{DisconnectReason, Event, Observer, SignedKind};

/// Every metric name starts with this.
pub const PREFIX: &str = "tmkms_light";

/// The metric contract shared with the alert rules and the dashboard: one
/// metric per line, `name type labels help`. Help texts come from here so
/// they are written once.
pub const CONTRACT: &str = include_str!("../../../deploy/metrics.txt");

/// The help text of `name` (as exported, e.g. `tmkms_light_signed_total`).
fn help(name: &str) -> String {
    CONTRACT
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.splitn(4, ' ');
            // The encoder ends the help with a full stop of its own.
            (fields.next() == Some(name)).then(|| {
                let help = fields.nth(2).unwrap_or_default();
                help.strip_suffix('.').unwrap_or(help).to_owned()
            })
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChainLabel {
    chain_id: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignedLabels {
    chain_id: String,
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    chain_id: String,
    code: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    chain_id: String,
    address: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    provider: String,
}

/// Registers families with the contract's help texts.
struct Registrar(Registry);

impl Registrar {
    /// `name` without the prefix and, for counters, without `_total`
    /// (the encoder adds both).
    fn add<M: prometheus_client::registry::Metric + Clone>(&mut self, name: &str, metric: M) -> M {
        let exported = format!("{PREFIX}_{name}");
        let help = [exported.clone(), format!("{exported}_total")]
            .iter()
            .map(|n| help(n))
            .find(|h| !h.is_empty())
            .unwrap_or_default();
        self.0.register(name, help, metric.clone());
        metric
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type IntGauge = Gauge<i64, AtomicI64>;

/// Request read → response written. 0.05 is a bound because the latency
/// alert fires above a 50 ms p99; finite bounds above it keep
/// `histogram_quantile` honest for slow signatures.
fn sign_buckets() -> Histogram {
    Histogram::new([
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        2.5, 5.0,
    ])
}

/// One durable state write: 10 µs … ~0.3 s, doubling.
fn persist_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
}

/// The families, shared by every chain of one signer process.
#[derive(Debug)]
struct Families {
    signed: Family<SignedLabels, Counter>,
    replayed: Family<ChainLabel, Counter>,
    refused: Family<RefusedLabels, Counter>,
    last_height: Family<ChainLabel, IntGauge>,
    last_round: Family<ChainLabel, IntGauge>,
    last_step: Family<ChainLabel, IntGauge>,
    sign_duration: HistogramFamily<ChainLabel>,
    persist_duration: Histogram,
    persist_errors: Counter,
    node_connected: Family<ConnectionLabels, IntGauge>,
    node_connects: Counter,
    node_disconnects: Family<ReasonLabel, Counter>,
}

/// All metrics of one signer process, and what `/readyz` looks at.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    families: Families,
    health: Arc<Health>,
}

/// Readiness: at least one node connection, and the last state write
/// succeeded.
#[derive(Debug)]
struct Health {
    connections: AtomicU64,
    state_writable: AtomicBool,
}

impl Metrics {
    /// Registers every family; `provider` is `softsign`, `sgx` or `nitro`.
    pub fn new(provider: &str) -> Arc<Self> {
        // Each family is made and registered in one place.
        let mut r = Registrar(Registry::with_prefix(PREFIX));
        let families = Families {
            signed: r.add("signed", Family::default()),
            replayed: r.add("replayed", Family::default()),
            refused: r.add("refused", Family::default()),
            last_height: r.add("last_signed_height", Family::default()),
            last_round: r.add("last_signed_round", Family::default()),
            last_step: r.add("last_signed_step", Family::default()),
            sign_duration: r.add(
                "sign_duration_seconds",
                Family::new_with_constructor(sign_buckets as fn() -> Histogram),
            ),
            persist_duration: r.add("state_persist_duration_seconds", persist_buckets()),
            persist_errors: r.add("state_persist_errors", Counter::default()),
            node_connected: r.add("node_connected", Family::default()),
            node_connects: r.add("node_connects", Counter::default()),
            node_disconnects: r.add("node_disconnects", Family::default()),
        };
        let build = Family::<BuildLabels, IntGauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                provider: provider.to_owned(),
            })
            .set(1);
        r.add("build_info", build);
        Arc::new(Self {
            registry: Mutex::new(r.0),
            families,
            health: Arc::new(Health {
                connections: AtomicU64::new(0),
                state_writable: AtomicBool::new(true),
            }),
        })
    }

    /// The observer for one chain's signer; its handles are resolved now.
    pub fn chain(self: &Arc<Self>, chain_id: &str) -> ChainMetrics {
        let f = &self.families;
        let label = ChainLabel {
            chain_id: chain_id.to_owned(),
        };
        let signed = |kind: &'static str| {
            f.signed.get_or_create_owned(&SignedLabels {
                chain_id: chain_id.to_owned(),
                r#type: kind,
            })
        };
        ChainMetrics {
            metrics: Arc::clone(self),
            chain_id: chain_id.to_owned(),
            proposal: signed(SignedKind::Proposal.as_str()),
            prevote: signed(SignedKind::Prevote.as_str()),
            precommit: signed(SignedKind::Precommit.as_str()),
            bytes: signed(SignedKind::Bytes.as_str()),
            extension: signed("extension"),
            replayed: f.replayed.get_or_create_owned(&label),
            last_height: f.last_height.get_or_create_owned(&label),
            last_round: f.last_round.get_or_create_owned(&label),
            last_step: f.last_step.get_or_create_owned(&label),
            sign_duration: f.sign_duration.get_or_create_owned(&label),
        }
    }

    /// The text exposition (OpenMetrics), as served on `/metrics`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &registry);
        out
    }

    /// Whether `/readyz` says ready, and why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.health.connections.load(Ordering::Relaxed) == 0 {
            return Err("no node connection");
        }
        if !self.health.state_writable.load(Ordering::Relaxed) {
            return Err("the last state write failed");
        }
        Ok(())
    }
}

/// Feeds one chain's events into the shared families.
#[derive(Debug)]
pub struct ChainMetrics {
    metrics: Arc<Metrics>,
    chain_id: String,
    proposal: Counter,
    prevote: Counter,
    precommit: Counter,
    bytes: Counter,
    extension: Counter,
    replayed: Counter,
    last_height: IntGauge,
    last_round: IntGauge,
    last_step: IntGauge,
    sign_duration: Histogram,
}

impl ChainMetrics {
    fn signed_counter(&self, kind: SignedKind) -> &Counter {
        match kind {
            SignedKind::Proposal => &self.proposal,
            SignedKind::Prevote => &self.prevote,
            SignedKind::Precommit => &self.precommit,
            SignedKind::Bytes => &self.bytes,
        }
    }

    /// Exports `node_connected{address}` at 0 from start, so "no node
    /// connection" alerts see a series before the first connection.
    pub fn expect_node(&self, address: &str) {
        self.connection(address).set(0);
    }

    fn connection(&self, address: &str) -> IntGauge {
        self.metrics
            .families
            .node_connected
            .get_or_create_owned(&ConnectionLabels {
                chain_id: self.chain_id.clone(),
                address: address.to_owned(),
            })
    }
}

impl Observer for ChainMetrics {
    fn observe(&self, event: &Event) {
        let f = &self.metrics.families;
        let health = &self.metrics.health;
        match event {
            Event::Signed {
                kind,
                height,
                round,
                extension,
                replayed,
            } => {
                // A replay sends a stored signature: counted apart.
                if *replayed {
                    self.replayed.inc();
                } else {
                    self.signed_counter(*kind).inc();
                    if *extension {
                        self.extension.inc();
                    }
                }
                if let Some(step) = kind.step() {
                    self.last_height
                        .set(i64::try_from(*height).unwrap_or(i64::MAX));
                    self.last_round.set(i64::from(*round));
                    self.last_step.set(i64::from(step));
                }
            }
            Event::Answered { latency } => self.sign_duration.observe(latency.as_secs_f64()),
            Event::Refused { code } => {
                f.refused
                    .get_or_create(&RefusedLabels {
                        chain_id: self.chain_id.clone(),
                        code: *code,
                    })
                    .inc();
            }
            Event::Connected { address } => {
                self.connection(address).set(1);
                f.node_connects.inc();
                health.connections.fetch_add(1, Ordering::Relaxed);
            }
            Event::Disconnected { address, reason } => {
                f.node_disconnects
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc();
                // A failed handshake never reported `Connected`.
                if *reason != DisconnectReason::Handshake {
                    self.connection(address).set(0);
                    let _ = health.connections.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |n| Some(n.saturating_sub(1)),
                    );
                }
            }
            Event::StateWritten { duration } => {
                f.persist_duration.observe(duration.as_secs_f64());
                health.state_writable.store(true, Ordering::Relaxed);
            }
            Event::StateWriteFailed => {
                f.persist_errors.inc();
                health.state_writable.store(false, Ordering::Relaxed);
            }
        }
    }
}
