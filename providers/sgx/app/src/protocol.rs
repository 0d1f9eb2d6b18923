//! Messages between the runner and the enclave on the `init` stream.
//!
//! The runner opens the enclave, which connects back to it on the named
//! streams [`STREAM_INIT`] (one request, one response, then kept open as a
//! liveness signal), [`STREAM_STATE`] (the write-ahead state protocol of
//! [`tmkms_light::state::remote`]) and, for `unix://` validators,
//! `node:<path>` (the node's socket, spliced by the runner). Messages are
//! JSON in [`tmkms_light::link`] frames; binary fields are base64.

use serde::{Deserialize, Serialize};
use tmkms_light::enclave::EnclaveSettings;

/// The control stream: one request, one response.
pub const STREAM_INIT: &str = "init";
/// The write-ahead state stream.
pub const STREAM_STATE: &str = "state";
/// Prefix of a node stream name; the rest is the socket path.
pub const STREAM_NODE_PREFIX: &str = "node:";

/// Environment of the host-simulation enclave process, set by the runner.
pub mod sim_env {
    /// The runner's Unix socket.
    pub const HOST_SOCKET: &str = "TMKMS_SGX_HOST_SOCKET";
    /// The signed SIGSTRUCT (`.sig`) of the enclave to impersonate.
    pub const SIGSTRUCT: &str = "TMKMS_SGX_SIM_SIGSTRUCT";
    /// File holding the simulated CPU's TEST secret (64 hex digits).
    pub const CPU_SECRET: &str = "TMKMS_SGX_SIM_CPU_SECRET";
}

/// Largest control message (sealed blobs, RSA keys, reports and backups are
/// a few KiB).
pub const MAX_CONTROL_MESSAGE: usize = 256 * 1024;

/// A cloud backup key delivered to the enclave: the sealed RSA wrap key
/// `cloud-wrap` made, and the KMS's RSA_AES_KEY_WRAP payload for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedBackupKey {
    #[serde(with = "tmkms_light::link::b64")]
    pub sealed_wrap_key: Vec<u8>,
    #[serde(with = "tmkms_light::link::b64")]
    pub payload: Vec<u8>,
}

/// What the runner asks of the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Request {
    /// Generate a consensus key and an identity key, seal both; with a backup
    /// key also return both encrypted for backup.
    Generate { backup: Option<WrappedBackupKey> },
    /// Generate and seal an RSA-2048 wrapping key; return its public key and
    /// a REPORT binding it for `target_info` (the quoting enclave's TARGETINFO).
    CloudWrap {
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        target_info: Option<Vec<u8>>,
    },
    /// Restore backed-up keys under `backup` and seal them on this CPU.
    Recover {
        backup: WrappedBackupKey,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        consensus_backup: Option<Vec<u8>>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        identity_backup: Option<Vec<u8>>,
    },
    /// Unseal the keys and report their public keys.
    PublicKeys {
        #[serde(with = "tmkms_light::link::b64")]
        sealed_consensus_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        sealed_identity_key: Option<Vec<u8>>,
    },
    /// Unseal the keys and sign until the runner goes away.
    Start {
        settings: EnclaveSettings,
        #[serde(with = "tmkms_light::link::b64")]
        sealed_consensus_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        sealed_identity_key: Option<Vec<u8>>,
    },
}

/// Sealed keys, their public keys, and optionally backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySet {
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub sealed_consensus_key: Option<Vec<u8>>,
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub sealed_identity_key: Option<Vec<u8>>,
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub consensus_public_key: Option<Vec<u8>>,
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub identity_public_key: Option<Vec<u8>>,
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub consensus_backup: Option<Vec<u8>>,
    #[serde(with = "tmkms_light::link::b64_opt", default)]
    pub identity_backup: Option<Vec<u8>>,
}

/// The enclave's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Response {
    Keys(KeySet),
    CloudWrap {
        #[serde(with = "tmkms_light::link::b64")]
        sealed_wrap_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64")]
        public_key_der: Vec<u8>,
        public_key_pem: String,
        /// The 432-byte REPORT.
        #[serde(with = "tmkms_light::link::b64")]
        report: Vec<u8>,
    },
    /// `Start` accepted: keys unsealed; the state is verified next.
    Started {
        #[serde(with = "tmkms_light::link::b64")]
        consensus_public_key: Vec<u8>,
    },
    Error {
        message: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json() {
        let request = Request::Recover {
            backup: WrappedBackupKey {
                sealed_wrap_key: vec![1, 2, 3],
                payload: vec![4; 300],
            },
            consensus_backup: Some(vec![5; 80]),
            identity_backup: None,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
        assert!(serde_json::from_str::<Request>(r#"{"generate":{"backup":null,"x":1}}"#).is_err());
    }
}
