//! The signer as it runs inside an enclave, shared by the SGX and Nitro
//! providers.
//!
//! The host validates the operator's `tmkms.toml` and hands the enclave the
//! part it needs as [`EnclaveSettings`]; the enclave re-checks everything it
//! relies on (a host is untrusted). Then [`run_signer`] loads and verifies the
//! state through the host ([`RemoteStore`]), and serves every validator
//! connection with the same session, guard and SecretConnection code as
//! softsign. Node sockets are opened by a [`Dialer`] the provider supplies
//! (TCP from the enclave, Unix sockets through the host).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use crate::chain::{ChainPolicy, ChainSigner};
use crate::config::{Address, Config, NODE_ACCEPT_WINDOW_SECS};
use crate::keys::{ConsensusKey, IdentityKey};
use crate::net::{run_all, Connection, Dialer};
use crate::observe::Observer;
use crate::privval::Dialect;
use crate::session::{Clock, SessionConfig};
use crate::state::record::{decode_slot, encode_tagged_slot, StateTagKey, SLOT_LEN};
use crate::state::remote::{choose_state, RemoteStore};
use crate::state::{DurableState, StateError};
use crate::types::{ChainId, Height, Position, SignState};

/// Largest request an enclave accepts. Its heap (see docs/sgx-build.md) is
/// sized from the measured peak for this size on two connections; a larger
/// frame could exhaust it, and an allocation failure aborts the enclave.
pub const ENCLAVE_MAX_FRAME_BYTES: usize = crate::privval::frame::DEFAULT_MAX_FRAME_BYTES;

/// What the enclave needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveSettings {
    pub chain_id: String,
    pub max_height: Option<i64>,
    pub max_frame_bytes: usize,
    pub danger_allow_sign_bytes: bool,
    pub validators: Vec<ValidatorSettings>,
}

/// One node connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSettings {
    pub address: String,
    pub protocol_version: String,
    pub timeout_secs: u64,
    pub reconnect_max_backoff_secs: u64,
}

#[derive(Debug, Error)]
pub enum EnclaveError {
    #[error("invalid settings from the host: {0}")]
    Settings(String),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("a tcp:// validator address needs the identity key, which the host did not provide")]
    MissingIdentity,
    #[error("cannot start connection threads: {0}")]
    Threads(std::io::Error),
    #[error("the host's settings differ from those bound to the key at init: {0}. The enclave enforces what the operator chose at the init ceremony; restore the configuration, or run init again for a new policy")]
    PolicyMismatch(String),
    #[error("{0}")]
    StateStreamLost(StateError),
    #[error("refusing to move the state backwards from {current} to {requested}; pass --danger-allow-regression at a trusted ceremony if this is really intended")]
    ImportRegression {
        current: Position,
        requested: Position,
    },
    #[error("the state file holds no record that can be moved forward ({0}); move it aside and import again to create a new one")]
    ImportUnusable(String),
}

/// What an enclave enforces, bound to its key at `init` (SGX: sealed
/// associated data; Nitro: KMS encryption context and init attestation).
/// At every start the enclave derives it again from the settings the host
/// hands over and refuses to sign if they differ — a host that edits
/// `tmkms.toml` cannot switch the chain, the dialect, the pinned nodes or
/// turn on raw-bytes signing.
///
/// `max_height`, addresses, timeouts and frame sizes are not bound: the
/// host can only make them stricter or deny service with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundPolicy {
    pub chain_id: String,
    pub danger_allow_sign_bytes: bool,
    /// Canonical dialect names of the validator connections.
    pub protocol_versions: BTreeSet<String>,
    /// Pinned node ids (lowercase hex) of the `tcp://` validators.
    pub node_ids: BTreeSet<String>,
}

/// First bytes of [`BoundPolicy::encode`].
const POLICY_ENCODING_PREFIX: &[u8] = b"tmkms-light bound policy v1\0";

/// A node connection's address and wire version, as the host's settings
/// name them.
fn parse_connection(v: &ValidatorSettings) -> Result<(Address, Dialect), EnclaveError> {
    Ok((
        setting("address", &v.address)?,
        setting("protocol_version", &v.protocol_version)?,
    ))
}

/// One field of the host's settings, parsed; an error names the field.
fn setting<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, EnclaveError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| EnclaveError::Settings(format!("{field}: {e}")))
}

impl BoundPolicy {
    fn from_parts<'a>(
        chain_id: &str,
        danger_allow_sign_bytes: bool,
        validators: impl Iterator<Item = (&'a Address, Dialect)>,
    ) -> Self {
        let mut protocol_versions = BTreeSet::new();
        let mut node_ids = BTreeSet::new();
        for (address, dialect) in validators {
            protocol_versions.insert(dialect.name().to_owned());
            if let Address::Tcp {
                peer_id: Some(id), ..
            } = address
            {
                node_ids.insert(hex::encode(id));
            }
        }
        Self {
            chain_id: chain_id.to_owned(),
            danger_allow_sign_bytes,
            protocol_versions,
            node_ids,
        }
    }

