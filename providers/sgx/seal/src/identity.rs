//! Who an enclave is: the values EGETKEY and EREPORT mix into keys and
//! reports, and the SIGSTRUCT (the `.sig` file `sgxs-sign` writes) they come
//! from.
//!
//! On real hardware the CPU checks the SIGSTRUCT at EINIT and the enclave
//! learns its identity from its own REPORT. The host simulation has no EINIT,
//! so [`EnclaveIdentity::from_sigstruct`] performs EINIT's signature check
//! itself: a simulated enclave can only take an identity some RSA key really
//! signed.

use core::fmt;

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sgx_isa::{Attributes, AttributesFlags, Miscselect, Report, Sigstruct};
use sha2::{Digest, Sha256};

/// Size of a SIGSTRUCT in bytes (Intel SDM vol. 3D, "Enclave Signature Structure").
pub const SIGSTRUCT_LEN: usize = Sigstruct::UNPADDED_SIZE;

/// Size of the SIGSTRUCT's RSA-3072 modulus, signature, Q1 and Q2 fields.
pub(crate) const RSA3072_LEN: usize = 384;

/// The SDM fixes the SIGSTRUCT signing key's public exponent to 3.
pub(crate) const SIGSTRUCT_EXPONENT: u32 = 3;

/// The measurements and attributes of one enclave, as EGETKEY and EREPORT see
/// them. All fields are public values (they appear in every REPORT).
#[derive(Clone, PartialEq, Eq)]
pub struct EnclaveIdentity {
    /// MRENCLAVE: the hash of the enclave's initial contents (SIGSTRUCT `enclavehash`).
    pub mrenclave: [u8; 32],
    /// MRSIGNER: SHA-256 of the signing key's modulus, little-endian as stored.
    pub mrsigner: [u8; 32],
    /// ISVPRODID: the product id the signer assigned.
    pub isvprodid: u16,
    /// ISVSVN: the enclave's security version; upgrades raise it.
    pub isvsvn: u16,
    /// ATTRIBUTES of the running enclave (INIT is set once initialized; DEBUG
    /// marks an enclave whose memory a debugger can read).
    pub attributes: Attributes,
    /// MISCSELECT: extra information the CPU saves on exceptions.
    pub miscselect: Miscselect,
}

impl EnclaveIdentity {
    /// Whether this is a debug enclave (its memory and keys are readable by a
    /// debugger, so its seals must never open in a production enclave).
    pub fn is_debug(&self) -> bool {
        self.attributes.flags.contains(AttributesFlags::DEBUG)
    }

    /// The identity a REPORT describes (the real hardware implementation
    /// learns its own identity this way).
    pub fn from_report(report: &Report) -> Self {
        Self {
            mrenclave: report.mrenclave,
            mrsigner: report.mrsigner,
            isvprodid: report.isvprodid,
            isvsvn: report.isvsvn,
            attributes: report.attributes,
            miscselect: report.miscselect,
        }
    }

    /// Parses a SIGSTRUCT and verifies its RSA-3072 signature the way EINIT
    /// does: public exponent 3, PKCS#1 v1.5 with SHA-256 over the signed parts
    /// (header fields and the body from MISCSELECT to ISVSVN), every number
    /// little-endian, and the Q1/Q2 helper values consistent with the
    /// signature. The identity is that of the enclave after EINIT (INIT set).
    pub fn from_sigstruct(bytes: &[u8]) -> Result<Self, SigstructError> {
        let sig = parse_sigstruct(bytes)?;
        verify_sigstruct(&sig)?;
        let mrsigner: [u8; 32] = Sha256::digest(sig.modulus).into();
        let attributes = Attributes {
            flags: sig.attributes.flags | AttributesFlags::INIT,
            xfrm: sig.attributes.xfrm,
        };
        Ok(Self {
            mrenclave: sig.enclavehash,
            mrsigner,
            isvprodid: sig.isvprodid,
            isvsvn: sig.isvsvn,
            attributes,
            miscselect: sig.miscselect,
        })
    }
}

impl fmt::Debug for EnclaveIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnclaveIdentity")
            .field("mrenclave", &hex::encode(self.mrenclave))
            .field("mrsigner", &hex::encode(self.mrsigner))
            .field("isvprodid", &self.isvprodid)
            .field("isvsvn", &self.isvsvn)
            .field("attributes", &self.attributes)
            .field("miscselect", &self.miscselect)
            .finish()
    }
}

