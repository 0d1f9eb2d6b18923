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
    LaunchAll {
        #[command(flatten)]
        config: ConfigArg,
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
    /// `nitro-cli run-enclave` with enclave.toml.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Stay until the enclave stops; terminate it on Ctrl-C.
        #[arg(long)]
        wait: bool,
    },
    /// `nitro-cli describe-enclaves`.
    Info,
    /// Terminate the enclave of enclave.toml's CID.
    Stop {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Forward the enclave's KMS connections (vsock) to the KMS endpoint.
    VsockProxy {
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn main() -> ExitCode {
    BINARY.main(|command| match command {
        Command::Init(args) => commands::init(args),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(config.path(), allow_empty_state),
        Command::Enclave { command } => match command {
            EnclaveCommand::Run { config, wait } => commands::enclave_run(config.path(), wait),
            EnclaveCommand::Info => commands::enclave_info(),
            EnclaveCommand::Stop { config } => commands::enclave_stop(config.path()),
            EnclaveCommand::VsockProxy { config } => commands::vsock_proxy(config.path()),
        },
        Command::LaunchAll { config } => commands::launch_all(config.path()),
        Command::Verify {
            document,
            root,
            prefix,
        } => commands::verify(&document, root.as_deref(), &prefix.bech32_prefix),
        Command::State { command } => command.run_with(commands::state_import),
    })
}
