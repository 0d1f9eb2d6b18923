//! A TEE provider's own section of `tmkms.toml` (`[sgx]`, `[nitro]`). The
//! core keeps it as a raw table; the provider parses it here, strictly (an
//! unknown field is an error), with relative paths taken from the config
//! file's directory, and errors that name the file and the section.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

/// Which section, and what the operator is told when it is missing.
#[derive(Debug, Clone, Copy)]
pub struct SectionSpec {
    /// The table name, without brackets.
    pub name: &'static str,
    /// The binary whose `init` writes the section.
    pub init_binary: &'static str,
    /// The README section that describes it.
    pub readme: &'static str,
}

/// A section that is missing or does not parse.
#[derive(Debug, Error)]
pub enum SectionError {
    #[error("{config}: the [{section}] section is missing; run `{init_binary} init` or add it (see the README's {readme} section)")]
    Missing {
        config: String,
        section: &'static str,
        init_binary: &'static str,
        readme: &'static str,
    },
    #[error("{config}: [{section}] {reason}")]
    Invalid {
        config: String,
        section: &'static str,
        reason: String,
    },
}

/// Where a parsed section came from: for resolving its paths and reporting
/// its errors after the fields were read.
#[derive(Debug, Clone)]
pub struct SectionContext {
    spec: SectionSpec,
    config: String,
    base: PathBuf,
}

impl SectionSpec {
    /// Parse `section` (the raw table of [`tmkms_light::config::Config`])
    /// into `T`. `hint` follows a parse error (e.g. the valid fields).
    pub fn parse<T: DeserializeOwned>(
        self,
        section: Option<&toml::Table>,
        config_path: &Path,
        hint: Option<&str>,
    ) -> Result<(T, SectionContext), SectionError> {
        let context = SectionContext {
            spec: self,
            config: config_path.display().to_string(),
            base: crate::parent_dir(config_path).to_path_buf(),
        };
        let section = section.ok_or_else(|| SectionError::Missing {
            config: context.config.clone(),
            section: self.name,
            init_binary: self.init_binary,
            readme: self.readme,
        })?;
        let raw = section
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| match hint {
                Some(hint) => context.invalid(format!("{}; {hint}", e.message())),
                None => context.invalid(e.message().to_owned()),
            })?;
        Ok((raw, context))
    }
}

impl SectionContext {
    /// `path`, relative to the config file's directory unless absolute.
    pub fn resolve(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    /// `path`, or `default` when the field is absent, resolved.
    pub fn resolve_or(&self, path: Option<PathBuf>, default: &str) -> PathBuf {
        self.resolve(path.unwrap_or_else(|| PathBuf::from(default)))
    }

    /// A path the section must name, resolved.
    pub fn required(&self, field: &str, path: Option<PathBuf>) -> Result<PathBuf, SectionError> {
        path.map(|p| self.resolve(p))
            .ok_or_else(|| self.invalid(format!("{field} is required")))
    }

    /// The section's error for `reason`.
    pub fn invalid(&self, reason: String) -> SectionError {
        SectionError::Invalid {
            config: self.config.clone(),
            section: self.spec.name,
            reason,
        }
    }
}

/// Warn about core settings a TEE host reads but does not apply (they are
/// softsign's), so that an operator who set one is not left guessing.
pub fn warn_settings_tee_hosts_ignore(config: &tmkms_light::config::Config) {
    warn_busy_poll_ignored(config);
}

/// Core settings a TEE provider cannot honour yet, refused rather than
/// ignored: an operator who wrote `[ha]` must not believe a second signer
/// is safe when this one does not reserve in etcd.
#[derive(Debug, Error)]
pub enum UnsupportedSetting {
    #[error("{config}: [ha] is not supported by the {provider} provider yet (its enclave must reach etcd itself, over TLS that ends inside the enclave); remove [ha] and run a single signer, or use tmkms-softsign for high availability")]
    Ha {
        config: String,
        provider: &'static str,
    },
}

/// Refuse what `provider` does not support (see [`UnsupportedSetting`]).
pub fn refuse_settings_tee_hosts_lack(
    config: &tmkms_light::config::Config,
    config_path: &Path,
    provider: &'static str,
) -> Result<(), UnsupportedSetting> {
    if config.ha.is_some() {
        return Err(UnsupportedSetting::Ha {
            config: config_path.display().to_string(),
            provider,
        });
    }
    Ok(())
}

fn warn_busy_poll_ignored(config: &tmkms_light::config::Config) {
    if !config.busy_poll.is_zero() {
        tracing::warn!(
            busy_poll_us = config.busy_poll.as_micros(),
            "busy_poll_us applies to softsign only; this host ignores it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: SectionSpec = SectionSpec {
        name: "demo",
        init_binary: "demo-host",
        readme: "Demo",
    };

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        path: Option<PathBuf>,
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn paths_are_relative_to_the_config_file() {
        let (raw, context) = DEMO
            .parse::<Raw>(
                Some(&table("path = \"a/b\"")),
                Path::new("/etc/kms/t.toml"),
                None,
            )
            .unwrap();
        assert_eq!(
            context.resolve(raw.path.unwrap()),
            Path::new("/etc/kms/a/b")
        );
        assert_eq!(context.resolve_or(None, "/abs"), Path::new("/abs"));
        assert_eq!(context.resolve_or(None, "rel"), Path::new("/etc/kms/rel"));
        let err = context.required("path", None).unwrap_err().to_string();
        assert_eq!(err, "/etc/kms/t.toml: [demo] path is required");
    }

    #[test]
    fn errors_name_the_file_the_section_and_the_fix() {
        let err = DEMO
            .parse::<Raw>(None, Path::new("t.toml"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t.toml: the [demo] section is missing; run `demo-host init` or add it (see the README's Demo section)");
        let err = DEMO
            .parse::<Raw>(
                Some(&table("pth = 1")),
                Path::new("t.toml"),
                Some("valid: path"),
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: [demo] "), "{err}");
        assert!(
            err.contains("pth") && err.ends_with("; valid: path"),
            "{err}"
        );
    }

    #[test]
    fn tee_hosts_refuse_ha_naming_the_provider_and_the_fix() {
        let text = "chain_id = \"c\"\nconsensus_key_path = \"k\"\nstate_file_path = \"s\"\n[[validator]]\naddress = \"unix:///a\"\n";
        let path = Path::new("/etc/tmkms/tmkms.toml");
        let plain = tmkms_light::config::Config::from_toml_str(text, path).unwrap();
        assert!(refuse_settings_tee_hosts_lack(&plain, path, "Nitro").is_ok());
        let with_ha = format!("{text}[ha]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nsigner_id = \"a\"\n");
        let config = tmkms_light::config::Config::from_toml_str(&with_ha, path).unwrap();
        let e = refuse_settings_tee_hosts_lack(&config, path, "Nitro")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/tmkms/tmkms.toml")
                && e.contains("Nitro provider")
                && e.contains("remove [ha]"),
            "{e}"
        );
    }
}
