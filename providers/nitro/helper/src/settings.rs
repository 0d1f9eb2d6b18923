//! The `[nitro]` section of `tmkms.toml`, and `enclave.toml` (how
//! `nitro-cli` runs the enclave).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tmkms_nitro_transport::{Endpoint, NITRO_PARENT_CID, VSOCK_CID_ANY};

/// vsock ports (defaults).
pub const ENCLAVE_PORT: u32 = 5050;
pub const HOST_PORT: u32 = 5051;
pub const LOGS_PORT: u32 = 5052;
pub const KMS_PROXY_PORT: u32 = 8000;
/// Default enclave CID.
pub const DEFAULT_CID: u32 = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNitro {
    region: String,
    kms_key_id: String,
    kms_endpoint: Option<String>,
    enclave_cid: Option<u32>,
    parent_cid: Option<u32>,
    enclave: Option<Endpoint>,
    host_listen: Option<Endpoint>,
    host_for_enclave: Option<Endpoint>,
    logs_listen: Option<Endpoint>,
    logs_for_enclave: Option<Endpoint>,
    kms_proxy_listen: Option<Endpoint>,
    kms_proxy_for_enclave: Option<Endpoint>,
    kms_proxy_target: Option<Endpoint>,
    encrypted_consensus_key_path: Option<PathBuf>,
    encrypted_id_key_path: Option<PathBuf>,
    enclave_config_path: Option<PathBuf>,
}

/// The validated `[nitro]` section; paths absolute, endpoints filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NitroSettings {
    pub region: String,
    pub kms_key_id: String,
    /// KMS URL override (VPC endpoint, or a local stand-in in tests).
    pub kms_endpoint: Option<String>,
    /// Where the helper reaches the enclave's control listener.
    pub enclave: Endpoint,
    pub host_listen: Endpoint,
    pub host_for_enclave: Endpoint,
    pub logs_listen: Endpoint,
    pub logs_for_enclave: Endpoint,
    pub kms_proxy_listen: Endpoint,
    pub kms_proxy_for_enclave: Endpoint,
    pub kms_proxy_target: Endpoint,
    pub encrypted_consensus_key_path: PathBuf,
    pub encrypted_id_key_path: PathBuf,
    pub enclave_config_path: PathBuf,
}

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{config}: the [nitro] section is missing; run `tmkms-nitro-helper init` or add it (see the README's Nitro section)")]
    Missing { config: String },
    #[error("{config}: [nitro] {reason}")]
    Invalid { config: String, reason: String },
    #[error("{path}: {reason}")]
    EnclaveConfig { path: String, reason: String },
}

impl NitroSettings {
    pub fn from_section(
        section: Option<&toml::Table>,
        config_path: &Path,
    ) -> Result<Self, SettingsError> {
        let config = config_path.display().to_string();
        let section = section.ok_or_else(|| SettingsError::Missing {
            config: config.clone(),
        })?;
        let raw: RawNitro =
            section
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| SettingsError::Invalid {
                    config: config.clone(),
                    reason: e.message().to_owned(),
                })?;
        let base = config_path.parent().unwrap_or(Path::new("."));
        let resolve = |p: Option<PathBuf>, default: &str| {
            let p = p.unwrap_or_else(|| PathBuf::from(default));
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        };
        let parent = raw.parent_cid.unwrap_or(NITRO_PARENT_CID);
        let any = |port| Endpoint::Vsock {
            cid: VSOCK_CID_ANY,
            port,
        };
        let kms_proxy_target = raw.kms_proxy_target.unwrap_or_else(|| Endpoint::Tcp {
            host: format!("kms.{}.amazonaws.com", raw.region),
            port: 443,
        });
        Ok(Self {
            enclave: raw.enclave.unwrap_or(Endpoint::Vsock {
                cid: raw.enclave_cid.unwrap_or(DEFAULT_CID),
                port: ENCLAVE_PORT,
            }),
            host_listen: raw.host_listen.unwrap_or(any(HOST_PORT)),
            host_for_enclave: raw
                .host_for_enclave
                .unwrap_or(Endpoint::parent_vsock(parent, HOST_PORT)),
            logs_listen: raw.logs_listen.unwrap_or(any(LOGS_PORT)),
            logs_for_enclave: raw
                .logs_for_enclave
                .unwrap_or(Endpoint::parent_vsock(parent, LOGS_PORT)),
            kms_proxy_listen: raw.kms_proxy_listen.unwrap_or(any(KMS_PROXY_PORT)),
            kms_proxy_for_enclave: raw
                .kms_proxy_for_enclave
                .unwrap_or(Endpoint::parent_vsock(parent, KMS_PROXY_PORT)),
            kms_proxy_target,
            region: raw.region,
            kms_key_id: raw.kms_key_id,
            kms_endpoint: raw.kms_endpoint,
            encrypted_consensus_key_path: resolve(
                raw.encrypted_consensus_key_path,
                "secrets/secret.key",
            ),
            encrypted_id_key_path: resolve(raw.encrypted_id_key_path, "secrets/id-secret.key"),
            enclave_config_path: resolve(raw.enclave_config_path, "enclave.toml"),
        })
    }
}

