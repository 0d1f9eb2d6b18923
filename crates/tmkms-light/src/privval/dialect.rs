//! Protocol dialects: one per CometBFT release line whose privval wire
//! format differs.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The privval wire dialect spoken on one validator connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Tendermint v0.34: votes without extensions.
    V0_34,
    /// CometBFT v0.37: same privval wire as v0.34.
    V0_37,
    /// CometBFT v0.38, v0.39 and v0.40: votes carry extensions (fields 9, 10).
    #[default]
    V0_38,
    /// CometBFT v1.x / v2.x: new public-key response shape,
    /// `skip_extension_signing`, and sign-bytes requests.
    V1,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [Dialect::V0_34, Dialect::V0_37, Dialect::V0_38, Dialect::V1];

    /// Whether votes in this dialect carry extensions and extension signatures.
    pub fn has_vote_extensions(self) -> bool {
        matches!(self, Dialect::V0_38 | Dialect::V1)
    }

    /// The name used in configuration files.
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

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown protocol version {0:?}; expected one of v0.34, v0.37, v0.38 (also for v0.39/v0.40), v1 (also for v2)")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim().trim_start_matches(['v', 'V']);
        match trimmed {
            "0.34" => Ok(Dialect::V0_34),
            "0.37" => Ok(Dialect::V0_37),
            "0.38" | "0.39" | "0.40" => Ok(Dialect::V0_38),
            "1" | "1.0" | "2" | "2.0" => Ok(Dialect::V1),
            _ => Err(UnknownDialect(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_lines() {
        assert_eq!("v0.34".parse(), Ok(Dialect::V0_34));
        assert_eq!("v0.37".parse(), Ok(Dialect::V0_37));
        assert_eq!("v0.38".parse(), Ok(Dialect::V0_38));
        assert_eq!("v0.40".parse(), Ok(Dialect::V0_38));
        assert_eq!("v1".parse(), Ok(Dialect::V1));
        assert!("v0.33".parse::<Dialect>().is_err());
    }
}
