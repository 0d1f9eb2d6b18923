//! Running, describing and terminating enclaves through AWS's `nitro-cli`.
//!
//! The tool owns the enclave lifecycle (it talks to the Nitro Enclaves driver), so the helper
//! shells out to it rather than reimplementing the driver protocol. Its JSON output is parsed
//! leniently: unknown fields are ignored and missing optional ones default, because its shape
//! varies between releases.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

/// Environment variable naming the `nitro-cli` program (default `nitro-cli` on `PATH`).
pub const NITRO_CLI_ENV: &str = "NITRO_CLI";

/// Longest stderr excerpt kept in an error.
const MAX_STDERR: usize = 2000;

/// Why a `nitro-cli` call failed.
#[derive(Debug, thiserror::Error)]
pub enum NitroCliError {
    /// The program could not be found.
    #[error("nitro-cli not found (`{program}`): install aws-nitro-enclaves-cli on the parent instance, or set NITRO_CLI")]
    NotFound {
        /// The program that was tried.
        program: PathBuf,
    },
    /// The program exists but could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program that was tried.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It ran and reported failure.
    #[error("`nitro-cli {subcommand}` failed ({status}): {stderr}")]
    Failed {
        /// e.g. `run-enclave`.
        subcommand: &'static str,
        /// Exit status as printed by std.
        status: String,
        /// The tool's stderr (truncated), which carries its `E..` error code and advice.
        stderr: String,
    },
    /// It succeeded but printed something that is not the expected JSON.
    #[error("`nitro-cli {subcommand}` printed unexpected output ({source}): {stdout}")]
    BadOutput {
        /// e.g. `describe-enclaves`.
        subcommand: &'static str,
        /// The JSON error.
        source: serde_json::Error,
        /// The output (truncated).
        stdout: String,
    },
}

/// Settings of `nitro-cli run-enclave`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEnclave {
    /// The enclave image file.
    pub eif_path: PathBuf,
    /// vCPUs taken from the parent (at least 2 on x86: one full core).
    pub cpu_count: u32,
    /// The parent's CPUs to take, by id (`--cpu-ids`); when not empty, used instead of
    /// `cpu_count`.
    pub cpu_ids: Vec<u32>,
    /// Memory in MiB taken from the parent (at least 4 × the EIF size).
    pub memory_mib: u64,
    /// The enclave's CID; `None` lets the driver choose.
    pub enclave_cid: Option<u32>,
    /// Debug mode: console available, but attestation documents carry all-zero PCRs, so
    /// KMS policies bound to PCRs refuse it. Never for production keys.
    pub debug_mode: bool,
    /// Name for later `terminate-enclave`/`console` calls.
    pub enclave_name: Option<String>,
}

impl RunEnclave {
    /// The `nitro-cli` arguments for these settings.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "run-enclave".into(),
            "--eif-path".into(),
            self.eif_path.clone().into(),
        ];
        if self.cpu_ids.is_empty() {
            a.extend(["--cpu-count".into(), self.cpu_count.to_string().into()]);
        } else {
            a.push("--cpu-ids".into());
            a.extend(self.cpu_ids.iter().map(|id| id.to_string().into()));
        }
        a.extend(["--memory".into(), self.memory_mib.to_string().into()]);
        if let Some(cid) = self.enclave_cid {
            a.extend(["--enclave-cid".into(), cid.to_string().into()]);
        }
        if let Some(name) = &self.enclave_name {
            a.extend(["--enclave-name".into(), name.into()]);
        }
        if self.debug_mode {
            a.push("--debug-mode".into());
        }
        a
    }
}

/// One enclave as reported by `run-enclave` or `describe-enclaves`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnclaveInfo {
    /// Enclave name.
    pub enclave_name: String,
    /// Enclave id, e.g. `i-abc…-enc…`; what `terminate-enclave --enclave-id` takes.
    #[serde(rename = "EnclaveID")]
    pub enclave_id: String,
    /// PID of the process holding the enclave's resources.
    #[serde(rename = "ProcessID")]
    pub process_id: u32,
    /// The enclave's vsock CID.
    #[serde(rename = "EnclaveCID")]
    pub enclave_cid: u32,
    /// vCPUs.
    #[serde(rename = "NumberOfCPUs")]
    pub number_of_cpus: u32,
    /// Which vCPUs.
    #[serde(rename = "CPUIDs")]
    pub cpu_ids: Vec<u32>,
    /// Memory in MiB.
    #[serde(rename = "MemoryMiB")]
    pub memory_mib: u64,
    /// `RUNNING` or `TERMINATING` (describe only).
    pub state: String,
    /// `NONE` or `DEBUG_MODE` (describe only).
    pub flags: String,
}

impl EnclaveInfo {
    /// Whether the enclave runs in debug mode (its attestation is then worthless).
    pub fn is_debug(&self) -> bool {
        self.flags.to_ascii_uppercase().contains("DEBUG")
    }

