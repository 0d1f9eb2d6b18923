//! `tmkms-nitro-helper`: the parent-instance side of the Nitro provider.
//! Keeps the configuration, the KMS-encrypted keys and the durable state,
//! relays the enclave's streams, runs the KMS vsock proxy and supervises the
//! enclave; it never sees a key in the clear.

mod commands;
mod credentials;
mod settings;
mod streams;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tmkms_light::keys::PubkeyFormat;
use tmkms_light::privval::Dialect;

#[derive(Debug, Parser)]
#[command(
    name = "tmkms-nitro-helper",
    version,
    about = "Remote signer for CometBFT validators with the key in an AWS Nitro enclave"
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
    /// Write tmkms.toml and enclave.toml (if missing), have the running enclave generate the
    /// keys and encrypt them with KMS, and save the ciphertexts and the key's attestation.
    Init {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// AWS region of the KMS key.
        #[arg(short = 'a', long)]
        region: String,
        /// KMS key id, ARN or alias.
        #[arg(short = 'k', long)]
        kms_key_id: String,
        /// The enclave's vsock CID.
        #[arg(long)]
        cid: Option<u32>,
        #[arg(long, default_value = "test-chain")]
        chain_id: String,
        /// Node's priv_validator_laddr: tcp://[peer_id@]host:port or unix:///path.
        #[arg(long, default_value = "tcp://127.0.0.1:26658")]
        address: String,
        #[arg(long, default_value = "v0.38")]
        protocol_version: Dialect,
        /// The enclave image, for enclave.toml.
        #[arg(long, default_value = "tmkms-nitro-enclave.eif")]
        eif_path: PathBuf,
        #[arg(short = 'p', long, default_value = "bech32")]
        pubkey_format: PubkeyFormat,
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
    },
    /// Run the signer: serve the enclave's streams and have it decrypt its keys and sign.
    Start {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Refused for Nitro: the enclave starts only from a state record it wrote
        /// (`init` writes the first; `state import` makes one from a state JSON).
        #[arg(long, hide = true)]
        allow_empty_state: bool,
    },
    /// Inspect the double-sign state (works while the signer runs) or import one
    /// (through the enclave, with the signer stopped).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Manage the enclave with nitro-cli.
    Enclave {
        #[command(subcommand)]
        command: EnclaveCommand,
    },
    /// Start the enclave, the KMS proxy and the signer together; stop all on Ctrl-C or when one stops.
    LaunchAll {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
    },
    /// Verify an attestation document (COSE signature, certificate chain to the AWS Nitro
    /// root) and print its PCRs and, for an init attestation, the consensus key.
    Verify {
        /// The document (e.g. secrets/init-attestation.cbor).
        document: PathBuf,
        /// Trust this root certificate (PEM or DER) instead of the pinned AWS Nitro root.
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(short = 'b', long, default_value = "cosmosvalconspub")]
        bech32_prefix: String,
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
    /// Import CometBFT's priv_validator_state.json or tmkms's state JSON. The enclave
    /// writes the record (it starts only from records it authenticated): stop the
    /// signer, run the enclave alone (`enclave run`), then import.
    Import {
        /// The state JSON file to import.
        source: PathBuf,
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Input format: auto, cometbft, tmkms.
        #[arg(long, default_value = "auto")]
        format: tmkms_light::state::import::ImportFormat,
        /// Allow moving the state to a lower height/round/step (dangerous).
        #[arg(long)]
        danger_allow_regression: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EnclaveCommand {
    /// `nitro-cli run-enclave` with enclave.toml.
    Run {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Stay until the enclave stops; terminate it on Ctrl-C.
        #[arg(long)]
        wait: bool,
    },
    /// `nitro-cli describe-enclaves`.
    Info,
    /// Terminate the enclave of enclave.toml's CID.
    Stop {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
    },
    /// Forward the enclave's KMS connections (vsock) to the KMS endpoint.
    VsockProxy {
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
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
        .init();
    let result = match cli.command {
        Command::Init {
            config,
            region,
            kms_key_id,
            cid,
            chain_id,
            address,
            protocol_version,
            eif_path,
            pubkey_format,
            bech32_prefix,
        } => commands::init(commands::InitArgs {
            config,
            region,
            kms_key_id,
            cid,
            chain_id,
            address,
            protocol_version,
            eif_path,
            pubkey_format,
            bech32_prefix,
        }),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(&config, allow_empty_state),
        Command::Enclave { command } => match command {
            EnclaveCommand::Run { config, wait } => commands::enclave_run(&config, wait),
            EnclaveCommand::Info => commands::enclave_info(),
            EnclaveCommand::Stop { config } => commands::enclave_stop(&config),
            EnclaveCommand::VsockProxy { config } => commands::vsock_proxy(&config),
        },
        Command::LaunchAll { config } => commands::launch_all(&config),
        Command::Verify {
            document,
            root,
            bech32_prefix,
        } => commands::verify(&document, root.as_deref(), &bech32_prefix),
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
