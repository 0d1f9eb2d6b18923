//! What only the parent instance runs for the Nitro provider; nothing here is linked into
//! the enclave (`scripts/check-enclave-deps.sh` checks that in CI).
//!
//! * [`proxy`]: the host's `vsock-proxy`, relaying enclave connections to AWS KMS, and the
//!   [`proxy::splice`], the shared `tmkms_light_cli::splice` on the transport's streams.
//! * [`link::Link`]: a transport stream as the shared relay code takes it.
//! * [`log_server`]: the host side of the enclave's log stream.
//! * [`nitro_cli`]: running, describing and terminating enclaves through `nitro-cli`.
//! * [`supervise`]: the `launch-all` core, running the helper's processes as one unit.

pub mod link;
pub mod log_server;
pub mod nitro_cli;
pub mod proxy;
pub mod supervise;
#[cfg(test)]
mod test_output;
