//! One function per subcommand. Errors get operator-facing context here, at
//! the binary's edge; the library's errors already name files and fields.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::config::{
    render_template, Address, Config, TemplateParams, NODE_ACCEPT_WINDOW_SECS,
};
use tmkms_light::keys::{
    import_key_file, ConsensusKey, IdentityKey, PubkeyFormat, PublicKey, WriteMode,
};
use tmkms_light::net::{run_all, Connection, DirectDialer};
use tmkms_light::privval::Dialect;
use tmkms_light::session::SessionConfig;
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::ImportFormat;
use tmkms_light::state::{StateError, StateStore};
use tmkms_light::types::{ChainId, SignState};
use tmkms_light_cli::read_state_json;
use tracing::{info, warn};

#[derive(Debug)]
pub struct InitArgs {
    pub config: PathBuf,
    pub chain_id: String,
    pub address: String,
    pub protocol_version: Dialect,
    pub import_key: Option<PathBuf>,
    pub import_state: Option<PathBuf>,
    pub pubkey_format: PubkeyFormat,
    pub bech32_prefix: String,
}

fn config_dir(config: &Path) -> PathBuf {
    match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The key as `pubkey` prints it, followed by the validator address line.
fn show_pubkey(key: &PublicKey, format: PubkeyFormat, hrp: &str) -> Result<String> {
    let shown = key
        .format(format, hrp)
        .with_context(|| format!("cannot show the key with bech32 prefix {hrp:?}"))?;
    Ok(format!(
        "{shown}\nvalidator address: {}",
        key.validator_address_hex()
    ))
}

fn print_pubkey(key: &PublicKey, format: PubkeyFormat, hrp: &str) -> Result<()> {
    println!("{}", show_pubkey(key, format, hrp)?);
    Ok(())
}

pub fn init(args: InitArgs) -> Result<()> {
    if args.config.exists() {
        bail!(
            "{} already exists; init never overwrites a configuration (remove it or choose another path with -c)",
            args.config.display()
        );
    }
    let chain_id = ChainId::try_from(args.chain_id.as_str())
        .with_context(|| format!("--chain-id {:?}", args.chain_id))?;
    let address = Address::from_str(&args.address)
        .with_context(|| format!("--address {:?}", args.address))?;
    let dir = config_dir(&args.config);
    let params = TemplateParams::new(chain_id, address, args.protocol_version);

    let key = match &args.import_key {
        Some(source) => import_key_file(source)?,
        None => ConsensusKey::generate(),
    };
    let state = match &args.import_state {
        Some(source) => read_state_json(source, ImportFormat::Auto)?,
        None => SignState::default(),
    };
    // Before anything is written: a bad -b must not leave a half-made home.
    let shown = show_pubkey(&key.public_key(), args.pubkey_format, &args.bech32_prefix)?;
    let key_path = dir.join(&params.consensus_key_path);
    let id_path = dir.join(&params.id_key_path);
    let state_path = dir.join(&params.state_file_path);
    let mut created = CreatedFiles::default();
    key.write(&key_path, WriteMode::CreateNew)?;
    created.push(&key_path);
    let identity = IdentityKey::generate();
    identity.write(&id_path, WriteMode::CreateNew)?;
    created.push(&id_path);
    drop(FileStore::create(&state_path, &state)?);
    created.push(&state_path);
    write_new_file(&args.config, render_template(&params).as_bytes())?;
    created.keep();

    eprintln!("wrote {}", args.config.display());
    eprintln!("consensus key: {}", key_path.display());
    eprintln!(
        "identity key: {} (peer id {})",
        dir.join(&params.id_key_path).display(),
        identity.peer_id_hex()
    );
    eprintln!(
        "state: {} at {}",
        dir.join(&params.state_file_path).display(),
        state.position
    );
    println!("{shown}");
    Ok(())
}

/// Files a failed `init` removes again: what this run created, so that a
/// retry (after freeing disk space, say) is not refused by a half-made home.
/// Nothing in them was ever used: the keys signed nothing yet.
#[derive(Debug, Default)]
struct CreatedFiles(Vec<PathBuf>);

impl CreatedFiles {
    fn push(&mut self, path: &Path) {
        self.0.push(path.to_path_buf());
    }

    /// `init` succeeded: keep everything.
    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for CreatedFiles {
    fn drop(&mut self) {
        for path in self.0.iter().rev() {
            match fs::remove_file(path) {
                Ok(()) => warn!(path = %path.display(), "removed after the failed init"),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "could not remove after the failed init; remove it before retrying")
                }
            }
        }
    }
}

