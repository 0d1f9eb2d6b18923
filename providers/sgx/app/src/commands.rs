//! The enclave's answers to the runner's key requests. Secrets exist only
//! here, in zeroizing buffers; everything returned is sealed, encrypted,
//! tagged or public.
//!
//! The consensus key is sealed bound to the encoded [`BoundPolicy`] of the
//! init ceremony ([`tmkms_light_sgx_seal::seal_bound`]): it opens only for
//! the same chain id, sign-bytes flag, protocol versions and pinned node
//! ids, so a host that edits `tmkms.toml` after init gets no key to sign
//! with under its own policy.

use thiserror::Error;
use tmkms_light::enclave::{
    import_state_records, initial_state_records, BoundPolicy, EnclaveError,
};
use tmkms_light::keys::{ConsensusKey, IdentityKey};
use tmkms_light::state::import::{parse_state_json, ImportFormat};
use tmkms_light::state::wire::{pair_to_wire, slots_from_wire};
use tmkms_light::types::{ChainId, SignState};
use tmkms_light_sgx_seal::sgx_isa::Targetinfo;
use tmkms_light_sgx_seal::{
    backup_secret, cloud_wrap, restore_secret, seal, seal_bound, unseal_seed, unseal_seed_bound,
    unwrap_backup_key, CloudError, SealError, SgxHardware, LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};
use zeroize::Zeroizing;

use crate::protocol::{
    KeySet, Request, Response, WireError, WireRecords, WireSlot, WrappedBackupKey,
};

