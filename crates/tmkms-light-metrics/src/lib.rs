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