    /// The policy of an operator's configuration (at `init`).
    pub fn from_config(config: &Config) -> Self {
        Self::from_parts(
            config.chain_id.as_str(),
            config.danger_allow_sign_bytes,
            config
                .validator
                .iter()
                .map(|v| (&v.address, v.protocol_version)),
        )
    }

    /// The policy the host's settings ask for (at every start).
    pub fn from_settings(settings: &EnclaveSettings) -> Result<Self, EnclaveError> {
        let chain_id: ChainId = setting("chain_id", &settings.chain_id)?;
        let validators = settings
            .validators
            .iter()
            .map(parse_connection)
            .collect::<Result<Vec<_>, EnclaveError>>()?;
        Ok(Self::from_parts(
            chain_id.as_str(),
            settings.danger_allow_sign_bytes,
            validators.iter().map(|(a, d)| (a, *d)),
        ))
    }

    /// Canonical bytes of the policy, for sealing and KMS contexts.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings, a bool and ordered sets cannot
        // fail, and the field order is the declaration order.
        let json = serde_json::to_vec(self).unwrap_or_default();
        [POLICY_ENCODING_PREFIX, &json].concat()
    }

    /// SHA-256 of [`Self::encode`], in hex.
    pub fn digest_hex(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.encode()))
    }

    /// `Ok` if `requested` (from the host's settings) equals this bound
    /// policy; otherwise an error naming every field that differs.
    pub fn check(&self, requested: &BoundPolicy) -> Result<(), EnclaveError> {
        /// Notes `what` when the requested value is not the bound one.
        fn compare<T: PartialEq + std::fmt::Debug>(
            differences: &mut Vec<String>,
            what: &str,
            requested: &T,
            bound: &T,
        ) {
            if requested != bound {
                differences.push(format!("{what} {requested:?}, bound {bound:?}"));
            }
        }
        let mut differences = Vec::new();
        let d = &mut differences;
        compare(d, "chain_id is", &requested.chain_id, &self.chain_id);
        compare(
            d,
            "danger_allow_sign_bytes is",
            &requested.danger_allow_sign_bytes,
            &self.danger_allow_sign_bytes,
        );
        compare(
            d,
            "protocol versions are",
            &requested.protocol_versions,
            &self.protocol_versions,
        );
        compare(
            d,
            "pinned node ids are",
            &requested.node_ids,
            &self.node_ids,
        );
        if differences.is_empty() {
            Ok(())
        } else {
            Err(EnclaveError::PolicyMismatch(differences.join("; ")))
        }
    }
}

/// The two enclave-tagged slots of a new state file holding `state` (for
/// `init`; the host writes them with `FileStore::create_from_records`).
pub fn initial_state_records(
    seed: &[u8; 32],
    chain_id: &str,
    state: &SignState,
) -> Result<[[u8; SLOT_LEN]; 2], EnclaveError> {
    let key = StateTagKey::derive(seed, chain_id);
    let state = SignState {
        signature: None,
        ..state.clone()
    };
    Ok([
        encode_tagged_slot(1, &state, &key).map_err(StateError::from)?,
        encode_tagged_slot(0, &state, &key).map_err(StateError::from)?,
    ])
}

/// What `state import` through the enclave produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedState {
    /// The position the file held before (`None`: a new file).
    pub previous: Option<Position>,
    pub records: ImportedRecords,
}

/// Records for the host to write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per `state import`; boxing would only add an allocation"
)]
pub enum ImportedRecords {
    /// A new state file (`FileStore::create_from_records`).
    Create([[u8; SLOT_LEN]; 2]),
    /// The next record of the existing file (`FileStore::write_record`).
    Append([u8; SLOT_LEN]),
}

