//! Acceptance tests of the SGX seal crate against the host simulation: real
//! SIGSTRUCT signatures, real key derivation inputs, real ciphers.
//! One test binary, so the RSA-3072 test signers are generated once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cloud;
mod seal;
mod sigstruct;
mod simulation;

use rsa::RsaPrivateKey;
use tmkms_light_sgx_seal::testing::{test_cpu, test_enclave};
use tmkms_light_sgx_seal::{SimulatedCpu, SimulatedHardware};

/// A simulated enclave signed by `signer` at `isvsvn`, on the test CPU whose
/// secret is `[cpu; 32]`.
pub fn enclave(signer: &RsaPrivateKey, isvsvn: u16, debug: bool, cpu: u8) -> SimulatedHardware {
    enclave_on(signer, isvsvn, debug, test_cpu(cpu))
}

pub fn enclave_on(
    signer: &RsaPrivateKey,
    isvsvn: u16,
    debug: bool,
    cpu: SimulatedCpu,
) -> SimulatedHardware {
    SimulatedHardware::new(test_enclave(signer, isvsvn, debug).unwrap(), cpu)
}
