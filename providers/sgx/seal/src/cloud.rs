//! Cloud backup of the sealed keys, so a validator can move to a new CPU
//! (sealed blobs only open on the CPU that made them).
//!
//! The flow:
//! 1. **cloud-wrap** (inside the enclave, [`cloud_wrap`]): generate an
//!    RSA-2048 wrapping key, seal its private key (label `cloud-wrap-key`),
//!    and hand out its public key (SubjectPublicKeyInfo DER and PEM) with an
//!    enclave REPORT whose report data is SHA-256(public key DER) followed by
//!    32 zero bytes — so a verifier of the (quoted) report knows the key
//!    belongs to this enclave.
//! 2. The operator's cloud KMS wraps a 32-byte backup key for that public key
//!    in the `RSA_AES_KEY_WRAP` layout ([`wrap_backup_key_for`] does the same
//!    locally): RSA-OAEP (SHA-256, MGF1-SHA-256, no label) of a fresh
//!    AES-256 key, followed by AES-KWP (RFC 5649) of the backup key under
//!    that AES key. For an RSA-2048 wrapping key that is 256 + 40 = 296 bytes.
//! 3. The enclave unwraps the backup key ([`unwrap_backup_key`]) and writes
//!    backups of its 32-byte seeds ([`backup_secret`]).
//! 4. On a new CPU, a new enclave runs cloud-wrap, the KMS wraps the **same**
//!    backup key for the new public key, and the enclave restores the seeds
//!    ([`restore_secret`]) and seals them for its own CPU.
//!
//! # Backup blob format, version 1
//! All integers little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TMKLBKUP` |
//! | 8 | 2 | format version = 1 |
//! | 10 | 12 | AES-GCM-SIV nonce (random) |
//! | 22 | 1 | label length L, 1..=64 |
//! | 23 | L | label, printable ASCII (`consensus-key`, `identity-key`) |
//! | 23+L | 48 | AES-256-GCM-SIV ciphertext of the 32-byte seed ‖ 16-byte tag |
//!
//! Associated data = bytes `0 .. 23+L`, so a consensus-key backup cannot be
//! restored as the identity key.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use aes_kw::KekAes256;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sgx_isa::{Report, Targetinfo};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{append_encrypted, validate_label, Reader, MAX_LABEL_LEN};
use crate::hw::{HwError, SgxHardware};
use crate::seal::{seal, unseal, SealError, LABEL_CLOUD_WRAP_KEY};

/// Size of the cloud wrapping key.
pub const CLOUD_WRAP_KEY_BITS: usize = 2048;
/// Magic bytes that start a backup blob.
pub const BACKUP_MAGIC: [u8; 8] = *b"TMKLBKUP";
/// The backup blob format version written by [`backup_secret`].
pub const BACKUP_VERSION: u16 = 1;

/// AES-KWP output for a 32-byte key: the key plus one 8-byte semiblock.
const KWP_LEN: usize = 40;
const SEED_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// What [`cloud_wrap`] hands to the host.
#[derive(Debug, Clone)]
pub struct CloudWrap {
    /// The wrapping key's private key, sealed (label `cloud-wrap-key`): store
    /// it next to the other sealed keys.
    pub sealed_wrap_key: Vec<u8>,
    /// The wrapping public key, SubjectPublicKeyInfo DER: upload to the KMS.
    pub public_key_der: Vec<u8>,
    /// The same public key as PEM.
    pub public_key_pem: String,
    /// REPORT for the caller's target whose report data is
    /// [`report_data_for`]`(public_key_der)`.
    pub report: Report,
}

