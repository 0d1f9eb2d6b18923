use ed25519_dalek::SigningKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use tmkms_light_sgx_seal::sgx_isa::Targetinfo;
use tmkms_light_sgx_seal::testing::{
    other_test_signing_key, sign_test_sigstruct, test_cpu, test_signing_key,
};
use tmkms_light_sgx_seal::{
    backup_secret, cloud_wrap, restore_secret, seal, unseal_seed, unwrap_backup_key,
    wrap_backup_key_for, CloudError, EnclaveIdentity, SealError, SgxHardware, SimulatedHardware,
    LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};

use super::enclave;

const CONSENSUS_SEED: [u8; 32] = [0xc0; 32];
const IDENTITY_SEED: [u8; 32] = [0x1d; 32];

fn public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// The quoting enclave stand-in on the app's CPU (its own MRENCLAVE), and
/// its TARGETINFO.
fn qe_on(cpu: u8) -> (SimulatedHardware, Targetinfo) {
    let sig = sign_test_sigstruct(other_test_signing_key(), [0x9e; 32], 2, 1, false).unwrap();
    let qe = SimulatedHardware::new(
        EnclaveIdentity::from_sigstruct(&sig).unwrap(),
        test_cpu(cpu),
    );
    let target = Targetinfo::from(qe.self_report().unwrap());
    (qe, target)
}

#[test]
fn backup_on_one_cpu_restores_on_a_new_cpu() {
    // Old machine: enclave v1 on CPU 1 runs cloud-wrap.
    let old = enclave(test_signing_key(), 1, false, 1);
    let (old_qe, old_target) = qe_on(1);
    let wrap = cloud_wrap(&old, &old_target).unwrap();
    // The report binds the public key and verifies at the quoting enclave.
    let digest = Sha256::digest(&wrap.public_key_der);
    assert_eq!(&wrap.report.reportdata[..32], digest.as_slice());
    assert_eq!(wrap.report.reportdata[32..], [0u8; 32]);
    assert_eq!(wrap.report.mrsigner, old.identity().mrsigner);
    old_qe.verify_report(&wrap.report).unwrap();
    assert!(old.verify_report(&wrap.report).is_err());
    // DER and PEM are the same RSA-2048 key.
    let from_pem = rsa::RsaPublicKey::from_public_key_pem(&wrap.public_key_pem).unwrap();
    let from_der = rsa::RsaPublicKey::from_public_key_der(&wrap.public_key_der).unwrap();
    assert_eq!(from_pem, from_der);
    assert!(wrap
        .public_key_pem
        .starts_with("-----BEGIN PUBLIC KEY-----"));

    // The operator's KMS wraps a backup key for that public key.
    let backup_key = [0x8b; 32];
    let payload = wrap_backup_key_for(&wrap.public_key_der, &backup_key).unwrap();
    assert_eq!(payload.len(), 256 + 40);
    let unwrapped = unwrap_backup_key(&old, &wrap.sealed_wrap_key, &payload).unwrap();
    assert_eq!(*unwrapped, backup_key);
    let consensus_backup = backup_secret(&unwrapped, LABEL_CONSENSUS_KEY, &CONSENSUS_SEED).unwrap();
    let identity_backup = backup_secret(&unwrapped, LABEL_IDENTITY_KEY, &IDENTITY_SEED).unwrap();
    assert_eq!(&consensus_backup[..8], b"TMKLBKUP");
    assert_eq!(consensus_backup.len(), 23 + LABEL_CONSENSUS_KEY.len() + 48);

    // New machine: the same enclave on CPU 2 cannot open CPU 1's sealed wrap key...
    let new = enclave(test_signing_key(), 1, false, 2);
    let err = unwrap_backup_key(&new, &wrap.sealed_wrap_key, &payload).unwrap_err();
    assert!(
        matches!(err, CloudError::WrapKey(SealError::AuthenticationFailed)),
        "{err:?}"
    );
    // ...so it runs cloud-wrap and the KMS re-wraps the same backup key for it.
    let (_, new_target) = qe_on(2);
    let new_wrap = cloud_wrap(&new, &new_target).unwrap();
    assert_ne!(new_wrap.public_key_der, wrap.public_key_der);
    let new_payload = wrap_backup_key_for(&new_wrap.public_key_der, &backup_key).unwrap();
    let new_key = unwrap_backup_key(&new, &new_wrap.sealed_wrap_key, &new_payload).unwrap();
    let consensus = restore_secret(&new_key, LABEL_CONSENSUS_KEY, &consensus_backup).unwrap();
    let identity = restore_secret(&new_key, LABEL_IDENTITY_KEY, &identity_backup).unwrap();
    assert_eq!(*consensus, CONSENSUS_SEED);
    assert_eq!(*identity, IDENTITY_SEED);
    assert_eq!(public(&consensus), public(&CONSENSUS_SEED));
    assert_eq!(public(&identity), public(&IDENTITY_SEED));
    // Resealed on the new CPU, they open there.
    let resealed = seal(&new, LABEL_CONSENSUS_KEY, consensus.as_slice()).unwrap();
    assert_eq!(
        *unseal_seed(&new, LABEL_CONSENSUS_KEY, &resealed).unwrap(),
        CONSENSUS_SEED
    );

    // A payload wrapped for the old key does not unwrap with the new one.
    let err = unwrap_backup_key(&new, &new_wrap.sealed_wrap_key, &payload).unwrap_err();
    assert!(matches!(err, CloudError::WrongWrapKey), "{err:?}");
    assert!(err
        .to_string()
        .contains("not wrapped for this enclave's cloud-wrap key"));
}

