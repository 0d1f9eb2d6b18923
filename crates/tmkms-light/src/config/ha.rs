//! `[ha]`: several signers of one validator sharing a reservation in etcd.
//!
//! Off unless the table is present. TLS with client certificates is the
//! production setup; plaintext `http://` is accepted on loopback only, for
//! tests on one machine.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::validate::Validator;

/// Default `key_prefix`: reservations live under `<prefix>/<chain id>/<public key hex>`.
pub const DEFAULT_HA_KEY_PREFIX: &str = "/tmkms-light";
/// Default `timeout_ms`: how long one request may wait for etcd before it
/// is answered with code 5 (the node asks again).
pub const DEFAULT_HA_TIMEOUT_MS: u64 = 1000;
/// Accepted `timeout_ms` range.
pub const HA_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 50..=10_000;
/// Longest accepted `signer_id`.
pub const MAX_SIGNER_ID_LEN: usize = 64;

/// The validated `[ha]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaConfig {
    /// etcd members' client URLs; tried in turn.
    pub endpoints: Vec<HaEndpoint>,
    /// CA, client certificate and key; present exactly when the endpoints
    /// are `https://`.
    pub tls: Option<HaTls>,
    pub key_prefix: String,
    /// Unique per signer; stored with each reservation so operators see who
    /// reserved what.
    pub signer_id: String,
    /// Deadline of one request's etcd calls.
    pub timeout: Duration,
}

/// One etcd client URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaEndpoint {
    pub tls: bool,
    /// Host name or IP address, as written (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for HaEndpoint {
    type Err = String;

    /// `https://host:port`, or (loopback only) `http://host:port`; the
    /// error says what to write instead.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_endpoint(text)
    }
}

/// PEM files for TLS to etcd (absolute paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaTls {
    /// The only CA trusted for the members' certificates.
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHa {
    backend: Option<Spanned<String>>,
    endpoints: Option<Spanned<Vec<Spanned<String>>>>,
    ca_file: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    key_prefix: Option<Spanned<String>>,
    signer_id: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<i64>>,
}

const EXAMPLE_ENDPOINTS: &str =
    r#"endpoints = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]"#;

/// Parse `https://host:port` or (loopback only) `http://host:port`.
fn parse_endpoint(text: &str) -> Result<HaEndpoint, String> {
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "{text:?} is not an etcd client URL; write https://host:port"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed '[' in the host"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{text:?} has no port; write e.g. https://[{host}]:2379"))?;
        (host, port)
    } else {
        rest.rsplit_once(':')
            .ok_or_else(|| format!("{text:?} has no port; write e.g. https://{rest}:2379"))?
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "{text:?} has no valid host; write https://host:port"
        ));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?}: {port:?} is not a port"))?;
    let loopback = matches!(host, "localhost" | "::1")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return Err(format!(
            "{text:?} is plaintext to a host that is not loopback; write https:// and set ca_file, cert_file and key_file (plaintext is for tests on one machine only)"
        ));
    }
    Ok(HaEndpoint {
        tls,
        host: host.to_owned(),
        port,
    })
}

fn valid_signer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SIGNER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_key_prefix(prefix: &str) -> bool {
    prefix.starts_with('/') && prefix.len() <= 128 && prefix.bytes().all(|b| b.is_ascii_graphic())
}

