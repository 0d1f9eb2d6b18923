//! `tmkms-softsign`: the tmkms-light signer with its consensus key in a
//! local file. Parses arguments, builds a validated configuration and calls
//! the core library; all policy lives there.

mod commands;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tmkms_light::keys::PubkeyFormat;
use tmkms_light::privval::Dialect;
use tmkms_light_cli::StateCommand;

#[derive(Debug, Parser)]
#[command(
    name = "tmkms-softsign",
    version,
    about = "Remote signer for CometBFT validators (software key)"
)]
struct Cli {
    /// Debug logging.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create tmkms.toml, a consensus key, an identity key and an empty state.
    Init {
        /// Config file to write (its directory receives secrets/ and state/).
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Chain id the signer will sign for.
        #[arg(long, default_value = "test-chain")]
        chain_id: String,
        /// Node's priv_validator_laddr, as tcp://[peer_id@]host:port or unix:///path.
        #[arg(long, default_value = "tcp://127.0.0.1:26658")]
        address: String,
        /// CometBFT protocol version: v0.34, v0.37, v0.38 (v0.39, v0.40), v1.
        #[arg(long, default_value = "v0.38")]
        protocol_version: Dialect,
        /// Import this key (priv_validator_key.json or base64 key file) instead of generating one.
        #[arg(long)]
        import_key: Option<PathBuf>,
        /// Import this state (priv_validator_state.json or tmkms state JSON) instead of starting at height 0.
        #[arg(long)]
        import_state: Option<PathBuf>,
        /// Print the public key in this format.
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        /// Bech32 prefix of the consensus public key.
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
    },
    /// Generate a new consensus key file.
    Keygen {
        /// Where to write the key (base64 seed, mode 0600).
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Import a consensus key (CometBFT priv_validator_key.json or tmkms base64 key file).
    Import {
        /// The key to import.
        source: PathBuf,
        /// Config naming consensus_key_path.
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Replace an existing consensus key file.
        #[arg(long)]
        force: bool,
    },
    /// Print the consensus public key and validator address.
    Pubkey {
        /// Config file (tmkms.toml).
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Output format: bech32, base64, json, hex.
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        /// Bech32 prefix of the consensus public key.
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
    },
    /// Run the signer.
    Start {
        /// Config file (tmkms.toml).
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Create a missing state file at height 0. Only for a new chain: on a
        /// running chain import the node's priv_validator_state.json instead.
        #[arg(long)]
        allow_empty_state: bool,
    },
    /// Inspect or import the double-sign state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Init {
            config,
            chain_id,
            address,
            protocol_version,
            import_key,
            import_state,
            pubkey_format,
            bech32_prefix,
        } => commands::init(commands::InitArgs {
            config,
            chain_id,
            address,
            protocol_version,
            import_key,
            import_state,
            pubkey_format,
            bech32_prefix,
        }),
        Command::Keygen { path, force } => commands::keygen(&path, force),
        Command::Import {
            source,
            config,
            force,
        } => commands::import_key(&source, &config, force),
        Command::Pubkey {
            config,
            pubkey_format,
            bech32_prefix,
        } => commands::pubkey(&config, pubkey_format, &bech32_prefix),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(&config, allow_empty_state),
        Command::State { command } => command.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
