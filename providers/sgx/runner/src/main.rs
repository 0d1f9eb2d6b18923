//! `tmkms-light-sgx-runner`: the host side of the SGX provider. Loads the
//! enclave, keeps its durable state and sealed keys, and plumbs its streams;
//! it never sees a key in the clear.

mod commands;
mod hardware;
mod launcher;
mod settings;
mod streams;

use std::process::ExitCode;

use clap::Subcommand;
use tmkms_light_cli::{Binary, ConfigArg, PubkeyOutputArgs, StateCommand, Targets};

const BINARY: Binary = tmkms_light_cli::binary!(
    "tmkms-light-sgx-runner",
    "Remote signer for CometBFT validators with the key sealed in an Intel SGX enclave",
    Targets::Shown,
);

#[derive(Debug, Subcommand)]
enum Command {
    /// Create tmkms.toml (if missing), generate the consensus and identity keys inside the
    /// enclave, seal them (the consensus key bound to the chain id, sign-bytes flag, protocol
    /// versions and pinned node ids of the config), and create the state file from records the
    /// enclave tagged. With -w/-e/-k also write encrypted backups (a trusted ceremony).
    Init(commands::InitArgs),
    /// Generate an RSA-2048 wrapping key inside the enclave, seal it, and print its public key
    /// (bound into an enclave REPORT) for your cloud KMS to wrap a backup key for.
    CloudWrap(commands::CloudWrapArgs),
    /// Re-seal backed-up keys on this CPU (the consensus key, the identity key, or both).
    Recover(commands::RecoverArgs),
    /// Print the consensus public key (unsealed inside the enclave).
    Pubkey {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: PubkeyOutputArgs,
    },
    /// Inspect the double-sign state (works while the signer runs) or import one (through the
    /// enclave, with the signer stopped).
    #[command(mut_subcommand("import", |import| import
        .about("Import CometBFT's priv_validator_state.json or tmkms's state JSON. The enclave tags the record (it starts only from records it authenticated); stop the signer first")
        .mut_arg("danger_allow_regression", |arg| arg.help("Allow moving the state to a lower height/round/step (dangerous: only at a trusted ceremony, when you know nothing was signed above it)"))))]
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Run the signer.
    Start {
        #[command(flatten)]
        config: ConfigArg,
        /// Refused for SGX: the enclave starts only from a state record it wrote (`init` writes
        /// the first; `state import` makes one from a state JSON).
        #[arg(long, hide = true)]
        allow_empty_state: bool,
    },
}

fn main() -> ExitCode {
    BINARY.main(|command| match command {
        Command::Init(args) => commands::init(args),
        Command::CloudWrap(args) => commands::cloud_wrap(args),
        Command::Recover(args) => commands::recover(args),
        Command::Pubkey { config, output } => commands::pubkey(config.path(), &output),
        Command::Start {
            config,
            allow_empty_state,
        } => commands::start(config.path(), allow_empty_state),
        Command::State { command } => command.run_with(commands::state_import),
    })
}
