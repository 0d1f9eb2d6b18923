//! One function per subcommand. Errors get operator-facing context here, at
//! the binary's edge; the library's errors already name files and fields.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tmkms_light::chain::{ChainPolicy, ChainSigner};
use tmkms_light::config::{render_template, Config, NODE_ACCEPT_WINDOW_SECS};
use tmkms_light::keys::{
    import_key_file, ConsensusKey, IdentityKey, PubkeyFormat, PublicKey, WriteMode,
};
use tmkms_light::net::{run_all, Connection, DirectDialer};
use tmkms_light::session::SessionConfig;
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::ImportFormat;
use tmkms_light::state::StateStore;
use tmkms_light::types::SignState;
use tmkms_light_cli::{
    open_or_create_state, parent_dir, read_state_json, ConfigArg, InitChainArgs, PubkeyOutputArgs,
};
use tracing::{info, warn};

/// `init`: a new home next to the config file.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub chain: InitChainArgs,
    /// Import this key (priv_validator_key.json or base64 key file) instead of generating one.
    #[arg(long)]
    pub import_key: Option<PathBuf>,
    /// Import this state (priv_validator_state.json or tmkms state JSON) instead of starting at height 0.
    #[arg(long)]
    pub import_state: Option<PathBuf>,
    #[command(flatten)]
    pub pubkey: PubkeyOutputArgs,
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
    let config_path = args.config.path();
    if config_path.exists() {
        bail!(
            "{} already exists; init never overwrites a configuration (remove it or choose another path with -c)",
            config_path.display()
        );
    }
    let params = args.chain.template_params()?;
    let dir = parent_dir(config_path);

    let key = match &args.import_key {
        Some(source) => import_key_file(source)?,
        None => ConsensusKey::generate(),
    };
    let state = match &args.import_state {
        Some(source) => read_state_json(source, ImportFormat::Auto)?,
        None => SignState::default(),
    };
    // Before anything is written: a bad -b must not leave a half-made home.
    let shown = show_pubkey(
        &key.public_key(),
        args.pubkey.pubkey_format,
        args.pubkey.hrp(),
    )?;
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
    write_new_file(config_path, render_template(&params).as_bytes())?;
    created.keep();

    eprintln!("wrote {}", config_path.display());
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
    let config = Config::load_for(config, &[])?;
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

pub fn pubkey(config: &Path, output: &PubkeyOutputArgs) -> Result<()> {
    let config = Config::load_for(config, &[])?;
    let key = ConsensusKey::load(&config.consensus_key_path)?;
    print_pubkey(&key.public_key(), output.pubkey_format, output.hrp())
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

/// The `[ha]` reservation, read once to say where it stands (an etcd that
/// is down now only delays signing: every request tries again).
fn open_ha(
    ha: &tmkms_light::config::HaConfig,
    chain_id: &tmkms_light::types::ChainId,
    public_key: &[u8],
) -> Result<tmkms_light_etcd::EtcdWatermark> {
    use tmkms_light::ha::Watermark as _;
    let mut store =
        tmkms_light_etcd::open(ha, chain_id, public_key).context("cannot set up [ha]")?;
    match store.read() {
        Ok(reservation) => info!(
            store = %store.describe(),
            signer_id = %ha.signer_id,
            reserved = %reservation.state.map(|s| s.position.to_string()).unwrap_or_else(|| "nothing yet".into()),
            "high availability on: every new position is reserved in etcd before it is signed"
        ),
        Err(e) => warn!(
            store = %store.describe(),
            error = %e,
            "high availability on, but etcd does not answer yet; nothing is signed until it does"
        ),
    }
    Ok(store)
}

pub fn start(config_path: &Path, allow_empty_state: bool) -> Result<()> {
    protect_key_memory();
    let config = Config::load_for(config_path, &[])?;
    let key = ConsensusKey::load(&config.consensus_key_path)?;
    let identity = match (&config.id_key_path, config.uses_tcp()) {
        (Some(path), true) => Some(IdentityKey::load(path)?),
        _ => None,
    };
    let mut store = if allow_empty_state {
        open_or_create_state(&config.state_file_path)?
    } else {
        FileStore::open(&config.state_file_path)?
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
    let public_key_bytes = *key.public_key().as_bytes();
    let mut chain = ChainSigner::open(policy, key, Box::new(store))?;
    if let Some(ha) = &config.ha {
        chain = chain.shared_with(Box::new(open_ha(ha, &config.chain_id, &public_key_bytes)?));
    }
    if let Some(metrics) = tmkms_light_metrics::serve_config(&config, "softsign")? {
        chain = chain.observed_by(Arc::new(metrics), Some(std::time::Instant::now));
    }
    let chain = Arc::new(chain);
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
        std::sync::Arc::new(DirectDialer {
            busy_poll: config.busy_poll,
        }),
        chain,
        connections,
        identity.map(|i| i.to_p2p_signing_key()),
        shutdown,
    )
    .context("cannot start connection threads")
}