    /// Whether it is running (not terminating).
    pub fn is_running(&self) -> bool {
        self.state.eq_ignore_ascii_case("running")
    }
}

/// Which enclave(s) to terminate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminate {
    /// `--enclave-id <id>`.
    Id(String),
    /// `--all`.
    All,
}

impl Terminate {
    /// The `nitro-cli` arguments.
    pub fn args(&self) -> Vec<OsString> {
        match self {
            Self::Id(id) => vec!["terminate-enclave".into(), "--enclave-id".into(), id.into()],
            Self::All => vec!["terminate-enclave".into(), "--all".into()],
        }
    }
}

/// A handle on the `nitro-cli` program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NitroCli {
    program: PathBuf,
}

impl NitroCli {
    /// Uses `$NITRO_CLI`, or `nitro-cli` from `PATH`.
    pub fn from_env() -> Self {
        Self::from_env_value(std::env::var_os(NITRO_CLI_ENV))
    }

    fn from_env_value(value: Option<OsString>) -> Self {
        let program = value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "nitro-cli".into());
        Self::with_program(program)
    }

    /// Uses the given program.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// The program this handle runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// Starts an enclave and returns what `nitro-cli` reports about it.
    pub fn run_enclave(&self, settings: &RunEnclave) -> Result<EnclaveInfo, NitroCliError> {
        let out = self.run("run-enclave", settings.args())?;
        parse_json("run-enclave", &out)
    }

    /// Lists the enclaves on this parent instance.
    pub fn describe_enclaves(&self) -> Result<Vec<EnclaveInfo>, NitroCliError> {
        let out = self.run("describe-enclaves", vec!["describe-enclaves".into()])?;
        parse_json("describe-enclaves", &out)
    }

    /// Terminates one enclave or all of them.
    pub fn terminate_enclave(&self, which: &Terminate) -> Result<(), NitroCliError> {
        self.run("terminate-enclave", which.args()).map(drop)
    }

    fn run(&self, subcommand: &'static str, args: Vec<OsString>) -> Result<String, NitroCliError> {
        tracing::debug!(program = %self.program.display(), ?args, "running nitro-cli");
        let mut attempts = 0;
        let output = loop {
            match Command::new(&self.program).args(&args).output() {
                // A just-written program can be briefly "busy" while a concurrently forked
                // process still holds its write handle; that clears within milliseconds.
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 5 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        }
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NitroCliError::NotFound {
                    program: self.program.clone(),
                }
            } else {
                NitroCliError::Spawn {
                    program: self.program.clone(),
                    source,
                }
            }
        })?;
        if !output.status.success() {
            return Err(NitroCliError::Failed {
                subcommand,
                status: output.status.to_string(),
                stderr: excerpt(&output.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Parses the JSON document in `stdout`, skipping progress text some releases print before it.
fn parse_json<T: serde::de::DeserializeOwned>(
    subcommand: &'static str,
    stdout: &str,
) -> Result<T, NitroCliError> {
    let start = stdout
        .lines()
        .scan(0usize, |offset, line| {
            let here = *offset;
            *offset += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| line.trim_start().starts_with(['{', '[']))
        .map_or(0, |(offset, _)| offset);
    serde_json::from_str(stdout.get(start..).unwrap_or(stdout)).map_err(|source| {
        NitroCliError::BadOutput {
            subcommand,
            source,
            stdout: excerpt(stdout.as_bytes()),
        }
    })
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_STDERR) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const DESCRIBE: &str = r#"[
  {
    "EnclaveName": "tmkms",
    "EnclaveID": "i-abc12345def67890a-enc9876abcd543210ef12",
    "ProcessID": 12345,
    "EnclaveCID": 16,
    "NumberOfCPUs": 2,
    "CPUIDs": [1, 3],
    "MemoryMiB": 1600,
    "State": "RUNNING",
    "Flags": "DEBUG_MODE",
    "Measurements": {"PCR0": "00"}
  }
]"#;

    /// A stand-in `nitro-cli` that appends its argv (one line per call) to `argv.log`
    /// and prints canned output per subcommand.
    fn stand_in(dir: &tempfile::TempDir) -> (NitroCli, PathBuf) {
        let log = dir.path().join("argv.log");
        let script = dir.path().join("nitro-cli");
        fs::write(
            &script,
            format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
case "$1" in
  run-enclave)
    echo "Start allocating memory..."
    echo "Started enclave with enclave-cid: 16, memory: 1600 MiB, cpu-ids: [1, 3]"
    cat <<'EOF'
{{ "EnclaveName": "tmkms", "EnclaveID": "i-1-enc2", "ProcessID": 7, "EnclaveCID": 16,
  "NumberOfCPUs": 2, "CPUIDs": [1, 3], "MemoryMiB": 1600 }}
EOF
    ;;
  describe-enclaves) cat <<'EOF'
{DESCRIBE}
EOF
    ;;
  terminate-enclave)
    if [ "$2" = "--enclave-id" ] && [ "$3" = "missing" ]; then
      echo "[ E50 ] Enclave not found." >&2; exit 50
    fi
    echo '{{"EnclaveID": "x", "Terminated": true}}' ;;
  *) echo garbage ;;
esac
"#,
                log = log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        (NitroCli::with_program(script), log)
    }

    #[test]
    fn run_enclave_passes_flags_and_parses_output() {
        let dir = tempfile::tempdir().unwrap();
        let (cli, log) = stand_in(&dir);
        let info = cli
            .run_enclave(&RunEnclave {
                eif_path: "/opt/tmkms/enclave.eif".into(),
                cpu_count: 2,
                cpu_ids: Vec::new(),
                memory_mib: 1600,
                enclave_cid: Some(16),
                debug_mode: true,
                enclave_name: None,
            })
            .unwrap();
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "run-enclave --eif-path /opt/tmkms/enclave.eif --cpu-count 2 --memory 1600 --enclave-cid 16 --debug-mode\n"
        );
        assert_eq!(info.enclave_id, "i-1-enc2");
        assert_eq!(
            (info.enclave_cid, info.cpu_ids.clone(), info.memory_mib),
            (16, vec![1, 3], 1600)
        );
        let no_cid = RunEnclave {
            eif_path: "e.eif".into(),
            cpu_count: 4,
            cpu_ids: Vec::new(),
            memory_mib: 512,
            enclave_cid: None,
            debug_mode: false,
            enclave_name: Some("tmkms".into()),
        };
        assert_eq!(
            no_cid.args(),
            [
                "run-enclave",
                "--eif-path",
                "e.eif",
                "--cpu-count",
                "4",
                "--memory",
                "512",
                "--enclave-name",
                "tmkms"
            ]
            .map(OsString::from)
        );
        // --cpu-ids instead of --cpu-count.
        let by_ids = RunEnclave {
            cpu_ids: vec![1, 3],
            ..no_cid
        };
        assert_eq!(
            by_ids.args(),
            [
                "run-enclave",
                "--eif-path",
                "e.eif",
                "--cpu-ids",
                "1",
                "3",
                "--memory",
                "512",
                "--enclave-name",
                "tmkms"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn describe_enclaves_parses_json() {
        let dir = tempfile::tempdir().unwrap();
        let (cli, log) = stand_in(&dir);
        let list = cli.describe_enclaves().unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "describe-enclaves\n");
        assert_eq!(list.len(), 1);
        let e = &list[0];
        assert_eq!(e.enclave_id, "i-abc12345def67890a-enc9876abcd543210ef12");
        assert_eq!(
            (e.enclave_cid, e.process_id, e.number_of_cpus),
            (16, 12345, 2)
        );
        assert!(e.is_running() && e.is_debug());
    }

    #[test]
    fn terminate_by_id_and_all() {
        let dir = tempfile::tempdir().unwrap();
        let (cli, log) = stand_in(&dir);
        cli.terminate_enclave(&Terminate::Id("i-1-enc2".into()))
            .unwrap();
        cli.terminate_enclave(&Terminate::All).unwrap();
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "terminate-enclave --enclave-id i-1-enc2\nterminate-enclave --all\n"
        );
        let err = cli
            .terminate_enclave(&Terminate::Id("missing".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terminate-enclave") && err.contains("E50") && err.contains("50"),
            "{err}"
        );
    }

    #[test]
    fn missing_program_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let cli = NitroCli::with_program(dir.path().join("no-such-nitro-cli"));
        let err = cli.describe_enclaves().unwrap_err().to_string();
        assert!(
            err.contains("nitro-cli not found")
                && err.contains(
                    "install aws-nitro-enclaves-cli on the parent instance, or set NITRO_CLI"
                ),
            "{err}"
        );
    }

    #[test]
    fn unexpected_output_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake");
        fs::write(&script, "#!/bin/sh\necho 'not json'\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let err = NitroCli::with_program(script)
            .describe_enclaves()
            .unwrap_err();
        assert!(matches!(err, NitroCliError::BadOutput { .. }), "{err}");
        assert!(err.to_string().contains("not json"));
    }

    #[test]
    fn program_comes_from_env_value() {
        assert_eq!(
            NitroCli::from_env_value(None).program(),
            std::path::Path::new("nitro-cli")
        );
        assert_eq!(
            NitroCli::from_env_value(Some("".into())).program(),
            std::path::Path::new("nitro-cli")
        );
        assert_eq!(
            NitroCli::from_env_value(Some("/opt/bin/nitro-cli".into())).program(),
            std::path::Path::new("/opt/bin/nitro-cli")
        );
    }
}
