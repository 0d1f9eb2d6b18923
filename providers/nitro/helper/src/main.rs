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

use clap::Subcommand;
use tmkms_light_cli::{Bech32PrefixArg, Binary, ConfigArg, StateCommand, Targets};

const BINARY: Binary = tmkms_light_cli::binary!(
    "tmkms-nitro-helper",
    "Remote signer for CometBFT validators with the key in an AWS Nitro enclave",
    Targets::Shown,
);

#[derive(Debug, Subcommand)]
enum Command {
    /// Write tmkms.toml and enclave.toml (if missing), have the running enclave generate the
    /// keys and encrypt them with KMS, and save the ciphertexts and the key's attestation.
    Init(commands::InitArgs),
    /// Run the signer: serve the enclave's streams and have it decrypt its keys and sign.
    Start {
        #[command(flatten)]
        config: ConfigArg,
        /// The enclave's CID, instead of enclave_cid in [nitro].
        #[arg(long)]
        cid: Option<u32>,
        /// Refused for Nitro: the enclave starts only from a state record it wrote
        /// (`init` writes the first; `state import` makes one from a state JSON).
        #[arg(long, hide = true)]
        allow_empty_state: bool,
    },
    /// Inspect the double-sign state (works while the signer runs) or import one
    /// (through the enclave, with the signer stopped).
    #[command(mut_subcommand("import", |import| import.about("Import CometBFT's priv_validator_state.json or tmkms's state JSON. The enclave writes the record (it starts only from records it authenticated): stop the signer, run the enclave alone (`enclave run`), then import")))]
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
    #[command(mut_arg("config", |config| config.visible_short_alias('t').visible_alias("tmkms-config")))]
    LaunchAll {
        #[command(flatten)]
        config: ConfigArg,
        /// The enclave.toml to run the enclave with, instead of enclave_config_path in [nitro].
        #[arg(short = 'e', long = "enclave-config")]
        enclave_config: Option<PathBuf>,
    },
    /// Verify an attestation document (COSE signature, certificate chain to the AWS Nitro
    /// root) and print its PCRs and, for an init attestation, the consensus key.
    Verify {
        /// The document (e.g. secrets/init-attestation.cbor).
        document: PathBuf,
        /// Trust this root certificate (PEM or DER) instead of the pinned AWS Nitro root.
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        prefix: Bech32PrefixArg,
    },
}

#[derive(Debug, Subcommand)]
enum EnclaveCommand {
    /// `nitro-cli run-enclave` with enclave.toml, or without a tmkms.toml with the flags.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Stay until the enclave stops; terminate it on Ctrl-C.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        settings: commands::EnclaveRunArgs,
    },
    /// `nitro-cli describe-enclaves`.
    Info,
    /// Terminate the enclave of enclave.toml's CID (or the one --cid names).
    Stop {
        #[command(flatten)]
        config: ConfigArg,
        /// The enclave to terminate: its CID, or its enclave id (i-…-enc…). Without it and
        /// without a tmkms.toml, every enclave is terminated.
        #[arg(long)]
        cid: Option<String>,
    },
    /// Forward the enclave's KMS connections (vsock) to the KMS endpoint.
    VsockProxy {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        settings: commands::VsockProxyArgs,
    },
}

fn main() -> ExitCode {
    BINARY.main(|command| match command {
        Command::Init(args) => commands::init(args),
        Command::Start {
            config,
            cid,
            allow_empty_state,
        } => commands::start(config.path(), cid, allow_empty_state),
        Command::Enclave { command } => match command {
            EnclaveCommand::Run {
                config,
                wait,
                settings,
            } => commands::enclave_run(config.path(), wait, &settings),
            EnclaveCommand::Info => commands::enclave_info(),
            EnclaveCommand::Stop { config, cid } => {
                commands::enclave_stop(config.path(), cid.as_deref())
            }
            EnclaveCommand::VsockProxy { config, settings } => {
                commands::vsock_proxy(config.path(), &settings)
            }
        },
        Command::LaunchAll {
            config,
            enclave_config,
        } => commands::launch_all(config.path(), enclave_config.as_deref()),
        Command::Verify {
            document,
            root,
            prefix,
        } => commands::verify(&document, root.as_deref(), &prefix.bech32_prefix),
        Command::State { command } => command.run_with(commands::state_import),
    })
}
