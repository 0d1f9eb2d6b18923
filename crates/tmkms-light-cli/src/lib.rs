//! Command-line pieces shared by the host binaries (`tmkms-softsign`,
//! `tmkms-light-sgx-runner`, `tmkms-nitro-helper`): the `state` subcommand,
//! which works the same on every provider's state file (enclave-written
//! records carry a tag the host cannot check, but their contents read the
//! same).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tmkms_light::config::Config;
use tmkms_light::enclave::ImportedRecords;
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::{parse_state_json, to_cometbft_json, ImportFormat};
use tmkms_light::types::SignState;

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

/// Largest state JSON file `state import` reads.
const MAX_STATE_JSON_BYTES: u64 = 64 * 1024;

/// `state show|import`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the last signed height/round/step.
    Show {
        /// Config file (tmkms.toml).
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Print CometBFT priv_validator_state.json instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Import CometBFT's priv_validator_state.json or tmkms's state JSON.
    Import {
        /// The state JSON file to import.
        source: PathBuf,
        /// Config file (tmkms.toml).
        #[arg(short = 'c', long, default_value = "tmkms.toml")]
        config: PathBuf,
        /// Input format: auto, cometbft, tmkms.
        #[arg(long, default_value = "auto")]
        format: ImportFormat,
        /// Allow moving the state to a lower height/round/step (dangerous).
        #[arg(long)]
        danger_allow_regression: bool,
    },
}

impl StateCommand {
    pub fn run(self) -> Result<()> {
        match self {
            StateCommand::Show { config, json } => state_show(&config, json),
            StateCommand::Import {
                source,
                config,
                format,
                danger_allow_regression,
            } => state_import(&source, &config, format, danger_allow_regression),
        }
    }
}

/// Read a state JSON file (size-capped: it is operator input that may be the
/// wrong file).
pub fn read_state_json(source: &Path, format: ImportFormat) -> Result<SignState> {
    let len = fs::metadata(source)
        .with_context(|| format!("cannot read {}", source.display()))?
        .len();
    if len > MAX_STATE_JSON_BYTES {
        bail!(
            "{} is {len} bytes; a state JSON file is well under {MAX_STATE_JSON_BYTES} bytes — is this the right file?",
            source.display()
        );
    }
    let text =
        fs::read_to_string(source).with_context(|| format!("cannot read {}", source.display()))?;
    parse_state_json(&text, format).map_err(|e| e.at(source).into())
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

pub fn state_import(
    source: &Path,
    config: &Path,
    format: ImportFormat,
    allow_regression: bool,
) -> Result<()> {
    let config = Config::load(config)?;
    let state = read_state_json(source, format)?;
    let before = FileStore::import_into(&config.state_file_path, &state, allow_regression)?;
    match before {
        Some(before) => eprintln!("state moved from {} to {}", before.position, state.position),
        None => eprintln!("state created at {}", state.position),
    }
    Ok(())
}
