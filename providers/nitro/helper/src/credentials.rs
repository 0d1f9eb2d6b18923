//! The temporary AWS credentials handed to the enclave for its KMS calls.
//!
//! Only session credentials (with a session token) are handed over: from the
//! environment when `AWS_SESSION_TOKEN` is set, otherwise from the instance
//! role through the instance metadata service (IMDSv2: a PUT for a token,
//! then the role's credentials). Long-lived access keys are refused — an
//! enclave log or a memory dump of the helper must never expose a key that
//! does not expire. The endpoint follows the AWS SDK convention
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` (default `http://169.254.169.254`).
//!
//! Written over the KMS crate's small HTTP/1.1 helpers rather than an AWS SDK:
//! three plain-HTTP requests to a link-local address do not justify an async
//! runtime in the helper.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use tmkms_nitro_kms::http::{read_response, write_request};
use tmkms_nitro_kms::Credentials;
use zeroize::Zeroizing;

/// Environment variable naming the metadata service (AWS SDK convention).
pub const IMDS_ENDPOINT_ENV: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const DEFAULT_IMDS: &str = "http://169.254.169.254";
const TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("AWS_ACCESS_KEY_ID is set without AWS_SESSION_TOKEN: the enclave only receives temporary credentials. Use the instance role (unset the variables) or export the session token of temporary credentials")]
    LongLived,
    #[error("AWS_SECRET_ACCESS_KEY is missing or empty while AWS_ACCESS_KEY_ID is set")]
    MissingSecret,
    #[error("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, or attach an instance role; the instance metadata service at {endpoint} said: {reason}")]
    Imds { endpoint: String, reason: String },
}

/// Session credentials from the environment or the instance role.
pub fn session_credentials() -> Result<Credentials, CredentialsError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(access_key_id) = var("AWS_ACCESS_KEY_ID") {
        let secret = var("AWS_SECRET_ACCESS_KEY").ok_or(CredentialsError::MissingSecret)?;
        let token = var("AWS_SESSION_TOKEN").ok_or(CredentialsError::LongLived)?;
        return Ok(Credentials {
            access_key_id,
            secret_access_key: Zeroizing::new(secret),
            session_token: Some(Zeroizing::new(token)),
        });
    }
    let endpoint = var(IMDS_ENDPOINT_ENV).unwrap_or_else(|| DEFAULT_IMDS.to_owned());
    from_imds(&endpoint).map_err(|reason| CredentialsError::Imds { endpoint, reason })
}

/// The instance metadata service's answer for a role (its wire format,
/// turned into [`Credentials`] at once).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    token: Zeroizing<String>,
    #[serde(default)]
    expiration: Option<String>,
}

fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or("only http:// metadata endpoints are supported")?
        .trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()
        .or_else(|_| format!("{authority}:80").to_socket_addrs())
        .map_err(|e| format!("resolving {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolving {authority}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write_request(
        &mut stream,
        method,
        path,
        authority,
        headers,
        &[],
        tmkms_nitro_kms::http::Connection::Close,
    )
    .map_err(|e| format!("{method} {path}: {e}"))?;
    let response =
        read_response(&mut stream, MAX_BODY).map_err(|e| format!("{method} {path}: {e}"))?;
    if response.status != 200 {
        return Err(format!("{method} {path}: HTTP {}", response.status));
    }
    Ok(response.body)
}

fn from_imds(endpoint: &str) -> Result<Credentials, String> {
    const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
    let token = request(
        endpoint,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "300")],
    )?;
    let token = Zeroizing::new(
        String::from_utf8(token.to_vec()).map_err(|_| "the IMDS token is not UTF-8".to_owned())?,
    );
    let auth = [("X-aws-ec2-metadata-token", token.trim())];
    let roles = request(endpoint, "GET", ROLE_PATH, &auth)?;
    let role = String::from_utf8_lossy(&roles)
        .lines()
        .next()
        .map(str::trim)
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .map(str::to_owned)
        .ok_or("no instance role attached (empty role list)")?;
    let body = request(endpoint, "GET", &format!("{ROLE_PATH}{role}"), &auth)?;
    let creds: RoleCredentials = serde_json::from_slice(&body)
        .map_err(|e| format!("malformed credentials of role {role}: {e}"))?;
    tracing::info!(
        role,
        expires = creds.expiration.as_deref().unwrap_or("?"),
        "temporary credentials of the instance role"
    );
    Ok(Credentials {
        access_key_id: creds.access_key_id,
        secret_access_key: creds.secret_access_key,
        session_token: Some(creds.token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A fake IMDSv2: answers the token PUT, the role list and the role's
    /// credentials, and checks the token is presented.
    fn fake_imds(role_list: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(3) {
                let mut conn = conn.unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut headers = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    headers.push_str(&line.to_ascii_lowercase());
                }
                let body = if request_line.starts_with("PUT /latest/api/token") {
                    assert!(headers.contains("x-aws-ec2-metadata-token-ttl-seconds"));
                    "tok-123".to_owned()
                } else {
                    assert!(
                        headers.contains("x-aws-ec2-metadata-token: tok-123"),
                        "{headers}"
                    );
                    if request_line.contains("security-credentials/ ") {
                        role_list.to_owned()
                    } else {
                        r#"{"Code":"Success","AccessKeyId":"ASIAROLE","SecretAccessKey":"s3cr3t","Token":"sess","Expiration":"2026-11-26T06:00:00Z"}"#.to_owned()
                    }
                };
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn instance_role_credentials_come_from_imdsv2_with_a_token() {
        let endpoint = fake_imds("tmkms-role\n");
        let creds = from_imds(&endpoint).unwrap();
        assert_eq!(creds.access_key_id, "ASIAROLE");
        assert_eq!(creds.secret_access_key.as_str(), "s3cr3t");
        assert_eq!(
            creds.session_token.as_deref().map(String::as_str),
            Some("sess")
        );
    }

    #[test]
    fn no_role_and_no_service_are_clear_errors() {
        let endpoint = fake_imds("\n");
        let err = from_imds(&endpoint).unwrap_err();
        assert!(err.contains("no instance role"), "{err}");
        let err = from_imds("http://127.0.0.1:1").unwrap_err();
        assert!(err.contains("connecting"), "{err}");
    }
}
