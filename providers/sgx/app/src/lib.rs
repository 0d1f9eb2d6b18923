//! The tmkms-light SGX enclave application.
//!
//! The same code is built for `x86_64-fortanix-unknown-sgx` (the real
//! enclave, loaded by `tmkms-light-sgx-runner`) and for the host (the
//! simulation: a separate process the runner starts, with EGETKEY/EREPORT
//! simulated by [`tmkms_light_sgx_seal::SimulatedHardware`]). Only two things
//! differ between them: the hardware behind [`tmkms_light_sgx_seal::SgxHardware`]
//! and how a named stream to the runner is opened ([`host::Host`]).
//!
//! The enclave keeps its keys sealed to the CPU and the enclave signer; the
//! runner only ever stores sealed blobs, state records the enclave
//! authenticated, and (for cloud backup) encrypted backups.

pub mod commands;
pub mod host;

/// The messages and stream names shared with the runner.
pub use tmkms_light_sgx_protocol as protocol;