fn write_new_file(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()));
    if written.is_err() {
        // Created by us and incomplete: leaving it would block a retry.
        let _ = fs::remove_file(path);
    }
    written
}

pub fn keygen(path: &Path, force: bool) -> Result<()> {
    let key = ConsensusKey::generate();
    let mode = if force {
        WriteMode::Overwrite
    } else {
        WriteMode::CreateNew
    };
    key.write(path, mode)?;
    eprintln!("wrote {}", path.display());
    print_pubkey(&key.public_key(), PubkeyFormat::Base64, "")
}

pub fn import_key(source: &Path, config: &Path, force: bool) -> Result<()> {
    let config = Config::load(config)?;
    let key = import_key_file(source)?;
    let mode = if force {
        WriteMode::Overwrite
    } else {
        WriteMode::CreateNew
    };
    key.write(&config.consensus_key_path, mode)
        .with_context(|| {
            "use --force to replace the existing consensus key (keep a backup of it first)"
        })?;
    eprintln!(
        "imported {} into {}",
        source.display(),
        config.consensus_key_path.display()
    );
    print_pubkey(&key.public_key(), PubkeyFormat::Base64, "")
}

pub fn pubkey(config: &Path, format: PubkeyFormat, hrp: &str) -> Result<()> {
    let config = Config::load(config)?;
    let key = ConsensusKey::load(&config.consensus_key_path)?;
    print_pubkey(&key.public_key(), format, hrp)
}

/// Keep the consensus key out of core dumps and away from same-user
/// debuggers: no core file, and the process is not dumpable (ptrace and
/// /proc/<pid>/mem need CAP_SYS_PTRACE).
fn protect_key_memory() {
    use nix::sys::resource::{setrlimit, Resource};
    let no_core = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    if let Err(e) = no_core {
        warn!(error = %e, "could not disable core dumps; set LimitCORE=0 / ulimit -c 0");
    }
    let not_dumpable = nix::sys::prctl::set_dumpable(false);
    if let Err(e) = not_dumpable {
        warn!(error = %e, "could not mark the process non-dumpable");
    }
    if no_core.is_ok() && not_dumpable.is_ok() {
        info!("key memory: core dumps disabled, process not dumpable");
    }
}

pub fn start(config_path: &Path, allow_empty_state: bool) -> Result<()> {
    protect_key_memory();
    let config = Config::load(config_path)?;
    let key = ConsensusKey::load(&config.consensus_key_path)?;
    let identity = match (&config.id_key_path, config.uses_tcp()) {
        (Some(path), true) => Some(IdentityKey::load(path)?),
        _ => None,
    };
    let mut store = match FileStore::open(&config.state_file_path) {
        Ok(store) => store,
        Err(StateError::Missing { .. }) if allow_empty_state => {
            warn!(
                path = %config.state_file_path.display(),
                "no state file: creating one at height 0 (--allow-empty-state)"
            );
            FileStore::create(&config.state_file_path, &SignState::default())?
        }
        Err(e) => return Err(e.into()),
    };
    let initial = store.load()?.unwrap_or_default();
    let public_key = key.public_key();
    info!(
        chain_id = %config.chain_id,
        pubkey = %public_key.to_base64(),
        address = %public_key.validator_address_hex(),
        state = %initial.position,
        "starting tmkms-softsign {}",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(identity) = &identity {
        info!(peer_id = %identity.peer_id_hex(), "signer identity");
    }
    let policy = ChainPolicy {
        chain_id: config.chain_id.clone(),
        max_height: config.max_height,
        danger_allow_sign_bytes: config.danger_allow_sign_bytes,
    };
    let chain = Arc::new(ChainSigner::open(policy, key, Box::new(store))?);
    let connections = config
        .validator
        .iter()
        .map(|v| Connection {
            address: v.address.clone(),
            session: SessionConfig {
                dialect: v.protocol_version,
                max_frame_bytes: config.max_frame_bytes,
                clock: Some(std::time::Instant::now),
            },
            timeout: v.timeout(),
            max_backoff: v.reconnect_max_backoff(),
        })
        .collect();
    for v in &config.validator {
        if v.reconnect_max_backoff_secs >= NODE_ACCEPT_WINDOW_SECS {
            warn!(
                address = %v.address,
                reconnect_max_backoff_secs = v.reconnect_max_backoff_secs,
                "a starting node waits only {NODE_ACCEPT_WINDOW_SECS} s for its signer; with this backoff cap a node restart can fail. Use 1 or 2"
            );
        }
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    run_all(
        std::sync::Arc::new(DirectDialer),
        chain,
        connections,
        identity.map(|i| i.to_p2p_signing_key()),
        shutdown,
    )
    .context("cannot start connection threads")
}
