//! The raw file structure (unknown fields rejected, every value keeping its
//! position) and its validation, field by field, into [`Config`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::address::{Address, EXAMPLE_PORT};
use super::error::{ConfigError, Location};
use super::*;

/// Unknown top-level keys are checked by [`super::sections`], which also
/// collects the provider sections.
#[derive(Deserialize)]
pub(super) struct RawConfig {
    chain_id: Option<Spanned<String>>,
    consensus_key_path: Option<Spanned<String>>,
    id_key_path: Option<Spanned<String>>,
    state_file_path: Option<Spanned<String>>,
    max_height: Option<Spanned<i64>>,
    max_frame_bytes: Option<Spanned<i64>>,
    danger_allow_sign_bytes: Option<bool>,
    metrics_listen: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    busy_poll_us: Option<Spanned<i64>>,
    validator: Option<Vec<RawValidator>>,
    ha: Option<super::ha::RawHa>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    address: Option<Spanned<String>>,
    protocol_version: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<i64>>,
    reconnect_max_backoff_secs: Option<Spanned<i64>>,
}

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
    pub(super) base_dir: &'a Path,
}

impl Validator<'_> {
    pub(super) fn error(
        &self,
        span: Option<&Range<usize>>,
        field: &str,
        message: String,
    ) -> ConfigError {
        ConfigError::Field {
            path: self.path.to_path_buf(),
            location: span.map_or(Location(None), |s| Location::of(self.text, s)),
            field: field.to_owned(),
            message,
        }
    }

    pub(super) fn required<'v, T>(
        &self,
        value: Option<&'v Spanned<T>>,
        field: &str,
        example: &str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        value.ok_or_else(|| self.error(None, field, format!("is missing; write e.g. {example}")))
    }

    pub(super) fn config(
        &self,
        raw: RawConfig,
        provider_sections: BTreeMap<String, toml::Table>,
    ) -> Result<Config, ConfigError> {
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

        let busy_poll = match raw.busy_poll_us.as_ref() {
            None => std::time::Duration::ZERO,
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|us| *us <= MAX_BUSY_POLL_US)
                .map(std::time::Duration::from_micros)
                .ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        "busy_poll_us",
                        format!(
                            "{} is outside 0..={MAX_BUSY_POLL_US}; write e.g. busy_poll_us = 300 (spin up to 0.3 ms for the next request after each response), or leave the field out for plain blocking reads",
                            v.get_ref()
                        ),
                    )
                })?,
        };

        let metrics_listen = raw
            .metrics_listen
            .as_ref()
            .map(|v| {
                v.get_ref().parse::<std::net::SocketAddr>().map_err(|_| {
                    self.error(
                        Some(&v.span()),
                        "metrics_listen",
                        format!(
                            "{:?} is not an IP address and port; write e.g. metrics_listen = \"{DEFAULT_METRICS_LISTEN}\" (Prometheus scrapes /metrics there), or leave the field out to serve no metrics",
                            v.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;

        let log_format = raw
            .log_format
            .as_ref()
            .map(|v| {
                LogFormat::parse(v.get_ref()).ok_or_else(|| {
                    self.error(
                        Some(&v.span()),
                        "log_format",
                        format!(
                            "{:?} is not a log format; write log_format = \"text\" (the default) or log_format = \"json\" (one JSON object per line)",
                            v.get_ref()
                        ),
                    )
                })
            })
            .transpose()?
            .unwrap_or_default();

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

        let ha = raw.ha.as_ref().map(|raw| self.ha(raw)).transpose()?;

        Ok(Config {
            chain_id,
            consensus_key_path,
            id_key_path,
            state_file_path,
            max_height,
            max_frame_bytes,
            danger_allow_sign_bytes: raw.danger_allow_sign_bytes.unwrap_or(false),
            metrics_listen,
            log_format,
            busy_poll,
            validator,
            ha,
            provider_sections,
        })
    }

    pub(super) fn path_field(
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