/// `enclave.toml`: how `enclave run` starts the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveConfig {
    /// The enclave image (built with `nitro-cli build-enclave`).
    pub eif_path: PathBuf,
    pub cpu_count: u32,
    pub memory_mib: u64,
    pub enclave_cid: u32,
    /// Debug mode: console readable, PCRs all zero (KMS policies on PCRs refuse it).
    #[serde(default)]
    pub debug_mode: bool,
}

impl EnclaveConfig {
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let err = |reason: String| SettingsError::EnclaveConfig {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.message().to_owned()))
    }

    pub fn render(&self) -> String {
        format!(
            "# How `tmkms-nitro-helper enclave run` starts the enclave with nitro-cli.\n{}",
            toml::to_string(self).unwrap_or_default()
        )
    }
}

/// The `[nitro]` section `init` appends to a new `tmkms.toml`.
pub fn render_section(region: &str, kms_key_id: &str, cid: u32) -> String {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        r#"
# AWS Nitro Enclaves provider settings (tmkms-nitro-helper).
[nitro]
# Region and id (or ARN) of the KMS key that encrypts the consensus key. Its
# key policy should allow kms:Decrypt only with kms:RecipientAttestation:PCR0
# (and PCR1/PCR2) conditions for the enclave image (see the README).
region = {region}
kms_key_id = {key}
# CID of the enclave (as in enclave.toml); the helper reaches the enclave at
# vsock://<cid>:{ENCLAVE_PORT}. The parent instance is CID {NITRO_PARENT_CID}.
enclave_cid = {cid}
# KMS endpoint URL override (e.g. a VPC endpoint). Default: https://kms.<region>.amazonaws.com
# kms_endpoint = "https://kms.eu-west-1.amazonaws.com"
# Endpoints (vsock://cid:port, unix:///path, tcp://host:port); the defaults
# are vsock ports {HOST_PORT} (streams), {LOGS_PORT} (logs), {KMS_PROXY_PORT} (KMS proxy).
# host_listen = "vsock://any:{HOST_PORT}"
# kms_proxy_target = "tcp://kms.<region>.amazonaws.com:443"
# Encrypted keys written by init (KMS ciphertext; useless without the enclave).
# encrypted_consensus_key_path = "secrets/secret.key"
# encrypted_id_key_path = "secrets/id-secret.key"
# enclave_config_path = "enclave.toml"
"#,
        region = q(region),
        key = q(kms_key_id),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_nitro_layout_and_unknown_fields_are_refused() {
        let text = render_section("eu-west-1", "alias/tmkms", 21);
        let table: toml::Table = toml::from_str(&text).unwrap();
        let section = table.get("nitro").unwrap().as_table().unwrap();
        let s =
            NitroSettings::from_section(Some(section), Path::new("/etc/kms/tmkms.toml")).unwrap();
        assert_eq!(s.enclave.to_string(), "vsock://21:5050");
        assert_eq!(s.host_for_enclave.to_string(), "vsock://3:5051");
        assert_eq!(
            s.kms_proxy_target.to_string(),
            "tcp://kms.eu-west-1.amazonaws.com:443"
        );
        assert_eq!(
            s.encrypted_consensus_key_path,
            Path::new("/etc/kms/secrets/secret.key")
        );
        let mut bad = section.clone();
        bad.insert("regoin".into(), toml::Value::String("x".into()));
        let err = NitroSettings::from_section(Some(&bad), Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("regoin"), "{err}");
    }
}