/// `state import` through the enclave: tag `requested` as the new state,
/// forward only unless `allow_regression` (an operator's decision at a
/// trusted ceremony). `current` holds the file's slots, `None` when there
/// is no file.
pub fn import_state_records(
    seed: &[u8; 32],
    chain_id: &str,
    current: Option<[Option<[u8; SLOT_LEN]>; 2]>,
    requested: &SignState,
    allow_regression: bool,
) -> Result<ImportedState, EnclaveError> {
    let requested = SignState {
        signature: None,
        ..requested.clone()
    };
    let Some(slots) = current else {
        return Ok(ImportedState {
            previous: None,
            records: ImportedRecords::Create(initial_state_records(seed, chain_id, &requested)?),
        });
    };
    let key = StateTagKey::derive(seed, chain_id);
    let (previous, max_seq) = match choose_state(&slots, &key) {
        Ok(verified) => (verified.state.position, verified.max_seq),
        // A file without an authentic record (written by an older version,
        // or by host tools): at a trusted ceremony its highest decodable
        // record is the reference for "forward".
        Err(StateError::NoAuthenticRecord { found }) => {
            let decoded: Vec<(u64, SignState)> = slots
                .iter()
                .flatten()
                .filter_map(|bytes| decode_slot(bytes).ok())
                .collect();
            let Some(max_seq) = decoded.iter().map(|(seq, _)| *seq).max() else {
                return Err(EnclaveError::ImportUnusable(found));
            };
            let previous = decoded
                .iter()
                .map(|(_, state)| state.position)
                .max()
                .unwrap_or_default();
            (previous, max_seq)
        }
        Err(e) => return Err(EnclaveError::ImportUnusable(e.to_string())),
    };
    if requested.position < previous && !allow_regression {
        return Err(EnclaveError::ImportRegression {
            current: previous,
            requested: requested.position,
        });
    }
    let seq = max_seq
        .checked_add(1)
        .ok_or_else(|| EnclaveError::ImportUnusable("sequence number exhausted".into()))?;
    Ok(ImportedState {
        previous: Some(previous),
        records: ImportedRecords::Append(
            encode_tagged_slot(seq, &requested, &key).map_err(StateError::from)?,
        ),
    })
}

impl EnclaveSettings {
    /// The settings for `config` (already validated by the host).
    pub fn from_config(config: &Config) -> Self {
        Self {
            chain_id: config.chain_id.as_str().to_owned(),
            max_height: config.max_height.map(Height::value).map(|h| h as i64),
            max_frame_bytes: config.max_frame_bytes,
            danger_allow_sign_bytes: config.danger_allow_sign_bytes,
            validators: config
                .validator
                .iter()
                .map(|v| ValidatorSettings {
                    address: v.address.to_string(),
                    protocol_version: v.protocol_version.to_string(),
                    timeout_secs: v.timeout_secs,
                    reconnect_max_backoff_secs: v.reconnect_max_backoff_secs,
                })
                .collect(),
        }
    }

    /// Whether any validator is reached over tcp:// (needs the identity key).
    pub fn uses_tcp(&self) -> bool {
        self.validators
            .iter()
            .any(|v| v.address.starts_with("tcp://"))
    }

    fn policy(&self) -> Result<ChainPolicy, EnclaveError> {
        let chain_id = self
            .chain_id
            .parse::<ChainId>()
            .map_err(|e| EnclaveError::Settings(format!("chain_id: {e}")))?;
        let max_height = self
            .max_height
            .map(Height::try_from)
            .transpose()
            .map_err(|e| EnclaveError::Settings(format!("max_height: {e}")))?;
        Ok(ChainPolicy {
            chain_id,
            max_height,
            danger_allow_sign_bytes: self.danger_allow_sign_bytes,
        })
    }

    fn connections(&self, clock: Option<Clock>) -> Result<Vec<Connection>, EnclaveError> {
        if self.validators.is_empty() {
            return Err(EnclaveError::Settings("no validator connections".into()));
        }
        if !(1024..=ENCLAVE_MAX_FRAME_BYTES).contains(&self.max_frame_bytes) {
            return Err(EnclaveError::Settings(format!(
                "max_frame_bytes = {} is outside 1024..={ENCLAVE_MAX_FRAME_BYTES}: the enclave's heap is sized for messages up to the default (a 1 MiB vote extension)",
                self.max_frame_bytes
            )));
        }
        self.validators
            .iter()
            .map(|v| {
                let (address, dialect) = parse_connection(v)?;
                if v.reconnect_max_backoff_secs >= NODE_ACCEPT_WINDOW_SECS {
                    warn!(address = %address, "reconnect_max_backoff_secs is at or above the node's {NODE_ACCEPT_WINDOW_SECS} s accept window");
                }
                Ok(Connection {
                    address,
                    session: SessionConfig {
                        dialect,
                        max_frame_bytes: self.max_frame_bytes,
                        clock,
                    },
                    timeout: Duration::from_secs(v.timeout_secs.max(1)),
                    max_backoff: Duration::from_secs(v.reconnect_max_backoff_secs.max(1)),
                })
            })
            .collect()
    }
}

