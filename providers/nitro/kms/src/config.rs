//! Where the KMS client sends its requests.

use std::fmt;

/// A KMS endpoint: host name (sent as `Host` and as the TLS server name),
/// port, and whether to speak TLS. The connector decides how bytes get there
/// (a vsock proxy in the enclave, TCP in tests); this only says what to say.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// DNS name or IP literal.
    pub host: String,
    /// TCP port the server listens on (443 for AWS).
    pub port: u16,
    /// `https` (true) or plain `http` (false, only for local stand-ins).
    pub tls: bool,
}

/// Why an endpoint URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `http://` or `https://`.
    #[error("endpoint URL {0:?} must start with https:// (or http:// for a local test server)")]
    Scheme(String),
    /// No host, a path/query, or a bad port.
    #[error("endpoint URL {0:?} must be scheme://host[:port] with no path, query or credentials")]
    Malformed(String),
}

impl Endpoint {
    /// The public AWS KMS endpoint of `region`: `https://kms.<region>.amazonaws.com`
    /// (`….amazonaws.com.cn` for the China regions `cn-…`).
    pub fn for_region(region: &str) -> Self {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Self {
            host: format!("kms.{region}.{suffix}"),
            port: 443,
            tls: true,
        }
    }

    /// Parses `http[s]://host[:port][/]`; IPv6 literals in brackets are accepted.
    ///
    /// This is syntax only, for host tools and tests: whether an endpoint may
    /// be trusted with a secret is the caller's decision (the Nitro enclave
    /// accepts only AWS KMS names over TLS, see `tmkms_nitro_protocol::kms_policy`).
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(EndpointError::Scheme(url.to_owned()));
        };
        let malformed = || EndpointError::Malformed(url.to_owned());
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(malformed());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(malformed)?;
            let port = match after {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(malformed)?,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| malformed())?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(malformed());
        }
        Ok(Self { host, port, tls })
    }

    /// The `Host` header value: the port is omitted when it is the scheme's default.
    pub fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host_header())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Region and endpoint of the KMS client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsConfig {
    /// The region the key lives in; part of the SigV4 scope.
    pub region: String,
    /// Where requests go.
    pub endpoint: Endpoint,
}

impl KmsConfig {
    /// The public endpoint of `region` over TLS.
    pub fn for_region(region: impl Into<String>) -> Self {
        let region = region.into();
        Self {
            endpoint: Endpoint::for_region(&region),
            region,
        }
    }

    /// A region with an explicit endpoint URL (a VPC endpoint, or a local stand-in).
    pub fn with_endpoint_url(region: impl Into<String>, url: &str) -> Result<Self, EndpointError> {
        Ok(Self {
            region: region.into(),
            endpoint: Endpoint::parse(url)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let e = Endpoint::parse("http://127.0.0.1:4566").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 4566, false));
        assert_eq!(e.host_header(), "127.0.0.1:4566");
        let e = Endpoint::parse("https://kms.eu-west-1.amazonaws.com/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("kms.eu-west-1.amazonaws.com", 443, true)
        );
        assert_eq!(e.host_header(), "kms.eu-west-1.amazonaws.com");
        assert_eq!(e, Endpoint::for_region("eu-west-1"));
        assert_eq!(
            Endpoint::for_region("cn-north-1").host,
            "kms.cn-north-1.amazonaws.com.cn"
        );
        let e = Endpoint::parse("http://[::1]:4566").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 4566));
        assert_eq!(e.host_header(), "[::1]:4566");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "ftp://x",
            "kms.amazonaws.com",
            "http://",
            "http://h:99999",
            "http://h/path",
            "http://u@h",
            "http://h:0",
            "http://[::1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
