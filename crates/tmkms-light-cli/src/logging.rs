//! Logging setup of the host binaries: one subscriber, written to stderr,
//! filtered by `TMKMS_LOG` (default `info`; `-vv` debug, `-vvv` trace, as
//! the original tmkms-light counted them), as text or as JSON lines.

use std::io::IsTerminal as _;

use clap::{ArgAction, Args};
pub use tmkms_light::config::LogFormat;

/// Whether log lines name the module (target) that wrote them. The TEE
/// hosts keep them: relayed enclave lines are told apart by their `enclave`
/// target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    Shown,
    Hidden,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    LogFormat::parse(text).ok_or_else(|| format!("{text:?} is not a log format: text or json"))
}

/// `-v` (counted) and `--log-format`, accepted before or after the
/// subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// More logging: -vv debug, -vvv trace (TMKMS_LOG, an env filter such as
    /// "info,tmkms_light=debug", takes precedence).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines on stderr: text, or json (one object per line: timestamp,
    /// level, target, fields). Default: the config's log_format, else text.
    #[arg(long = "log-format", global = true, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

/// The format [`LogArgs::init`] chose, for an enclave that writes its own
/// lines to this process's stderr and must match them.
static ACTIVE_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The format this process logs in (text until [`LogArgs::init`] ran).
pub fn active_log_format() -> LogFormat {
    ACTIVE_FORMAT.get().copied().unwrap_or_default()
}

impl LogArgs {
    /// The filter `-v` asks for when `TMKMS_LOG` is not set.
    pub fn default_filter(&self) -> &'static str {
        match self.verbose {
            0 | 1 => "info",
            2 => "debug",
            _ => "trace",
        }
    }

    /// Install the process's log subscriber, in `format` unless
    /// `--log-format` says otherwise. Call once, first thing in `main`.
    pub fn init(&self, targets: Targets, format: Option<LogFormat>) {
        let chosen = self.log_format.or(format).unwrap_or_default();
        let _ = ACTIVE_FORMAT.set(chosen);
        let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.default_filter()));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match chosen {
            LogFormat::Text => builder
                // Colour codes only for a terminal: logs redirected to files
                // or journald stay plain text that grep and log shippers
                // can read.
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(targets == Targets::Shown)
                .init(),
            LogFormat::Json => builder.json().with_current_span(false).init(),
        }
    }
}