impl Validator<'_> {
    pub(super) fn ha(&self, raw: &RawHa) -> Result<HaConfig, ConfigError> {
        let backend = self.required(raw.backend.as_ref(), "ha.backend", "backend = \"etcd\"")?;
        if backend.get_ref() != "etcd" {
            return Err(self.error(
                Some(&backend.span()),
                "ha.backend",
                format!(
                    "{:?} is not a supported backend; write backend = \"etcd\" (the only one), or remove [ha] to run a single signer",
                    backend.get_ref()
                ),
            ));
        }

        let endpoints_field =
            self.required(raw.endpoints.as_ref(), "ha.endpoints", EXAMPLE_ENDPOINTS)?;
        if endpoints_field.get_ref().is_empty() {
            return Err(self.error(
                Some(&endpoints_field.span()),
                "ha.endpoints",
                format!(
                    "is empty; list the client URLs of your etcd members, e.g. {EXAMPLE_ENDPOINTS}"
                ),
            ));
        }
        let mut endpoints = Vec::with_capacity(endpoints_field.get_ref().len());
        for (i, text) in endpoints_field.get_ref().iter().enumerate() {
            let endpoint = parse_endpoint(text.get_ref()).map_err(|message| {
                self.error(Some(&text.span()), &format!("ha.endpoints[{i}]"), message)
            })?;
            endpoints.push(endpoint);
        }
        let tls_count = endpoints.iter().filter(|e| e.tls).count();
        if tls_count != 0 && tls_count != endpoints.len() {
            return Err(self.error(
                Some(&endpoints_field.span()),
                "ha.endpoints",
                "mixes https:// and http://; use https:// for every member".into(),
            ));
        }

        let tls_files = [
            ("ha.ca_file", raw.ca_file.as_ref(), "etcd/ca.pem"),
            ("ha.cert_file", raw.cert_file.as_ref(), "etcd/signer.pem"),
            ("ha.key_file", raw.key_file.as_ref(), "etcd/signer-key.pem"),
        ];
        let tls = if tls_count == 0 {
            if let Some((field, Some(value), _)) =
                tls_files.iter().find(|(_, value, _)| value.is_some())
            {
                return Err(self.error(
                    Some(&value.span()),
                    field,
                    "is set, but the endpoints are plaintext http://; write https:// endpoints, or remove the TLS files".into(),
                ));
            }
            None
        } else {
            let mut paths = Vec::with_capacity(3);
            for (field, value, example) in tls_files {
                if value.is_none() {
                    return Err(self.error(
                        None,
                        field,
                        format!("is missing; https:// endpoints need the CA that signed the members' certificates and this signer's client certificate and key, e.g. {} = \"{example}\"", field.trim_start_matches("ha."))
                    ));
                }
                paths.push(self.path_field(value, field, example)?);
            }
            let mut paths = paths.into_iter();
            match (paths.next(), paths.next(), paths.next()) {
                (Some(ca_file), Some(cert_file), Some(key_file)) => Some(HaTls {
                    ca_file,
                    cert_file,
                    key_file,
                }),
                _ => None,
            }
        };

        let key_prefix = match raw.key_prefix.as_ref() {
            None => DEFAULT_HA_KEY_PREFIX.to_owned(),
            Some(v) if valid_key_prefix(v.get_ref()) => {
                v.get_ref().trim_end_matches('/').to_owned()
            }
            Some(v) => {
                return Err(self.error(
                    Some(&v.span()),
                    "ha.key_prefix",
                    format!(
                        "{:?} is not a key prefix; write one that starts with '/' and has no spaces, e.g. key_prefix = \"{DEFAULT_HA_KEY_PREFIX}\" (the default)",
                        v.get_ref()
                    ),
                ))
            }
        };

        let signer_field = self.required(
            raw.signer_id.as_ref(),
            "ha.signer_id",
            "signer_id = \"signer-a\" (unique for each signer of this validator)",
        )?;
        if !valid_signer_id(signer_field.get_ref()) {
            return Err(self.error(
                Some(&signer_field.span()),
                "ha.signer_id",
                format!(
                    "{:?} is not a signer id; write 1 to {MAX_SIGNER_ID_LEN} letters, digits, '-', '_' or '.', unique for each signer, e.g. signer_id = \"signer-a\"",
                    signer_field.get_ref()
                ),
            ));
        }

        let timeout = match raw.timeout_ms.as_ref() {
            None => Duration::from_millis(DEFAULT_HA_TIMEOUT_MS),
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|ms| HA_TIMEOUT_MS_RANGE.contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        "ha.timeout_ms",
                        format!(
                            "{} is outside {}..={}; write e.g. timeout_ms = {DEFAULT_HA_TIMEOUT_MS} (the default)",
                            v.get_ref(),
                            HA_TIMEOUT_MS_RANGE.start(),
                            HA_TIMEOUT_MS_RANGE.end()
                        ),
                    )
                })?,
        };

        Ok(HaConfig {
            endpoints,
            tls,
            key_prefix,
            signer_id: signer_field.get_ref().clone(),
            timeout,
        })
    }
}
