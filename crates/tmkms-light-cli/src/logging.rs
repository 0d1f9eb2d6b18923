//! Logging setup of the host binaries: one subscriber, written to stderr,
//! filtered by `TMKMS_LOG` (default `info`, `debug` with `-v`).

use std::io::IsTerminal as _;

use clap::Args;

/// Whether log lines name the module (target) that wrote them. The TEE
/// hosts keep them: relayed enclave lines are told apart by their `enclave`
/// target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    Shown,
    Hidden,
}

/// `-v/--verbose`, accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Debug logging.
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
}

impl LogArgs {
    /// Install the process's log subscriber. Call once, first thing in
    /// `main`.
    pub fn init(&self, targets: Targets) {
        let default = if self.verbose { "debug" } else { "info" };
        let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Colour codes only for a terminal: logs redirected to files or
            // journald stay plain text that grep and log shippers can read.
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(targets == Targets::Shown)
            .init();
    }
}