/// Why a SIGSTRUCT was refused.
#[derive(Debug, thiserror::Error)]
pub enum SigstructError {
    /// The input is not 1808 bytes.
    #[error("a SIGSTRUCT is {SIGSTRUCT_LEN} bytes, got {len}: pass the .sig file sgxs-sign wrote")]
    WrongLength {
        /// Length of the input.
        len: usize,
    },
    /// The fixed header bytes are not the SDM's.
    #[error(
        "SIGSTRUCT header fields are not the SDM constants: this is not a SIGSTRUCT (.sig file)"
    )]
    BadHeader,
    /// The public exponent is not 3.
    #[error("SIGSTRUCT public exponent is {exponent}, EINIT requires 3: sign with an RSA-3072 key whose exponent is 3")]
    BadExponent {
        /// The exponent found.
        exponent: u32,
    },
    /// The modulus is not a 3072-bit number.
    #[error("SIGSTRUCT modulus is not a 3072-bit RSA modulus: sign with an RSA-3072 key")]
    BadModulus,
    /// The signature does not verify under the embedded key.
    #[error("SIGSTRUCT signature does not verify: the file was modified after signing or is corrupt; sign the enclave again")]
    BadSignature,
    /// Q1/Q2 do not match the signature (EINIT would refuse it).
    #[error("SIGSTRUCT Q1/Q2 values do not match its signature (EINIT would refuse it): sign the enclave again")]
    BadQ1Q2,
    /// Making a test SIGSTRUCT failed.
    #[error("signing a test SIGSTRUCT failed: {0}")]
    Sign(#[source] rsa::Error),
}

fn parse_sigstruct(bytes: &[u8]) -> Result<Sigstruct, SigstructError> {
    let sig =
        Sigstruct::try_copy_from(bytes).ok_or(SigstructError::WrongLength { len: bytes.len() })?;
    if sig.header != sgx_isa::SIGSTRUCT_HEADER1 || sig.header2 != sgx_isa::SIGSTRUCT_HEADER2 {
        return Err(SigstructError::BadHeader);
    }
    if sig._reserved4.iter().any(|b| *b != 0) {
        return Err(SigstructError::BadHeader);
    }
    if sig.exponent != SIGSTRUCT_EXPONENT {
        return Err(SigstructError::BadExponent {
            exponent: sig.exponent,
        });
    }
    Ok(sig)
}

/// SHA-256 over the two signed regions of a SIGSTRUCT.
pub(crate) fn sigstruct_digest(sig: &Sigstruct) -> [u8; 32] {
    let (part1, part2) = sig.signature_data();
    let mut h = Sha256::new();
    h.update(part1);
    h.update(part2);
    h.finalize().into()
}

/// The RSA public key stored (little-endian) in a SIGSTRUCT.
fn sigstruct_public_key(sig: &Sigstruct) -> Result<RsaPublicKey, SigstructError> {
    let n = BigUint::from_bytes_le(&sig.modulus);
    if n.bits() != RSA3072_LEN * 8 {
        return Err(SigstructError::BadModulus);
    }
    RsaPublicKey::new(n, BigUint::from(sig.exponent)).map_err(|_| SigstructError::BadModulus)
}

fn verify_sigstruct(sig: &Sigstruct) -> Result<(), SigstructError> {
    let key = sigstruct_public_key(sig)?;
    let mut sig_be = sig.signature;
    sig_be.reverse();
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &sigstruct_digest(sig),
        &sig_be,
    )
    .map_err(|_| SigstructError::BadSignature)?;
    let s = BigUint::from_bytes_le(&sig.signature);
    let (q1, q2) = q1_q2(&s, key.n());
    if q1 != sig.q1 || q2 != sig.q2 {
        return Err(SigstructError::BadQ1Q2);
    }
    Ok(())
}

/// EINIT's helper values: Q1 = floor(s² / n), Q2 = floor((s³ − Q1·s·n) / n),
/// both 384 bytes little-endian. They let the CPU check s³ mod n without a
/// division.
pub(crate) fn q1_q2(s: &BigUint, n: &BigUint) -> ([u8; RSA3072_LEN], [u8; RSA3072_LEN]) {
    let s2 = s * s;
    let q1 = &s2 / n;
    let s3 = &s2 * s;
    let q1sn = &q1 * s * n;
    // s³ ≥ Q1·s·n because Q1·n ≤ s²; a corrupt signature cannot make this
    // negative, so saturate instead of panicking to keep the parser total.
    let rem = if s3 >= q1sn {
        s3 - q1sn
    } else {
        BigUint::from(0u32)
    };
    let q2 = rem / n;
    (le_fixed(&q1), le_fixed(&q2))
}

/// A number as exactly 384 little-endian bytes (too-large values, which a
/// valid signature cannot produce, become all-ones so they never match).
fn le_fixed(v: &BigUint) -> [u8; RSA3072_LEN] {
    let bytes = v.to_bytes_le();
    let mut out = [0u8; RSA3072_LEN];
    if bytes.len() > RSA3072_LEN {
        return [0xff; RSA3072_LEN];
    }
    for (o, b) in out.iter_mut().zip(bytes.iter()) {
        *o = *b;
    }
    out
}
