//! `tmkms.toml`: the signer's configuration.
//!
//! The file is read into raw serde types (unknown fields rejected, every
//! value keeping its position), then validated field by field into
//! [`Config`]. Every error names the file, the field (with line and column
//! when there is one) and what to write instead.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::keys::PEER_ID_LEN;
use crate::privval::Dialect;
use crate::types::{ChainId, Height};

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

/// Default paths written by [`render_template`], relative to the config file.
pub const DEFAULT_CONSENSUS_KEY_PATH: &str = "secrets/consensus.key";
pub const DEFAULT_ID_KEY_PATH: &str = "secrets/id.key";
pub const DEFAULT_STATE_FILE_PATH: &str = "state/consensus.state";

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
    /// At least one.
    pub validator: Vec<ValidatorConfig>,
    /// The `[sgx]` section, read by the SGX runner (which validates it).
    pub sgx: Option<toml::Table>,
    /// The `[nitro]` section, read by the Nitro helper (which validates it).
    pub nitro: Option<toml::Table>,
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
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parse and validate config text. `config_path` names the file in error
    /// messages, and relative paths are resolved against its directory.
    pub fn from_toml_str(text: &str, config_path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: config_path.to_path_buf(),
            message: toml_message(&e),
        })?;
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
        .config(raw)
    }

    /// Whether any validator connection uses SecretConnection.
    pub fn uses_tcp(&self) -> bool {
        self.validator.iter().any(|v| v.address.is_tcp())
    }
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/// Where the node listens for its signer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `tcp://[<node id>@]host:port`, with SecretConnection. `host` is kept
    /// without IPv6 brackets, ready for `(host, port)` resolution.
    Tcp {
        peer_id: Option<[u8; PEER_ID_LEN]>,
        host: String,
        port: u16,
    },
    /// `unix:///absolute/path`, plaintext.
    Unix { path: PathBuf },
}

impl Address {
    pub fn is_tcp(&self) -> bool {
        matches!(self, Address::Tcp { .. })
    }
}

/// Port of the examples in error messages and the template.
const EXAMPLE_PORT: u16 = 26658;

/// Why an address string is not a usable address. Each message quotes the
/// input and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("{input:?} has no scheme; write {suggestion:?} (SecretConnection) or \"unix:///path/to/socket\"")]
    MissingScheme { input: String, suggestion: String },
    #[error("{input:?} uses the unsupported scheme \"{scheme}://\"; write \"tcp://host:port\" or \"unix:///absolute/path\"")]
    UnsupportedScheme { input: String, scheme: String },
    #[error("{input:?} has no host; write e.g. \"tcp://127.0.0.1:{EXAMPLE_PORT}\"")]
    NoHost { input: String },
    #[error("{input:?} has no port; write e.g. {suggestion:?}")]
    NoPort { input: String, suggestion: String },
    #[error("{input:?} has the port {port:?}; write a port from 1 to 65535, e.g. {suggestion:?}")]
    InvalidPort {
        input: String,
        port: String,
        suggestion: String,
    },
    #[error("{input:?} has an unbracketed IPv6 host; write it in brackets, e.g. \"tcp://[::1]:{EXAMPLE_PORT}\"")]
    UnbracketedIpv6 { input: String },
    #[error("{input:?} has something after the port; write \"tcp://[<node id>@]host:port\" with nothing after it")]
    TrailingText { input: String },
    #[error("{input:?}: the node id {id:?} is not 40 hex characters; write the id `cometbft show-node-id` prints, or leave out \"<id>@\"")]
    InvalidPeerId { input: String, id: String },
    #[error("{input:?}: a unix socket path must be absolute; write e.g. \"unix:///run/tmkms/validator.sock\"")]
    UnixNotAbsolute { input: String },
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if let Some(rest) = input.strip_prefix("tcp://") {
            parse_tcp(input, rest)
        } else if let Some(rest) = input.strip_prefix("unix://") {
            let path = Path::new(rest);
            if !path.is_absolute() {
                return Err(AddressError::UnixNotAbsolute {
                    input: input.to_owned(),
                });
            }
            Ok(Address::Unix {
                path: path.to_path_buf(),
            })
        } else if let Some((scheme, _)) = input.split_once("://") {
            Err(AddressError::UnsupportedScheme {
                input: input.to_owned(),
                scheme: scheme.to_owned(),
            })
        } else {
            let suggestion = if input.contains(':') {
                format!("tcp://{input}")
            } else {
                format!("tcp://{input}:{EXAMPLE_PORT}")
            };
            Err(AddressError::MissingScheme {
                input: input.to_owned(),
                suggestion,
            })
        }
    }
}

