//! `tmkms-softsign`: the tmkms-light signer with its consensus key in a
//! local file. Parses arguments, builds a validated configuration and calls
//! the core library; all policy lives there.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tmkms_light_cli::{Binary, ConfigArg, PubkeyOutputArgs, StateCommand, Targets};

const BINARY: Binary = tmkms_light_cli::binary!(
    "tmkms-softsign",
    "Remote signer for CometBFT validators (software key)",
    Targets::Hidden,
);

#[derive(Debug, Subcommand)]
enum Command {
    /// Create tmkms.toml, a consensus key, an identity key and an empty state.
    #[command(mut_arg("config", |config| config.help("Config file to write (its directory receives secrets/ and state/)")))]
    Init(commands::InitArgs),
    /// Generate a new consensus key file.
    Keygen {
        /// Where to write the key (base64 seed, mode 0600).
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Import a consensus key (CometBFT priv_validator_key.json or tmkms base64 key file).
    #[command(mut_arg("config", |config| config.help("Config naming consensus_key_path")))]
    Import {
        /// The key to import.
        source: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
        /// Replace an existing consensus key file.
        #[arg(long)]
        force: bool,
    },
    /// Print the consensus public key and validator address.
    Pubkey {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: PubkeyOutputArgs,
    },
    /// Run the signer.
    Start {
        #[command(flatten)]
        config: ConfigArg,
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

fn main() -> ExitCode {
    BINARY.main(|command| match command {
        Command::Init(args) => commands::init(args),
        Command::Keygen { path, force } => commands::keygen(&path, force),
        Command::Import {
            source,
            config,
            force,
        } => commands::import_key(&source, config.path(), force),
        Command::Pubkey { config, output } => commands::pubkey(config.path(), &output),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(config.path(), allow_empty_state),
        Command::State { command } => command.run(),
    })
}
