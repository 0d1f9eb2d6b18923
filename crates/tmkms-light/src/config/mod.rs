//! `tmkms.toml`: the signer's configuration.
//!
//! The file is read into raw serde types (unknown fields rejected, every
//! value keeping its position), then validated field by field into
//! [`Config`]. Every error names the file, the field (with line and column
//! when there is one) and what to write instead.
//!
//! * [`address`] — `tcp://` and `unix://` node addresses;
//! * `validate` — the raw file structure and its field-by-field validation;
//! * [`error`] — what can be wrong, where, and the hints for toml's messages;
//! * [`template`] — the commented `tmkms.toml` that `init` writes;
//! * `sections` — top-level tables left to a provider, which names them.

pub mod address;
pub mod error;
pub mod ha;
mod sections;
pub mod template;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use address::{Address, AddressError};
pub use error::{ConfigError, Location};
pub use ha::{HaConfig, HaEndpoint, HaTls};
pub use sections::AcceptedSections;
pub use template::{render_template, TemplateParams};

use crate::privval::Dialect;
use crate::types::{ChainId, Height};
use error::toml_message;
use sections::provider_sections;
use validate::{RawConfig, Validator};

/// Default cap on one request frame: a 1 MiB vote extension plus 64 KiB for
/// the rest of the request.
pub const DEFAULT_MAX_FRAME_BYTES: usize = crate::privval::frame::DEFAULT_MAX_FRAME_BYTES;
/// Smallest accepted `max_frame_bytes`.
pub const MIN_MAX_FRAME_BYTES: usize = 16 * 1024;
/// Largest accepted `max_frame_bytes`.
pub const MAX_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Default read/write timeout of a node connection.
pub const DEFAULT_TIMEOUT_SECS: u64 = 15;
/// Smallest accepted timeout: the node pings about every 3.3 s, so a shorter
/// timeout would drop healthy connections between pings.
pub const MIN_TIMEOUT_SECS: u64 = 4;
/// Default upper bound of the reconnection backoff.
pub const DEFAULT_RECONNECT_MAX_BACKOFF_SECS: u64 = 1;

/// A starting node waits only this long for its signer to connect
/// (CometBFT's `defaultTimeoutAcceptSeconds`) and exits otherwise; a backoff
/// cap at or above it can make a node restart fail.
pub const NODE_ACCEPT_WINDOW_SECS: u64 = 3;

/// Upper bound of `busy_poll_us`: 10 ms of spinning per response is already
/// far more than a burst of consensus messages needs.
pub const MAX_BUSY_POLL_US: u64 = 10_000;

/// The address the docs and error messages suggest for `metrics_listen`
/// (metrics are off unless the field is set).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9101";

/// Default paths written by [`render_template`], relative to the config file.
pub const DEFAULT_CONSENSUS_KEY_PATH: &str = "secrets/consensus.key";
pub const DEFAULT_ID_KEY_PATH: &str = "secrets/id.key";
pub const DEFAULT_STATE_FILE_PATH: &str = "state/consensus.state";

/// How the host binaries write log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`, as written in `tmkms.toml` and on the command line.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The word [`Self::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }

    /// The `log_format` a config file asks for, read before the file is
    /// validated (logging starts first): `None` when the file cannot be
    /// read or does not say; the full validation reports any error later.
    pub fn of_file(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let table: toml::Table = toml::from_str(&text).ok()?;
        Self::parse(table.get("log_format")?.as_str()?)
    }
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub chain_id: ChainId,
    /// Absolute (relative paths in the file are resolved against its directory).
    pub consensus_key_path: PathBuf,
    /// SecretConnection identity key; always present when a validator uses
    /// `tcp://`, may be absent when all use `unix://`.
    pub id_key_path: Option<PathBuf>,
    pub state_file_path: PathBuf,
    /// Refuse to sign above this height (code 3).
    pub max_height: Option<Height>,
    /// Largest request frame accepted from the node.
    pub max_frame_bytes: usize,
    /// Serve v1 `SignBytesRequest`s (sign arbitrary bytes with the consensus key).
    pub danger_allow_sign_bytes: bool,
    /// Serve Prometheus metrics and health checks here; off when `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How log lines are written (`--log-format` overrides it).
    pub log_format: LogFormat,
    /// After each response, spin this long for the next request before a
    /// read blocks (`busy_poll_us`; zero, the default, is off). softsign
    /// only: the TEE hosts relay bytes and ignore it.
    pub busy_poll: Duration,
    /// At least one.
    pub validator: Vec<ValidatorConfig>,
    /// Several signers for one validator (`[ha]`); off when `None`.
    pub ha: Option<HaConfig>,
    /// Top-level tables the core does not read, by name (e.g. a TEE
    /// provider's settings, which that provider validates). See
    /// [`Config::load_for`].
    pub provider_sections: BTreeMap<String, toml::Table>,
}

/// One node connection (`[[validator]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorConfig {
    pub address: Address,
    pub protocol_version: Dialect,
    /// Read/write timeout in seconds, at least [`MIN_TIMEOUT_SECS`].
    pub timeout_secs: u64,
    /// Upper bound of the reconnection backoff in seconds, at least 1.
    pub reconnect_max_backoff_secs: u64,
}

impl ValidatorConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub fn reconnect_max_backoff(&self) -> Duration {
        Duration::from_secs(self.reconnect_max_backoff_secs)
    }
}

impl Config {
    /// Read and validate a config file that may hold any provider's
    /// sections (for tools that only use the core settings). A provider
    /// reading its own section uses [`Config::load_for`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_accepting(path, AcceptedSections::Any)
    }

    /// Read and validate a config file whose only sections besides the
    /// core settings are `accepted` (e.g. `&["sgx"]`); each is in
    /// [`Config::provider_sections`], read with [`Config::provider_section`].
    pub fn load_for(path: &Path, accepted: &[&str]) -> Result<Config, ConfigError> {
        Self::load_accepting(path, AcceptedSections::Only(accepted))
    }

    fn load_accepting(path: &Path, accepted: AcceptedSections<'_>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_toml_str_accepting(&text, path, accepted)
    }

    /// Parse and validate config text, accepting any provider section.
    /// `config_path` names the file in error messages, and relative paths
    /// are resolved against its directory.
    pub fn from_toml_str(text: &str, config_path: &Path) -> Result<Config, ConfigError> {
        Self::from_toml_str_accepting(text, config_path, AcceptedSections::Any)
    }

    /// [`Config::from_toml_str`] with the provider sections the caller accepts.
    pub fn from_toml_str_accepting(
        text: &str,
        config_path: &Path,
        accepted: AcceptedSections<'_>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: config_path.to_path_buf(),
            message: toml_message(&e),
        })?;
        let sections = provider_sections(text, config_path, accepted)?;
        let base_dir = std::path::absolute(config_path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| {
                config_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            });
        Validator {
            text,
            path: config_path,
            base_dir: &base_dir,
        }
        .config(raw, sections)
    }

    /// The provider section `name` (e.g. `"sgx"` for `[sgx]`), if the file
    /// has one.
    pub fn provider_section(&self, name: &str) -> Option<&toml::Table> {
        self.provider_sections.get(name)
    }

    /// Whether any validator connection uses SecretConnection.
    pub fn uses_tcp(&self) -> bool {
        self.validator.iter().any(|v| v.address.is_tcp())
    }
}
