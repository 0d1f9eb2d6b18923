//! Why a config file cannot be used, where in the file, and hints for the
//! mistakes toml's own messages do not explain.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;

use thiserror::Error;

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
    pub(super) fn of(text: &str, span: &Range<usize>) -> Self {
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
pub(super) fn toml_message(error: &toml::de::Error) -> String {
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
    let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    closest_name(unknown, &valid).map(|name| format!("hint: did you mean `{name}`?"))
}

/// The valid name closest to `unknown`, if one is close (a prefix either
/// way, or at most three edits away by Levenshtein distance).
pub(super) fn closest_name<'v>(unknown: &str, valid: &[&'v str]) -> Option<&'v str> {
    let closest = valid
        .iter()
        .map(|valid| {
            let prefix = valid.starts_with(unknown) || unknown.starts_with(valid);
            (
                if prefix {
                    0
                } else {
                    strsim::levenshtein(unknown, valid)
                },
                *valid,
            )
        })
        .min()?;
    (closest.0 <= 3).then_some(closest.1)
}
