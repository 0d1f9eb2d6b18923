//! EGETKEY and EREPORT on real SGX hardware (only built for
//! `x86_64-fortanix-unknown-sgx`).

use sgx_isa::{ErrorCode, Keyrequest, Report, Targetinfo};
use zeroize::Zeroizing;

use crate::hw::{HwError, SgxHardware};
use crate::identity::EnclaveIdentity;

/// The real instructions, executed by the enclave this code runs in.
#[derive(Debug, Clone)]
pub struct EnclaveHardware {
    identity: EnclaveIdentity,
}

impl EnclaveHardware {
    /// Reads this enclave's identity from a REPORT for itself.
    pub fn new() -> Self {
        let identity = EnclaveIdentity::from_report(&Report::for_self());
        Self { identity }
    }
}

impl Default for EnclaveHardware {
    fn default() -> Self {
        Self::new()
    }
}

impl SgxHardware for EnclaveHardware {
    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }

    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, HwError> {
        match request.egetkey() {
            Ok(key) => Ok(Zeroizing::new(key)),
            Err(ErrorCode::InvalidKeyname) => Err(HwError::InvalidKeyname {
                keyname: request.keyname,
            }),
            Err(ErrorCode::InvalidIsvsvn) => Err(HwError::IsvsvnTooHigh {
                requested: request.isvsvn,
                own: self.identity.isvsvn,
            }),
            Err(ErrorCode::InvalidCpusvn) => Err(HwError::CpusvnTooHigh {
                requested: hex::encode(request.cpusvn),
                current: "unknown (newer than requested)".to_owned(),
            }),
            Err(code) => Err(HwError::Instruction(code)),
        }
    }

    fn report(&self, target: &Targetinfo, report_data: &[u8; 64]) -> Result<Report, HwError> {
        Ok(Report::for_target(target, report_data))
    }
}
