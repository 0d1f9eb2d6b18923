//! What the SGX runner (host) and the enclave app agree on: the stream
//! names, the messages on the `init` stream and the simulation's
//! environment. Both depend on this crate, neither on the other, so that no
//! runner code ends up in the enclave and no enclave code in the runner.
//!
//! The runner opens the enclave, which connects back to it on the named
//! streams [`STREAM_INIT`] (one request, one response, then kept open as a
//! liveness signal), [`STREAM_STATE`] (the write-ahead state protocol of
//! [`tmkms_light::state::remote`]) and, for `unix://` validators,
//! `node:<path>` (the node's socket, spliced by the runner). Messages are
//! JSON in [`tmkms_light::link`] frames; binary fields are base64.
//!
//! The consensus key is sealed bound to a [`BoundPolicy`] (chain id,
//! `danger_allow_sign_bytes`, protocol versions, pinned node ids): requests
//! that unseal it name the policy, and the enclave opens the key only for
//! the policy of the init ceremony. `Start` carries the settings instead, and
//! the enclave derives the policy from them itself.

use serde::{Deserialize, Serialize};
use tmkms_light::enclave::{BoundPolicy, EnclaveSettings};

/// The control stream: one request, one response.
pub const STREAM_INIT: &str = "init";
/// The write-ahead state stream.
pub const STREAM_STATE: &str = "state";
/// What the enclave signed and refused, one JSON event per line
/// ([`tmkms_light::observe::Event`]), for the runner's metrics.
pub use tmkms_light::observe::EVENTS_STREAM as STREAM_EVENTS;
/// Prefix of a node stream name; the rest is the socket path.
pub const STREAM_NODE_PREFIX: &str = "node:";
/// The enclave's one argument, followed by `text` or `json`: the format of
/// the log lines it writes to the runner's stderr, the runner's own, so an
/// operator's log shipper gets one format. Harmless if a hostile host
/// changes it: it only changes how lines look.
pub const ARG_LOG_FORMAT: &str = "--log-format";

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

/// Most `[[validator]]` connections one enclave serves: a validator and one
/// sentry. The enclave's heap is sized for this many connections each
/// holding a largest message at once, and its thread (TCS) count for
/// [`ENCLAVE_THREADS_USED`] (docs/sgx-build.md).
pub const MAX_VALIDATOR_CONNECTIONS: usize = 2;

/// Threads the enclave runs at most: `main` (the init stream, then
/// `run_signer`, which waits for the connection threads), `runner-watch`
/// (exits when the runner's init stream closes) and one per validator
/// connection (`tmkms_light::net::run_all`). The state link and logging run
/// on the calling threads. EDP refuses a thread beyond the TCS count set at
/// conversion (`THREADS` in scripts/sgx-build.sh), which must be at least
/// this.
pub const ENCLAVE_THREADS_USED: usize = 2 + MAX_VALIDATOR_CONNECTIONS;

/// The state records on the `init` stream (the same types as Nitro's).
pub use tmkms_light::state::wire::{WireError, WireRecords, WireSlot};

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
    /// The init ceremony: generate a consensus key and an identity key, seal
    /// both (the consensus key bound to `policy`), tag the first state
    /// records; with a backup key also return both keys encrypted for backup.
    Generate {
        backup: Option<WrappedBackupKey>,
        policy: BoundPolicy,
    },
    /// Generate and seal an RSA-2048 wrapping key; return its public key and
    /// a REPORT binding it for `target_info` (the quoting enclave's
    /// TARGETINFO). Refused in a DEBUG enclave or the host simulation unless
    /// `allow_debug`.
    CloudWrap {
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        target_info: Option<Vec<u8>>,
        #[serde(default)]
        allow_debug: bool,
    },
    /// Restore backed-up keys under `backup` and seal them on this CPU (the
    /// consensus key bound to `policy`).
    Recover {
        backup: WrappedBackupKey,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        consensus_backup: Option<Vec<u8>>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        identity_backup: Option<Vec<u8>>,
        policy: BoundPolicy,
    },
    /// Unseal the keys (the consensus key for `policy`) and report their
    /// public keys.
    PublicKeys {
        #[serde(with = "tmkms_light::link::b64")]
        sealed_consensus_key: Vec<u8>,
        #[serde(with = "tmkms_light::link::b64_opt", default)]
        sealed_identity_key: Option<Vec<u8>>,
        policy: BoundPolicy,
    },
    /// `state import`: unseal the consensus key for `policy` and tag `state`
    /// (CometBFT `priv_validator_state.json`) as the next record after
    /// `current_slots` (the state file's raw slots; `None`: no file). Forward
    /// only unless `allow_regression`.
    ImportState {
        #[serde(with = "tmkms_light::link::b64")]
        sealed_consensus_key: Vec<u8>,
        policy: BoundPolicy,
        current_slots: Option<[Option<WireSlot>; 2]>,
        state: String,
        allow_regression: bool,
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

/// Sealed keys, their public keys, and optionally backups (the default:
/// none of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `Generate`: the two tagged records of the new state file (slot 0,
    /// slot 1).
    #[serde(default)]
    pub initial_state: Option<[WireSlot; 2]>,
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
    /// `ImportState`: the records to write, and the position the file held
    /// before (`None`: a new file).
    StateImported {
        previous: Option<String>,
        records: WireRecords,
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
mod tests {
    use super::*;
    use tmkms_light::state::record::SLOT_LEN;

    fn policy() -> BoundPolicy {
        BoundPolicy {
            chain_id: "c".into(),
            danger_allow_sign_bytes: false,
            protocol_versions: ["v0.38".to_owned()].into(),
            node_ids: Default::default(),
        }
    }

    #[test]
    fn requests_round_trip_as_json() {
        let request = Request::Recover {
            backup: WrappedBackupKey {
                sealed_wrap_key: vec![1, 2, 3],
                payload: vec![4; 300],
            },
            consensus_backup: Some(vec![5; 80]),
            identity_backup: None,
            policy: policy(),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
        let import = Request::ImportState {
            sealed_consensus_key: vec![7; 40],
            policy: policy(),
            current_slots: Some([Some(WireSlot(vec![1; SLOT_LEN])), None]),
            state: r#"{"height":"5","round":0,"step":1}"#.into(),
            allow_regression: false,
        };
        let json = serde_json::to_string(&import).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), import);
        assert!(serde_json::from_str::<Request>(r#"{"generate":{"backup":null,"x":1}}"#).is_err());
    }

    #[test]
    fn the_tcs_count_covers_every_enclave_thread() {
        // THREADS in the build script is the TCS count both builds use
        // (Dockerfile.sgx reads it from there).
        let script = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../scripts/sgx-build.sh"
        ))
        .unwrap();
        let threads: usize = script
            .lines()
            .find_map(|l| l.strip_prefix("THREADS="))
            .expect("THREADS= in scripts/sgx-build.sh")
            .trim()
            .parse()
            .unwrap();
        assert!(
            threads >= ENCLAVE_THREADS_USED,
            "scripts/sgx-build.sh sets THREADS={threads}, the enclave runs up to {ENCLAVE_THREADS_USED} threads"
        );
    }
}
