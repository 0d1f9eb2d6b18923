//! `main` of a host binary, written once: parse the arguments (the log
//! flag and the binary's subcommands), set up logging, run the subcommand,
//! and turn its outcome into the exit code (an error is printed with its
//! causes and exits 1; a usage error is clap's, exit 2).

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Command, FromArgMatches, Subcommand};

use crate::logging::{LogArgs, Targets};

/// The [`Binary`] of the calling crate: `binary!(name, about, targets)`,
/// with the version taken from that crate's `Cargo.toml`.
#[macro_export]
macro_rules! binary {
    ($name:expr, $about:expr, $targets:expr $(,)?) => {
        $crate::Binary {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            about: $about,
            log_targets: $targets,
        }
    };
}

/// What a host binary says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    pub name: &'static str,
    /// `env!("CARGO_PKG_VERSION")` of the binary's crate.
    pub version: &'static str,
    /// The one-line description in `--help`.
    pub about: &'static str,
    pub log_targets: Targets,
}

impl Binary {
    /// The binary's command line: `-v` and the subcommands `C`.
    pub fn command<C: Subcommand>(&self) -> Command {
        let command = Command::new(self.name)
            .version(self.version)
            .about(self.about)
            .subcommand_required(true)
            .arg_required_else_help(true);
        C::augment_subcommands(LogArgs::augment_args(command))
    }

    /// Run the binary: parse, set up logging, `run` the subcommand.
    pub fn main<C: Subcommand>(&self, run: impl FnOnce(C) -> Result<()>) -> ExitCode {
        let mut command = self.command::<C>();
        let matches = command.get_matches_mut();
        let parsed = LogArgs::from_arg_matches(&matches)
            .and_then(|log| Ok((log, C::from_arg_matches(&matches)?)));
        let (log, subcommand) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => e.format(&mut command).exit(),
        };
        log.init(self.log_targets, config_log_format(&matches));
        match run(subcommand) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The `log_format` of the config file the (innermost) subcommand names
/// with `-c`, if it names one that says.
fn config_log_format(matches: &clap::ArgMatches) -> Option<tmkms_light::config::LogFormat> {
    let mut current = matches;
    let mut found = None;
    while let Some((_, sub)) = current.subcommand() {
        if let Ok(Some(path)) = sub.try_get_one::<std::path::PathBuf>("config") {
            found = Some(path.clone());
        }
        current = sub;
    }
    tmkms_light::config::LogFormat::of_file(&found?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Subcommand)]
    enum Demo {
        /// Say hello.
        Hello,
    }

    const DEMO: Binary = Binary {
        name: "demo-host",
        version: "1.2.3",
        about: "A demo host",
        log_targets: Targets::Hidden,
    };

    #[test]
    fn the_command_is_consistent() {
        DEMO.command::<Demo>().debug_assert();
    }

    #[test]
    fn verbose_is_accepted_after_the_subcommand() {
        let matches = DEMO
            .command::<Demo>()
            .try_get_matches_from(["demo-host", "hello", "-v"])
            .unwrap();
        assert_eq!(LogArgs::from_arg_matches(&matches).unwrap().verbose, 1);
        assert!(matches!(
            Demo::from_arg_matches(&matches).unwrap(),
            Demo::Hello
        ));
    }

    #[test]
    fn verbose_counts_and_log_format_is_global() {
        let log = |args: &[&str]| {
            let matches = DEMO.command::<Demo>().try_get_matches_from(args).unwrap();
            LogArgs::from_arg_matches(&matches).unwrap()
        };
        assert_eq!(log(&["demo-host", "hello"]).default_filter(), "info");
        assert_eq!(log(&["demo-host", "-v", "hello"]).default_filter(), "info");
        assert_eq!(
            log(&["demo-host", "hello", "-vv"]).default_filter(),
            "debug"
        );
        assert_eq!(
            log(&["demo-host", "-vvv", "hello"]).default_filter(),
            "trace"
        );
        let json = log(&["demo-host", "hello", "--log-format", "json"]);
        assert_eq!(json.log_format, Some(crate::logging::LogFormat::Json));
        let err = DEMO
            .command::<Demo>()
            .try_get_matches_from(["demo-host", "hello", "--log-format", "xml"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_subcommand_is_required() {
        let err = DEMO
            .command::<Demo>()
            .try_get_matches_from(["demo-host"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