fn parse_tcp(input: &str, rest: &str) -> Result<Address, AddressError> {
    let owned = || input.to_owned();
    let (peer_id, host_port) = match rest.split_once('@') {
        Some((id, host_port)) => {
            let bytes = (id.len() == 2 * PEER_ID_LEN)
                .then(|| hex::decode(id).ok())
                .flatten()
                .and_then(|v| <[u8; PEER_ID_LEN]>::try_from(v).ok())
                .ok_or_else(|| AddressError::InvalidPeerId {
                    input: owned(),
                    id: id.to_owned(),
                })?;
            (Some(bytes), host_port)
        }
        None => (None, rest),
    };

    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| AddressError::UnbracketedIpv6 { input: owned() })?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(AddressError::TrailingText { input: owned() }),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(AddressError::UnbracketedIpv6 { input: owned() })
            }
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };

    if host.is_empty() {
        return Err(AddressError::NoHost { input: owned() });
    }
    if host.contains(['/', '?', '#', '@']) || host.contains(char::is_whitespace) {
        return Err(AddressError::TrailingText { input: owned() });
    }
    let with_port = |port: u16| {
        Address::Tcp {
            peer_id,
            host: host.to_owned(),
            port,
        }
        .to_string()
    };
    let port = match port {
        None | Some("") => {
            return Err(AddressError::NoPort {
                input: owned(),
                suggestion: with_port(EXAMPLE_PORT),
            })
        }
        Some(port) if port.contains(['/', '?', '#']) => {
            return Err(AddressError::TrailingText { input: owned() })
        }
        Some(port) => port,
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(Address::Tcp {
            peer_id,
            host: host.to_owned(),
            port: p,
        }),
        _ => Err(AddressError::InvalidPort {
            input: owned(),
            port: port.to_owned(),
            suggestion: with_port(EXAMPLE_PORT),
        }),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp {
                peer_id,
                host,
                port,
            } => {
                f.write_str("tcp://")?;
                if let Some(id) = peer_id {
                    write!(f, "{}@", hex::encode(id))?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
            Address::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a config file cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("could not read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// TOML syntax, a value of the wrong type or an unknown field; the
    /// message is toml's, with line, column and the offending line.
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A field whose value is missing or not acceptable.
    #[error("{}{location}: field \"{field}\": {message}", path.display())]
    Field {
        path: PathBuf,
        location: Location,
        field: String,
        message: String,
    },
}

/// A 1-based line and column in the config file, if known. Displays as
/// `:line:column` (or nothing) so that it can follow the file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Location(pub Option<(usize, usize)>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

impl Location {
    fn of(text: &str, span: &Range<usize>) -> Self {
        let Some(before) = text.get(..span.start) else {
            return Location(None);
        };
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        Location(Some((line, column)))
    }
}

/// toml's message, plus a hint for the mistakes it does not explain.
fn toml_message(error: &toml::de::Error) -> String {
    let mut message = error.to_string().trim_end().to_owned();
    if let Some(hint) = unknown_field_hint(error.message()) {
        message.push('\n');
        message.push_str(&hint);
    } else if error.message().contains("expected i64") {
        message.push_str("\nhint: write a whole number, without quotes");
    } else if error.message().contains("expected a sequence") {
        message.push_str("\nhint: each node connection is an array table, written with double brackets: [[validator]]");
    }
    message
}

/// For toml's "unknown field `x`, expected one of `a`, `b`": the closest
/// valid name, if one is close.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let closest = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|valid| {
            let prefix = valid.starts_with(unknown) || unknown.starts_with(valid);
            (
                if prefix {
                    0
                } else {
                    edit_distance(unknown, valid)
                },
                valid,
            )
        })
        .min()?;
    (closest.0 <= 3).then(|| format!("hint: did you mean `{}`?", closest.1))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = row.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            row.push(substitute.min(delete).min(insert));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Raw file structure and validation
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    chain_id: Option<Spanned<String>>,
    consensus_key_path: Option<Spanned<String>>,
    id_key_path: Option<Spanned<String>>,
    state_file_path: Option<Spanned<String>>,
    max_height: Option<Spanned<i64>>,
    max_frame_bytes: Option<Spanned<i64>>,
    danger_allow_sign_bytes: Option<bool>,
    validator: Option<Vec<RawValidator>>,
    sgx: Option<toml::Table>,
    nitro: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    address: Option<Spanned<String>>,
    protocol_version: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<i64>>,
    reconnect_max_backoff_secs: Option<Spanned<i64>>,
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    base_dir: &'a Path,
}

