//! Argument groups the host binaries share, each declared once and
//! flattened into the subcommands that take it (`#[command(flatten)]`), so
//! a flag reads and behaves the same in `tmkms-softsign`,
//! `tmkms-light-sgx-runner` and `tmkms-nitro-helper`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use clap::Args;
use tmkms_light::config::{Address, TemplateParams};
use tmkms_light::keys::PubkeyFormat;
use tmkms_light::privval::Dialect;
use tmkms_light::types::ChainId;

/// `-c/--config`: the signer's home is the directory of this file.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Config file (tmkms.toml).
    #[arg(short = 'c', long = "config", default_value = "tmkms.toml")]
    pub config: PathBuf,
}

impl ConfigArg {
    pub fn path(&self) -> &Path {
        &self.config
    }
}

/// `-b/--bech32-prefix`, for commands that print a key only as bech32.
#[derive(Debug, Clone, Args)]
pub struct Bech32PrefixArg {
    /// Bech32 prefix of the consensus public key.
    #[arg(
        short = 'b',
        long = "bech32-prefix",
        default_value = "cosmosvalconspub"
    )]
    pub bech32_prefix: String,
}

/// `-p/--pubkey-format` and `-b/--bech32-prefix`: how a command prints the
/// consensus public key.
#[derive(Debug, Clone, Args)]
pub struct PubkeyOutputArgs {
    /// Format of the printed public key: bech32, base64, json, hex.
    #[arg(short = 'p', long = "pubkey-format", default_value = "bech32")]
    pub pubkey_format: PubkeyFormat,
    #[command(flatten)]
    pub prefix: Bech32PrefixArg,
}

impl PubkeyOutputArgs {
    /// The bech32 human-readable prefix.
    pub fn hrp(&self) -> &str {
        &self.prefix.bech32_prefix
    }
}

/// What every `init` asks about the chain and the node: the settings the
/// new `tmkms.toml` is rendered from.
#[derive(Debug, Clone, Args)]
pub struct InitChainArgs {
    /// Chain id the signer will sign for.
    #[arg(long = "chain-id", default_value = "test-chain")]
    pub chain_id: String,
    /// Node's priv_validator_laddr, as tcp://[peer_id@]host:port or unix:///path.
    #[arg(long = "address", default_value = "tcp://127.0.0.1:26658")]
    pub address: String,
    /// CometBFT protocol version: v0.34, v0.37, v0.38 (v0.39, v0.40), v1.
    #[arg(long = "protocol-version", default_value = "v0.38")]
    pub protocol_version: Dialect,
}

impl InitChainArgs {
    /// The template parameters of these settings, each checked with the
    /// flag that gave it named in the error.
    pub fn template_params(&self) -> Result<TemplateParams> {
        let chain_id = ChainId::try_from(self.chain_id.as_str())
            .with_context(|| format!("--chain-id {:?}", self.chain_id))?;
        let address = Address::from_str(&self.address)
            .with_context(|| format!("--address {:?}", self.address))?;
        Ok(TemplateParams::new(
            chain_id,
            address,
            self.protocol_version,
        ))
    }
}
