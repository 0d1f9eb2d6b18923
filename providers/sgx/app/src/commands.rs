//! The enclave's answers to the runner's key requests. Secrets exist only
//! here, in zeroizing buffers; everything returned is sealed, encrypted or
//! public.

use thiserror::Error;
use tmkms_light::keys::{ConsensusKey, IdentityKey};
use tmkms_light_sgx_seal::sgx_isa::Targetinfo;
use tmkms_light_sgx_seal::{
    backup_secret, cloud_wrap, restore_secret, seal, unseal_seed, unwrap_backup_key, CloudError,
    SealError, SgxHardware, LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};

use crate::protocol::{KeySet, Request, Response, WrappedBackupKey};

#[derive(Debug, Error)]
pub enum AppError {
    #[error("consensus key: {0}")]
    ConsensusKey(SealError),
    #[error("identity key: {0}")]
    IdentityKey(SealError),
    #[error("cloud backup: {0}")]
    Cloud(#[from] CloudError),
    #[error("consensus key backup: {0}")]
    ConsensusBackup(CloudError),
    #[error("identity key backup: {0}")]
    IdentityBackup(CloudError),
    #[error("TARGETINFO must be {expected} bytes, got {got}")]
    TargetInfo { expected: usize, got: usize },
    #[error("nothing to recover: pass the consensus key backup, the identity key backup, or both")]
    NothingToRecover,
    #[error("{0}")]
    Request(String),
}

/// Answer every request but `Start` (which the caller runs itself).
pub fn handle(hw: &dyn SgxHardware, request: Request) -> Response {
    let result = match request {
        Request::Generate { backup } => generate(hw, backup.as_ref()).map(Response::Keys),
        Request::CloudWrap { target_info } => wrap(hw, target_info.as_deref()),
        Request::Recover {
            backup,
            consensus_backup,
            identity_backup,
        } => recover(
            hw,
            &backup,
            consensus_backup.as_deref(),
            identity_backup.as_deref(),
        )
        .map(Response::Keys),
        Request::PublicKeys {
            sealed_consensus_key,
            sealed_identity_key,
        } => unseal_keys(hw, &sealed_consensus_key, sealed_identity_key.as_deref()).map(
            |(consensus, identity)| {
                Response::Keys(KeySet {
                    consensus_public_key: Some(consensus.public_key().as_bytes().to_vec()),
                    identity_public_key: identity.map(|i| i.public_key().as_bytes().to_vec()),
                    ..KeySet::empty()
                })
            },
        ),
        Request::Start { .. } => Err(AppError::Request("start is not a key request".to_owned())),
    };
    result.unwrap_or_else(|e| Response::Error {
        message: e.to_string(),
    })
}

impl KeySet {
    fn empty() -> Self {
        Self {
            sealed_consensus_key: None,
            sealed_identity_key: None,
            consensus_public_key: None,
            identity_public_key: None,
            consensus_backup: None,
            identity_backup: None,
        }
    }
}

fn generate(hw: &dyn SgxHardware, backup: Option<&WrappedBackupKey>) -> Result<KeySet, AppError> {
    let consensus = ConsensusKey::generate();
    let identity = IdentityKey::generate();
    let consensus_seed = consensus.secret_seed();
    let identity_seed = identity.secret_seed();
    let mut keys = KeySet {
        sealed_consensus_key: Some(
            seal(hw, LABEL_CONSENSUS_KEY, &*consensus_seed).map_err(AppError::ConsensusKey)?,
        ),
        sealed_identity_key: Some(
            seal(hw, LABEL_IDENTITY_KEY, &*identity_seed).map_err(AppError::IdentityKey)?,
        ),
        consensus_public_key: Some(consensus.public_key().as_bytes().to_vec()),
        identity_public_key: Some(identity.public_key().as_bytes().to_vec()),
        ..KeySet::empty()
    };
    if let Some(backup) = backup {
        let backup_key = unwrap_backup_key(hw, &backup.sealed_wrap_key, &backup.payload)?;
        keys.consensus_backup = Some(
            backup_secret(&backup_key, LABEL_CONSENSUS_KEY, &consensus_seed)
                .map_err(AppError::ConsensusBackup)?,
        );
        keys.identity_backup = Some(
            backup_secret(&backup_key, LABEL_IDENTITY_KEY, &identity_seed)
                .map_err(AppError::IdentityBackup)?,
        );
    }
    Ok(keys)
}

fn wrap(hw: &dyn SgxHardware, target_info: Option<&[u8]>) -> Result<Response, AppError> {
    let target = match target_info {
        Some(bytes) => Targetinfo::try_copy_from(bytes).ok_or(AppError::TargetInfo {
            expected: Targetinfo::UNPADDED_SIZE,
            got: bytes.len(),
        })?,
        None => Targetinfo::default(),
    };
    let wrapped = cloud_wrap(hw, &target)?;
    Ok(Response::CloudWrap {
        sealed_wrap_key: wrapped.sealed_wrap_key,
        public_key_der: wrapped.public_key_der,
        public_key_pem: wrapped.public_key_pem,
        report: AsRef::<[u8]>::as_ref(&wrapped.report).to_vec(),
    })
}

fn recover(
    hw: &dyn SgxHardware,
    backup: &WrappedBackupKey,
    consensus_backup: Option<&[u8]>,
    identity_backup: Option<&[u8]>,
) -> Result<KeySet, AppError> {
    if consensus_backup.is_none() && identity_backup.is_none() {
        return Err(AppError::NothingToRecover);
    }
    let backup_key = unwrap_backup_key(hw, &backup.sealed_wrap_key, &backup.payload)?;
    let mut keys = KeySet::empty();
    if let Some(blob) = consensus_backup {
        let seed = restore_secret(&backup_key, LABEL_CONSENSUS_KEY, blob)
            .map_err(AppError::ConsensusBackup)?;
        let key = ConsensusKey::from_seed(&seed);
        keys.sealed_consensus_key =
            Some(seal(hw, LABEL_CONSENSUS_KEY, &*seed).map_err(AppError::ConsensusKey)?);
        keys.consensus_public_key = Some(key.public_key().as_bytes().to_vec());
    }
    if let Some(blob) = identity_backup {
        let seed = restore_secret(&backup_key, LABEL_IDENTITY_KEY, blob)
            .map_err(AppError::IdentityBackup)?;
        let key = IdentityKey::from_seed(&seed);
        keys.sealed_identity_key =
            Some(seal(hw, LABEL_IDENTITY_KEY, &*seed).map_err(AppError::IdentityKey)?);
        keys.identity_public_key = Some(key.public_key().as_bytes().to_vec());
    }
    Ok(keys)
}

/// Unseal the consensus key and, if given, the identity key.
pub fn unseal_keys(
    hw: &dyn SgxHardware,
    sealed_consensus_key: &[u8],
    sealed_identity_key: Option<&[u8]>,
) -> Result<(ConsensusKey, Option<IdentityKey>), AppError> {
    let seed = unseal_seed(hw, LABEL_CONSENSUS_KEY, sealed_consensus_key)
        .map_err(AppError::ConsensusKey)?;
    let consensus = ConsensusKey::from_seed(&seed);
    let identity = sealed_identity_key
        .map(|blob| {
            unseal_seed(hw, LABEL_IDENTITY_KEY, blob)
                .map(|seed| IdentityKey::from_seed(&seed))
                .map_err(AppError::IdentityKey)
        })
        .transpose()?;
    Ok((consensus, identity))
}
