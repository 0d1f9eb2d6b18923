//! The `state` subcommand and the state-file steps every provider's host
//! takes: `state show` works the same on every provider's state file
//! (enclave-written records carry a tag the host cannot check, but their
//! contents read the same); opening the file, and writing what an enclave's
//! `state import` produced.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use tmkms_light::config::Config;
use tmkms_light::enclave::ImportedRecords;
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::{parse_state_json, to_cometbft_json, ImportFormat};
use tmkms_light::state::StateError;
use tmkms_light::types::SignState;
use tracing::warn;

use crate::args::ConfigArg;
use crate::files::read_capped;

/// Largest state JSON file `state import` reads.
const MAX_STATE_JSON_BYTES: u64 = 64 * 1024;

/// `state show|import`. A TEE host routes `import` through its enclave
/// ([`StateCommand::run_with`]) and words its help for that.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the last signed height/round/step.
    Show(StateShowArgs),
    /// Import CometBFT's priv_validator_state.json or tmkms's state JSON.
    Import(StateImportArgs),
}

// `state show`.
#[derive(Debug, Args)]
pub struct StateShowArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print CometBFT priv_validator_state.json instead of a summary.
    #[arg(long)]
    pub json: bool,
}

// `state import`.
#[derive(Debug, Args)]
pub struct StateImportArgs {
    /// The state JSON file to import.
    pub source: PathBuf,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Input format: auto, cometbft, tmkms.
    #[arg(long, default_value = "auto")]
    pub format: ImportFormat,
    /// Allow moving the state to a lower height/round/step (dangerous).
    #[arg(long)]
    pub danger_allow_regression: bool,
}

impl StateCommand {
    /// Run with the host's own state file (softsign).
    pub fn run(self) -> Result<()> {
        self.run_with(|args| state_import(&args))
    }

    /// Run `show` here and `import` with `import` (a TEE host's, through
    /// its enclave).
    pub fn run_with(self, import: impl FnOnce(StateImportArgs) -> Result<()>) -> Result<()> {
        match self {
            StateCommand::Show(args) => state_show(args.config.path(), args.json),
            StateCommand::Import(args) => import(args),
        }
    }
}

/// Read a state JSON file (size-capped: it is operator input that may be the
/// wrong file).
pub fn read_state_json(source: &Path, format: ImportFormat) -> Result<SignState> {
    let bytes = read_capped(source, MAX_STATE_JSON_BYTES, "state JSON file")?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", source.display()))?;
    parse_state_json(&text, format).map_err(|e| e.at(source).into())
}

/// The state file at `path`, opened and locked; `None` if there is none yet
/// (each command decides what a missing file means).
pub fn open_existing_state(path: &Path) -> Result<Option<FileStore>, StateError> {
    match FileStore::open(path) {
        Ok(store) => Ok(Some(store)),
        Err(StateError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The state file at `path`, or a new one at height 0 if there is none
/// (softsign's `start --allow-empty-state`, for a new chain only).
pub fn open_or_create_state(path: &Path) -> Result<FileStore, StateError> {
    match open_existing_state(path)? {
        Some(store) => Ok(store),
        None => {
            warn!(
                path = %path.display(),
                "no state file: creating one at height 0 (--allow-empty-state)"
            );
            FileStore::create(path, &SignState::default())
        }
    }
}

/// Write what an enclave's `state import` produced into the state file at
/// `path`: a new file, or the next record of the existing one. Returns once
/// the write is durable.
pub fn write_imported_state(path: &Path, records: &ImportedRecords) -> Result<()> {
    match records {
        ImportedRecords::Create(records) => {
            FileStore::create_from_records(path, records)
                .with_context(|| format!("creating the state file {}", path.display()))?;
        }
        ImportedRecords::Append(record) => {
            FileStore::open(path)
                .and_then(|mut store| store.write_record(record))
                .with_context(|| format!("writing the imported state into {}", path.display()))?;
        }
    }
    Ok(())
}

pub fn state_show(config: &Path, json: bool) -> Result<()> {
    let config = Config::load(config)?;
    let state = FileStore::peek(&config.state_file_path)?;
    if json {
        println!("{}", to_cometbft_json(&state));
    } else {
        println!("chain id: {}", config.chain_id);
        println!("state file: {}", config.state_file_path.display());
        println!(
            "last signed: height {} round {} step {}",
            state.position.height,
            state.position.round,
            state.position.step.name()
        );
        println!(
            "sign bytes: {}",
            if state.sign_bytes.is_empty() {
                "unknown".to_owned()
            } else {
                format!("{} bytes", state.sign_bytes.len())
            }
        );
    }
    Ok(())
}

/// `state import` into a host-written state file (softsign).
fn state_import(args: &StateImportArgs) -> Result<()> {
    let config = Config::load(args.config.path())?;
    let state = read_state_json(&args.source, args.format)?;
    let before = FileStore::import_into(
        &config.state_file_path,
        &state,
        args.danger_allow_regression,
    )?;
    match before {
        Some(before) => eprintln!("state moved from {} to {}", before.position, state.position),
        None => eprintln!("state created at {}", state.position),
    }
    Ok(())
}
