//! Host simulation of EGETKEY and EREPORT for machines without SGX.
//!
//! **This is a simulation and protects nothing.** Keys are derived with
//! HKDF-SHA-256 from a 32-byte TEST secret held in ordinary process memory
//! (standing in for the CPU's fused root seal key), so anyone who can read
//! that secret can derive every key. It exists so that sealing, cloud backup
//! and the enclave application run and are tested on any host.
//!
//! What it does simulate faithfully are EGETKEY's checks and derivation
//! inputs, so code that is wrong on real hardware is wrong here too:
//! * only the Seal and Report key names are served; others are refused;
//! * a requested ISVSVN above the enclave's own, or a requested CPUSVN above
//!   the CPU's current one (compared per byte), is refused;
//! * reserved fields and unknown policy bits are refused;
//! * a Seal key mixes in: key name, key policy, ISVPRODID, the requested
//!   ISVSVN and CPUSVN, ATTRIBUTES masked by the request's ATTRIBUTEMASK (and
//!   the mask itself), MRENCLAVE only under the MRENCLAVE policy bit,
//!   MRSIGNER only under the MRSIGNER policy bit, the key id, and MISCSELECT
//!   masked by MISCMASK (and the mask). Two enclaves get the same key only if
//!   all of these agree on the same CPU secret.
//! * a Report key mixes in the enclave's own MRENCLAVE, full ATTRIBUTES,
//!   MISCSELECT, the CPU's current CPUSVN and the key id — exactly what
//!   EREPORT uses for the target, so [`SgxHardware::verify_report`] works
//!   between two simulated enclaves on one simulated CPU.
//!
//! Not simulated: OWNEREPOCH, KSS (extended ids), the CPU's per-boot random
//! REPORT key id (here derived from the CPU secret), and the real key
//! derivation function.

use core::fmt;

use cmac::Mac;
use hkdf::Hkdf;
use sgx_isa::{Keyname, Keypolicy, Keyrequest, Report, Targetinfo};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::hw::{cpusvn_le, report_cmac, HwError, SgxHardware};
use crate::identity::EnclaveIdentity;

/// Domain separation for every key the simulation derives.
const SIM_SALT: &[u8] = b"tmkms-light SGX host simulation v1 (TEST ONLY, protects nothing)";

/// A simulated CPU: a TEST root secret (the stand-in for the fused seal
/// secret) and its current CPUSVN. Several simulated enclaves may run on one
/// simulated CPU by sharing it.
#[derive(Clone)]
pub struct SimulatedCpu {
    secret: Zeroizing<[u8; 32]>,
    cpusvn: [u8; 16],
}

impl SimulatedCpu {
    /// A CPU with the given TEST secret and CPUSVN. Never use a secret that
    /// protects anything real: it lives in ordinary memory.
    pub fn new(test_secret: [u8; 32], cpusvn: [u8; 16]) -> Self {
        let secret = Zeroizing::new(test_secret);
        Self { secret, cpusvn }
    }

    /// The CPU's current CPUSVN.
    pub fn cpusvn(&self) -> [u8; 16] {
        self.cpusvn
    }

    fn derive(&self, info: &[u8]) -> Result<Zeroizing<[u8; 16]>, HwError> {
        let mut okm = Zeroizing::new([0u8; 16]);
        Hkdf::<Sha256>::new(Some(SIM_SALT), self.secret.as_slice())
            .expand(info, okm.as_mut_slice())
            .map_err(|_| HwError::Internal("HKDF output length"))?;
        Ok(okm)
    }

    /// The CPU's REPORT key id (random per boot on real CPUs).
    fn report_keyid(&self) -> Result<[u8; 32], HwError> {
        let mut keyid = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SIM_SALT), self.secret.as_slice())
            .expand(b"report key id", &mut keyid)
            .map_err(|_| HwError::Internal("HKDF output length"))?;
        Ok(keyid)
    }
}

impl fmt::Debug for SimulatedCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedCpu")
            .field("secret", &"<redacted>")
            .field("cpusvn", &hex::encode(self.cpusvn))
            .finish()
    }
}

/// EGETKEY/EREPORT for one simulated enclave on a [`SimulatedCpu`]. See the
/// module documentation: a test stand-in that protects nothing.
#[derive(Debug, Clone)]
pub struct SimulatedHardware {
    identity: EnclaveIdentity,
    cpu: SimulatedCpu,
}

impl SimulatedHardware {
    /// Loads the enclave `identity` on `cpu`. Logs a warning: keys derived
    /// here come from a local TEST secret.
    pub fn new(identity: EnclaveIdentity, cpu: SimulatedCpu) -> Self {
        tracing::warn!(
            mrenclave = %hex::encode(identity.mrenclave),
            mrsigner = %hex::encode(identity.mrsigner),
            "SGX HOST SIMULATION: EGETKEY/EREPORT are simulated with keys derived from a local TEST \
             secret; nothing sealed or reported here is protected by hardware. Never use this \
             with real validator keys."
        );
        Self { identity, cpu }
    }

    /// The simulated CPU this enclave runs on.
    pub fn cpu(&self) -> &SimulatedCpu {
        &self.cpu
    }
}

