//! Where the node listens for its signer: `tcp://[<node id>@]host:port`
//! (SecretConnection) or `unix:///absolute/path` (plaintext).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

use crate::keys::PEER_ID_LEN;

/// Where the node listens for its signer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `tcp://[<node id>@]host:port`, with SecretConnection. `host` is kept
    /// without IPv6 brackets, ready for `(host, port)` resolution.
    Tcp {
        peer_id: Option<[u8; PEER_ID_LEN]>,
        host: String,
        port: u16,
    },
    /// `unix:///absolute/path`, plaintext.
    Unix { path: PathBuf },
}

impl Address {
    pub fn is_tcp(&self) -> bool {
        matches!(self, Address::Tcp { .. })
    }
}

/// Port of the examples in error messages and the template.
pub(super) const EXAMPLE_PORT: u16 = 26658;

/// Why an address string is not a usable address. Each message quotes the
/// input and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("{input:?} has no scheme; write {suggestion:?} (SecretConnection) or \"unix:///path/to/socket\"")]
    MissingScheme { input: String, suggestion: String },
    #[error("{input:?} uses the unsupported scheme \"{scheme}://\"; write \"tcp://host:port\" or \"unix:///absolute/path\"")]
    UnsupportedScheme { input: String, scheme: String },
    #[error("{input:?} has no host; write e.g. \"tcp://127.0.0.1:{EXAMPLE_PORT}\"")]
    NoHost { input: String },
    #[error("{input:?} has no port; write e.g. {suggestion:?}")]
    NoPort { input: String, suggestion: String },
    #[error("{input:?} has the port {port:?}; write a port from 1 to 65535, e.g. {suggestion:?}")]
    InvalidPort {
        input: String,
        port: String,
        suggestion: String,
    },
    #[error("{input:?} has an unbracketed IPv6 host; write it in brackets, e.g. \"tcp://[::1]:{EXAMPLE_PORT}\"")]
    UnbracketedIpv6 { input: String },
    #[error("{input:?} has something after the port; write \"tcp://[<node id>@]host:port\" with nothing after it")]
    TrailingText { input: String },
    #[error("{input:?}: the node id {id:?} is not 40 hex characters; write the id `cometbft show-node-id` prints, or leave out \"<id>@\"")]
    InvalidPeerId { input: String, id: String },
    #[error("{input:?}: a unix socket path must be absolute; write e.g. \"unix:///run/tmkms/validator.sock\"")]
    UnixNotAbsolute { input: String },
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if let Some(rest) = input.strip_prefix("tcp://") {
            parse_tcp(input, rest)
        } else if let Some(rest) = input.strip_prefix("unix://") {
            let path = Path::new(rest);
            if !path.is_absolute() {
                return Err(AddressError::UnixNotAbsolute {
                    input: input.to_owned(),
                });
            }
            Ok(Address::Unix {
                path: path.to_path_buf(),
            })
        } else if let Some((scheme, _)) = input.split_once("://") {
            Err(AddressError::UnsupportedScheme {
                input: input.to_owned(),
                scheme: scheme.to_owned(),
            })
        } else {
            let suggestion = if input.contains(':') {
                format!("tcp://{input}")
            } else {
                format!("tcp://{input}:{EXAMPLE_PORT}")
            };
            Err(AddressError::MissingScheme {
                input: input.to_owned(),
                suggestion,
            })
        }
    }
}

fn parse_tcp(input: &str, rest: &str) -> Result<Address, AddressError> {
    let owned = || input.to_owned();
    let (peer_id, host_port) = match rest.split_once('@') {
        Some((id, host_port)) => {
            let bytes = (id.len() == 2 * PEER_ID_LEN)
                .then(|| hex::decode(id).ok())
                .flatten()
                .and_then(|v| <[u8; PEER_ID_LEN]>::try_from(v).ok())
                .ok_or_else(|| AddressError::InvalidPeerId {
                    input: owned(),
                    id: id.to_owned(),
                })?;
            (Some(bytes), host_port)
        }
        None => (None, rest),
    };

    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| AddressError::UnbracketedIpv6 { input: owned() })?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(AddressError::TrailingText { input: owned() }),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(AddressError::UnbracketedIpv6 { input: owned() })
            }
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };

    if host.is_empty() {
        return Err(AddressError::NoHost { input: owned() });
    }
    if host.contains(['/', '?', '#', '@']) || host.contains(char::is_whitespace) {
        return Err(AddressError::TrailingText { input: owned() });
    }
    let with_port = |port: u16| {
        Address::Tcp {
            peer_id,
            host: host.to_owned(),
            port,
        }
        .to_string()
    };
    let port = match port {
        None | Some("") => {
            return Err(AddressError::NoPort {
                input: owned(),
                suggestion: with_port(EXAMPLE_PORT),
            })
        }
        Some(port) if port.contains(['/', '?', '#']) => {
            return Err(AddressError::TrailingText { input: owned() })
        }
        Some(port) => port,
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(Address::Tcp {
            peer_id,
            host: host.to_owned(),
            port: p,
        }),
        _ => Err(AddressError::InvalidPort {
            input: owned(),
            port: port.to_owned(),
            suggestion: with_port(EXAMPLE_PORT),
        }),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp {
                peer_id,
                host,
                port,
            } => {
                f.write_str("tcp://")?;
                if let Some(id) = peer_id {
                    write!(f, "{}@", hex::encode(id))?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
            Address::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}
