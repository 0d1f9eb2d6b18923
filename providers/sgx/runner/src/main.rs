//! `tmkms-light-sgx-runner`: the host side of the SGX provider. Loads the
//! enclave, keeps its durable state and sealed keys, and plumbs its streams;
//! it never sees a key in the clear.

mod commands;
mod hardware;
mod launcher;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tmkms_light::keys::PubkeyFormat;
use tmkms_light::privval::Dialect;

use crate::commands::BackupArgs;
use crate::settings::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "tmkms-light-sgx-runner",
    version,
    about = "Remote signer for CometBFT validators with the key sealed in an Intel SGX enclave"
)]
struct Cli {
    /// Debug logging.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Backup {
    /// Sealed cloud-wrap key (written by `cloud-wrap`).
    #[arg(short = 'w', long = "wrap-key")]
    sealed_wrap_key: Option<PathBuf>,
    /// The backup key your KMS wrapped for the cloud-wrap public key (RSA_AES_KEY_WRAP_SHA_256).
    #[arg(short = 'e', long = "wrapped-backup-key")]
    payload: Option<PathBuf>,
    /// Directory of the encrypted key backups.
    #[arg(short = 'k', long = "backup-dir")]
    backup_dir: Option<PathBuf>,
}

impl From<Backup> for BackupArgs {
    fn from(b: Backup) -> Self {
        Self {
            sealed_wrap_key: b.sealed_wrap_key,
            payload: b.payload,
            backup_dir: b.backup_dir,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Hardware,
    Simulation,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Hardware => Mode::Hardware,
            ModeArg::Simulation => Mode::Simulation,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create tmkms.toml (if missing), generate the consensus and identity keys inside the
    /// enclave, seal them (the consensus key bound to the chain id, sign-bytes flag, protocol
    /// versions and pinned node ids of the config), and create the state file from records the
    /// enclave tagged. With -w/-e/-k also write encrypted backups (a trusted ceremony).
    Init {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        #[arg(long, default_value = "test-chain")]
        chain_id: String,
        /// Node's priv_validator_laddr: tcp://[peer_id@]host:port or unix:///path.
        #[arg(long, default_value = "tcp://127.0.0.1:26658")]
        address: String,
        /// v0.34, v0.37, v0.38 (v0.39, v0.40), v1.
        #[arg(long, default_value = "v0.38")]
        protocol_version: Dialect,
        /// hardware (real SGX) or simulation (TEST secret, no protection).
        #[arg(long, value_enum, default_value = "hardware")]
        mode: ModeArg,
        /// The enclave: .sgxs (hardware) or the host-built tmkms-light-sgx-app (simulation;
        /// default: next to this binary).
        #[arg(long)]
        enclave: Option<PathBuf>,
        /// The enclave's SIGSTRUCT (.sig from sgxs-sign).
        #[arg(long)]
        sigstruct: PathBuf,
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
        #[command(flatten)]
        backup: Backup,
    },
    /// Generate an RSA-2048 wrapping key inside the enclave, seal it, and print its public key
    /// (bound into an enclave REPORT) for your cloud KMS to wrap a backup key for.
    CloudWrap {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Where to write the sealed wrapping key.
        #[arg(short = 'w', long = "wrap-key", default_value = "cloud-wrap.sealed")]
        sealed_wrap_key: PathBuf,
        /// Where to write the public key (PEM; the DER goes next to it as .der).
        #[arg(short = 'o', long = "public-key", default_value = "cloud-wrap.pub.pem")]
        public_key: PathBuf,
        /// Also write a DCAP quote in the Azure attestation JSON shape (needs SGX hardware).
        #[arg(short = 'd', long = "dcap")]
        dcap: Option<PathBuf>,
        /// Before `init` (no tmkms.toml yet): hardware or simulation, as for init.
        #[arg(long, value_enum, requires = "sigstruct")]
        mode: Option<ModeArg>,
        /// Before `init`: the enclave, as for init.
        #[arg(long, requires = "sigstruct")]
        enclave: Option<PathBuf>,
        /// Before `init`: the enclave's SIGSTRUCT, as for init. The simulated CPU
        /// secret is created next to the config, where init will look for it.
        #[arg(long)]
        sigstruct: Option<PathBuf>,
        /// Wrap in a DEBUG enclave or the host simulation, whose memory and keys the host can
        /// read (tests with throwaway keys only).
        #[arg(long)]
        danger_allow_debug: bool,
    },
    /// Re-seal backed-up keys on this CPU (the consensus key, the identity key, or both).
    Recover {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        #[command(flatten)]
        backup: Backup,
        /// Recover the consensus key (default: every backup found in -k).
        #[arg(long)]
        consensus: bool,
        /// Recover the identity key.
        #[arg(long)]
        identity: bool,
        /// Replace existing sealed key files.
        #[arg(long)]
        force: bool,
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
    },
    /// Print the consensus public key (unsealed inside the enclave).
    Pubkey {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
    },
    /// Inspect the double-sign state (works while the signer runs) or import one (through the
    /// enclave, with the signer stopped).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Run the signer.
    Start {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Refused for SGX: the enclave starts only from a state record it wrote (`init` writes
        /// the first; `state import` makes one from a state JSON).
        #[arg(long, hide = true)]
        allow_empty_state: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Print the last signed height/round/step.
    Show {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Print CometBFT priv_validator_state.json instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Import CometBFT's priv_validator_state.json or tmkms's state JSON. The enclave tags the
    /// record (it starts only from records it authenticated); stop the signer first.
    Import {
        /// The state JSON file to import.
        source: PathBuf,
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Input format: auto, cometbft, tmkms.
        #[arg(long, default_value = "auto")]
        format: tmkms_light::state::import::ImportFormat,
        /// Allow moving the state to a lower height/round/step (dangerous: only at a trusted
        /// ceremony, when you know nothing was signed above it).
        #[arg(long)]
        danger_allow_regression: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = if cli.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs redirected to files or
        // journald stay plain text that grep and log shippers can read.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Init {
            config,
            chain_id,
            address,
            protocol_version,
            mode,
            enclave,
            sigstruct,
            pubkey_format,
            bech32_prefix,
            backup,
        } => commands::init(commands::InitArgs {
            config,
            chain_id,
            address,
            protocol_version,
            mode: mode.into(),
            enclave,
            sigstruct,
            pubkey_format,
            bech32_prefix,
            backup: backup.into(),
        }),
        Command::CloudWrap {
            config,
            sealed_wrap_key,
            public_key,
            dcap,
            mode,
            enclave,
            sigstruct,
            danger_allow_debug,
        } => commands::cloud_wrap(commands::CloudWrapArgs {
            config,
            sealed_wrap_key,
            public_key,
            dcap,
            enclave: sigstruct.map(|sigstruct| commands::EnclaveChoice {
                mode: mode.map_or(Mode::Hardware, Mode::from),
                enclave,
                sigstruct,
            }),
            allow_debug: danger_allow_debug,
        }),
        Command::Recover {
            config,
            backup,
            consensus,
            identity,
            force,
            pubkey_format,
            bech32_prefix,
        } => commands::recover(commands::RecoverArgs {
            config,
            backup: backup.into(),
            consensus,
            identity,
            force,
            pubkey_format,
            bech32_prefix,
        }),
        Command::Pubkey {
            config,
            pubkey_format,
            bech32_prefix,
        } => commands::pubkey(&config, pubkey_format, &bech32_prefix),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(&config, allow_empty_state),
        Command::State { command } => match command {
            StateCommand::Show { config, json } => tmkms_light_cli::state_show(&config, json),
            StateCommand::Import {
                source,
                config,
                format,
                danger_allow_regression,
            } => commands::state_import(&source, &config, format, danger_allow_regression),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
