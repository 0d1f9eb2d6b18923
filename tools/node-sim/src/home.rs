//! A signer's home in an integration test: a temp directory of its own
//! holding the config, the durable state and the logs, laid out the same way
//! by every provider's `init`. Each provider's test harness wraps one and
//! adds what is its own (how to run `init`, how to read the key and state).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where every provider's `init` puts the durable state, relative to the
/// home.
pub const STATE_FILE: &str = "state/consensus.state";
/// The log file the test harnesses send the signer's output to.
pub const SIGNER_LOG: &str = "signer.log";

/// A signer home: the directory (removed when dropped) and the config file
/// in it (or elsewhere, for a test that puts the home on another disk).
///
/// A home that cannot be read or written fails the calling test: these
/// methods panic rather than return errors every test would unwrap.
#[derive(Debug)]
pub struct SignerHome {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

// Test support: an unreadable home is the calling test's failure.
#[allow(clippy::expect_used)]
impl SignerHome {
    /// `dir`, with the config at `tmkms.toml` in it (where `init` writes it).
    pub fn new(dir: tempfile::TempDir) -> Self {
        let config = dir.path().join("tmkms.toml");
        SignerHome { dir, config }
    }

    /// A path in the home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The config path as a command-line argument.
    pub fn config_str(&self) -> &str {
        self.config.to_str().expect("a temp path is UTF-8")
    }

    pub fn log_path(&self) -> PathBuf {
        self.path(SIGNER_LOG)
    }

    pub fn state_path(&self) -> PathBuf {
        self.path(STATE_FILE)
    }

    /// The signer's log so far (empty before anything wrote it).
    pub fn log(&self) -> String {
        self.read_log(SIGNER_LOG)
    }

    /// The log file `name` in the home so far (empty if there is none).
    pub fn read_log(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The log file `name`, opened for appending (created if missing), for
    /// a child's stdout or stderr: every start adds to the same file.
    pub fn append_log(&self, name: &str) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .expect("open a log file in the home")
    }

    /// The arguments of `init` every provider's command line shares: this
    /// home's config, the chain, the node's address and its protocol
    /// version (dialect).
    pub fn init_args<'a>(
        &'a self,
        chain_id: &'a str,
        address: &'a str,
        dialect: &'a str,
    ) -> Vec<&'a str> {
        vec![
            "init",
            "-c",
            self.config_str(),
            "--chain-id",
            chain_id,
            "--address",
            address,
            "--protocol-version",
            dialect,
        ]
    }

    /// Adds a top-level setting (e.g. `max_height = 10`) at the top of the
    /// config, before any section.
    pub fn set_top_level(&self, line: &str) {
        let text = fs::read_to_string(&self.config).expect("read the config");
        fs::write(&self.config, format!("{line}\n{text}")).expect("write the config");
    }
}

/// Lets a provider's home type — a struct with a `home: SignerHome` field
/// and what the provider adds — be used as its [`SignerHome`] (`kms.log()`,
/// `kms.path(…)`, `kms.config`).
#[macro_export]
macro_rules! derefs_to_home {
    ($provider:ty) => {
        impl ::std::ops::Deref for $provider {
            type Target = $crate::home::SignerHome;

            fn deref(&self) -> &Self::Target {
                &self.home
            }
        }
    };
}

/// A binary built next to `main` in the same target directory (a provider's
/// second process, such as an enclave's host build); fails the calling test,
/// naming the `package` to build, when it is missing.
// Test support: a missing binary is the calling test's failure.
#[allow(clippy::panic)]
pub fn sibling_binary(main: &str, name: &str, package: &str) -> PathBuf {
    let path = Path::new(main).with_file_name(name);
    if !path.is_file() {
        panic!(
            "{} is missing: run the workspace tests (`cargo test --workspace` builds it) or `cargo build -p {package}` first",
            path.display()
        );
    }
    path
}

/// `cmd` with stdin closed and stdout and stderr appended to the log file
/// `log` of `home`.
pub fn logging_to<'a>(cmd: &'a mut Command, home: &SignerHome, log: &str) -> &'a mut Command {
    cmd.stdin(std::process::Stdio::null())
        .stdout(home.append_log(log))
        .stderr(home.append_log(log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_settings_go_before_every_section_and_logs_append() {
        let home = SignerHome::new(tempfile::tempdir().unwrap());
        fs::write(&home.config, "[section]\nkey = 1\n").unwrap();
        home.set_top_level("max_height = 10");
        let text = fs::read_to_string(&home.config).unwrap();
        assert_eq!(text, "max_height = 10\n[section]\nkey = 1\n");

        assert_eq!(home.log(), "");
        for line in ["one\n", "two\n"] {
            use std::io::Write as _;
            home.append_log(SIGNER_LOG)
                .write_all(line.as_bytes())
                .unwrap();
        }
        assert_eq!(home.log(), "one\ntwo\n");
        assert_eq!(home.state_path(), home.dir.path().join(STATE_FILE));
    }

    #[test]
    fn init_arguments_name_the_config_chain_node_and_dialect() {
        let home = SignerHome::new(tempfile::tempdir().unwrap());
        let args = home.init_args("c-1", "unix:///n.sock", "v0.38");
        assert_eq!(
            args,
            [
                "init",
                "-c",
                home.config_str(),
                "--chain-id",
                "c-1",
                "--address",
                "unix:///n.sock",
                "--protocol-version",
                "v0.38"
            ]
        );
    }
}