#[derive(Debug, Error)]
pub enum AppError {
    #[error("consensus key: {0}")]
    ConsensusKey(SealError),
    #[error("consensus key: the settings the runner passed ask for policy {given} ({policy}), but the key was bound to another policy at init{}; the enclave signs only under the chain id, danger_allow_sign_bytes, protocol versions and pinned node ids chosen at the init ceremony. Restore tmkms.toml to what it was at init, or run init again (a new key) for a new chain or policy", sealed.as_deref().map(|d| format!(" ({d})")).unwrap_or_else(|| " (none: sealed by an older version that did not bind a policy; run init again or recover from a backup)".to_owned()))]
    PolicyMismatch {
        given: String,
        policy: String,
        sealed: Option<String>,
    },
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
    #[error("refusing cloud-wrap: {0} Anyone who can read the enclave's memory could unwrap the backup key your KMS wraps for it, and with it every key backup. Run cloud-wrap in a production-signed enclave (SIGSTRUCT ATTRIBUTES DEBUG = 0) on SGX hardware, or pass --danger-allow-debug for a test with throwaway keys")]
    DebugEnclave(&'static str),
    #[error("nothing to recover: pass the consensus key backup, the identity key backup, or both")]
    NothingToRecover,
    #[error("policy: chain_id {0:?} is not a valid chain id")]
    PolicyChainId(String),
    #[error("state import: {0}")]
    Import(#[from] EnclaveError),
    #[error("state import: the state JSON is not valid: {0}")]
    StateJson(String),
    #[error("state import: {0}")]
    Protocol(#[from] WireError),
    #[error("{0}")]
    Request(String),
}

/// Answer every request but `Start` (which the caller runs itself).
pub fn handle(hw: &dyn SgxHardware, request: Request) -> Response {
    let result = match request {
        Request::Generate { backup, policy } => {
            generate(hw, backup.as_ref(), &policy).map(Response::Keys)
        }
        Request::CloudWrap {
            target_info,
            allow_debug,
        } => wrap(hw, target_info.as_deref(), allow_debug),
        Request::Recover {
            backup,
            consensus_backup,
            identity_backup,
            policy,
        } => recover(
            hw,
            &backup,
            consensus_backup.as_deref(),
            identity_backup.as_deref(),
            &policy,
        )
        .map(Response::Keys),
        Request::PublicKeys {
            sealed_consensus_key,
            sealed_identity_key,
            policy,
        } => unseal_keys(
            hw,
            &sealed_consensus_key,
            sealed_identity_key.as_deref(),
            &policy,
        )
        .map(|(consensus, identity)| {
            Response::Keys(KeySet {
                consensus_public_key: Some(consensus.public_key().as_bytes().to_vec()),
                identity_public_key: identity.map(|i| i.public_key().as_bytes().to_vec()),
                ..KeySet::default()
            })
        }),
        Request::ImportState {
            sealed_consensus_key,
            policy,
            current_slots,
            state,
            allow_regression,
        } => import_state(
            hw,
            &sealed_consensus_key,
            &policy,
            current_slots.as_ref(),
            &state,
            allow_regression,
        ),
        Request::Start { .. } => Err(AppError::Request("start is not a key request".to_owned())),
    };
    result.unwrap_or_else(|e| Response::Error {
        message: e.to_string(),
    })
}

/// The policy's chain id must be one the signer accepts: it also keys the
/// state records' tags.
fn check_policy(policy: &BoundPolicy) -> Result<(), AppError> {
    policy
        .chain_id
        .parse::<ChainId>()
        .map(|_| ())
        .map_err(|_| AppError::PolicyChainId(policy.chain_id.clone()))
}

fn seal_consensus(
    hw: &dyn SgxHardware,
    seed: &[u8; 32],
    policy: &BoundPolicy,
) -> Result<Vec<u8>, AppError> {
    check_policy(policy)?;
    seal_bound(hw, LABEL_CONSENSUS_KEY, seed, &policy.encode()).map_err(AppError::ConsensusKey)
}

fn unseal_consensus(
    hw: &dyn SgxHardware,
    blob: &[u8],
    policy: &BoundPolicy,
) -> Result<Zeroizing<[u8; 32]>, AppError> {
    unseal_seed_bound(hw, LABEL_CONSENSUS_KEY, blob, &policy.encode()).map_err(|e| match e {
        SealError::BoundDataMismatch { sealed, .. } => AppError::PolicyMismatch {
            given: policy.digest_hex(),
            policy: describe(policy),
            sealed,
        },
        e => AppError::ConsensusKey(e),
    })
}

/// A policy in one line, for error messages.
fn describe(policy: &BoundPolicy) -> String {
    let list = |set: &std::collections::BTreeSet<String>| {
        set.iter().cloned().collect::<Vec<_>>().join(",")
    };
    format!(
        "chain_id {:?}, danger_allow_sign_bytes {}, protocol versions [{}], pinned node ids [{}]",
        policy.chain_id,
        policy.danger_allow_sign_bytes,
        list(&policy.protocol_versions),
        list(&policy.node_ids)
    )
}

fn generate(
    hw: &dyn SgxHardware,
    backup: Option<&WrappedBackupKey>,
    policy: &BoundPolicy,
) -> Result<KeySet, AppError> {
    let consensus = ConsensusKey::generate();
    let identity = IdentityKey::generate();
    let consensus_seed = consensus.secret_seed();
    let identity_seed = identity.secret_seed();
    let initial = initial_state_records(&consensus_seed, &policy.chain_id, &SignState::default())?;
    let mut keys = KeySet {
        sealed_consensus_key: Some(seal_consensus(hw, &consensus_seed, policy)?),
        sealed_identity_key: Some(
            seal(hw, LABEL_IDENTITY_KEY, &*identity_seed).map_err(AppError::IdentityKey)?,
        ),
        consensus_public_key: Some(consensus.public_key().as_bytes().to_vec()),
        identity_public_key: Some(identity.public_key().as_bytes().to_vec()),
        initial_state: Some(pair_to_wire(&initial)),
        ..KeySet::default()
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

fn wrap(
    hw: &dyn SgxHardware,
    target_info: Option<&[u8]>,
    allow_debug: bool,
) -> Result<Response, AppError> {
    if !allow_debug {
        if hw.is_simulated() {
            return Err(AppError::DebugEnclave(
                "this is the SGX host simulation: its sealing keys come from a TEST secret in a file and its REPORTs prove nothing.",
            ));
        }
        if hw.identity().is_debug() {
            return Err(AppError::DebugEnclave(
                "this enclave runs in DEBUG mode (its SIGSTRUCT lets the host launch it debuggable): a debugger can read its memory, including the wrapping key.",
            ));
        }
    }
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
    policy: &BoundPolicy,
) -> Result<KeySet, AppError> {
    if consensus_backup.is_none() && identity_backup.is_none() {
        return Err(AppError::NothingToRecover);
    }
    let backup_key = unwrap_backup_key(hw, &backup.sealed_wrap_key, &backup.payload)?;
    let mut keys = KeySet::default();
    if let Some(blob) = consensus_backup {
        let seed = restore_secret(&backup_key, LABEL_CONSENSUS_KEY, blob)
            .map_err(AppError::ConsensusBackup)?;
        let key = ConsensusKey::from_seed(&seed);
        keys.sealed_consensus_key = Some(seal_consensus(hw, &seed, policy)?);
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

fn import_state(
    hw: &dyn SgxHardware,
    sealed_consensus_key: &[u8],
    policy: &BoundPolicy,
    current_slots: Option<&[Option<WireSlot>; 2]>,
    state: &str,
    allow_regression: bool,
) -> Result<Response, AppError> {
    // The policy is authenticated by the unsealing: its chain id keys the
    // record tags the enclave checks at start.
    let seed = unseal_consensus(hw, sealed_consensus_key, policy)?;
    let current = current_slots.map(slots_from_wire).transpose()?;
    let requested = parse_state_json(state, ImportFormat::CometBft)
        .map_err(|e| AppError::StateJson(e.to_string()))?;
    let imported = import_state_records(
        &seed,
        &policy.chain_id,
        current,
        &requested,
        allow_regression,
    )?;
    Ok(Response::StateImported {
        previous: imported.previous.map(|p| p.to_string()),
        records: WireRecords::from(&imported.records),
    })
}

/// Unseal the consensus key (for `policy`) and, if given, the identity key.
pub fn unseal_keys(
    hw: &dyn SgxHardware,
    sealed_consensus_key: &[u8],
    sealed_identity_key: Option<&[u8]>,
    policy: &BoundPolicy,
) -> Result<(ConsensusKey, Option<IdentityKey>), AppError> {
    let seed = unseal_consensus(hw, sealed_consensus_key, policy)?;
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

#[cfg(test)]
mod tests {
    use tmkms_light_sgx_seal::sgx_isa::{Keyrequest, Report};
    use tmkms_light_sgx_seal::testing::{test_cpu, test_enclave, test_signing_key};
    use tmkms_light_sgx_seal::{EnclaveIdentity, HwError, SimulatedHardware};

    use super::*;

    /// The simulation's EGETKEY/EREPORT, posing as real hardware (as an
    /// enclave on an SGX CPU sees itself).
    struct PosingAsHardware(SimulatedHardware);

    impl SgxHardware for PosingAsHardware {
        fn identity(&self) -> &EnclaveIdentity {
            self.0.identity()
        }
        fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, HwError> {
            self.0.egetkey(request)
        }
        fn report(&self, target: &Targetinfo, data: &[u8; 64]) -> Result<Report, HwError> {
            self.0.report(target, data)
        }
    }

    fn hardware(debug: bool) -> PosingAsHardware {
        PosingAsHardware(SimulatedHardware::new(
            test_enclave(test_signing_key(), 1, debug).unwrap(),
            test_cpu(7),
        ))
    }

    fn cloud_wrap_answer(hw: &dyn SgxHardware, allow_debug: bool) -> Response {
        handle(
            hw,
            Request::CloudWrap {
                target_info: None,
                allow_debug,
            },
        )
    }

    #[test]
    fn cloud_wrap_refuses_a_debug_enclave_or_the_simulation_unless_allowed() {
        let Response::Error { message } = cloud_wrap_answer(&hardware(true), false) else {
            panic!("a DEBUG enclave made a wrapping key");
        };
        assert!(
            message.contains("runs in DEBUG mode") && message.contains("--danger-allow-debug"),
            "{message}"
        );
        assert!(matches!(
            cloud_wrap_answer(&hardware(true), true),
            Response::CloudWrap { .. }
        ));
        assert!(matches!(
            cloud_wrap_answer(&hardware(false), false),
            Response::CloudWrap { .. }
        ));
        let simulated = hardware(false).0;
        let Response::Error { message } = cloud_wrap_answer(&simulated, false) else {
            panic!("the simulation made a wrapping key without the danger flag");
        };
        assert!(message.contains("host simulation"), "{message}");
    }

    fn policy(chain_id: &str) -> BoundPolicy {
        BoundPolicy {
            chain_id: chain_id.into(),
            danger_allow_sign_bytes: false,
            protocol_versions: ["v0.38".to_owned()].into(),
            node_ids: Default::default(),
        }
    }

    #[test]
    fn the_consensus_key_opens_only_for_the_policy_of_init() {
        let hw = hardware(false);
        let Response::Keys(keys) = handle(
            &hw,
            Request::Generate {
                backup: None,
                policy: policy("chain-a"),
            },
        ) else {
            panic!("generate failed");
        };
        let sealed = keys.sealed_consensus_key.unwrap();
        assert!(keys.initial_state.is_some());
        let public = |policy| {
            handle(
                &hw,
                Request::PublicKeys {
                    sealed_consensus_key: sealed.clone(),
                    sealed_identity_key: None,
                    policy,
                },
            )
        };
        let Response::Keys(shown) = public(policy("chain-a")) else {
            panic!("the init policy must open the key");
        };
        assert_eq!(shown.consensus_public_key, keys.consensus_public_key);
        let mut sign_bytes = policy("chain-a");
        sign_bytes.danger_allow_sign_bytes = true;
        for other in [policy("chain-b"), sign_bytes] {
            let Response::Error { message } = public(other) else {
                panic!("another policy opened the key");
            };
            assert!(
                message.contains("bound to another policy at init"),
                "{message}"
            );
        }
        // An invalid chain id is refused before anything is sealed.
        let Response::Error { message } = handle(
            &hw,
            Request::Generate {
                backup: None,
                policy: policy("bad chain id"),
            },
        ) else {
            panic!("sealed for an invalid chain id");
        };
        assert!(message.contains("not a valid chain id"), "{message}");
    }
}
