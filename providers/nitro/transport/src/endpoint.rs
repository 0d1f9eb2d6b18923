//! Where a stream goes: one value type for vsock, Unix and TCP addresses.
//!
//! Configuration files and command lines name endpoints as URLs (`vsock://3:5000`,
//! `unix:///run/x.sock`, `tcp://127.0.0.1:5000`), so this type parses, prints and
//! (de)serializes exactly that string form; the same value can then be bound or dialled
//! without the caller knowing which transport it is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The parent instance's CID as seen from inside a Nitro enclave. Other setups differ
/// (2 behind `vhost-device-vsock`, 1 with vsock loopback), so it is only a default.
pub const NITRO_PARENT_CID: u32 = 3;

/// `VMADDR_CID_ANY`: bind on every local CID. Written `any` in endpoint strings.
pub const VSOCK_CID_ANY: u32 = u32::MAX;

/// The forms an endpoint string may take, quoted in every parse error.
const EXPECTED_FORMS: &str =
    "expected vsock://<cid>:<port> (cid a number or `any`), unix:///absolute/path or tcp://<host>:<port>";

/// A stream endpoint: something to bind a [`crate::Listener`] on or to connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// AF_VSOCK address. `cid` is [`VSOCK_CID_ANY`] to listen on every CID.
    Vsock {
        /// Context identifier of the (virtual) machine.
        cid: u32,
        /// vsock port.
        port: u32,
    },
    /// A Unix-domain socket file.
    Unix {
        /// Absolute path of the socket file.
        path: PathBuf,
    },
    /// A TCP address; `host` is a name or an IP literal (IPv6 in brackets in the string form).
    Tcp {
        /// Host name or IP address, without brackets.
        host: String,
        /// TCP port; 0 when binding lets the kernel choose.
        port: u16,
    },
}

impl Endpoint {
    /// The endpoint of vsock `port` on a parent instance whose CID is `parent_cid`
    /// (use [`NITRO_PARENT_CID`] on Nitro).
    pub fn parent_vsock(parent_cid: u32, port: u32) -> Self {
        Self::Vsock {
            cid: parent_cid,
            port,
        }
    }
}

/// Why an endpoint string was rejected; the message quotes the input and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointParseError {
    /// No `scheme://` prefix or an unknown scheme.
    #[error("endpoint `{input}`: unknown or missing scheme; {EXPECTED_FORMS}")]
    Scheme {
        /// The rejected string.
        input: String,
    },
    /// The scheme is known but the rest does not fit it.
    #[error("endpoint `{input}`: {reason}; {EXPECTED_FORMS}")]
    Malformed {
        /// The rejected string.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl FromStr for Endpoint {
    type Err = EndpointParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| EndpointParseError::Malformed {
            input: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("vsock://") {
            let (cid, port) = rest
                .split_once(':')
                .ok_or_else(|| bad("a vsock endpoint needs <cid>:<port>"))?;
            let cid = if cid.eq_ignore_ascii_case("any") {
                VSOCK_CID_ANY
            } else {
                cid.parse()
                    .map_err(|_| bad("the vsock cid must be a number or `any`"))?
            };
            let port = port
                .parse()
                .map_err(|_| bad("the vsock port must be a number below 2^32"))?;
            Ok(Self::Vsock { cid, port })
        } else if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a unix endpoint needs an absolute path (three slashes)",
                ));
            }
            if path.len() < 2 || path.ends_with('/') {
                return Err(bad(
                    "a unix endpoint needs a socket file name, not a directory",
                ));
            }
            Ok(Self::Unix { path: path.into() })
        } else if let Some(rest) = s.strip_prefix("tcp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("a tcp endpoint needs <host>:<port>"))?;
            let host = match host.strip_prefix('[') {
                Some(v6) => v6
                    .strip_suffix(']')
                    .ok_or_else(|| bad("an IPv6 host needs a closing `]`"))?,
                None if host.contains(':') => {
                    return Err(bad("write an IPv6 host in brackets: tcp://[::1]:5000"))
                }
                None => host,
            };
            if host.is_empty() || host.contains(['/', '@', ' ']) {
                return Err(bad("the tcp host is empty or contains `/`, `@` or a space"));
            }
            let port = port
                .parse()
                .map_err(|_| bad("the tcp port must be a number from 0 to 65535"))?;
            Ok(Self::Tcp {
                host: host.to_owned(),
                port,
            })
        } else {
            Err(EndpointParseError::Scheme {
                input: s.to_owned(),
            })
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vsock {
                cid: VSOCK_CID_ANY,
                port,
            } => write!(f, "vsock://any:{port}"),
            Self::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Self::Unix { path } => write!(f, "unix://{}", path.display()),
            Self::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_form() {
        for s in [
            "vsock://3:5000",
            "vsock://any:8000",
            "vsock://16:4294967295",
            "unix:///run/tmkms/x.sock",
            "tcp://127.0.0.1:5000",
            "tcp://kms.eu-west-1.amazonaws.com:443",
            "tcp://[::1]:26658",
        ] {
            let e: Endpoint = s.parse().unwrap();
            assert_eq!(e.to_string(), s);
        }
        assert_eq!(
            "vsock://ANY:1".parse::<Endpoint>().unwrap(),
            Endpoint::Vsock {
                cid: VSOCK_CID_ANY,
                port: 1
            }
        );
        assert_eq!(
            "tcp://[::1]:1".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 1
            }
        );
        assert_eq!(
            Endpoint::parent_vsock(NITRO_PARENT_CID, 7000).to_string(),
            "vsock://3:7000"
        );
    }

    #[test]
    fn rejects_malformed_with_expected_forms() {
        for s in [
            "",
            "3:5000",
            "http://x:1",
            "vsock://3",
            "vsock://x:1",
            "vsock://3:-1",
            "vsock://3:4294967296",
            "unix://relative.sock",
            "unix:///",
            "unix:///run/",
            "tcp://127.0.0.1",
            "tcp://:5000",
            "tcp://host:70000",
            "tcp://::1:5000",
            "tcp://[::1:5000",
            "tcp://id@host:1",
        ] {
            let err = s.parse::<Endpoint>().unwrap_err().to_string();
            assert!(err.contains("vsock://<cid>:<port>"), "{s}: {err}");
            assert!(err.contains("tcp://<host>:<port>"), "{s}: {err}");
            assert!(err.contains(&format!("`{s}`")), "{s}: {err}");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct C {
            e: Endpoint,
        }
        let c: C = serde_json::from_str(r#"{"e":"vsock://3:5000"}"#).unwrap();
        assert_eq!(c.e, Endpoint::Vsock { cid: 3, port: 5000 });
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"e":"vsock://3:5000"}"#
        );
        let err = serde_json::from_str::<C>(r#"{"e":"vsock:/3"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown or missing scheme"), "{err}");
    }
}
