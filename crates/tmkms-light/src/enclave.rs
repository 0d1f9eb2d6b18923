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

use std::io::{Read, Write};
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
use crate::privval::Dialect;
use crate::session::{Clock, SessionConfig};
use crate::state::record::StateTagKey;
use crate::state::remote::RemoteStore;
use crate::state::StateError;
use crate::types::{ChainId, Height};

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
                let address = v
                    .address
                    .parse::<Address>()
                    .map_err(|e| EnclaveError::Settings(format!("address: {e}")))?;
                let dialect = v
                    .protocol_version
                    .parse::<Dialect>()
                    .map_err(|e| EnclaveError::Settings(format!("protocol_version: {e}")))?;
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
    pub key: ConsensusKey,
    pub identity: Option<IdentityKey>,
    /// The state stream to the host.
    pub state_link: S,
    pub dialer: Arc<dyn Dialer>,
    /// A monotonic clock for latency logs, if the enclave has one it trusts enough for that.
    pub clock: Option<Clock>,
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
        key,
        identity,
        state_link,
        dialer,
        clock,
    } = parts;
    let policy = settings.policy()?;
    let connections = settings.connections(clock)?;
    if settings.uses_tcp() && identity.is_none() {
        return Err(EnclaveError::MissingIdentity);
    }
    let tag_key = StateTagKey::derive(&key.secret_seed(), policy.chain_id.as_str());
    let mut store = RemoteStore::new(state_link, tag_key);
    let verified = store.load_verified()?;
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
    let chain = Arc::new(ChainSigner::new(
        policy,
        key,
        Box::new(store),
        verified.state,
    ));
    run_all(
        dialer,
        chain,
        connections,
        identity.map(|i| i.to_p2p_signing_key()),
        shutdown,
    )
    .map_err(EnclaveError::Threads)
}
