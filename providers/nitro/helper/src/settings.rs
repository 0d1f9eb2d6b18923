//! The `[nitro]` section of `tmkms.toml`, and `enclave.toml` (how
//! `nitro-cli` runs the enclave).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tmkms_light_cli::{SectionError, SectionSpec};
use tmkms_nitro_protocol::kms_policy::{EndpointMode, KmsTarget};
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
    /// KMS URL override: an AWS KMS name of the region (FIPS, dual-stack,
    /// VPC endpoint), or in tests a loopback stand-in that only a
    /// `--mock-nsm` enclave accepts.
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

const SECTION: SectionSpec = SectionSpec {
    name: "nitro",
    init_binary: "tmkms-nitro-helper",
    readme: "Nitro",
};

#[derive(Debug, Error)]
pub enum SettingsError {
    /// The `[nitro]` section is missing or does not parse.
    #[error(transparent)]
    Section(#[from] SectionError),
    #[error("{path}: {reason}")]
    EnclaveConfig { path: String, reason: String },
}

impl NitroSettings {
    pub fn from_section(
        section: Option<&toml::Table>,
        config_path: &Path,
    ) -> Result<Self, SettingsError> {
        let (raw, section): (RawNitro, _) = SECTION.parse(section, config_path, None)?;
        let parent = raw.parent_cid.unwrap_or(NITRO_PARENT_CID);
        let any = |port| Endpoint::Vsock {
            cid: VSOCK_CID_ANY,
            port,
        };
        let kms = check_kms(&raw.region, &raw.kms_key_id, raw.kms_endpoint.as_deref())
            .map_err(|reason| section.invalid(reason))?;
        // By default the proxy goes where the enclave's TLS expects to land.
        let kms_proxy_target = raw.kms_proxy_target.unwrap_or_else(|| Endpoint::Tcp {
            host: kms.host.clone(),
            port: kms.port,
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
            encrypted_consensus_key_path: section
                .resolve_or(raw.encrypted_consensus_key_path, "secrets/secret.key"),
            encrypted_id_key_path: section
                .resolve_or(raw.encrypted_id_key_path, "secrets/id-secret.key"),
            enclave_config_path: section.resolve_or(raw.enclave_config_path, "enclave.toml"),
        })
    }
}

/// The region, key id and endpoint checked by the enclave's own rule
/// ([`tmkms_nitro_protocol::kms_policy`]), so that a mistake shows here and
/// not as an enclave's refusal. One exception the enclave makes only in test
/// mode is let through: a stand-in on a loopback address (the KMS emulator
/// of the tests), which only an enclave started with `--mock-nsm` uses.
/// Returns the endpoint the enclave will connect to.
fn check_kms(
    region: &str,
    key_id: &str,
    endpoint_url: Option<&str>,
) -> Result<tmkms_nitro_kms::Endpoint, String> {
    let production = KmsTarget::resolve(region, key_id, endpoint_url, EndpointMode::Production);
    match production {
        Ok(target) => Ok(target.endpoint().clone()),
        Err(e) if e.is_endpoint() => {
            let stand_in = KmsTarget::resolve(region, key_id, endpoint_url, EndpointMode::Test)
                .ok()
                .filter(|t| is_loopback(&t.endpoint().host));
            match stand_in {
                Some(target) => {
                    tracing::warn!(endpoint = %target.endpoint(), "kms_endpoint is a local test stand-in: only an enclave started with --mock-nsm (tests) uses it; a production enclave refuses it");
                    Ok(target.endpoint().clone())
                }
                None => Err(format!("kms_endpoint: {e}")),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
# KMS endpoint URL override. Default: https://kms.<region>.amazonaws.com
# (.amazonaws.com.cn in China). The enclave speaks TLS to it itself and
# accepts only AWS KMS names of the region: kms-fips.<region>.amazonaws.com,
# kms[-fips].<region>.api.aws, or a VPC endpoint name
# vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com; `tmkms-nitro-helper
# verify` on the init attestation shows the one it used.
# kms_endpoint = "https://kms-fips.eu-west-1.amazonaws.com"
# Endpoints (vsock://cid:port, unix:///path, tcp://host:port); the defaults
# are vsock ports {HOST_PORT} (streams), {LOGS_PORT} (logs), {KMS_PROXY_PORT} (KMS proxy).
# host_listen = "vsock://any:{HOST_PORT}"
# Where the host's proxy sends the enclave's KMS connections (default: the
# kms_endpoint host, port 443).
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

    fn section(extra: &str) -> Result<NitroSettings, SettingsError> {
        let text = format!("[nitro]\n{extra}\n");
        let table: toml::Table = toml::from_str(&text).unwrap();
        let section = table.get("nitro").unwrap().as_table().unwrap();
        NitroSettings::from_section(Some(section), Path::new("/etc/kms/tmkms.toml"))
    }

    #[test]
    fn kms_settings_follow_the_enclave_rule_with_early_errors() {
        const KEY: &str = "kms_key_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"";
        // Allowed names; the proxy goes to the endpoint's host by default.
        let s = section(&format!("region = \"us-east-1\"\n{KEY}\nkms_endpoint = \"https://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com\"")).unwrap();
        assert_eq!(
            s.kms_proxy_target.to_string(),
            "tcp://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com:443"
        );
        let s = section(&format!("region = \"cn-north-1\"\n{KEY}")).unwrap();
        assert_eq!(
            s.kms_proxy_target.to_string(),
            "tcp://kms.cn-north-1.amazonaws.com.cn:443"
        );
        // The tests' emulator on loopback passes (only a --mock-nsm enclave uses it).
        let s = section(&format!(
            "region = \"us-east-1\"\n{KEY}\nkms_endpoint = \"http://127.0.0.1:4566\""
        ))
        .unwrap();
        assert_eq!(s.kms_proxy_target.to_string(), "tcp://127.0.0.1:4566");
        // Everything else is refused, saying what to fix.
        for (extra, expect) in [
            (format!("region = \"us-east-1\"\n{KEY}\nkms_endpoint = \"https://evil.example\""), "kms_endpoint"),
            (format!("region = \"us-east-1\"\n{KEY}\nkms_endpoint = \"http://10.0.0.1:4566\""), "plain HTTP"),
            (format!("region = \"us-east-1\"\n{KEY}\nkms_endpoint = \"https://kms.eu-west-1.amazonaws.com\""), "region eu-west-1"),
            (format!("region = \"US-EAST-1\"\n{KEY}"), "not an AWS region name"),
            ("region = \"us-east-1\"\nkms_key_id = \"arn:aws:kms:eu-west-1:111122223333:alias/k\"".to_owned(), "KMS keys are regional"),
            ("region = \"us-east-1\"\nkms_key_id = \"my key\"".to_owned(), "alias/<name>"),
        ] {
            let err = section(&extra).unwrap_err().to_string();
            assert!(err.contains(expect), "{extra}: {err}");
            assert!(err.contains("[nitro]"), "{err}");
        }
    }
}
