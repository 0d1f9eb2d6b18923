//! Requests from the helper to the enclave and their answers: JSON in
//! [`tmkms_light::link`] frames on the control connection.

use serde::{Deserialize, Serialize};
use tmkms_light::config::Address;
use tmkms_light::enclave::{BoundPolicy, EnclaveSettings};
use tmkms_nitro_kms::Credentials;
use tmkms_nitro_transport::Endpoint;

/// The write-ahead state stream.
pub const STREAM_STATE: &str = "state";
/// What the enclave signed and refused, one JSON event per line
/// ([`tmkms_light::observe::Event`]), for the helper's metrics.
pub use tmkms_light::observe::EVENTS_STREAM as STREAM_EVENTS;
/// Prefix of a node stream; the rest is the validator address without peer id.
pub const STREAM_NODE_PREFIX: &str = "node:";
/// Largest control message.
pub const MAX_CONTROL_MESSAGE: usize = 256 * 1024;

/// The name of the stream to the node at `address`, as the helper knows it
/// (without a peer id, which only the enclave checks).
pub fn node_stream_name(address: &Address) -> String {
    match address {
        Address::Tcp { host, port, .. } => format!("{STREAM_NODE_PREFIX}tcp://{host}:{port}"),
        Address::Unix { path } => format!("{STREAM_NODE_PREFIX}unix://{}", path.display()),
    }
}
/// The init attestation's user data (format and limits: [`crate::user_data`]).
pub use crate::user_data::{
    init_user_data, parse_init_user_data, InitUserData, UserDataError, INIT_USER_DATA_PREFIX,
    UNBOUND_POLICY_DIGEST,
};
/// How the enclave reaches KMS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsAccess {
    pub region: String,
    pub key_id: String,
    /// KMS URL (TLS server name and Host header); `None`: the region's public endpoint.
    pub endpoint_url: Option<String>,
    /// Where the enclave connects to reach KMS (the host's vsock proxy).
    pub proxy: Endpoint,
    /// Temporary credentials for the enclave's KMS calls (secret: zeroized
    /// on drop, redacted in `Debug`, never logged).
    pub credentials: Credentials,
}

/// The state records on the control connection (the same types as SGX's).
pub use tmkms_light::state::wire::{WireError, WireRecords, WireSlot};

/// What the helper asks of the enclave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Request {
    /// Generate the keys, encrypt them with KMS bound to `policy` (chain id,
    /// sign-bytes flag, protocol versions, pinned node ids — from the
    /// trusted host's configuration at the init ceremony), attest the public
    /// key and the policy, and tag the first state records.
    Init { kms: KmsAccess, policy: BoundPolicy },
    /// Decrypt the keys for this enclave and sign until the helper goes away.
    Start {
        kms: KmsAccess,
        settings: EnclaveSettings,
        #[serde(with = "tmkms_light::link::b64")]
        encrypted_consensus_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        encrypted_identity_key: Option<Vec<u8>>,
        /// The helper's stream endpoint (state, node traffic).
        host: Endpoint,
        /// The helper's log endpoint.
        logs: Endpoint,
    },
    /// `state import` at a trusted ceremony: decrypt the consensus key for
    /// `policy` (KMS refuses any other policy than init's), and tag `state`
    /// as the next record after `current_slots` (the state file's raw slots,
    /// `None` when there is no file).
    ImportState {
        kms: KmsAccess,
        policy: BoundPolicy,
        #[serde(with = "tmkms_light::link::b64")]
        encrypted_consensus_key: Vec<u8>,
        current_slots: Option<[Option<WireSlot>; 2]>,
        /// The state to import, as CometBFT `priv_validator_state.json`.
        state: String,
        allow_regression: bool,
    },
}

/// The enclave's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Response {
    Initialized {
        #[serde(with = "tmkms_light::link::b64")]
        encrypted_consensus_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64")]
        encrypted_identity_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64")]
        consensus_public_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64")]
        identity_public_key: Vec<u8>,
        /// NSM attestation whose user data is an [`InitUserData`]: the
        /// consensus public key, the policy digest, the KMS region, key id
        /// and endpoint.
        #[serde(with = "tmkms_light::link::b64")]
        attestation_document: Vec<u8>,
        /// The first state records (slot 0, slot 1), tagged by the enclave.
        state_records: [WireSlot; 2],
    },
    StateImported {
        /// The position the file held before (`None`: a new file).
        previous: Option<String>,
        records: WireRecords,
    },
    Started {
        #[serde(with = "tmkms_light::link::b64")]
        consensus_public_key: Vec<u8>,
    },
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_access_does_not_show_its_credentials() {
        let access = KmsAccess {
            region: "us-east-1".into(),
            key_id: "alias/k".into(),
            endpoint_url: None,
            proxy: "unix:///tmp/p.sock".parse().unwrap(),
            credentials: Credentials::new("ASIAX", "topsecret", Some("tok".into())),
        };
        let shown = format!("{access:?}");
        assert!(shown.contains("ASIAX"), "{shown}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("tok\""),
            "{shown}"
        );
    }
}
