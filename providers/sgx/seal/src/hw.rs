//! The hardware boundary: the two SGX instructions the enclave needs.
//!
//! EGETKEY derives a 128-bit key from the CPU's fused secret and the
//! enclave's identity; EREPORT produces a REPORT that another enclave on the
//! same CPU (normally the quoting enclave) can verify. Everything above this
//! trait — sealing, cloud backup — is the same code on real hardware and in
//! the host simulation.

use cmac::digest::KeyInit;
use cmac::{Cmac, Mac};
use sgx_isa::{ErrorCode, Keyname, Keyrequest, Report, Targetinfo};
use zeroize::Zeroizing;

use crate::identity::EnclaveIdentity;

/// The SGX instructions the enclave uses, behind one small trait so the same
/// code runs on real hardware ([`crate::EnclaveHardware`], SGX target only)
/// and in the host simulation ([`crate::SimulatedHardware`]).
pub trait SgxHardware: Send + Sync {
    /// The identity of the enclave this hardware serves.
    fn identity(&self) -> &EnclaveIdentity;

    /// Whether this is the host simulation, whose keys protect nothing
    /// (a real enclave: `false`).
    fn is_simulated(&self) -> bool {
        false
    }

    /// EGETKEY: derive the 128-bit key `request` describes.
    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, HwError>;

    /// EREPORT: a REPORT of this enclave carrying `report_data`, MACed with
    /// the REPORT key of the enclave `target` describes.
    fn report(&self, target: &Targetinfo, report_data: &[u8; 64]) -> Result<Report, HwError>;

    /// A REPORT for no target: how an enclave learns its own identity and the
    /// CPU's current CPUSVN.
    fn self_report(&self) -> Result<Report, HwError> {
        self.report(&Targetinfo::default(), &[0u8; 64])
    }

    /// Checks that `report` was produced on this CPU for this enclave as
    /// target (AES-CMAC under this enclave's REPORT key, as the quoting
    /// enclave checks it), in constant time.
    fn verify_report(&self, report: &Report) -> Result<(), HwError> {
        let request = Keyrequest {
            keyname: Keyname::Report as u16,
            keyid: report.keyid,
            ..Default::default()
        };
        let key = self.egetkey(&request)?;
        report_cmac(&key, report)
            .verify_slice(&report.mac)
            .map_err(|_| HwError::ReportMacMismatch)
    }
}

/// AES-128-CMAC over the MACed part of a REPORT (its first 384 bytes), the
/// MAC EREPORT computes with the target's REPORT key.
pub(crate) fn report_cmac(key: &[u8; 16], report: &Report) -> Cmac<aes::Aes128> {
    let mut mac = <Cmac<aes::Aes128> as KeyInit>::new(key.into());
    mac.update(report.mac_data());
    mac
}

/// Why the hardware (or its simulation) refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HwError {
    /// The key name is not one this enclave may request.
    #[error("EGETKEY key name {keyname} is not available to this enclave: only Seal (4) and Report (3) keys are (Provision and EINITTOKEN keys need attributes this enclave does not have)")]
    InvalidKeyname {
        /// The key name requested.
        keyname: u16,
    },
    /// A key for a security version above the enclave's own was requested.
    #[error("EGETKEY refused ISVSVN {requested}: this enclave's ISVSVN is {own}, and keys of newer enclave versions cannot be derived by older ones (was the data sealed by a newer enclave?)")]
    IsvsvnTooHigh {
        /// ISVSVN in the request.
        requested: u16,
        /// The enclave's own ISVSVN.
        own: u16,
    },
    /// A key for a CPU security version above the CPU's current one was requested.
    #[error("EGETKEY refused CPUSVN {requested}: the CPU's current CPUSVN is {current}; keys of a newer CPU security version cannot be derived after a microcode/TCB downgrade")]
    CpusvnTooHigh {
        /// CPUSVN in the request, hex.
        requested: String,
        /// The CPU's current CPUSVN, hex (unknown on real hardware, where the CPU does not say).
        current: String,
    },
    /// Reserved fields or unknown policy bits were set (the CPU faults on these).
    #[error("EGETKEY request has reserved bits set ({0}): build Keyrequests from Default and set only documented fields")]
    ReservedBitsSet(&'static str),
    /// The REPORT's MAC does not verify for this enclave.
    #[error("REPORT MAC does not verify: the report was made for another target enclave, on another CPU, or modified")]
    ReportMacMismatch,
    /// Any other error code from the instruction.
    #[error("SGX instruction failed with error code {0:?}")]
    Instruction(ErrorCode),
    /// A local invariant failed (a bug, not an input problem).
    #[error("internal error in the SGX hardware layer: {0}")]
    Internal(&'static str),
}

/// Whether `requested` is at or below `current` component by component (each
/// CPUSVN byte is the security version of one TCB component).
pub(crate) fn cpusvn_le(requested: &[u8; 16], current: &[u8; 16]) -> bool {
    requested.iter().zip(current.iter()).all(|(r, c)| r <= c)
}
