//! The privval wire dialect the simulated node speaks.

use std::fmt;
use std::str::FromStr;

/// One CometBFT release line whose privval wire format differs from the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Tendermint v0.34: votes have fields 1–8, public key as `crypto.PublicKey`.
    V0_34,
    /// CometBFT v0.37: same privval wire as v0.34.
    V0_37,
    /// CometBFT v0.38 (also v0.39 and v0.40): votes add `extension` = 9 and
    /// `extension_signature` = 10.
    V0_38,
    /// CometBFT v1.x (also v2.x): `PubKeyResponse` uses `pub_key_bytes` = 3 and
    /// `pub_key_type` = 4, `SignVoteRequest` adds `skip_extension_signing` = 3,
    /// and tags 9/10 carry `SignBytesRequest`/`SignBytesResponse`.
    V1,
}

impl Dialect {
    /// Every dialect, oldest first.
    pub const ALL: [Dialect; 4] = [Dialect::V0_34, Dialect::V0_37, Dialect::V0_38, Dialect::V1];

    /// Whether votes of this dialect carry vote extensions.
    pub fn has_extensions(self) -> bool {
        matches!(self, Dialect::V0_38 | Dialect::V1)
    }

    /// Whether this dialect knows `SignBytesRequest` (tag 9).
    pub fn has_sign_bytes(self) -> bool {
        matches!(self, Dialect::V1)
    }

    /// The largest response body (without its length prefix) the node of this
    /// dialect reads: `maxRemoteSignerMsgSize = 1024 * 10` in
    /// `privval/signer_endpoint.go` of v0.34.x, v0.37.x, v0.38.x, v0.39.x and
    /// v1.0.x. (v0.40.0 raised it, but the v0.38 dialect also serves v0.38
    /// and v0.39 nodes, so the smallest cap applies.)
    pub fn response_cap(self) -> usize {
        10 * 1024
    }

    /// The canonical name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Dialect::V0_34 => "v0.34",
            Dialect::V0_37 => "v0.37",
            Dialect::V0_38 => "v0.38",
            Dialect::V1 => "v1",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol version string that names no dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown protocol version {0:?}: expected v0.34, v0.37, v0.38 (also v0.39, v0.40) or v1 (also v2)"
)]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    /// Accepts `v0.34`, `v0.37`, `v0.38`, `v0.39`, `v0.40`, `v1`, `v2`, with or
    /// without the leading `v`, and with a patch level (`v0.38.17`, `v1.0.1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownDialect(s.to_owned());
        let version = s.trim();
        let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
        let mut parts = version.split('.');
        let major = parts.next().ok_or_else(unknown)?;
        let minor = parts.next();
        let patch = parts.next();
        if parts.next().is_some() || patch.is_some_and(|p| p.parse::<u32>().is_err()) {
            return Err(unknown());
        }
        match (major, minor) {
            ("0", Some("34")) => Ok(Dialect::V0_34),
            ("0", Some("37")) => Ok(Dialect::V0_37),
            ("0", Some("38" | "39" | "40")) => Ok(Dialect::V0_38),
            ("1" | "2", None) => Ok(Dialect::V1),
            ("1" | "2", Some(m)) if m.parse::<u32>().is_ok() => Ok(Dialect::V1),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_lines() {
        for (s, d) in [
            ("v0.34", Dialect::V0_34),
            ("0.34", Dialect::V0_34),
            ("v0.37", Dialect::V0_37),
            ("v0.38", Dialect::V0_38),
            ("v0.38.17", Dialect::V0_38),
            ("v0.39", Dialect::V0_38),
            ("v0.40", Dialect::V0_38),
            ("v1", Dialect::V1),
            ("v1.0.1", Dialect::V1),
            ("v2", Dialect::V1),
        ] {
            assert_eq!(s.parse::<Dialect>().unwrap(), d, "{s}");
        }
    }

    #[test]
    fn rejects_unknown_versions() {
        for s in [
            "",
            "v",
            "v0.33",
            "v0.41",
            "v3",
            "v0.38.x",
            "latest",
            "v0.38.1.2",
        ] {
            assert!(s.parse::<Dialect>().is_err(), "{s}");
        }
    }

    #[test]
    fn display_round_trips() {
        for d in Dialect::ALL {
            assert_eq!(d.to_string().parse::<Dialect>().unwrap(), d);
        }
    }
}
