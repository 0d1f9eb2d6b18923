//! Test support (cargo feature `test-support`): SIGSTRUCTs signed with
//! freshly generated RSA-3072 (e = 3) test keys, so tests and other crates can
//! make simulated enclaves with a chosen signer, ISVSVN and DEBUG attribute.
//!
//! Generating an RSA-3072 key takes seconds, so two keys ("signer A" and
//! "signer B") are generated once per process and shared.

use std::sync::OnceLock;

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey};
use sgx_isa::{Attributes, AttributesFlags, Miscselect, Sigstruct};
use sha2::Sha256;

use crate::identity::{q1_q2, sigstruct_digest, SigstructError, RSA3072_LEN, SIGSTRUCT_EXPONENT};
use crate::sim::SimulatedCpu;
use crate::EnclaveIdentity;

/// The MRENCLAVE test enclaves get from [`test_enclave`].
pub const TEST_ENCLAVEHASH: [u8; 32] = [0x5a; 32];
/// The ISVPRODID test enclaves get from [`test_enclave`].
pub const TEST_ISVPRODID: u16 = 1;
/// The CPUSVN of CPUs from [`test_cpu`].
pub const TEST_CPUSVN: [u8; 16] = [2; 16];

/// A new RSA-3072 key with public exponent 3, as SIGSTRUCTs require.
pub fn generate_sigstruct_key() -> Result<RsaPrivateKey, SigstructError> {
    RsaPrivateKey::new_with_exp(
        &mut rand_core::OsRng,
        RSA3072_LEN * 8,
        &BigUint::from(SIGSTRUCT_EXPONENT),
    )
    .map_err(SigstructError::Sign)
}

static SIGNER_A: OnceLock<RsaPrivateKey> = OnceLock::new();
static SIGNER_B: OnceLock<RsaPrivateKey> = OnceLock::new();

#[allow(clippy::expect_used)] // test support: key generation fails only if the OS RNG does
fn cached(cell: &'static OnceLock<RsaPrivateKey>) -> &'static RsaPrivateKey {
    cell.get_or_init(|| generate_sigstruct_key().expect("RSA-3072 test key generation"))
}

/// The process-wide test signer "A" (generated on first use).
pub fn test_signing_key() -> &'static RsaPrivateKey {
    cached(&SIGNER_A)
}

/// A second process-wide test signer "B", for "another signer" cases.
pub fn other_test_signing_key() -> &'static RsaPrivateKey {
    cached(&SIGNER_B)
}

/// A SIGSTRUCT for `enclavehash` signed by `signing_key` (RSA-3072, e = 3),
/// with ATTRIBUTES MODE64BIT (plus DEBUG when `debug`), XFRM 3, MISCSELECT 0,
/// and valid Q1/Q2, laid out as `sgxs-sign` writes it.
pub fn sign_test_sigstruct(
    signing_key: &RsaPrivateKey,
    enclavehash: [u8; 32],
    isvprodid: u16,
    isvsvn: u16,
    debug: bool,
) -> Result<Vec<u8>, SigstructError> {
    let n = signing_key.n();
    if n.bits() != RSA3072_LEN * 8 {
        return Err(SigstructError::BadModulus);
    }
    if signing_key.e() != &BigUint::from(SIGSTRUCT_EXPONENT) {
        let e = signing_key.e().to_bytes_le();
        let exponent = match <[u8; 4]>::try_from(e.as_slice()) {
            Ok(four) => u32::from_le_bytes(four),
            Err(_) if e.len() < 4 => e.iter().rev().fold(0, |acc, b| (acc << 8) | u32::from(*b)),
            Err(_) => u32::MAX,
        };
        return Err(SigstructError::BadExponent { exponent });
    }
    let mut flags = AttributesFlags::MODE64BIT;
    if debug {
        flags |= AttributesFlags::DEBUG;
    }
    let mut sig = Sigstruct {
        header: sgx_isa::SIGSTRUCT_HEADER1,
        vendor: 0,
        date: 0x2026_0101,
        header2: sgx_isa::SIGSTRUCT_HEADER2,
        exponent: SIGSTRUCT_EXPONENT,
        miscselect: Miscselect::empty(),
        miscmask: u32::MAX,
        attributes: Attributes { flags, xfrm: 3 },
        attributemask: [!AttributesFlags::INIT.bits(), 0],
        enclavehash,
        isvprodid,
        isvsvn,
        ..Default::default()
    };
    for (m, b) in sig.modulus.iter_mut().zip(n.to_bytes_le()) {
        *m = b;
    }
    let digest = sigstruct_digest(&sig);
    let signature_be = signing_key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        .map_err(SigstructError::Sign)?;
    for (s, b) in sig.signature.iter_mut().zip(signature_be.iter().rev()) {
        *s = *b;
    }
    let (q1, q2) = q1_q2(&BigUint::from_bytes_le(&sig.signature), n);
    sig.q1 = q1;
    sig.q2 = q2;
    Ok(AsRef::<[u8]>::as_ref(&sig).to_vec())
}

/// The identity of a test enclave ([`TEST_ENCLAVEHASH`], [`TEST_ISVPRODID`])
/// signed by `signing_key` at `isvsvn`, through a real signed SIGSTRUCT.
pub fn test_enclave(
    signing_key: &RsaPrivateKey,
    isvsvn: u16,
    debug: bool,
) -> Result<EnclaveIdentity, SigstructError> {
    let sigstruct =
        sign_test_sigstruct(signing_key, TEST_ENCLAVEHASH, TEST_ISVPRODID, isvsvn, debug)?;
    EnclaveIdentity::from_sigstruct(&sigstruct)
}

/// A simulated CPU whose TEST secret is 32 copies of `secret_byte`.
pub fn test_cpu(secret_byte: u8) -> SimulatedCpu {
    SimulatedCpu::new([secret_byte; 32], TEST_CPUSVN)
}
