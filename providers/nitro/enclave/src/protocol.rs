//! Requests from the helper to the enclave and their answers: JSON in
//! [`tmkms_light::link`] frames on the control connection.

use serde::{Deserialize, Serialize};
use tmkms_light::enclave::EnclaveSettings;
use tmkms_nitro_transport::Endpoint;
use zeroize::Zeroizing;

/// The write-ahead state stream.
pub const STREAM_STATE: &str = "state";
/// Prefix of a node stream; the rest is the validator address without peer id.
pub const STREAM_NODE_PREFIX: &str = "node:";
/// Largest control message.
pub const MAX_CONTROL_MESSAGE: usize = 256 * 1024;
/// Prefix of the init attestation's user data: followed by the 32-byte
/// consensus public key and the KMS key id (UTF-8).
pub const INIT_USER_DATA_PREFIX: &[u8] = b"tmkms-light init v1\0";
/// Encryption context of the consensus key's ciphertext.
pub const CONTEXT_CONSENSUS: &str = "consensus-key";
/// Encryption context of the identity key's ciphertext.
pub const CONTEXT_IDENTITY: &str = "identity-key";
/// Encryption-context key under which the purpose is recorded.
pub const CONTEXT_KEY: &str = "tmkms-light";

/// Temporary AWS credentials for the enclave's KMS calls. Secret: zeroized
/// on drop, redacted in `Debug`, never logged.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

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
    pub credentials: SessionCredentials,
}

/// What the helper asks of the enclave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Request {
    /// Generate the keys, encrypt them with KMS, attest the public key.
    Init { kms: KmsAccess },
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
        /// NSM attestation whose user data is [`INIT_USER_DATA_PREFIX`] ‖
        /// consensus public key ‖ KMS key id.
        #[serde(with = "tmkms_light::link::b64")]
        attestation_document: Vec<u8>,
    },
    Started {
        #[serde(with = "tmkms_light::link::b64")]
        consensus_public_key: Vec<u8>,
    },
    Error {
        message: String,
    },
}

/// The init attestation's user data.
pub fn init_user_data(consensus_public_key: &[u8; 32], kms_key_id: &str) -> Vec<u8> {
    [
        INIT_USER_DATA_PREFIX,
        consensus_public_key,
        kms_key_id.as_bytes(),
    ]
    .concat()
}

/// Split an init attestation's user data into the public key and KMS key id.
pub fn parse_init_user_data(user_data: &[u8]) -> Option<([u8; 32], String)> {
    let rest = user_data.strip_prefix(INIT_USER_DATA_PREFIX)?;
    let (key, id) = rest.split_at_checked(32)?;
    Some((key.try_into().ok()?, String::from_utf8(id.to_vec()).ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn init_user_data_round_trips_and_credentials_are_redacted() {
        let data = init_user_data(&[7u8; 32], "arn:aws:kms:eu-west-1:1:key/abc");
        assert_eq!(
            parse_init_user_data(&data).unwrap(),
            ([7u8; 32], "arn:aws:kms:eu-west-1:1:key/abc".to_owned())
        );
        assert!(parse_init_user_data(b"other").is_none());
        let creds = SessionCredentials {
            access_key_id: "ASIAX".into(),
            secret_access_key: Zeroizing::new("topsecret".into()),
            session_token: Some(Zeroizing::new("tok".into())),
        };
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("tok\""),
            "{shown}"
        );
    }
}
