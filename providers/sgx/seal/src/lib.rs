//! SGX hardware boundary (EREPORT/EGETKEY), its host simulation, sealing and
//! cloud backup for the tmkms-light SGX enclave.
//!
//! * [`SgxHardware`] is the only thing that touches SGX. [`EnclaveHardware`]
//!   (built only for `target_env = "sgx"`) executes the real instructions;
//!   [`SimulatedHardware`] performs the same checks on any host with keys
//!   derived from a local TEST secret — it protects nothing and says so in a
//!   warning when constructed.
//! * [`EnclaveIdentity`] is what EGETKEY/EREPORT mix in; on the host it comes
//!   from a signed SIGSTRUCT ([`EnclaveIdentity::from_sigstruct`]).
//! * [`seal`]/[`unseal`] protect a secret with the enclave signer's Seal key,
//!   [`seal_bound`]/[`unseal_bound`] also bind it to caller-chosen bytes;
//!   the sealed byte format is documented in [`mod@seal`].
//! * [`cloud`] backs the 32-byte seeds up under a backup key that a cloud KMS
//!   wraps for an enclave-generated RSA key; its formats are documented there.
//!
//! Nothing here does file or socket I/O: callers store and move the bytes.
#![cfg_attr(target_env = "sgx", feature(sgx_platform))]

pub mod cloud;
mod codec;
pub mod hw;
pub mod identity;
pub mod seal;
#[cfg(target_env = "sgx")]
mod sgx_hw;
pub mod sim;
#[cfg(feature = "test-support")]
pub mod testing;

pub use cloud::{
    backup_secret, cloud_wrap, report_data_for, restore_secret, unwrap_backup_key,
    wrap_backup_key_for, CloudError, CloudWrap,
};
pub use codec::MAX_LABEL_LEN;
pub use hw::{HwError, SgxHardware};
pub use identity::{EnclaveIdentity, SigstructError, SIGSTRUCT_LEN};
pub use seal::{
    inspect, seal, seal_bound, unseal, unseal_bound, unseal_seed, unseal_seed_bound, SealError,
    SealedHeader, LABEL_CLOUD_WRAP_KEY, LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};
#[cfg(target_env = "sgx")]
pub use sgx_hw::EnclaveHardware;
pub use sim::{SimulatedCpu, SimulatedHardware};

/// The `sgx-isa` types in this crate's API (Keyrequest, Report, Targetinfo, …).
pub use sgx_isa;