#[test]
fn malformed_and_tampered_payloads_fail_clearly() {
    let hw = enclave(test_signing_key(), 1, false, 3);
    let wrap = cloud_wrap(&hw, &Targetinfo::default()).unwrap();
    let payload = wrap_backup_key_for(&wrap.public_key_der, &[1; 32]).unwrap();
    for len in [0, 255, 256, 295, 297] {
        let mut p = payload.clone();
        p.resize(len, 0);
        let err = unwrap_backup_key(&hw, &wrap.sealed_wrap_key, &p).unwrap_err();
        assert!(
            matches!(err, CloudError::MalformedPayload { expected: 296, .. }),
            "{len}: {err:?}"
        );
    }
    let mut rsa_part = payload.clone();
    rsa_part[10] ^= 1;
    assert!(matches!(
        unwrap_backup_key(&hw, &wrap.sealed_wrap_key, &rsa_part),
        Err(CloudError::WrongWrapKey)
    ));
    for i in 256..296 {
        let mut kwp = payload.clone();
        kwp[i] ^= 1;
        assert!(
            matches!(
                unwrap_backup_key(&hw, &wrap.sealed_wrap_key, &kwp),
                Err(CloudError::KeyWrapIntegrity)
            ),
            "byte {i}"
        );
    }
    // The sealed wrap key is sealed under its own label.
    assert!(matches!(
        unwrap_backup_key(
            &hw,
            &seal(&hw, "cloud-wrap-key", &[1; 32]).unwrap(),
            &payload
        ),
        Err(CloudError::WrapKeyEncoding)
    ));
    assert!(matches!(
        unwrap_backup_key(
            &hw,
            &seal(&hw, LABEL_CONSENSUS_KEY, &[1; 32]).unwrap(),
            &payload
        ),
        Err(CloudError::WrapKey(SealError::LabelMismatch { .. }))
    ));
    assert!(matches!(
        wrap_backup_key_for(b"not a key", &[1; 32]),
        Err(CloudError::PublicKey)
    ));
}

#[test]
fn backups_fail_for_wrong_label_key_or_any_change() {
    let key = [0x33; 32];
    let blob = backup_secret(&key, LABEL_CONSENSUS_KEY, &CONSENSUS_SEED).unwrap();
    assert_eq!(
        *restore_secret(&key, LABEL_CONSENSUS_KEY, &blob).unwrap(),
        CONSENSUS_SEED
    );
    let err = restore_secret(&key, LABEL_IDENTITY_KEY, &blob).unwrap_err();
    assert!(matches!(err, CloudError::LabelMismatch { .. }), "{err:?}");
    let err = restore_secret(&[0x34; 32], LABEL_CONSENSUS_KEY, &blob).unwrap_err();
    assert!(
        matches!(err, CloudError::BackupAuthenticationFailed),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "backup authentication failed: wrong backup key, or the backup was modified"
    );
    for i in 0..blob.len() {
        let mut t = blob.clone();
        t[i] ^= 0x01;
        assert!(
            restore_secret(&key, LABEL_CONSENSUS_KEY, &t).is_err(),
            "byte {i}"
        );
        // Past the header, it is the authentication that fails.
        if i >= 23 + LABEL_CONSENSUS_KEY.len() || (10..22).contains(&i) {
            assert!(matches!(
                restore_secret(&key, LABEL_CONSENSUS_KEY, &t),
                Err(CloudError::BackupAuthenticationFailed)
            ));
        }
    }
    for len in 0..blob.len() {
        assert!(restore_secret(&key, LABEL_CONSENSUS_KEY, &blob[..len]).is_err());
    }
    // A same-length relabelled backup fails authentication.
    let mut relabelled = backup_secret(&key, "identity-kez", &IDENTITY_SEED).unwrap();
    relabelled[22 + "identity-kez".len()] = b'y';
    assert!(matches!(
        restore_secret(&key, LABEL_IDENTITY_KEY, &relabelled),
        Err(CloudError::BackupAuthenticationFailed)
    ));
    // Fresh nonces: two backups of one seed differ.
    assert_ne!(
        blob,
        backup_secret(&key, LABEL_CONSENSUS_KEY, &CONSENSUS_SEED).unwrap()
    );
}