impl Validator<'_> {
    fn error(&self, span: Option<&Range<usize>>, field: &str, message: String) -> ConfigError {
        ConfigError::Field {
            path: self.path.to_path_buf(),
            location: span.map_or(Location(None), |s| Location::of(self.text, s)),
            field: field.to_owned(),
            message,
        }
    }

    fn required<'v, T>(
        &self,
        value: Option<&'v Spanned<T>>,
        field: &str,
        example: &str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        value.ok_or_else(|| self.error(None, field, format!("is missing; write e.g. {example}")))
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let chain_field = self.required(
            raw.chain_id.as_ref(),
            "chain_id",
            "chain_id = \"cosmoshub-4\"",
        )?;
        let chain_id = ChainId::try_from(chain_field.get_ref().as_str()).map_err(|e| {
            self.error(
                Some(&chain_field.span()),
                "chain_id",
                format!(
                    "{:?} is not a valid chain id ({e}); write the chain id of your network, e.g. chain_id = \"cosmoshub-4\"",
                    chain_field.get_ref()
                ),
            )
        })?;

        let consensus_key_path = self.path_field(
            raw.consensus_key_path.as_ref(),
            "consensus_key_path",
            DEFAULT_CONSENSUS_KEY_PATH,
        )?;
        let state_file_path = self.path_field(
            raw.state_file_path.as_ref(),
            "state_file_path",
            DEFAULT_STATE_FILE_PATH,
        )?;
        let id_key_path = raw
            .id_key_path
            .as_ref()
            .map(|p| self.path_field(Some(p), "id_key_path", DEFAULT_ID_KEY_PATH))
            .transpose()?;

        let max_height = raw
            .max_height
            .as_ref()
            .map(|h| {
                Height::try_from(*h.get_ref())
                    .ok()
                    .filter(|h| *h > Height::ZERO)
                    .ok_or_else(|| {
                        self.error(
                            Some(&h.span()),
                            "max_height",
                            format!(
                                "{} is not a height; write a height of at least 1, or leave the field out to sign at any height",
                                h.get_ref()
                            ),
                        )
                    })
            })
            .transpose()?;

        let max_frame_bytes = match raw.max_frame_bytes.as_ref() {
            None => DEFAULT_MAX_FRAME_BYTES,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| (MIN_MAX_FRAME_BYTES..=MAX_MAX_FRAME_BYTES).contains(n))
                .ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        "max_frame_bytes",
                        format!(
                            "{} is outside {MIN_MAX_FRAME_BYTES}..={MAX_MAX_FRAME_BYTES}; write e.g. max_frame_bytes = {DEFAULT_MAX_FRAME_BYTES} (the default: a 1 MiB vote extension plus 64 KiB), or leave the field out",
                            v.get_ref()
                        ),
                    )
                })?,
        };

        let raw_validators = raw.validator.unwrap_or_default();
        if raw_validators.is_empty() {
            return Err(self.error(
                None,
                "validator",
                format!(
                    "no [[validator]] table; add one for each node to connect to, e.g.\n[[validator]]\naddress = \"tcp://127.0.0.1:{EXAMPLE_PORT}\""
                ),
            ));
        }
        let mut validator: Vec<ValidatorConfig> = Vec::with_capacity(raw_validators.len());
        for (i, raw_v) in raw_validators.iter().enumerate() {
            let v = self.validator(i, raw_v)?;
            if let Some(first) = validator
                .iter()
                .position(|other| other.address == v.address)
            {
                return Err(self.error(
                    raw_v.address.as_ref().map(|a| a.span()).as_ref(),
                    &format!("validator[{i}].address"),
                    format!(
                        "\"{}\" is already the address of validator[{first}]; remove one of the two tables",
                        v.address
                    ),
                ));
            }
            validator.push(v);
        }

        if id_key_path.is_none() {
            if let Some(i) = validator.iter().position(|v| v.address.is_tcp()) {
                return Err(self.error(
                    None,
                    "id_key_path",
                    format!(
                        "is missing, and validator[{i}] uses tcp://, whose SecretConnection needs a persistent identity key; write e.g. id_key_path = \"{DEFAULT_ID_KEY_PATH}\" (`init` creates the key)"
                    ),
                ));
            }
        }

        Ok(Config {
            chain_id,
            consensus_key_path,
            id_key_path,
            state_file_path,
            max_height,
            max_frame_bytes,
            danger_allow_sign_bytes: raw.danger_allow_sign_bytes.unwrap_or(false),
            validator,
            sgx: raw.sgx,
            nitro: raw.nitro,
        })
    }

    fn path_field(
        &self,
        value: Option<&Spanned<String>>,
        field: &str,
        example: &str,
    ) -> Result<PathBuf, ConfigError> {
        let value = self.required(value, field, &format!("{field} = \"{example}\""))?;
        let text = value.get_ref();
        let fail = |problem: &str| {
            Err(self.error(
                Some(&value.span()),
                field,
                format!("{problem}; write e.g. {field} = \"{example}\" (relative paths are resolved against the directory of this file)"),
            ))
        };
        if text.trim().is_empty() {
            return fail("is empty");
        }
        if text == "~" || text.starts_with("~/") {
            return fail(&format!("{text:?} starts with \"~\", which is not expanded; write the absolute path instead"));
        }
        let path = Path::new(text);
        Ok(if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        })
    }

    fn validator(&self, i: usize, raw: &RawValidator) -> Result<ValidatorConfig, ConfigError> {
        let field = |name: &str| format!("validator[{i}].{name}");

        let address_field = self.required(
            raw.address.as_ref(),
            &field("address"),
            &format!("address = \"tcp://127.0.0.1:{EXAMPLE_PORT}\""),
        )?;
        let address = address_field.get_ref().parse::<Address>().map_err(|e| {
            self.error(
                Some(&address_field.span()),
                &field("address"),
                e.to_string(),
            )
        })?;

        let protocol_version = match raw.protocol_version.as_ref() {
            None => Dialect::default(),
            Some(v) => v.get_ref().parse::<Dialect>().map_err(|e| {
                self.error(
                    Some(&v.span()),
                    &field("protocol_version"),
                    format!(
                        "{e}; write e.g. protocol_version = \"{}\"",
                        Dialect::default()
                    ),
                )
            })?,
        };

        let timeout_secs = match raw.timeout_secs.as_ref() {
            None => DEFAULT_TIMEOUT_SECS,
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|t| *t >= MIN_TIMEOUT_SECS)
                .ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        &field("timeout_secs"),
                        format!(
                            "{} s is too short: the node pings about every 3.3 s, and a timeout below {MIN_TIMEOUT_SECS} s drops healthy connections between pings; write e.g. timeout_secs = {DEFAULT_TIMEOUT_SECS} (the default)",
                            v.get_ref()
                        ),
                    )
                })?,
        };

        let reconnect_max_backoff_secs = match raw.reconnect_max_backoff_secs.as_ref() {
            None => DEFAULT_RECONNECT_MAX_BACKOFF_SECS,
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|t| *t >= 1)
                .ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        &field("reconnect_max_backoff_secs"),
                        format!(
                            "{} is not a wait; write at least 1, e.g. reconnect_max_backoff_secs = {DEFAULT_RECONNECT_MAX_BACKOFF_SECS} (the default)",
                            v.get_ref()
                        ),
                    )
                })?,
        };

        Ok(ValidatorConfig {
            address,
            protocol_version,
            timeout_secs,
            reconnect_max_backoff_secs,
        })
    }
}

