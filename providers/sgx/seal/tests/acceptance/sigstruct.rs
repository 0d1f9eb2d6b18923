use sha2::{Digest, Sha256};
use tmkms_light_sgx_seal::sgx_isa::AttributesFlags;
use tmkms_light_sgx_seal::testing::{
    other_test_signing_key, sign_test_sigstruct, test_signing_key,
};
use tmkms_light_sgx_seal::{EnclaveIdentity, SigstructError, SIGSTRUCT_LEN};

use rsa::traits::{PrivateKeyParts, PublicKeyParts};

const HASH: [u8; 32] = [0x11; 32];

fn signed(isvsvn: u16, debug: bool) -> Vec<u8> {
    sign_test_sigstruct(test_signing_key(), HASH, 7, isvsvn, debug).unwrap()
}

#[test]
fn parses_identity_from_a_signed_sigstruct() {
    let bytes = signed(3, false);
    assert_eq!(bytes.len(), SIGSTRUCT_LEN);
    let id = EnclaveIdentity::from_sigstruct(&bytes).unwrap();
    assert_eq!(id.mrenclave, HASH);
    // MRSIGNER is SHA-256 of the modulus exactly as stored: 384 bytes little-endian.
    let mut modulus = test_signing_key().n().to_bytes_le();
    modulus.resize(384, 0);
    assert_eq!(id.mrsigner, <[u8; 32]>::from(Sha256::digest(&modulus)));
    assert_eq!((id.isvprodid, id.isvsvn), (7, 3));
    assert!(!id.is_debug());
    assert!(id
        .attributes
        .flags
        .contains(AttributesFlags::INIT | AttributesFlags::MODE64BIT));
    // The modulus sits at offset 128 and the enclave hash at 960, as in the SDM.
    assert_eq!(&bytes[128..512], &modulus[..]);
    assert_eq!(&bytes[960..992], &HASH);
    assert_eq!(u16::from_le_bytes([bytes[1026], bytes[1027]]), 3);

    let debug = EnclaveIdentity::from_sigstruct(&signed(3, true)).unwrap();
    assert!(debug.is_debug());
    assert_eq!(debug.mrsigner, id.mrsigner);

    let other = sign_test_sigstruct(other_test_signing_key(), HASH, 7, 3, false).unwrap();
    assert_ne!(
        EnclaveIdentity::from_sigstruct(&other).unwrap().mrsigner,
        id.mrsigner
    );
}

#[test]
fn rejects_every_single_byte_modification() {
    let bytes = signed(1, false);
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let err = EnclaveIdentity::from_sigstruct(&t)
            .expect_err(&format!("byte {i} flipped was accepted"));
        let kind = format!("{err:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap().to_owned();
        *counts.entry(kind).or_default() += 1;
    }
    // Each kind of check fires somewhere: header constants, exponent, the
    // signature over header and body (and over a changed modulus/signature),
    // and Q1/Q2.
    for kind in ["BadHeader", "BadExponent", "BadSignature", "BadQ1Q2"] {
        assert!(
            counts.contains_key(kind),
            "{kind} never reported: {counts:?}"
        );
    }
    assert_eq!(counts.values().sum::<usize>(), SIGSTRUCT_LEN);
}

#[test]
fn rejects_wrong_lengths_and_foreign_signers_body() {
    let bytes = signed(1, false);
    assert!(matches!(
        EnclaveIdentity::from_sigstruct(&bytes[..SIGSTRUCT_LEN - 1]),
        Err(SigstructError::WrongLength { len: 1807 })
    ));
    assert!(matches!(
        EnclaveIdentity::from_sigstruct(&[]),
        Err(SigstructError::WrongLength { len: 0 })
    ));
    // Signer B's modulus with signer A's signature: the signature no longer verifies.
    let other = sign_test_sigstruct(other_test_signing_key(), HASH, 7, 1, false).unwrap();
    let mut mixed = bytes.clone();
    mixed[128..512].copy_from_slice(&other[128..512]);
    assert!(matches!(
        EnclaveIdentity::from_sigstruct(&mixed),
        Err(SigstructError::BadSignature)
    ));
    // Raising ISVSVN without re-signing is caught.
    let mut raised = bytes;
    raised[1026] = 9;
    let err = EnclaveIdentity::from_sigstruct(&raised).unwrap_err();
    assert!(matches!(err, SigstructError::BadSignature));
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn refuses_to_sign_with_a_non_sigstruct_key() {
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    assert!(matches!(
        sign_test_sigstruct(&key, HASH, 1, 1, false),
        Err(SigstructError::BadModulus)
    ));
    // The same primes with another public exponent (65537 unless it shares a
    // factor with p-1 or q-1) make a 3072-bit key that is refused too.
    let signer = test_signing_key();
    let (e, wrong_e) = [65537u32, 17, 5, 7]
        .into_iter()
        .find_map(|e| {
            let primes = signer.primes();
            rsa::RsaPrivateKey::from_p_q(primes[0].clone(), primes[1].clone(), e.into())
                .ok()
                .map(|k| (e, k))
        })
        .unwrap();
    assert!(matches!(
        sign_test_sigstruct(&wrong_e, HASH, 1, 1, false),
        Err(SigstructError::BadExponent { exponent }) if exponent == e
    ));
}