/// The derivation data for one key, in a fixed layout (all integers
/// little-endian) so every distinct input gives a distinct HKDF `info`.
struct Derivation {
    keyname: u16,
    keypolicy: u16,
    isvprodid: u16,
    isvsvn: u16,
    cpusvn: [u8; 16],
    attributes: [u64; 2],
    attributemask: [u64; 2],
    mrenclave: [u8; 32],
    mrsigner: [u8; 32],
    keyid: [u8; 32],
    miscselect: u32,
    miscmask: u32,
}

impl Derivation {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.extend_from_slice(b"EGETKEY");
        out.extend_from_slice(&self.keyname.to_le_bytes());
        out.extend_from_slice(&self.keypolicy.to_le_bytes());
        out.extend_from_slice(&self.isvprodid.to_le_bytes());
        out.extend_from_slice(&self.isvsvn.to_le_bytes());
        out.extend_from_slice(&self.cpusvn);
        for v in self.attributes.iter().chain(self.attributemask.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.mrenclave);
        out.extend_from_slice(&self.mrsigner);
        out.extend_from_slice(&self.keyid);
        out.extend_from_slice(&self.miscselect.to_le_bytes());
        out.extend_from_slice(&self.miscmask.to_le_bytes());
        out
    }
}

/// The REPORT key of the enclave `target` describes on `cpu`.
fn report_key_for(
    cpu: &SimulatedCpu,
    target: &Targetinfo,
    keyid: [u8; 32],
) -> Result<Zeroizing<[u8; 16]>, HwError> {
    let d = Derivation {
        keyname: Keyname::Report as u16,
        keypolicy: 0,
        isvprodid: 0,
        isvsvn: 0,
        cpusvn: cpu.cpusvn,
        attributes: [target.attributes.flags.bits(), target.attributes.xfrm],
        attributemask: [u64::MAX, u64::MAX],
        mrenclave: target.measurement,
        mrsigner: [0u8; 32],
        keyid,
        miscselect: target.miscselect.bits(),
        miscmask: u32::MAX,
    };
    cpu.derive(&d.encode())
}

fn check_reserved(request: &Keyrequest) -> Result<(), HwError> {
    if request._reserved1 != 0 || request._reserved2.iter().any(|b| *b != 0) {
        return Err(HwError::ReservedBitsSet("reserved fields"));
    }
    if Keypolicy::from_bits(request.keypolicy.bits()).is_none() {
        return Err(HwError::ReservedBitsSet("key policy"));
    }
    Ok(())
}

impl SgxHardware for SimulatedHardware {
    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, HwError> {
        check_reserved(request)?;
        let id = &self.identity;
        match Keyname::try_from(request.keyname) {
            Ok(Keyname::Report) => {
                let target = Targetinfo {
                    measurement: id.mrenclave,
                    attributes: id.attributes,
                    miscselect: id.miscselect,
                    ..Default::default()
                };
                report_key_for(&self.cpu, &target, request.keyid)
            }
            Ok(Keyname::Seal) => {
                if request.isvsvn > id.isvsvn {
                    return Err(HwError::IsvsvnTooHigh {
                        requested: request.isvsvn,
                        own: id.isvsvn,
                    });
                }
                if !cpusvn_le(&request.cpusvn, &self.cpu.cpusvn) {
                    return Err(HwError::CpusvnTooHigh {
                        requested: hex::encode(request.cpusvn),
                        current: hex::encode(self.cpu.cpusvn),
                    });
                }
                let [mask_flags, mask_xfrm] = request.attributemask;
                let policy = request.keypolicy;
                let d = Derivation {
                    keyname: request.keyname,
                    keypolicy: policy.bits(),
                    isvprodid: id.isvprodid,
                    isvsvn: request.isvsvn,
                    cpusvn: request.cpusvn,
                    attributes: [
                        id.attributes.flags.bits() & mask_flags,
                        id.attributes.xfrm & mask_xfrm,
                    ],
                    attributemask: request.attributemask,
                    mrenclave: if policy.contains(Keypolicy::MRENCLAVE) {
                        id.mrenclave
                    } else {
                        [0u8; 32]
                    },
                    mrsigner: if policy.contains(Keypolicy::MRSIGNER) {
                        id.mrsigner
                    } else {
                        [0u8; 32]
                    },
                    keyid: request.keyid,
                    miscselect: id.miscselect.bits() & request.miscmask,
                    miscmask: request.miscmask,
                };
                self.cpu.derive(&d.encode())
            }
            _ => Err(HwError::InvalidKeyname {
                keyname: request.keyname,
            }),
        }
    }

    fn report(&self, target: &Targetinfo, report_data: &[u8; 64]) -> Result<Report, HwError> {
        let id = &self.identity;
        let keyid = self.cpu.report_keyid()?;
        let mut report = Report {
            cpusvn: self.cpu.cpusvn,
            miscselect: id.miscselect,
            attributes: id.attributes,
            mrenclave: id.mrenclave,
            mrsigner: id.mrsigner,
            isvprodid: id.isvprodid,
            isvsvn: id.isvsvn,
            reportdata: *report_data,
            keyid,
            ..Default::default()
        };
        let key = report_key_for(&self.cpu, target, keyid)?;
        report.mac = report_cmac(&key, &report).finalize().into_bytes().into();
        Ok(report)
    }
}