// ---------------------------------------------------------------------------
// Template
// ---------------------------------------------------------------------------

/// What `init` puts into a new `tmkms.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateParams {
    pub chain_id: ChainId,
    pub address: Address,
    pub protocol_version: Dialect,
    pub consensus_key_path: PathBuf,
    pub id_key_path: PathBuf,
    pub state_file_path: PathBuf,
}

impl TemplateParams {
    /// With the default relative paths.
    pub fn new(chain_id: ChainId, address: Address, protocol_version: Dialect) -> Self {
        Self {
            chain_id,
            address,
            protocol_version,
            consensus_key_path: PathBuf::from(DEFAULT_CONSENSUS_KEY_PATH),
            id_key_path: PathBuf::from(DEFAULT_ID_KEY_PATH),
            state_file_path: PathBuf::from(DEFAULT_STATE_FILE_PATH),
        }
    }
}

/// A TOML string literal (quoted and escaped).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_path(p: &Path) -> String {
    toml_string(&p.to_string_lossy())
}

/// A fully commented `tmkms.toml`. Paths that are not UTF-8 are written
/// lossily.
pub fn render_template(params: &TemplateParams) -> String {
    let chain_id = toml_string(params.chain_id.as_str());
    let consensus_key_path = toml_path(&params.consensus_key_path);
    let id_key_path = toml_path(&params.id_key_path);
    let state_file_path = toml_path(&params.state_file_path);
    let address = toml_string(&params.address.to_string());
    let protocol_version = toml_string(params.protocol_version.name());
    let default_dialect = Dialect::default();
    format!(
        r#"# tmkms-light configuration.
#
# Relative paths are resolved against the directory of this file. Optional
# settings are shown commented out with their default value.

# Chain id of the network this validator signs for. Requests for any other
# chain id are refused.
chain_id = {chain_id}

# The validator's consensus key (base64 of the 32-byte Ed25519 seed, mode
# 0600). `init` creates it; a CometBFT priv_validator_key.json can be
# imported instead.
consensus_key_path = {consensus_key_path}

# This signer's own identity for SecretConnection (tcp:// addresses): a
# separate key, never the consensus key. Required when any [[validator]]
# uses tcp://; unused for unix:// only.
id_key_path = {id_key_path}

# Double-sign protection: the last height/round/step signed, written durably
# before every signature leaves the signer. Never delete it, and never let two
# signers use copies of it.
state_file_path = {state_file_path}

# Refuse to sign anything above this height. Default: no limit.
# max_height = 100000000

# Largest request accepted from the node, in bytes, from {MIN_MAX_FRAME_BYTES} to
# {MAX_MAX_FRAME_BYTES}. Default: {DEFAULT_MAX_FRAME_BYTES} (a 1 MiB vote extension plus 64 KiB).
# max_frame_bytes = {DEFAULT_MAX_FRAME_BYTES}

# CometBFT v1 nodes can ask the signer to sign arbitrary bytes with the
# consensus key. Such requests are refused unless this is true. Default: false.
# danger_allow_sign_bytes = false

# One [[validator]] table per node. The node listens on its
# priv_validator_laddr; the signer connects to it.
[[validator]]
# "tcp://[<node id>@]host:port": SecretConnection, encrypted. With "<node
# id>@" the node's key is checked too; stock CometBFT makes a new key for
# this connection at every start, so pin it only for nodes with a stable key.
# "unix:///absolute/path.sock": a Unix socket, PLAINTEXT; only for a node on
# this host.
address = {address}
# privval wire version spoken by the node: "v0.34", "v0.37", "v0.38" (also
# for v0.39 and v0.40) or "v1" (also for v2). Default: "{default_dialect}".
protocol_version = {protocol_version}
# Read/write timeout in seconds, at least {MIN_TIMEOUT_SECS} (the node pings
# about every 3.3 s). Default: {DEFAULT_TIMEOUT_SECS}.
timeout_secs = {DEFAULT_TIMEOUT_SECS}
# Longest wait between reconnection attempts, in seconds. Keep it below 3: a
# starting node waits only 3 s for its signer, then exits. Default: {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}.
reconnect_max_backoff_secs = {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}

# A second node for the same chain (e.g. a sentry): uncomment and edit. All
# connections share the double-sign state, so no two conflicting messages get
# signed across them.
# [[validator]]
# address = "tcp://0123456789abcdef0123456789abcdef01234567@10.0.0.2:{EXAMPLE_PORT}"
# protocol_version = "{default_dialect}"
# timeout_secs = {DEFAULT_TIMEOUT_SECS}
# reconnect_max_backoff_secs = {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_PATH: &str = "/etc/tmkms/tmkms.toml";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new(CONFIG_PATH))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const GOOD: &str = r#"
chain_id = "cosmoshub-4"
consensus_key_path = "/secrets/consensus.key"
id_key_path = "secrets/id.key"
state_file_path = "state/consensus.state"
max_height = 1000
max_frame_bytes = 65536
danger_allow_sign_bytes = true

[[validator]]
address = "tcp://0123456789abcdef0123456789ABCDEF01234567@10.0.0.1:26658"
protocol_version = "v1"
timeout_secs = 10
reconnect_max_backoff_secs = 30

[[validator]]
address = "unix:///run/node.sock"
"#;

    /// The minimal valid file with one line replaced or added.
    fn minimal_with(extra_top: &str, validator: &str) -> String {
        format!(
            "chain_id = \"test-chain\"\nconsensus_key_path = \"c.key\"\nid_key_path = \"id.key\"\nstate_file_path = \"s.state\"\n{extra_top}\n[[validator]]\n{validator}\n"
        )
    }

    #[test]
    fn parses_a_full_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.chain_id.as_str(), "cosmoshub-4");
        assert_eq!(
            c.consensus_key_path,
            PathBuf::from("/secrets/consensus.key")
        );
        assert_eq!(
            c.id_key_path,
            Some(PathBuf::from("/etc/tmkms/secrets/id.key"))
        );
        assert_eq!(
            c.state_file_path,
            PathBuf::from("/etc/tmkms/state/consensus.state")
        );
        assert_eq!(c.max_height, Some(Height::from(1000u32)));
        assert_eq!(c.max_frame_bytes, 65536);
        assert!(c.danger_allow_sign_bytes);
        assert!(c.uses_tcp());
        assert_eq!(c.validator.len(), 2);
        let v = &c.validator[0];
        let mut id = [0u8; 20];
        hex::decode_to_slice("0123456789abcdef0123456789abcdef01234567", &mut id).unwrap();
        assert_eq!(
            v.address,
            Address::Tcp {
                peer_id: Some(id),
                host: "10.0.0.1".into(),
                port: 26658
            }
        );
        assert_eq!(v.protocol_version, Dialect::V1);
        assert_eq!(v.timeout(), Duration::from_secs(10));
        assert_eq!(v.reconnect_max_backoff(), Duration::from_secs(30));
        let u = &c.validator[1];
        assert_eq!(
            u.address,
            Address::Unix {
                path: "/run/node.sock".into()
            }
        );
        assert_eq!(u.protocol_version, Dialect::V0_38);
        assert_eq!(u.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(
            u.reconnect_max_backoff_secs,
            DEFAULT_RECONNECT_MAX_BACKOFF_SECS
        );
    }

    #[test]
    fn applies_defaults() {
        let c = parse(&minimal_with("", "address = \"tcp://node:26658\"")).unwrap();
        assert_eq!(c.max_height, None);
        assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(c.max_frame_bytes, 1_114_112);
        assert!(!c.danger_allow_sign_bytes);
        assert_eq!(c.validator[0].protocol_version, Dialect::V0_38);
        assert_eq!(c.validator[0].timeout_secs, 15);
        assert_eq!(c.validator[0].reconnect_max_backoff_secs, 1);
    }

    #[test]
    fn resolves_relative_paths_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conf");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("tmkms.toml");
        std::fs::write(&path, minimal_with("", "address = \"unix:///x.sock\"")).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.consensus_key_path, sub.join("c.key"));
        assert_eq!(c.id_key_path, Some(sub.join("id.key")));
        assert_eq!(c.state_file_path, sub.join("s.state"));
        assert!(c.consensus_key_path.is_absolute());

        // A relative config path still yields absolute paths.
        let c = Config::from_toml_str(
            &minimal_with("", "address = \"unix:///x.sock\""),
            Path::new("tmkms.toml"),
        )
        .unwrap();
        assert!(c.state_file_path.is_absolute());
        assert_eq!(
            c.state_file_path,
            std::env::current_dir().unwrap().join("s.state")
        );
    }

    #[test]
    fn id_key_is_optional_for_unix_only() {
        let text = "chain_id = \"c\"\nconsensus_key_path = \"c.key\"\nstate_file_path = \"s\"\n[[validator]]\naddress = \"unix:///run/n.sock\"\n";
        assert_eq!(parse(text).unwrap().id_key_path, None);
        let text = text.replace("unix:///run/n.sock", "tcp://127.0.0.1:26658");
        let e = err(&text);
        assert!(e.contains("field \"id_key_path\""), "{e}");
        assert!(e.contains("validator[0] uses tcp://"), "{e}");
        assert!(e.contains("id_key_path = \"secrets/id.key\""), "{e}");
    }

    #[test]
    fn reports_address_errors_with_field_location_and_fix() {
        let cases = [
            (
                "tcp://127.0.0.1",
                "has no port; write e.g. \"tcp://127.0.0.1:26658\"",
            ),
            ("tcp://127.0.0.1:", "has no port"),
            ("tcp://127.0.0.1:0", "write a port from 1 to 65535"),
            ("tcp://127.0.0.1:65536", "write a port from 1 to 65535"),
            ("tcp://127.0.0.1:+80", "write a port from 1 to 65535"),
            ("tcp://:26658", "has no host"),
            ("127.0.0.1:26658", "write \"tcp://127.0.0.1:26658\""),
            ("http://127.0.0.1:26658", "unsupported scheme \"http://\""),
            ("tcp://abc@127.0.0.1:26658", "is not 40 hex characters"),
            (
                "tcp://0123456789abcdef0123456789abcdef0123456z@h:1",
                "is not 40 hex characters",
            ),
            ("tcp://::1:26658", "in brackets"),
            ("tcp://h:26658/path", "nothing after it"),
            (
                "unix://relative.sock",
                "must be absolute; write e.g. \"unix:///",
            ),
        ];
        for (address, expected) in cases {
            let text = minimal_with("", &format!("address = \"{address}\""));
            let e = err(&text);
            assert!(
                e.starts_with("/etc/tmkms/tmkms.toml:7:11: field \"validator[0].address\": "),
                "{e}"
            );
            assert!(e.contains(expected), "{address}: {e}");
        }
        // The message of the design brief's example, verbatim after the location.
        let e = err(&minimal_with("", "address = \"tcp://127.0.0.1\""));
        assert!(e.ends_with(
            "field \"validator[0].address\": \"tcp://127.0.0.1\" has no port; write e.g. \"tcp://127.0.0.1:26658\""
        ));
    }

    #[test]
    fn reports_value_errors_with_field_and_fix() {
        let cases: [(&str, &str, &str, &str); 10] = [
            (
                "max_height = 0",
                "address = \"unix:///a\"",
                "\"max_height\"",
                "leave the field out",
            ),
            (
                "max_height = -5",
                "address = \"unix:///a\"",
                "\"max_height\"",
                "at least 1",
            ),
            (
                "max_frame_bytes = 100",
                "address = \"unix:///a\"",
                "\"max_frame_bytes\"",
                "max_frame_bytes = 1114112",
            ),
            (
                "max_frame_bytes = 9000000",
                "address = \"unix:///a\"",
                "\"max_frame_bytes\"",
                "16384..=8388608",
            ),
            (
                "",
                "address = \"unix:///a\"\ntimeout_secs = 3",
                "\"validator[0].timeout_secs\"",
                "pings about every 3.3 s",
            ),
            (
                "",
                "address = \"unix:///a\"\ntimeout_secs = -1",
                "\"validator[0].timeout_secs\"",
                "timeout_secs = 15",
            ),
            (
                "",
                "address = \"unix:///a\"\nreconnect_max_backoff_secs = 0",
                "\"validator[0].reconnect_max_backoff_secs\"",
                "at least 1",
            ),
            (
                "",
                "address = \"unix:///a\"\nprotocol_version = \"v0.33\"",
                "\"validator[0].protocol_version\"",
                "protocol_version = \"v0.38\"",
            ),
            (
                "",
                "protocol_version = \"v1\"",
                "\"validator[0].address\"",
                "is missing; write e.g. address = \"tcp://",
            ),
            (
                "",
                "address = \"unix:///a\"\n[[validator]]\naddress = \"unix:///a\"",
                "\"validator[1].address\"",
                "already the address of validator[0]",
            ),
        ];
        for (top, validator, field, fix) in cases {
            let e = err(&minimal_with(top, validator));
            assert!(
                e.contains(&format!("field {field}")),
                "{top} {validator}: {e}"
            );
            assert!(e.contains(fix), "{top} {validator}: {e}");
            assert!(e.starts_with(CONFIG_PATH), "{e}");
        }
    }

    #[test]
    fn reports_missing_and_invalid_top_level_fields() {
        let e = err("consensus_key_path = \"c\"\nstate_file_path = \"s\"\n[[validator]]\naddress = \"unix:///a\"");
        assert!(
            e.contains("field \"chain_id\": is missing; write e.g. chain_id = \"cosmoshub-4\""),
            "{e}"
        );

        let e =
            err(&minimal_with("", "address = \"unix:///a\"").replace("test-chain", "bad chain"));
        assert!(e.contains(":1:12: field \"chain_id\""), "{e}");
        assert!(
            e.contains("printable ASCII") && e.contains("chain_id = \"cosmoshub-4\""),
            "{e}"
        );

        let e =
            err(&minimal_with("", "address = \"unix:///a\"").replace("\"c.key\"", "\"~/c.key\""));
        assert!(
            e.contains("field \"consensus_key_path\"") && e.contains("not expanded"),
            "{e}"
        );

        let e = err(&minimal_with("", "address = \"unix:///a\"").replace("\"s.state\"", "\"\""));
        assert!(
            e.contains("field \"state_file_path\": is empty; write e.g. state_file_path = "),
            "{e}"
        );

        let e = err("chain_id = \"c\"\nconsensus_key_path = \"c\"\nid_key_path = \"i\"\nstate_file_path = \"s\"\n");
        assert!(
            e.contains("field \"validator\": no [[validator]] table"),
            "{e}"
        );
        assert!(e.contains("address = \"tcp://127.0.0.1:26658\""), "{e}");
    }

    #[test]
    fn reports_unknown_fields_with_the_valid_ones() {
        let e = err(&minimal_with("max_heigth = 5", "address = \"unix:///a\""));
        assert!(e.contains("unknown field `max_heigth`"), "{e}");
        assert!(
            e.contains("`max_height`") && e.contains("`state_file_path`"),
            "{e}"
        );
        assert!(e.contains("did you mean `max_height`?"), "{e}");
        assert!(e.contains("line 5"), "{e}");

        let e = err(&minimal_with("", "address = \"unix:///a\"\ntimeout = 5"));
        assert!(e.contains("unknown field `timeout`"), "{e}");
        assert!(e.contains("did you mean `timeout_secs`?"), "{e}");
        assert!(e.contains("`reconnect_max_backoff_secs`"), "{e}");
    }

    #[test]
    fn keeps_toml_syntax_positions_and_explains_single_brackets() {
        let e = err("chain_id = \"c\"\nconsensus_key_path = \n");
        assert!(e.starts_with(CONFIG_PATH), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = err("chain_id = \"c\"\nconsensus_key_path = \"c\"\nid_key_path = \"i\"\nstate_file_path = \"s\"\n[validator]\naddress = \"unix:///a\"\n");
        assert!(e.contains("[[validator]]"), "{e}");

        let e = err(&minimal_with(
            "max_height = \"100\"",
            "address = \"unix:///a\"",
        ));
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("whole number, without quotes"), "{e}");
    }

    #[test]
    fn addresses_display_and_parse_back() {
        for text in [
            "tcp://127.0.0.1:26658",
            "tcp://node.example.com:1",
            "tcp://[::1]:26658",
            "tcp://0123456789abcdef0123456789abcdef01234567@[fe80::1]:65535",
            "unix:///run/tmkms/validator.sock",
        ] {
            let address: Address = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
            assert_eq!(address.to_string().parse::<Address>().unwrap(), address);
        }
        let Address::Tcp { host, .. } = "tcp://[::1]:1".parse().unwrap() else {
            panic!("not tcp")
        };
        assert_eq!(host, "::1");
        // Node ids print in lowercase whatever case they were written in.
        let a: Address = "tcp://0123456789ABCDEF0123456789ABCDEF01234567@h:1"
            .parse()
            .unwrap();
        assert_eq!(
            a.to_string(),
            "tcp://0123456789abcdef0123456789abcdef01234567@h:1"
        );
    }

    fn template_params() -> TemplateParams {
        TemplateParams::new(
            ChainId::try_from("crypto-org-chain-mainnet-1").unwrap(),
            "tcp://127.0.0.1:26658".parse().unwrap(),
            Dialect::V0_34,
        )
    }

    #[test]
    fn rendered_template_parses_back_to_the_same_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tmkms.toml");
        for address in ["tcp://127.0.0.1:26658", "unix:///run/tmkms/v.sock"] {
            let mut params = template_params();
            params.address = address.parse().unwrap();
            let text = render_template(&params);
            std::fs::write(&path, &text).unwrap();
            let c = Config::load(&path).unwrap();
            assert_eq!(c.chain_id, params.chain_id);
            assert_eq!(
                c.consensus_key_path,
                dir.path().join(DEFAULT_CONSENSUS_KEY_PATH)
            );
            assert_eq!(c.id_key_path, Some(dir.path().join(DEFAULT_ID_KEY_PATH)));
            assert_eq!(c.state_file_path, dir.path().join(DEFAULT_STATE_FILE_PATH));
            assert_eq!(c.max_height, None);
            assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
            assert!(!c.danger_allow_sign_bytes);
            assert_eq!(
                c.validator,
                vec![ValidatorConfig {
                    address: params.address.clone(),
                    protocol_version: Dialect::V0_34,
                    timeout_secs: DEFAULT_TIMEOUT_SECS,
                    reconnect_max_backoff_secs: DEFAULT_RECONNECT_MAX_BACKOFF_SECS,
                }]
            );
        }
    }

    #[test]
    fn template_escapes_values_and_keeps_absolute_paths() {
        let mut params = template_params();
        params.consensus_key_path = PathBuf::from("/keys/with \"quote\" and \\ backslash.key");
        params.address = "unix:///run/my node.sock".parse().unwrap();
        let c = parse(&render_template(&params)).unwrap();
        assert_eq!(c.consensus_key_path, params.consensus_key_path);
        assert_eq!(c.validator[0].address, params.address);
    }

    #[test]
    fn template_documents_every_field_and_its_commented_examples_parse() {
        let text = render_template(&template_params());
        for field in [
            "chain_id",
            "consensus_key_path",
            "id_key_path",
            "state_file_path",
            "max_height",
            "max_frame_bytes",
            "danger_allow_sign_bytes",
            "address",
            "protocol_version",
            "timeout_secs",
            "reconnect_max_backoff_secs",
        ] {
            assert!(text.contains(&format!("{field} = ")), "{field} missing");
        }
        assert!(text.contains("PLAINTEXT"));

        // Uncommenting every "# key = value" line and the sentry table still
        // gives a valid config.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") || rest == "[[validator]]" => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&uncommented).unwrap();
        assert_eq!(c.validator.len(), 2);
        assert_eq!(c.max_height, Some(Height::from(100_000_000u32)));
        assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
        assert!(!c.danger_allow_sign_bytes);
        assert!(matches!(
            c.validator[1].address,
            Address::Tcp {
                peer_id: Some(_),
                ..
            }
        ));
    }
}
