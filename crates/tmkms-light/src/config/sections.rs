//! Provider sections: top-level tables of `tmkms.toml` that the core does
//! not read (e.g. a TEE provider's settings). The core knows none of them
//! by name; the caller says which it accepts, and gets each one's table.
//! Any other top-level key is an error naming it, with the closest valid
//! name when one is close.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::error::{closest_name, ConfigError, Location};

/// The top-level keys the core reads itself (the fields of `RawConfig`).
pub(super) const CORE_FIELDS: &[&str] = &[
    "chain_id",
    "consensus_key_path",
    "id_key_path",
    "state_file_path",
    "max_height",
    "max_frame_bytes",
    "danger_allow_sign_bytes",
    "metrics_listen",
    "log_format",
    "busy_poll_us",
    "validator",
    "ha",
];

/// Which provider sections a caller accepts.
#[derive(Clone, Copy, Debug)]
pub enum AcceptedSections<'a> {
    /// Any top-level table the core does not read (for tools that only use
    /// the core settings of a file written for any provider).
    Any,
    /// Only these section names.
    Only(&'a [&'a str]),
}

impl AcceptedSections<'_> {
    fn accepts(&self, name: &str) -> bool {
        match self {
            AcceptedSections::Any => true,
            AcceptedSections::Only(names) => names.contains(&name),
        }
    }
}

/// The provider sections of `text`, already known to be valid TOML. Errors
/// look like toml's own unknown-field errors (position, valid names, hint).
pub(super) fn provider_sections(
    text: &str,
    path: &Path,
    accepted: AcceptedSections<'_>,
) -> Result<BTreeMap<String, toml::Table>, ConfigError> {
    let top: BTreeMap<Spanned<String>, toml::Value> =
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let mut sections = BTreeMap::new();
    for (key, value) in top {
        let name = key.get_ref();
        if CORE_FIELDS.contains(&name.as_str()) {
            continue;
        }
        match value {
            toml::Value::Table(table) if accepted.accepts(name) => {
                sections.insert(name.clone(), table);
            }
            _ => return Err(unknown_key(text, path, &key, accepted)),
        }
    }
    Ok(sections)
}

fn unknown_key(
    text: &str,
    path: &Path,
    key: &Spanned<String>,
    accepted: AcceptedSections<'_>,
) -> ConfigError {
    let mut valid: Vec<&str> = CORE_FIELDS.to_vec();
    if let AcceptedSections::Only(names) = accepted {
        valid.extend_from_slice(names);
    }
    let listed: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
    let position = match Location::of(text, &key.span()) {
        Location(Some((line, column))) => {
            format!("TOML parse error at line {line}, column {column}\n")
        }
        Location(None) => String::new(),
    };
    let mut message = format!(
        "{position}unknown field `{}`, expected one of {}",
        key.get_ref(),
        listed.join(", ")
    );
    if let Some(hint) = closest_name(key.get_ref(), &valid) {
        message.push_str(&format!("\nhint: did you mean `{hint}`?"));
    }
    ConfigError::Syntax {
        path: path.to_path_buf(),
        message,
    }
}
