//! AWS credentials for signing KMS requests.
//!
//! Inside an enclave there is no instance metadata service, so credentials are
//! handed in by the host (typically temporary STS credentials of the instance
//! role). They are secrets: the secret key and the session token are zeroized on
//! drop and never appear in `Debug` output or logs.
//!
//! This one type serves the whole Nitro provider: the helper fetches it, the
//! control message to the enclave carries it (serde, field names as below),
//! and the enclave signs its KMS calls with it.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// An access key pair, optionally with an STS session token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The access key id (`AKIA…`/`ASIA…`); not secret, it names the key.
    pub access_key_id: String,
    /// The secret access key; only ever used as HMAC key material.
    pub secret_access_key: Zeroizing<String>,
    /// The session token of temporary credentials, sent as `x-amz-security-token`.
    pub session_token: Option<Zeroizing<String>>,
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// A required environment variable is unset.
    #[error("environment variable {0} is not set: export the AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for temporary credentials, AWS_SESSION_TOKEN)")]
    Missing(&'static str),
    /// A variable is set but empty or not valid UTF-8.
    #[error(
        "environment variable {0} is empty or not valid UTF-8: set it to the credential's value"
    )]
    Invalid(&'static str),
}

impl Credentials {
    /// Credentials from explicit values.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            session_token: session_token.map(Zeroizing::new),
        }
    }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
    /// `AWS_SESSION_TOKEN` from the process environment.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Same as [`Credentials::from_env`] over any variable lookup (tests, or a
    /// configuration map handed in by the host).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, CredentialsError> {
        let required = |name: &'static str| -> Result<Zeroizing<String>, CredentialsError> {
            let value = lookup(name).ok_or(CredentialsError::Missing(name))?;
            let value = Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| CredentialsError::Invalid(name))?,
            );
            if value.is_empty() {
                return Err(CredentialsError::Invalid(name));
            }
            Ok(value)
        };
        let access_key_id = required("AWS_ACCESS_KEY_ID")?.to_string();
        let secret_access_key = required("AWS_SECRET_ACCESS_KEY")?;
        let session_token = match lookup("AWS_SESSION_TOKEN") {
            None => None,
            Some(v) if v.is_empty() => None,
            Some(_) => Some(required("AWS_SESSION_TOKEN")?),
        };
        Ok(Self {
            access_key_id,
            secret_access_key,
            session_token,
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn reads_keys_and_optional_token() {
        let c = Credentials::from_lookup(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ]))
        .unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.secret_access_key.as_str(), "s3cr3t");
        assert!(c.session_token.is_none());
        let c = Credentials::from_lookup(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_SESSION_TOKEN", "tok"),
        ]))
        .unwrap();
        assert_eq!(c.session_token.unwrap().as_str(), "tok");
    }

    #[test]
    fn rejects_missing_or_empty_variables() {
        assert_eq!(
            Credentials::from_lookup(env(&[("AWS_SECRET_ACCESS_KEY", "x")])).unwrap_err(),
            CredentialsError::Missing("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            Credentials::from_lookup(env(&[("AWS_ACCESS_KEY_ID", "a")])).unwrap_err(),
            CredentialsError::Missing("AWS_SECRET_ACCESS_KEY")
        );
        assert_eq!(
            Credentials::from_lookup(env(&[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "")
            ]))
            .unwrap_err(),
            CredentialsError::Invalid("AWS_SECRET_ACCESS_KEY")
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credentials::new(
            "AKIDVISIBLE",
            "very-secret-key",
            Some("secret-token".into()),
        );
        let s = format!("{c:?}");
        assert!(s.contains("AKIDVISIBLE"));
        assert!(!s.contains("very-secret-key"));
        assert!(!s.contains("secret-token"));
    }

    #[test]
    fn serializes_with_its_field_names_and_refuses_unknown_ones() {
        let c = Credentials::new("ASIAX", "s3cr3t", Some("tok".into()));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "access_key_id": "ASIAX",
                "secret_access_key": "s3cr3t",
                "session_token": "tok",
            })
        );
        let back: Credentials = serde_json::from_value(json).unwrap();
        assert_eq!(back.secret_access_key.as_str(), "s3cr3t");
        assert!(serde_json::from_str::<Credentials>(
            r#"{"access_key_id":"a","secret_access_key":"b","session_token":null,"x":1}"#
        )
        .is_err());
    }
}
