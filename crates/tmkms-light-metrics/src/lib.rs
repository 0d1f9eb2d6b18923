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

pub use registry::{ChainMetrics, Metrics, PREFIX};
pub use server::{spawn, Limits};
