use proptest::prelude::*;
use tmkms_light_sgx_seal::testing::{other_test_signing_key, test_signing_key, TEST_CPUSVN};
use tmkms_light_sgx_seal::{
    inspect, seal, seal_bound, unseal, unseal_bound, unseal_seed, unseal_seed_bound, SealError,
    SgxHardware, SimulatedCpu, SimulatedHardware, LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};

use sha2::{Digest, Sha256};

use super::{enclave, enclave_on};

const SEED: [u8; 32] = [0x42; 32];
const LABEL: &str = LABEL_CONSENSUS_KEY;
const L: usize = LABEL_CONSENSUS_KEY.len();

fn sealed_by(hw: &SimulatedHardware) -> Vec<u8> {
    seal(hw, LABEL, &SEED).unwrap()
}

#[test]
fn round_trips_and_records_the_key_request() {
    let hw = enclave(test_signing_key(), 2, false, 1);
    let blob = sealed_by(&hw);
    assert_eq!(*unseal_seed(&hw, LABEL, &blob).unwrap(), SEED);
    assert_eq!(blob.len(), 103 + L + 32 + 32 + 16);
    assert_eq!(&blob[..8], b"TMKLSEAL");
    let header = inspect(&blob).unwrap();
    assert_eq!(header.label, LABEL);
    assert_eq!(
        (header.version, header.isvsvn, header.cpusvn),
        (2, 2, TEST_CPUSVN)
    );
    // Bound to nothing: the digest of the empty string.
    assert_eq!(
        header.bound_digest,
        Some(<[u8; 32]>::from(Sha256::digest(b"")))
    );
    assert!(!header.debug);
    assert_eq!(header.secret_len, 32);
    // Random key id and nonce: sealing twice gives different blobs.
    assert_ne!(sealed_by(&hw), blob);
    // Longer secrets (the cloud-wrap key is ~1.2 KiB) round-trip too.
    let big = vec![7u8; 1300];
    assert_eq!(
        *unseal(&hw, "x", &seal(&hw, "x", &big).unwrap()).unwrap(),
        big
    );
}

