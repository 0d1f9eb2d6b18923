//! Prometheus metrics and health endpoints of the tmkms-light host
//! binaries.
//!
//! The core reports [`tmkms_light::observe::Event`]s; [`Metrics`] counts
//! them and [`server::spawn`] serves `/metrics`, `/healthz` and `/readyz`.
//! For the TEE providers the host feeds the same [`ChainMetrics`] with the
//! events the enclave forwards, so both look alike to Prometheus and
//! nothing secret leaves the enclave.

pub mod registry;
pub mod server;

use std::net::{SocketAddr, TcpListener};

use thiserror::Error;
use tracing::info;

pub use registry::{ChainMetrics, Metrics, PREFIX};
pub use server::{spawn, Limits};

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on {addr}: {source}; change metrics_listen in tmkms.toml or stop what uses that port")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serves metrics on `metrics_listen` of `config`, if it is set, and
/// returns the chain's observer; every configured node address is exported
/// (disconnected) from start.
pub fn serve_config(
    config: &tmkms_light::config::Config,
    provider: &str,
) -> Result<Option<ChainMetrics>, MetricsError> {
    let Some(listen) = config.metrics_listen else {
        return Ok(None);
    };
    let nodes: Vec<String> = config
        .validator
        .iter()
        .map(|v| v.address.to_string())
        .collect();
    serve_chain(
        listen,
        provider,
        config.chain_id.as_str(),
        nodes.iter().map(String::as_str),
    )
    .map(Some)
}

/// Serves metrics on `listen` for one chain and returns its observer.
/// Every node address in `nodes` is exported (disconnected) from start.
pub fn serve_chain<'a>(
    listen: SocketAddr,
    provider: &str,
    chain_id: &str,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Result<ChainMetrics, MetricsError> {
    let failed = |source| MetricsError::Listen {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).map_err(failed)?;
    let metrics = Metrics::new(provider);
    let chain = metrics.chain(chain_id);
    for node in nodes {
        chain.expect_node(node);
    }
    spawn(listener, metrics, Limits::default()).map_err(failed)?;
    info!(%listen, "serving metrics on /metrics, health on /healthz and /readyz");
    Ok(chain)
}

/// Feeds the JSON event lines an enclave writes on its events stream into
/// `chain`, until the stream ends. A line that is too long or does not
/// parse is skipped (logged once per run of bad lines), so a confused
/// stream costs nothing but its own metrics.
pub fn feed_events(stream: impl std::io::Read, chain: &dyn tmkms_light::observe::Observer) {
    use std::io::{BufRead, Read};
    use tmkms_light::observe::{Event, MAX_EVENT_LINE};

    let mut reader = std::io::BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    let mut reported = false;
    loop {
        line.clear();
        let limit = u64::try_from(MAX_EVENT_LINE).unwrap_or(u64::MAX) + 1;
        match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            // Too long: skip to the end of this line.
            if line.len() > MAX_EVENT_LINE {
                let mut rest = Vec::new();
                let _ = reader.by_ref().take(1 << 20).read_until(b'\n', &mut rest);
            }
            continue;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => {
                chain.observe(&event);
                reported = false;
            }
            Err(error) if !reported => {
                tracing::warn!(%error, "an event line from the enclave did not parse; skipping");
                reported = true;
            }
            Err(_) => {}
        }
    }
}