/// Why a cloud-backup step failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The sealed wrapping key could not be unsealed.
    #[error("cannot open the sealed cloud-wrap key: {0}")]
    WrapKey(#[source] SealError),
    /// Sealing the new wrapping key failed.
    #[error("cannot seal the new cloud-wrap key: {0}")]
    Seal(#[source] SealError),
    /// The sealed wrapping key does not hold an RSA private key.
    #[error("the sealed cloud-wrap key does not hold an RSA private key: re-run cloud-wrap")]
    WrapKeyEncoding,
    /// The public key given is not an RSA SubjectPublicKeyInfo.
    #[error("not an RSA public key in SubjectPublicKeyInfo DER: pass the cloud-wrap public key (.der) the enclave printed")]
    PublicKey,
    /// The wrapped payload has the wrong shape.
    #[error("malformed wrapped backup key: {len} bytes, expected {expected} (RSA-OAEP block of the wrap key's size followed by a 40-byte AES-KWP of a 32-byte key); export the key in the RSA_AES_KEY_WRAP format for the current cloud-wrap public key")]
    MalformedPayload {
        /// Length received.
        len: usize,
        /// Length expected for this wrapping key.
        expected: usize,
    },
    /// RSA-OAEP decryption failed.
    #[error("the wrapped backup key was not wrapped for this enclave's cloud-wrap key (RSA-OAEP decryption failed): wrap it for the public key of the sealed cloud-wrap key in use, with OAEP SHA-256")]
    WrongWrapKey,
    /// The AES-KWP layer failed its integrity check.
    #[error("AES key-wrap integrity check failed: the wrapped backup key is corrupted or is not a 32-byte key")]
    KeyWrapIntegrity,
    /// The backup blob is not in a known format.
    #[error("not a valid backup blob: {0}; pass the backup file the enclave wrote, unmodified")]
    BackupFormat(&'static str),
    /// The backup holds another key than asked for.
    #[error("backup holds {found:?}, expected {expected:?}: check which backup file is used for which key")]
    LabelMismatch {
        /// Label asked for.
        expected: String,
        /// Label in the backup.
        found: String,
    },
    /// An unusable label was passed.
    #[error("invalid backup label {label:?}: {reason}")]
    InvalidLabel {
        /// The label given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Decryption of a backup failed.
    #[error("backup authentication failed: wrong backup key, or the backup was modified")]
    BackupAuthenticationFailed,
    /// The hardware refused to make the report.
    #[error("SGX hardware error during cloud-wrap: {0}")]
    Hardware(#[from] HwError),
    /// Key generation or a cryptographic primitive failed locally.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

/// The report data binding a wrapping public key: SHA-256 of its DER in the
/// first 32 bytes, zeros after.
pub fn report_data_for(public_key_der: &[u8]) -> [u8; 64] {
    let mut data = [0u8; 64];
    let digest = Sha256::digest(public_key_der);
    for (d, s) in data.iter_mut().zip(digest.iter()) {
        *d = *s;
    }
    data
}

/// cloud-wrap: generates the RSA-2048 wrapping key inside the enclave, seals
/// it, and returns its public key with a REPORT for `target` binding it.
pub fn cloud_wrap<H: SgxHardware + ?Sized>(
    hw: &H,
    target: &Targetinfo,
) -> Result<CloudWrap, CloudError> {
    let key = RsaPrivateKey::new(&mut OsRng, CLOUD_WRAP_KEY_BITS)
        .map_err(|e| CloudError::Crypto(format!("RSA key generation: {e}")))?;
    let private_der = key
        .to_pkcs8_der()
        .map_err(|e| CloudError::Crypto(format!("PKCS#8 encoding: {e}")))?;
    let sealed_wrap_key =
        seal(hw, LABEL_CLOUD_WRAP_KEY, private_der.as_bytes()).map_err(CloudError::Seal)?;
    let public = key.to_public_key();
    let public_key_der = public
        .to_public_key_der()
        .map_err(|e| CloudError::Crypto(format!("SPKI encoding: {e}")))?
        .into_vec();
    let public_key_pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| CloudError::Crypto(format!("PEM encoding: {e}")))?;
    let report = hw.report(target, &report_data_for(&public_key_der))?;
    Ok(CloudWrap {
        sealed_wrap_key,
        public_key_der,
        public_key_pem,
        report,
    })
}

/// What the cloud KMS does: wraps `backup_key` for `public_key_der` in the
/// RSA_AES_KEY_WRAP layout. A public-key operation, for tests and for
/// operators checking their setup.
pub fn wrap_backup_key_for(
    public_key_der: &[u8],
    backup_key: &[u8; 32],
) -> Result<Vec<u8>, CloudError> {
    let public =
        RsaPublicKey::from_public_key_der(public_key_der).map_err(|_| CloudError::PublicKey)?;
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(ephemeral.as_mut_slice())
        .map_err(|e| CloudError::Crypto(format!("random number generator: {e}")))?;
    let mut out = public
        .encrypt(&mut OsRng, Oaep::new::<Sha256>(), ephemeral.as_slice())
        .map_err(|e| CloudError::Crypto(format!("RSA-OAEP encryption: {e}")))?;
    let kek = KekAes256::from(*ephemeral);
    let mut wrapped = [0u8; KWP_LEN];
    kek.wrap_with_padding(backup_key, &mut wrapped)
        .map_err(|e| CloudError::Crypto(format!("AES-KWP: {e}")))?;
    out.extend_from_slice(&wrapped);
    Ok(out)
}

/// Inside the enclave: unseals the wrapping key and unwraps the backup key
/// the cloud KMS wrapped for it.
pub fn unwrap_backup_key<H: SgxHardware + ?Sized>(
    hw: &H,
    sealed_wrap_key: &[u8],
    payload: &[u8],
) -> Result<Zeroizing<[u8; 32]>, CloudError> {
    let der = unseal(hw, LABEL_CLOUD_WRAP_KEY, sealed_wrap_key).map_err(CloudError::WrapKey)?;
    let key = RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| CloudError::WrapKeyEncoding)?;
    let rsa_len = key.size();
    let expected = rsa_len + KWP_LEN;
    if payload.len() != expected {
        return Err(CloudError::MalformedPayload {
            len: payload.len(),
            expected,
        });
    }
    let (rsa_block, kwp) = payload.split_at(rsa_len);
    let ephemeral = Zeroizing::new(
        key.decrypt_blinded(&mut OsRng, Oaep::new::<Sha256>(), rsa_block)
            .map_err(|_| CloudError::WrongWrapKey)?,
    );
    let ephemeral: Zeroizing<[u8; 32]> =
        Zeroizing::new(ephemeral.as_slice().try_into().map_err(|_| {
            CloudError::MalformedPayload {
                len: payload.len(),
                expected,
            }
        })?);
    let kek = KekAes256::from(*ephemeral);
    let mut backup_key = Zeroizing::new([0u8; 32]);
    let mut scratch = Zeroizing::new([0u8; KWP_LEN - 8]);
    let unwrapped = kek
        .unwrap_with_padding(kwp, scratch.as_mut_slice())
        .map_err(|_| CloudError::KeyWrapIntegrity)?;
    if unwrapped.len() != backup_key.len() {
        return Err(CloudError::KeyWrapIntegrity);
    }
    backup_key.copy_from_slice(unwrapped);
    Ok(backup_key)
}

fn check_label(label: &str) -> Result<(), CloudError> {
    validate_label(label).map_err(|reason| CloudError::InvalidLabel {
        label: label.to_owned(),
        reason,
    })
}

fn backup_header(nonce: &[u8; 12], label: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(23 + label.len());
    out.extend_from_slice(&BACKUP_MAGIC);
    out.extend_from_slice(&BACKUP_VERSION.to_le_bytes());
    out.extend_from_slice(nonce);
    // Validated labels are at most 64 bytes.
    out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(label.as_bytes());
    out
}

/// Encrypts a 32-byte seed under the backup key (AES-256-GCM-SIV, random
/// nonce, header with `label` as associated data).
pub fn backup_secret(
    backup_key: &[u8; 32],
    label: &str,
    seed: &[u8; 32],
) -> Result<Vec<u8>, CloudError> {
    check_label(label)?;
    let mut nonce = [0u8; 12];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| CloudError::Crypto(format!("random number generator: {e}")))?;
    let mut blob = backup_header(&nonce, label);
    let cipher = Aes256GcmSiv::new(backup_key.into());
    append_encrypted(&cipher, Nonce::from_slice(&nonce), seed, &mut blob)
        .map_err(|_| CloudError::Crypto("AES-GCM-SIV encryption".to_owned()))?;
    Ok(blob)
}

/// Decrypts a backup [`backup_secret`] made, checking it holds `label`.
pub fn restore_secret(
    backup_key: &[u8; 32],
    label: &str,
    blob: &[u8],
) -> Result<Zeroizing<[u8; 32]>, CloudError> {
    check_label(label)?;
    const SHORT: CloudError = CloudError::BackupFormat("truncated");
    let mut r = Reader::new(blob);
    if r.array::<8>().map_err(|_| SHORT)? != BACKUP_MAGIC {
        return Err(CloudError::BackupFormat("missing TMKLBKUP magic"));
    }
    if r.u16().map_err(|_| SHORT)? != BACKUP_VERSION {
        return Err(CloudError::BackupFormat(
            "unsupported version (this build reads version 1)",
        ));
    }
    let nonce = r.array::<12>().map_err(|_| SHORT)?;
    let label_len = usize::from(r.u8().map_err(|_| SHORT)?);
    if label_len == 0 || label_len > MAX_LABEL_LEN {
        return Err(CloudError::BackupFormat("label length out of range"));
    }
    let found = r.take(label_len).map_err(|_| SHORT)?;
    if found != label.as_bytes() {
        return Err(CloudError::LabelMismatch {
            expected: label.to_owned(),
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    let aad = blob.get(..r.consumed(blob)).ok_or(SHORT)?;
    let ciphertext = r.remaining();
    if ciphertext.len() != SEED_LEN + TAG_LEN {
        return Err(CloudError::BackupFormat(
            "ciphertext is not a 32-byte seed and its tag",
        ));
    }
    let cipher = Aes256GcmSiv::new(backup_key.into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CloudError::BackupAuthenticationFailed)?,
    );
    let mut seed = Zeroizing::new([0u8; 32]);
    if plaintext.len() != seed.len() {
        return Err(CloudError::BackupFormat("plaintext is not a 32-byte seed"));
    }
    seed.copy_from_slice(&plaintext);
    Ok(seed)
}