#[test]
fn an_upgraded_enclave_unseals_an_older_one_does_not() {
    let v2 = enclave(test_signing_key(), 2, false, 1);
    let v3 = enclave(test_signing_key(), 3, false, 1);
    assert_eq!(*unseal_seed(&v3, LABEL, &sealed_by(&v2)).unwrap(), SEED);
    let err = unseal_seed(&v2, LABEL, &sealed_by(&v3)).unwrap_err();
    assert!(
        matches!(err, SealError::SealedByNewerEnclave { sealed: 3, own: 2 }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("newer enclave (ISVSVN 3 > this enclave's 2)"),
        "{err}"
    );
}

#[test]
fn another_signer_or_cpu_cannot_unseal() {
    let blob = sealed_by(&enclave(test_signing_key(), 1, false, 1));
    for other in [
        enclave(other_test_signing_key(), 1, false, 1),
        enclave(test_signing_key(), 1, false, 2),
    ] {
        let err = unseal(&other, LABEL, &blob).unwrap_err();
        assert!(matches!(err, SealError::AuthenticationFailed), "{err:?}");
        assert_eq!(
            err.to_string(),
            "authentication failed: sealed by another enclave signer, on another CPU, or modified"
        );
    }
}

#[test]
fn debug_and_production_enclaves_cannot_open_each_others_seals() {
    let prod = enclave(test_signing_key(), 1, false, 1);
    let debug = enclave(test_signing_key(), 1, true, 1);
    // (sealer, opener, DEBUG flags of both, what the message says)
    for (sealer, opener, (sealer_debug, opener_debug), says) in [
        (
            &debug,
            &prod,
            (true, false),
            "sealed by a DEBUG enclave but this enclave is a production",
        ),
        (
            &prod,
            &debug,
            (false, true),
            "sealed by a production enclave but this enclave is a DEBUG",
        ),
    ] {
        let err = unseal(opener, LABEL, &sealed_by(sealer)).unwrap_err();
        assert!(
            matches!(
                err,
                SealError::DebugMismatch { sealed_debug, own_debug }
                    if sealed_debug == sealer_debug && own_debug == opener_debug
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
    // The binding is cryptographic: rewriting the informational DEBUG flag
    // in the header only trades the message for an authentication failure.
    let mut forged = sealed_by(&debug);
    forged[82] &= !0x02;
    assert!(matches!(
        unseal(&prod, LABEL, &forged),
        Err(SealError::AuthenticationFailed)
    ));
}

#[test]
fn cpusvn_upgrade_unseals_downgrade_does_not() {
    let secret = [5u8; 32];
    let mut newer = TEST_CPUSVN;
    newer[0] += 1;
    let old_cpu = enclave_on(
        test_signing_key(),
        1,
        false,
        SimulatedCpu::new(secret, TEST_CPUSVN),
    );
    let new_cpu = enclave_on(
        test_signing_key(),
        1,
        false,
        SimulatedCpu::new(secret, newer),
    );
    assert_eq!(
        *unseal_seed(&new_cpu, LABEL, &sealed_by(&old_cpu)).unwrap(),
        SEED
    );
    let err = unseal_seed(&old_cpu, LABEL, &sealed_by(&new_cpu)).unwrap_err();
    assert!(matches!(err, SealError::SealedOnNewerCpu(_)), "{err:?}");
}

#[test]
fn labels_are_checked_and_bound() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    let blob = sealed_by(&hw);
    let err = unseal(&hw, LABEL_IDENTITY_KEY, &blob).unwrap_err();
    assert!(matches!(err, SealError::LabelMismatch { .. }));
    assert!(
        err.to_string()
            .contains("holds \"consensus-key\", expected \"identity-key\""),
        "{err}"
    );
    assert!(matches!(
        seal(&hw, "", &SEED),
        Err(SealError::InvalidLabel { .. })
    ));
    assert!(matches!(
        seal(&hw, "a b", &SEED),
        Err(SealError::InvalidLabel { .. })
    ));
    assert!(matches!(
        seal(&hw, LABEL, &[]),
        Err(SealError::SecretLength { len: 0 })
    ));
    // A same-length label swapped in the header fails authentication.
    let mut forged = blob;
    forged[103] = b'C';
    assert!(matches!(
        unseal(&hw, "Consensus-key", &forged),
        Err(SealError::AuthenticationFailed)
    ));
    // A non-seed secret is not a seed.
    let short = seal(&hw, LABEL, &[1, 2, 3]).unwrap();
    assert!(matches!(
        unseal_seed(&hw, LABEL, &short),
        Err(SealError::Format(_))
    ));
}

const POLICY_A: &[u8] = b"tmkms-light bound policy v1\0{\"chain_id\":\"a\"}";
const POLICY_B: &[u8] = b"tmkms-light bound policy v1\0{\"chain_id\":\"b\"}";

#[test]
fn bound_data_must_match_to_unseal() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    let blob = seal_bound(&hw, LABEL, &SEED, POLICY_A).unwrap();
    assert_eq!(
        *unseal_seed_bound(&hw, LABEL, &blob, POLICY_A).unwrap(),
        SEED
    );
    assert_eq!(
        inspect(&blob).unwrap().bound_digest,
        Some(<[u8; 32]>::from(Sha256::digest(POLICY_A)))
    );
    for other in [POLICY_B, &[][..]] {
        let err = unseal_bound(&hw, LABEL, &blob, other).unwrap_err();
        assert!(
            matches!(err, SealError::BoundDataMismatch { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&hex::encode(Sha256::digest(POLICY_A))),
            "{err}"
        );
    }
    // An unbound blob does not open for bound data either.
    let unbound = seal(&hw, LABEL, &SEED).unwrap();
    assert!(matches!(
        unseal_bound(&hw, LABEL, &unbound, POLICY_A),
        Err(SealError::BoundDataMismatch { .. })
    ));
    // A host that rewrites the recorded digest to match other bound data
    // gets past the header check, and then fails authentication: the digest
    // is part of the associated data.
    let mut forged = blob.clone();
    forged[103 + L..135 + L].copy_from_slice(&Sha256::digest(POLICY_B));
    assert!(matches!(
        unseal_bound(&hw, LABEL, &forged, POLICY_B),
        Err(SealError::AuthenticationFailed)
    ));
}

/// A version 1 blob (before bound data), made here with the same key
/// request and cipher as the seal crate used.
fn version_1_blob(hw: &SimulatedHardware, label: &str, secret: &[u8]) -> Vec<u8> {
    use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
    use aes_gcm_siv::{Aes128GcmSiv, Nonce};
    let id = hw.identity();
    let cpusvn = hw.self_report().unwrap().cpusvn;
    let request = tmkms_light_sgx_seal::seal::seal_key_request(id.isvsvn, cpusvn, [9u8; 32]);
    let nonce = [3u8; 12];
    let mut blob = Vec::new();
    blob.extend_from_slice(b"TMKLSEAL");
    blob.extend_from_slice(&1u16.to_le_bytes());
    blob.extend_from_slice(&request.keypolicy.bits().to_le_bytes());
    blob.extend_from_slice(&request.isvsvn.to_le_bytes());
    blob.extend_from_slice(&request.cpusvn);
    for v in request.attributemask {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    blob.extend_from_slice(&request.miscmask.to_le_bytes());
    blob.extend_from_slice(&request.keyid);
    blob.extend_from_slice(&id.attributes.flags.bits().to_le_bytes());
    blob.extend_from_slice(&nonce);
    blob.push(label.len() as u8);
    blob.extend_from_slice(label.as_bytes());
    let key = hw.egetkey(&request).unwrap();
    let cipher = Aes128GcmSiv::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: &blob,
            },
        )
        .unwrap();
    blob.extend_from_slice(&ciphertext);
    blob
}

#[test]
fn version_1_blobs_open_unbound_only() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    let blob = version_1_blob(&hw, LABEL_IDENTITY_KEY, &SEED);
    let header = inspect(&blob).unwrap();
    assert_eq!((header.version, header.bound_digest), (1, None));
    assert_eq!(*unseal_seed(&hw, LABEL_IDENTITY_KEY, &blob).unwrap(), SEED);
    let err = unseal_bound(&hw, LABEL_IDENTITY_KEY, &blob, POLICY_A).unwrap_err();
    assert!(
        matches!(err, SealError::BoundDataMismatch { sealed: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("binds nothing"), "{err}");
}

/// Which error a one-bit flip at `offset` must produce.
fn expected_kind(offset: usize) -> &'static str {
    match offset {
        0..=7 => "Format",             // magic
        8..=9 => "UnsupportedVersion", // version
        10..=11 => "Format",           // key policy
        12 => "SealedByNewerEnclave", // ISVSVN 1 -> 0 would be AuthenticationFailed; ^0x80 raises it
        13 => "SealedByNewerEnclave",
        14..=29 => "SealedOnNewerCpu", // CPUSVN raised above the CPU's
        30..=49 => "Format",           // attribute mask, MISCMASK
        50..=81 => "AuthenticationFailed", // key id
        82..=89 => "AuthenticationFailed", // sealer attributes (DEBUG bit aside)
        90..=101 => "AuthenticationFailed", // nonce
        102 => "Format",               // label length
        o if o < 103 + L => "Format",  // label (no longer printable ASCII)
        o if o < 135 + L => "BoundDataMismatch", // bound-data digest
        _ => "AuthenticationFailed",   // ciphertext and tag
    }
}

#[test]
fn every_single_byte_flip_fails_with_the_regions_error() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    let blob = sealed_by(&hw);
    for offset in 0..blob.len() {
        let mut t = blob.clone();
        t[offset] ^= 0x80;
        let err = unseal(&hw, LABEL, &t).expect_err(&format!("flip at {offset} accepted"));
        let kind = format!("{err:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap();
        assert_eq!(kind, expected_kind(offset), "offset {offset}: {err}");
    }
    // The DEBUG bit of the informational sealer attributes gives its own message.
    let mut t = blob.clone();
    t[82] ^= 0x02;
    assert!(matches!(
        unseal(&hw, LABEL, &t),
        Err(SealError::DebugMismatch { .. })
    ));
    // A printable change of the label names both labels.
    let mut t = blob.clone();
    t[103] ^= 0x01;
    assert!(matches!(
        unseal(&hw, LABEL, &t),
        Err(SealError::LabelMismatch { .. })
    ));
    // Lowering ISVSVN / CPUSVN (still derivable) fails authentication.
    let mut t = blob.clone();
    t[12] = 0;
    assert!(matches!(
        unseal(&hw, LABEL, &t),
        Err(SealError::AuthenticationFailed)
    ));
    let mut t = blob;
    t[14] -= 1;
    assert!(matches!(
        unseal(&hw, LABEL, &t),
        Err(SealError::AuthenticationFailed)
    ));
}

#[test]
fn truncated_or_extended_blobs_fail() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    let blob = sealed_by(&hw);
    for len in 0..blob.len() {
        assert!(
            unseal(&hw, LABEL, &blob[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut longer = blob;
    longer.push(0);
    assert!(matches!(
        unseal(&hw, LABEL, &longer),
        Err(SealError::AuthenticationFailed)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_fails(offset in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let hw = shared_hw();
        let blob = shared_blob();
        let mut t = blob.to_vec();
        let i = offset.index(t.len());
        t[i] ^= xor;
        prop_assert!(unseal(hw, LABEL, &t).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_unseal_or_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(unseal(shared_hw(), LABEL, &bytes).is_err());
        let _ = inspect(&bytes);
    }
}

fn shared_hw() -> &'static SimulatedHardware {
    static HW: std::sync::OnceLock<SimulatedHardware> = std::sync::OnceLock::new();
    HW.get_or_init(|| enclave(test_signing_key(), 1, false, 1))
}

fn shared_blob() -> &'static [u8] {
    static BLOB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOB.get_or_init(|| sealed_by(shared_hw()))
}