/// Everything [`run_signer`] needs.
pub struct SignerParts<S> {
    pub settings: EnclaveSettings,
    /// The policy the provider authenticated with the key (unsealed or
    /// decrypted under it); `settings` must match it.
    pub bound: BoundPolicy,
    pub key: ConsensusKey,
    pub identity: Option<IdentityKey>,
    /// The state stream to the host.
    pub state_link: S,
    pub dialer: Arc<dyn Dialer>,
    /// A monotonic clock for latency logs, if the enclave has one it trusts enough for that.
    pub clock: Option<Clock>,
    /// Hears what is signed and refused (an enclave forwards it to its
    /// host for metrics, see [`crate::observe::EventWriter`]).
    pub observer: Arc<dyn Observer>,
}

impl<S> std::fmt::Debug for SignerParts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerParts")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Verify the host's state, then sign for every validator connection until
/// `shutdown` is set. Returns early only on unusable settings or state.
pub fn run_signer<S>(parts: SignerParts<S>, shutdown: Arc<AtomicBool>) -> Result<(), EnclaveError>
where
    S: Read + Write + Send + 'static,
{
    let SignerParts {
        settings,
        bound,
        key,
        identity,
        state_link,
        dialer,
        clock,
        observer,
    } = parts;
    bound.check(&BoundPolicy::from_settings(&settings)?)?;
    let policy = settings.policy()?;
    let connections = settings.connections(clock)?;
    if settings.uses_tcp() && identity.is_none() {
        return Err(EnclaveError::MissingIdentity);
    }
    let tag_key = StateTagKey::derive(&key.secret_seed(), policy.chain_id.as_str());
    let (store, verified) = RemoteStore::connect(state_link, tag_key)?;
    let public_key = key.public_key();
    info!(
        chain_id = %policy.chain_id,
        pubkey = %public_key.to_base64(),
        address = %public_key.validator_address_hex(),
        state = %verified.state.position,
        "enclave signer starting"
    );
    if let Some(identity) = &identity {
        info!(peer_id = %identity.peer_id_hex(), "signer identity");
    }
    let chain = Arc::new(
        ChainSigner::with_state(
            policy,
            key,
            Box::new(store),
            DurableState::verified(verified.state),
        )
        .observed_by(observer, clock),
    );
    run_all(
        dialer,
        Arc::clone(&chain),
        connections,
        identity.map(|i| i.to_p2p_signing_key()),
        shutdown,
    )
    .map_err(EnclaveError::Threads)?;
    if chain.is_stopped() {
        return Err(EnclaveError::StateStreamLost(StateError::StreamLost(
            "a state write failed on the stream".into(),
        )));
    }
    Ok(())
}

/// The exit code of an enclave whose host closed its control stream.
pub const EXIT_HOST_GONE: i32 = 3;

/// Exits the process with [`EXIT_HOST_GONE`] once `control` (the stream
/// the host keeps open while it lives) reads end-of-file or fails: a host
/// that is gone cannot persist state any more, so the enclave stops rather
/// than keep its node connections; the host's supervisor starts a new pair.
/// Runs on a thread named `thread`; `host` names the host in the log line.
pub fn exit_when_host_leaves<S>(mut control: S, thread: &str, host: &str) -> io::Result<()>
where
    S: Read + Send + 'static,
{
    let host = host.to_owned();
    std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            let mut byte = [0u8; 1];
            while let Ok(1..) = control.read(&mut byte) {}
            info!("the {host} closed its control stream; exiting");
            std::process::exit(EXIT_HOST_GONE);
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(chain_id: &str, sign_bytes: bool, version: &str, node_id: &str) -> BoundPolicy {
        BoundPolicy {
            chain_id: chain_id.to_owned(),
            danger_allow_sign_bytes: sign_bytes,
            protocol_versions: BTreeSet::from([version.to_owned()]),
            node_ids: BTreeSet::from([node_id.to_owned()]),
        }
    }

    #[test]
    fn check_names_every_field_that_differs_from_the_bound_policy() {
        let bound = policy("chain-a", false, "v0.38", "aa");
        assert!(bound.check(&bound.clone()).is_ok());
        let Err(EnclaveError::PolicyMismatch(message)) =
            bound.check(&policy("chain-b", true, "v1", "bb"))
        else {
            panic!("a different policy must not pass")
        };
        assert_eq!(
            message,
            "chain_id is \"chain-b\", bound \"chain-a\"; \
             danger_allow_sign_bytes is true, bound false; \
             protocol versions are {\"v1\"}, bound {\"v0.38\"}; \
             pinned node ids are {\"bb\"}, bound {\"aa\"}"
        );
        let Err(EnclaveError::PolicyMismatch(message)) =
            bound.check(&policy("chain-a", false, "v0.38", "bb"))
        else {
            panic!("another pinned node id must not pass")
        };
        assert_eq!(message, "pinned node ids are {\"bb\"}, bound {\"aa\"}");
    }
}
