//! Logging setup of the host binaries: one subscriber, written to stderr,
//! filtered by `TMKMS_LOG` (default `info`; `-vv` debug, `-vvv` trace, as
//! the original tmkms-light counted them), as text or as JSON lines.

use std::io::IsTerminal as _;

use clap::{ArgAction, Args, ValueEnum};

/// Whether log lines name the module (target) that wrote them. The TEE
/// hosts keep them: relayed enclave lines are told apart by their `enclave`
/// target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    Shown,
    Hidden,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, and the
    /// event's `fields` (`message` and, for a signature, `height`, `round`,
    /// `step`, `latency_us`), for log shippers.
    Json,
}

/// `-v` (counted) and `--log-format`, accepted before or after the
/// subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// More logging: -vv debug, -vvv trace (TMKMS_LOG, an env filter such as
    /// "info,tmkms_light=debug", takes precedence).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long = "log-format", value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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

    /// Install the process's log subscriber. Call once, first thing in
    /// `main`.
    pub fn init(&self, targets: Targets) {
        let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.default_filter()));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
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
