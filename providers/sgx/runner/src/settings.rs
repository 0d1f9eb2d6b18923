//! The `[sgx]` section of `tmkms.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tmkms_light_cli::{SectionError, SectionSpec};

/// How the enclave is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A real enclave (`.sgxs` + `.sig`) on SGX hardware.
    Hardware,
    /// The host build of the enclave as a separate process with simulated
    /// EGETKEY/EREPORT and a TEST CPU secret. For tests and demos only.
    Simulation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSgx {
    mode: Option<Mode>,
    enclave_path: Option<PathBuf>,
    sigstruct_path: Option<PathBuf>,
    sim_cpu_secret_path: Option<PathBuf>,
}

/// The validated `[sgx]` section, paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgxSettings {
    pub mode: Mode,
    /// `.sgxs` (hardware) or the host-built `tmkms-light-sgx-app` (simulation).
    pub enclave_path: PathBuf,
    /// The enclave's signed SIGSTRUCT (`.sig`).
    pub sigstruct_path: PathBuf,
    /// Simulation only: the TEST secret of the simulated CPU.
    pub sim_cpu_secret_path: PathBuf,
}

/// The `[sgx]` section is missing or does not parse.
pub type SettingsError = SectionError;

const SECTION: SectionSpec = SectionSpec {
    name: "sgx",
    init_binary: "tmkms-light-sgx-runner",
    readme: "SGX",
};

impl SgxSettings {
    /// Parse `section` (from [`tmkms_light::config::Config::sgx`]); relative
    /// paths are resolved against the config file's directory.
    pub fn from_section(
        section: Option<&toml::Table>,
        config_path: &Path,
    ) -> Result<Self, SettingsError> {
        let (raw, section): (RawSgx, _) = SECTION.parse(
            section,
            config_path,
            Some("valid fields: mode (\"hardware\" | \"simulation\"), enclave_path, sigstruct_path, sim_cpu_secret_path"),
        )?;
        Ok(Self {
            mode: raw.mode.unwrap_or(Mode::Hardware),
            enclave_path: section.required("enclave_path", raw.enclave_path)?,
            sigstruct_path: section.required("sigstruct_path", raw.sigstruct_path)?,
            sim_cpu_secret_path: section
                .resolve_or(raw.sim_cpu_secret_path, "secrets/sim-cpu-secret"),
        })
    }
}

/// The `[sgx]` section `init` appends to a new `tmkms.toml`.
pub fn render_section(mode: Mode, enclave_path: &Path, sigstruct_path: &Path) -> String {
    let quote = |p: &Path| toml::Value::String(p.to_string_lossy().into_owned()).to_string();
    let mode = match mode {
        Mode::Hardware => "hardware",
        Mode::Simulation => "simulation",
    };
    format!(
        r#"
# SGX provider settings (tmkms-light-sgx-runner).
[sgx]
# "hardware": load the signed enclave (.sgxs + .sig) on an SGX CPU.
# "simulation": run the host build of the enclave as a process with SIMULATED
# sealing keys derived from a local TEST secret — tests and demos only.
mode = "{mode}"
# The enclave: the .sgxs file (hardware) or the host-built tmkms-light-sgx-app
# binary (simulation).
enclave_path = {enclave}
# The enclave's SIGSTRUCT, as written by sgxs-sign (.sig). In simulation the
# enclave takes its identity (MRENCLAVE, MRSIGNER, ISVSVN) from it.
sigstruct_path = {sigstruct}
# Simulation only: the simulated CPU's TEST secret (created by init, 0600).
# sim_cpu_secret_path = "secrets/sim-cpu-secret"
"#,
        enclave = quote(enclave_path),
        sigstruct = quote(sigstruct_path),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_paths_and_rejects_unknown_fields() {
        let text = render_section(
            Mode::Simulation,
            Path::new("app"),
            Path::new("/abs/app.sig"),
        );
        let table: toml::Table = toml::from_str(&text).unwrap();
        let section = table.get("sgx").unwrap().as_table().unwrap();
        let s = SgxSettings::from_section(Some(section), Path::new("/etc/kms/tmkms.toml")).unwrap();
        assert_eq!(s.mode, Mode::Simulation);
        assert_eq!(s.enclave_path, Path::new("/etc/kms/app"));
        assert_eq!(s.sigstruct_path, Path::new("/abs/app.sig"));
        assert_eq!(
            s.sim_cpu_secret_path,
            Path::new("/etc/kms/secrets/sim-cpu-secret")
        );

        let mut bad = section.clone();
        bad.insert("enclave_pth".into(), toml::Value::String("x".into()));
        let err = SgxSettings::from_section(Some(&bad), Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("enclave_pth"), "{err}");
        assert!(SgxSettings::from_section(None, Path::new("t.toml"))
            .unwrap_err()
            .to_string()
            .contains("[sgx] section is missing"));
    }
}
