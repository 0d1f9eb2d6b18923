//! AWS Signature Version 4 over a fully built request.
//!
//! Written here on `hmac` + `sha2` rather than with the `aws-sigv4` crate: that
//! crate pulls the smithy runtime types (`aws-smithy-runtime-api`, `http`
//! 0.2/1.x, `time`, …) into the enclave image for what is ~100 lines of
//! canonicalisation and four HMACs. Correctness is pinned by AWS's published
//! SigV4 test-suite vectors (see the tests).
//!
//! Pure: no clock, no I/O. The caller supplies the time and the headers.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::credentials::Credentials;

type HmacSha256 = Hmac<Sha256>;

/// The instant a request is signed at, in the two forms SigV4 uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl AmzDate {
    /// From seconds since the Unix epoch (UTC).
    pub fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        // `rem < 86_400`, so these fit in u32.
        let rem = u32::try_from(rem).unwrap_or(0);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// Now, from the system clock.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// `YYYYMMDD`, the credential-scope date.
    pub fn date(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` header value.
    pub fn timestamp(&self) -> String {
        format!(
            "{}T{:02}{:02}{:02}Z",
            self.date(),
            self.hour,
            self.minute,
            self.second
        )
    }
}

impl fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.timestamp())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`; std has no calendar and this is the
/// only date arithmetic the crate needs.
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (
        u32::try_from(year).unwrap_or(u32::MAX),
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

/// What is signed: the request as it will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Signable<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The URI path, already normalised and URI-encoded (KMS uses `/`).
    pub path: &'a str,
    /// The raw query string without `?`, its parts already URI-encoded.
    pub query: &'a str,
    /// Every header to sign (must include `host` and `x-amz-date`), any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes.
    pub payload: &'a [u8],
}

/// The scope a signature is valid for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// e.g. `us-east-1`.
    pub region: &'a str,
    /// e.g. `kms`.
    pub service: &'a str,
    /// The signing instant; must equal the `x-amz-date` header.
    pub date: AmzDate,
}

/// The `Authorization` header value for `request`.
pub fn authorization(
    request: &Signable<'_>,
    credentials: &Credentials,
    scope: &Scope<'_>,
) -> String {
    let (canonical, signed_headers) = canonical_request(request);
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        scope.date.date(),
        scope.region,
        scope.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        scope.date.timestamp(),
        credential_scope,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(credentials, scope);
    let signature = hex::encode(hmac(&key[..], string_to_sign.as_bytes()).as_slice());
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
        credentials.access_key_id, credential_scope, signed_headers, signature
    )
}

/// The canonical request and the `SignedHeaders` list.
pub fn canonical_request(request: &Signable<'_>) -> (String, String) {
    // Headers: lower-case names, trimmed values with inner whitespace runs
    // collapsed, sorted by name, repeated names joined with commas.
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let canonical_headers: String = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let mut params: Vec<(&str, &str)> = request
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    params.sort_unstable();
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        query,
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(request.payload))
    );
    (canonical, signed_headers)
}

fn signing_key(credentials: &Credentials, scope: &Scope<'_>) -> Zeroizing<[u8; 32]> {
    let secret = Zeroizing::new(format!("AWS4{}", credentials.secret_access_key.as_str()));
    let k_date = hmac(secret.as_bytes(), scope.date.date().as_bytes());
    let k_region = hmac(&k_date[..], scope.region.as_bytes());
    let k_service = hmac(&k_region[..], scope.service.as_bytes());
    hmac(&k_service[..], b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length; the error arm cannot happen.
    let mut out = Zeroizing::new([0u8; 32]);
    if let Ok(mut mac) = HmacSha256::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's "Signature Version 4 test suite" (aws-sig-v4-test-suite,
    //! published in the AWS General Reference): credentials AKIDEXAMPLE /
    //! wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service
    //! "service", 2015-08-30T12:36:00Z. Expected values are the suite's `.authz`.
    use super::*;

    const DATE: &str = "20150830T123600Z";
    const HOST: &str = "example.amazonaws.com";
    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn creds() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        )
    }

    fn scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "service",
            // 2015-08-30T12:36:00Z
            date: AmzDate::from_unix(1_440_938_160),
        }
    }

    fn sign(method: &str, query: &str, headers: &[(&str, &str)], payload: &[u8]) -> String {
        authorization(
            &Signable {
                method,
                path: "/",
                query,
                headers,
                payload,
            },
            &creds(),
            &scope(),
        )
    }

    fn expect(signed_headers: &str, signature: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}")
    }

    #[test]
    fn formats_the_suite_date() {
        assert_eq!(scope().date.timestamp(), DATE);
        assert_eq!(scope().date.date(), "20150830");
        assert_eq!(AmzDate::from_unix(0).timestamp(), "19700101T000000Z");
        // A leap day and the end of a leap year.
        assert_eq!(
            AmzDate::from_unix(951_782_400).timestamp(),
            "20000229T000000Z"
        );
        assert_eq!(
            AmzDate::from_unix(1_735_689_599).timestamp(),
            "20241231T235959Z"
        );
    }

    #[test]
    fn matches_get_vanilla() {
        assert_eq!(
            sign("GET", "", &[("Host", HOST), ("X-Amz-Date", DATE)], b""),
            expect(
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn matches_get_vanilla_query_order_key_case() {
        assert_eq!(
            sign(
                "GET",
                "Param2=value2&Param1=value1",
                &[("Host", HOST), ("X-Amz-Date", DATE)],
                b""
            ),
            expect(
                "host;x-amz-date",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
    }

    #[test]
    fn matches_get_header_value_trim() {
        assert_eq!(
            sign(
                "GET",
                "",
                &[
                    ("Host", HOST),
                    ("My-Header1", " value1 "),
                    ("My-Header2", " \"a   b   c\" "),
                    ("X-Amz-Date", DATE)
                ],
                b""
            ),
            expect(
                "host;my-header1;my-header2;x-amz-date",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
            )
        );
    }

    #[test]
    fn matches_post_vanilla() {
        assert_eq!(
            sign("POST", "", &[("Host", HOST), ("X-Amz-Date", DATE)], b""),
            expect(
                "host;x-amz-date",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
    }

    #[test]
    fn matches_post_x_www_form_urlencoded_with_body() {
        assert_eq!(
            sign(
                "POST",
                "",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Host", HOST),
                    ("X-Amz-Date", DATE)
                ],
                b"Param1=value1"
            ),
            expect(
                "content-type;host;x-amz-date",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
            )
        );
    }

    #[test]
    fn matches_post_sts_header_before_with_session_token() {
        assert_eq!(
            sign(
                "POST",
                "",
                &[
                    ("Host", HOST),
                    ("X-Amz-Date", DATE),
                    ("X-Amz-Security-Token", TOKEN)
                ],
                b""
            ),
            expect(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    #[test]
    fn signature_changes_with_body_and_secret() {
        let a = sign("POST", "", &[("Host", HOST), ("X-Amz-Date", DATE)], b"{}");
        let b = sign("POST", "", &[("Host", HOST), ("X-Amz-Date", DATE)], b"{ }");
        assert_ne!(a, b);
        let other = Credentials::new("AKIDEXAMPLE", "another", None);
        let c = authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &[("Host", HOST), ("X-Amz-Date", DATE)],
                payload: b"{}",
            },
            &other,
            &scope(),
        );
        assert_ne!(a, c);
    }
}
