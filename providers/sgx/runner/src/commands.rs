//! The runner's commands. Keys are generated, sealed, backed up, recovered
//! and used only inside the enclave; the runner moves sealed blobs, backups
//! and state records between files and the enclave.
//!
//! The enclave is the barrier for everything that matters: it seals the
//! consensus key bound to the policy of the init ceremony, tags every state
//! record, and starts only from records it tagged. The runner's own checks
//! (the policy copy, the connection count) only turn an honest operator's
//! mistake into a clear message before the enclave is launched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tmkms_light::config::{render_template, Address, Config};
use tmkms_light::enclave::{BoundPolicy, EnclaveSettings, ImportedRecords};
use tmkms_light::keys::{write_secret_file, PubkeyFormat, PublicKey, WriteMode};
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::to_cometbft_json;
use tmkms_light::state::wire::{pair_from_wire, slots_to_wire};
use tmkms_light_cli::{
    open_existing_state, parent_dir, read_capped, write_config_if_missing, ConfigArg,
    InitChainArgs, PubkeyOutputArgs, StateImportArgs,
};
use tmkms_light_sgx_protocol::{
    KeySet, Request, Response, WrappedBackupKey, MAX_VALIDATOR_CONNECTIONS,
};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::hardware::{azure_attest_request, Dcap};
use crate::launcher::{Enclave, Plumbing};
use crate::settings::{render_section, Mode, SgxSettings};

/// Default paths `init` writes, relative to the config file.
pub const SEALED_CONSENSUS_KEY_PATH: &str = "secrets/consensus-key.sealed";
pub const SEALED_ID_KEY_PATH: &str = "secrets/id-key.sealed";
/// Where the enclave and its SIGSTRUCT are when no flag names them,
/// relative to the config file: the original tmkms-light's README has the
/// `.sgxs` and `.sig` placed in `enclave/` next to `tmkms.toml`.
pub const DEFAULT_ENCLAVE_PATH: &str = "enclave/tmkms-light-sgx-app.sgxs";
pub const DEFAULT_SIGSTRUCT_PATH: &str = "enclave/tmkms-light-sgx-app.sig";
/// File names of the backups in a `-k` directory.
pub const CONSENSUS_BACKUP_FILE: &str = "consensus-key.backup";
pub const IDENTITY_BACKUP_FILE: &str = "id-key.backup";

/// Largest sealed blob or backup file read.
const MAX_BLOB_FILE: u64 = 64 * 1024;

fn read_blob(path: &Path, what: &str) -> Result<Vec<u8>> {
    Ok(read_capped(path, MAX_BLOB_FILE, what)?)
}

fn write_new_secret(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mode = if force {
        WriteMode::Overwrite
    } else {
        WriteMode::CreateNew
    };
    write_secret_file(path, bytes, mode).with_context(|| format!("writing {}", path.display()))
}

fn show_key(bytes: Option<&[u8]>, format: PubkeyFormat, hrp: &str) -> Result<String> {
    let bytes = bytes.context("the enclave did not return the public key")?;
    let key = PublicKey(
        bytes
            .try_into()
            .context("the enclave returned a public key of the wrong length")?,
    );
    key.format(format, hrp)
        .with_context(|| format!("-b {hrp:?} is not a valid bech32 prefix"))
}

/// The runner's plaintext copy of the policy bound to the sealed consensus
/// key (`secrets/consensus-key.policy.json` next to
/// `secrets/consensus-key.sealed`). Only for telling an honest operator
/// which setting changed: the enclave does not read it, it refuses to
/// unseal the key for any other policy.
pub fn policy_path(config: &Config) -> PathBuf {
    config.consensus_key_path.with_extension("policy.json")
}

fn write_policy(config: &Config, policy: &BoundPolicy) -> Result<()> {
    let path = policy_path(config);
    let mut json = serde_json::to_vec_pretty(policy).context("encoding the bound policy")?;
    json.push(b'\n');
    write_secret_file(&path, &json, WriteMode::Overwrite)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "bound policy: {} (digest {})",
        path.display(),
        policy.digest_hex()
    );
    Ok(())
}

/// The policy of `config`, checked against the copy `init` kept, so that a
/// changed `tmkms.toml` is named field by field before the enclave refuses
/// it.
fn configured_policy(config: &Config, config_path: &Path) -> Result<BoundPolicy> {
    let policy = BoundPolicy::from_config(config);
    let path = policy_path(config);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bound: BoundPolicy = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a bound policy copy", path.display()))?;
            if let Err(e) = bound.check(&policy) {
                bail!(
                    "{}: {e}\n(the policy bound to the key at init is recorded in {}; the enclave refuses to unseal the key under any other, so a new chain id or policy needs `init` in a new home)",
                    config_path.display(),
                    path.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => warn!(
            path = %path.display(),
            "no copy of the policy bound at init; the enclave checks the settings itself"
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok(policy)
}

fn check_connection_count(config: &Config, config_path: &Path) -> Result<()> {
    let n = config.validator.len();
    if n > MAX_VALIDATOR_CONNECTIONS {
        bail!(
            "{}: {n} [[validator]] tables; the SGX enclave serves at most {MAX_VALIDATOR_CONNECTIONS} connections (a validator and one sentry: its thread count and heap are sized for that, see docs/sgx-build.md). Remove the extra tables",
            config_path.display()
        );
    }
    Ok(())
}

/// Backup inputs: `-w`, `-e`, `-k` together or not at all.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// Sealed cloud-wrap key (written by `cloud-wrap`).
    #[arg(short = 'w', long = "wrap-key")]
    pub sealed_wrap_key: Option<PathBuf>,
    /// The backup key your KMS wrapped for the cloud-wrap public key (RSA_AES_KEY_WRAP_SHA_256).
    #[arg(short = 'e', long = "wrapped-backup-key")]
    pub payload: Option<PathBuf>,
    /// Directory of the encrypted key backups.
    #[arg(short = 'k', long = "backup-dir")]
    pub backup_dir: Option<PathBuf>,
}

impl BackupArgs {
    fn resolve(&self) -> Result<Option<(WrappedBackupKey, PathBuf)>> {
        match (&self.sealed_wrap_key, &self.payload, &self.backup_dir) {
            (None, None, None) => Ok(None),
            (Some(w), Some(e), Some(k)) => Ok(Some((
                WrappedBackupKey {
                    sealed_wrap_key: read_blob(w, "sealed cloud-wrap key (-w)")?,
                    payload: read_blob(e, "wrapped backup key (-e)")?,
                },
                k.clone(),
            ))),
            _ => bail!(
                "cloud backup needs all of -w (sealed wrap key from cloud-wrap), -e (the backup key your KMS wrapped for it) and -k (backup directory)"
            ),
        }
    }
}

/// `--mode` on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
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

/// `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub chain: InitChainArgs,
    /// hardware (real SGX) or simulation (TEST secret, no protection).
    #[arg(long, value_enum, default_value = "hardware")]
    pub mode: ModeArg,
    /// The enclave: .sgxs (hardware; default: enclave/tmkms-light-sgx-app.sgxs next to the
    /// config) or the host-built tmkms-light-sgx-app (simulation; default: next to this binary).
    #[arg(long)]
    pub enclave: Option<PathBuf>,
    /// The enclave's SIGSTRUCT (.sig from sgxs-sign). Default: the .sig next to --enclave, or
    /// enclave/tmkms-light-sgx-app.sig next to the config.
    #[arg(long)]
    pub sigstruct: Option<PathBuf>,
    #[command(flatten)]
    pub pubkey: PubkeyOutputArgs,
    #[command(flatten)]
    pub backup: BackupArgs,
}

/// The host build of the enclave next to this binary (simulation default).
fn sibling_enclave() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tmkms-light-sgx-app")))
        .unwrap_or_else(|| PathBuf::from("tmkms-light-sgx-app"))
}

/// The enclave `--enclave` names, or the default of `mode`: the host build
/// next to this binary (simulation), [`DEFAULT_ENCLAVE_PATH`] next to the
/// config (hardware).
fn enclave_path(mode: Mode, enclave: Option<&Path>, config_path: &Path) -> Result<PathBuf> {
    match (enclave, mode) {
        (Some(path), _) => absolute(path),
        (None, Mode::Simulation) => Ok(sibling_enclave()),
        (None, Mode::Hardware) => beside_config(config_path, DEFAULT_ENCLAVE_PATH),
    }
}

/// The SIGSTRUCT `--sigstruct` names; else the `.sig` next to the enclave
/// `--enclave` names (where the EDP runner looks for it); else
/// [`DEFAULT_SIGSTRUCT_PATH`] next to the config.
fn sigstruct_path(
    sigstruct: Option<&Path>,
    enclave: Option<&Path>,
    config_path: &Path,
) -> Result<PathBuf> {
    match (sigstruct, enclave) {
        (Some(path), _) => absolute(path),
        (None, Some(enclave)) => absolute(&enclave.with_extension("sig")),
        (None, None) => beside_config(config_path, DEFAULT_SIGSTRUCT_PATH),
    }
}

/// `rel` in the directory of the config file, as an absolute path.
fn beside_config(config_path: &Path, rel: &str) -> Result<PathBuf> {
    Ok(parent_dir(&absolute(config_path)?).join(rel))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

pub fn init(args: InitArgs) -> Result<()> {
    let config_path = args.config.path();
    let mode = Mode::from(args.mode);
    write_config_if_missing(config_path, || {
        let mut params = args.chain.template_params()?;
        params.consensus_key_path = PathBuf::from(SEALED_CONSENSUS_KEY_PATH);
        params.id_key_path = PathBuf::from(SEALED_ID_KEY_PATH);
        let enclave = enclave_path(mode, args.enclave.as_deref(), config_path)?;
        let sigstruct = sigstruct_path(
            args.sigstruct.as_deref(),
            args.enclave.as_deref(),
            config_path,
        )?;
        // Check the inputs before writing anything, so a failed init leaves
        // no half-made home behind.
        for (what, path) in [("--enclave", &enclave), ("--sigstruct", &sigstruct)] {
            if !path.is_file() {
                bail!("{what} {}: no such file (by default the enclave and its SIGSTRUCT are {DEFAULT_ENCLAVE_PATH} and {DEFAULT_SIGSTRUCT_PATH} next to the config)", path.display());
            }
        }
        Ok(render_template(&params) + &render_section(mode, &enclave, &sigstruct))
    })?;
    let (config, settings) = load(config_path)?;
    if config.consensus_key_path.exists() {
        bail!(
            "{} already exists; init never replaces a key (use recover, or move it away first)",
            config.consensus_key_path.display()
        );
    }
    if config.state_file_path.exists() {
        bail!(
            "{} already exists; init makes a new key, and the enclave starts only from state records tagged under its own key. Move the file aside; to carry its height over, `state import` it (as priv_validator_state.json) after init",
            config.state_file_path.display()
        );
    }
    check_connection_count(&config, config_path)?;
    if settings.mode == Mode::Simulation {
        ensure_sim_cpu_secret(&settings.sim_cpu_secret_path)?;
    }
    let backup = args.backup.resolve()?;
    // The trusted ceremony: what this configuration enforces is bound to the
    // key now, and cannot be changed by editing tmkms.toml later.
    let policy = BoundPolicy::from_config(&config);

    let mut enclave = Enclave::launch(&settings, Plumbing::default())?;
    let response = enclave.request(&Request::Generate {
        backup: backup.as_ref().map(|(wrapped, _)| wrapped.clone()),
        policy: policy.clone(),
    });
    let _ = enclave.stop();
    let Response::Keys(keys) = response? else {
        bail!("the enclave answered Generate with something else");
    };
    let shown = show_key(
        keys.consensus_public_key.as_deref(),
        args.pubkey.pubkey_format,
        args.pubkey.hrp(),
    )?;
    let initial = keys
        .initial_state
        .as_ref()
        .context("the enclave returned no initial state records")?;
    let records = pair_from_wire(initial).context("initial state record")?;
    store_keys(&config, &keys, false)?;
    write_policy(&config, &policy)?;
    if let Some((_, dir)) = &backup {
        for (name, blob) in [
            (CONSENSUS_BACKUP_FILE, &keys.consensus_backup),
            (IDENTITY_BACKUP_FILE, &keys.identity_backup),
        ] {
            let blob = blob.as_deref().context("the enclave returned no backup")?;
            write_new_secret(&dir.join(name), blob, false)?;
            eprintln!("backup: {}", dir.join(name).display());
        }
    }
    drop(
        FileStore::create_from_records(&config.state_file_path, &records).with_context(|| {
            format!(
                "creating the state file {}",
                config.state_file_path.display()
            )
        })?,
    );
    eprintln!(
        "state: {} at height 0 (records tagged by the enclave)",
        config.state_file_path.display()
    );
    println!("{shown}");
    Ok(())
}

fn store_keys(config: &Config, keys: &KeySet, force: bool) -> Result<()> {
    if let Some(sealed) = &keys.sealed_consensus_key {
        write_new_secret(&config.consensus_key_path, sealed, force)?;
        eprintln!(
            "sealed consensus key: {}",
            config.consensus_key_path.display()
        );
    }
    if let Some(sealed) = &keys.sealed_identity_key {
        let path = config
            .id_key_path
            .clone()
            .unwrap_or_else(|| parent_dir(&config.consensus_key_path).join("id-key.sealed"));
        write_new_secret(&path, sealed, force)?;
        eprintln!("sealed identity key: {}", path.display());
    }
    Ok(())
}

/// The simulated CPU's TEST secret: created once, 0600.
fn ensure_sim_cpu_secret(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut *secret);
    let text = Zeroizing::new(hex::encode(*secret) + "\n");
    write_new_secret(path, text.as_bytes(), false)?;
    warn!(path = %path.display(), "created a TEST secret for the SGX simulation; keys sealed with it are NOT protected by hardware");
    Ok(())
}

fn load(config_path: &Path) -> Result<(Config, SgxSettings)> {
    let config = Config::load_for(config_path, &["sgx"])?;
    tmkms_light_cli::warn_settings_tee_hosts_ignore(&config);
    tmkms_light_cli::refuse_settings_tee_hosts_lack(&config, config_path, "SGX")?;
    let settings = SgxSettings::from_section(config.provider_section("sgx"), config_path)?;
    Ok((config, settings))
}

/// The enclave to run when there is no `tmkms.toml` yet (`--mode`,
/// `--enclave`, `--sigstruct`, with the defaults of `init`).
#[derive(Debug)]
pub struct EnclaveChoice {
    pub mode: Mode,
    pub enclave: Option<PathBuf>,
    pub sigstruct: Option<PathBuf>,
}

/// `cloud-wrap`.
#[derive(Debug, clap::Args)]
pub struct CloudWrapArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Where to write the sealed wrapping key (-s: the original tmkms-light's flag).
    #[arg(
        short = 'w',
        long = "wrap-key",
        visible_short_alias = 's',
        default_value = "cloud-wrap.sealed"
    )]
    pub sealed_wrap_key: PathBuf,
    /// Where to write the public key (PEM; the DER goes next to it as .der).
    #[arg(short = 'o', long = "public-key", default_value = "cloud-wrap.pub.pem")]
    pub public_key: PathBuf,
    /// Also get a DCAP quote, in the Azure attestation JSON shape (needs SGX hardware):
    /// `-d` alone prints it instead of the public key (as the original tmkms-light did),
    /// `--dcap FILE` writes it to FILE.
    #[arg(
        short = 'd',
        long = "dcap",
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = DCAP_TO_STDOUT
    )]
    pub dcap: Option<PathBuf>,
    /// Before `init` (no tmkms.toml yet): hardware or simulation, as for init.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Before `init`: the enclave, as for init (default: enclave/tmkms-light-sgx-app.sgxs next
    /// to the config).
    #[arg(short = 'e', long)]
    pub enclave: Option<PathBuf>,
    /// Before `init`: the enclave's SIGSTRUCT, as for init (default: the .sig next to the
    /// enclave). The simulated CPU secret is created next to the config, where init will look
    /// for it.
    #[arg(long)]
    pub sigstruct: Option<PathBuf>,
    /// Wrap in a DEBUG enclave or the host simulation, whose memory and keys the host can
    /// read (tests with throwaway keys only).
    #[arg(long)]
    pub danger_allow_debug: bool,
}

/// The `-d` value that means "print the quote" (`-d` with no file).
const DCAP_TO_STDOUT: &str = "-";

impl CloudWrapArgs {
    /// The enclave to run for the first cloud-wrap, which comes before
    /// `init` writes the config: the one `--mode`/`--enclave`/`--sigstruct`
    /// name, or with no config yet the defaults of `init`.
    fn enclave_choice(&self, config_exists: bool) -> Option<EnclaveChoice> {
        let named = self.mode.is_some() || self.enclave.is_some() || self.sigstruct.is_some();
        (named || !config_exists).then(|| EnclaveChoice {
            mode: self.mode.map_or(Mode::Hardware, Mode::from),
            enclave: self.enclave.clone(),
            sigstruct: self.sigstruct.clone(),
        })
    }
}

/// The `[sgx]` settings `init` would write into `config_path` for `choice`,
/// so that a cloud-wrap before `init` runs the same enclave on the same
/// (simulated) CPU secret as everything after it.
fn settings_for(choice: &EnclaveChoice, config_path: &Path) -> Result<SgxSettings> {
    let enclave = enclave_path(choice.mode, choice.enclave.as_deref(), config_path)?;
    let sigstruct = sigstruct_path(
        choice.sigstruct.as_deref(),
        choice.enclave.as_deref(),
        config_path,
    )?;
    let text = render_section(choice.mode, &enclave, &sigstruct);
    let table: toml::Table = toml::from_str(&text).context("rendering the [sgx] settings")?;
    let section = table
        .get("sgx")
        .and_then(toml::Value::as_table)
        .context("rendering the [sgx] settings")?;
    Ok(SgxSettings::from_section(
        Some(section),
        &absolute(config_path)?,
    )?)
}

pub fn cloud_wrap(args: CloudWrapArgs) -> Result<()> {
    let config_path = args.config.path();
    let config_exists = config_path.exists();
    let settings = match (args.enclave_choice(config_exists), config_exists) {
        (None, _) => load(config_path)?.1,
        (Some(choice), false) => settings_for(&choice, config_path)?,
        (Some(_), true) => bail!(
            "{} exists and names the enclave: drop --mode/--enclave/--sigstruct (they are for a cloud-wrap before init)",
            config_path.display()
        ),
    };
    if args.dcap.is_some() && settings.mode == Mode::Simulation {
        bail!("-d (DCAP quote) needs SGX hardware and the DCAP quoting library; the simulation has no quoting enclave. Run without -d to get the public key and the (simulated) REPORT");
    }
    if settings.mode == Mode::Simulation {
        // A new (simulated) CPU has no secret yet: cloud-wrap is the first
        // command there, before recover.
        ensure_sim_cpu_secret(&settings.sim_cpu_secret_path)?;
    }
    // -d: the REPORT is made for the quoting enclave, which quotes it after.
    let dcap = args.dcap.as_ref().map(|_| Dcap::connect()).transpose()?;
    let target_info = dcap.as_ref().map(|qe| qe.target_info().to_vec());
    let mut enclave = Enclave::launch(&settings, Plumbing::default())?;
    let response = enclave.request(&Request::CloudWrap {
        target_info,
        allow_debug: args.danger_allow_debug,
    });
    let _ = enclave.stop();
    let Response::CloudWrap {
        sealed_wrap_key,
        public_key_der,
        public_key_pem,
        report,
    } = response?
    else {
        bail!("the enclave answered CloudWrap with something else");
    };
    write_new_secret(&args.sealed_wrap_key, &sealed_wrap_key, false)?;
    std::fs::write(&args.public_key, public_key_pem.as_bytes())
        .with_context(|| format!("writing {}", args.public_key.display()))?;
    let der_path = args.public_key.with_extension("der");
    std::fs::write(&der_path, &public_key_der)
        .with_context(|| format!("writing {}", der_path.display()))?;
    let report_path = args.sealed_wrap_key.with_extension("report");
    std::fs::write(&report_path, &report)
        .with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!("sealed wrap key: {}", args.sealed_wrap_key.display());
    eprintln!(
        "public key: {} (DER: {}); import it into your KMS as an RSA_AES_KEY_WRAP_SHA_256 wrapping key",
        args.public_key.display(),
        der_path.display()
    );
    eprintln!(
        "enclave report (binds SHA-256 of the DER public key): {}",
        report_path.display()
    );
    if args.dcap.is_none() {
        eprintln!(
            "note: without -d this REPORT is made for no target enclave, so no one can check its MAC (not even the quoting enclave): it proves nothing about where the key lives. Run cloud-wrap -d on the SGX machine for a DCAP quote, and have the verifier check MRSIGNER, ISVPRODID, ISVSVN, ATTRIBUTES DEBUG = 0 and REPORTDATA[0..32] = SHA-256 of the DER public key (docs/sgx-build.md) before wrapping a backup key for it"
        );
    }
    let mut printed = public_key_pem;
    if let (Some(path), Some(qe)) = (&args.dcap, &dcap) {
        let quote = qe.quote(&report)?;
        let request = serde_json::to_string_pretty(&azure_attest_request(&quote, &public_key_der))?;
        if path.as_os_str() == DCAP_TO_STDOUT {
            printed = request + "\n";
        } else {
            std::fs::write(path, request).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "DCAP quote as an Azure Attestation AttestSgxEnclave request body: {}",
                path.display()
            );
        }
    }
    print!("{printed}");
    Ok(())
}

/// `recover`.
#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub backup: BackupArgs,
    /// Recover the consensus key only (-r: the original tmkms-light's flag; default: every
    /// backup found in -k).
    #[arg(short = 'r', long)]
    pub consensus: bool,
    /// Recover the identity key.
    #[arg(long)]
    pub identity: bool,
    /// Replace existing sealed key files.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pubkey: PubkeyOutputArgs,
}

pub fn recover(args: RecoverArgs) -> Result<()> {
    let (config, settings) = load(args.config.path())?;
    check_connection_count(&config, args.config.path())?;
    let (wrapped, dir) = args
        .backup
        .resolve()?
        .context("recover needs -w, -e and -k")?;
    // A trusted ceremony like init: the recovered key is bound to the policy
    // of this configuration.
    let policy = BoundPolicy::from_config(&config);
    let (want_consensus, want_identity) = match (args.consensus, args.identity) {
        (false, false) => (true, dir.join(IDENTITY_BACKUP_FILE).exists()),
        chosen => chosen,
    };
    let read_backup = |wanted: bool, name: &str| -> Result<Option<Vec<u8>>> {
        wanted
            .then(|| read_blob(&dir.join(name), "backup"))
            .transpose()
    };
    let consensus_backup = read_backup(want_consensus, CONSENSUS_BACKUP_FILE)?;
    let identity_backup = read_backup(want_identity, IDENTITY_BACKUP_FILE)?;
    if !args.force {
        if want_consensus && config.consensus_key_path.exists() {
            bail!(
                "{} exists; pass --force to replace it with the recovered key",
                config.consensus_key_path.display()
            );
        }
        if let (true, Some(path)) = (want_identity, &config.id_key_path) {
            if path.exists() {
                bail!(
                    "{} exists; pass --force to replace it with the recovered key",
                    path.display()
                );
            }
        }
    }
    if settings.mode == Mode::Simulation {
        ensure_sim_cpu_secret(&settings.sim_cpu_secret_path)?;
    }
    let mut enclave = Enclave::launch(&settings, Plumbing::default())?;
    let response = enclave.request(&Request::Recover {
        backup: wrapped,
        consensus_backup,
        identity_backup,
        policy: policy.clone(),
    });
    let _ = enclave.stop();
    let Response::Keys(keys) = response? else {
        bail!("the enclave answered Recover with something else");
    };
    store_keys(&config, &keys, args.force)?;
    if keys.sealed_consensus_key.is_some() {
        write_policy(&config, &policy)?;
        if !config.state_file_path.exists() {
            eprintln!(
                "no state file at {}: before start, import the last state this validator signed (`state import <priv_validator_state.json>`), or copy the state file of the old machine",
                config.state_file_path.display()
            );
        }
    }
    if keys.consensus_public_key.is_some() {
        println!(
            "{}",
            show_key(
                keys.consensus_public_key.as_deref(),
                args.pubkey.pubkey_format,
                args.pubkey.hrp()
            )?
        );
    }
    if let Some(identity) = keys.identity_public_key.as_deref() {
        let key = PublicKey(identity.try_into().context("identity key length")?);
        println!("identity peer id: {}", key.peer_id_hex());
    }
    Ok(())
}

pub fn pubkey(config_path: &Path, output: &PubkeyOutputArgs) -> Result<()> {
    let (config, settings) = load(config_path)?;
    let policy = configured_policy(&config, config_path)?;
    let sealed_consensus_key = read_blob(&config.consensus_key_path, "sealed consensus key")?;
    let sealed_identity_key = match &config.id_key_path {
        Some(path) if path.exists() => Some(read_blob(path, "sealed identity key")?),
        _ => None,
    };
    let mut enclave = Enclave::launch(&settings, Plumbing::default())?;
    let response = enclave.request(&Request::PublicKeys {
        sealed_consensus_key,
        sealed_identity_key,
        policy,
    });
    let _ = enclave.stop();
    let Response::Keys(keys) = response? else {
        bail!("the enclave answered PublicKeys with something else");
    };
    println!(
        "{}",
        show_key(
            keys.consensus_public_key.as_deref(),
            output.pubkey_format,
            output.hrp()
        )?
    );
    if let Some(identity) = keys.identity_public_key.as_deref() {
        let key = PublicKey(identity.try_into().context("identity key length")?);
        eprintln!("identity peer id: {}", key.peer_id_hex());
    }
    Ok(())
}

pub fn start(config_path: &Path, allow_empty_state: bool) -> Result<()> {
    if allow_empty_state {
        bail!(
            "--allow-empty-state is not available for SGX: the enclave starts only from a state record it wrote itself, so a host cannot reset it by handing over an empty file. `init` writes the first record; to start at a known height, `state import` it through the enclave"
        );
    }
    let (config, settings) = load(config_path)?;
    check_connection_count(&config, config_path)?;
    configured_policy(&config, config_path)?;
    let sealed_consensus_key = read_blob(&config.consensus_key_path, "sealed consensus key")?;
    let sealed_identity_key = match (&config.id_key_path, config.uses_tcp()) {
        (Some(path), true) => Some(read_blob(path, "sealed identity key")?),
        _ => None,
    };
    let Some(store) = open_existing_state(&config.state_file_path)? else {
        bail!(
            "state file {} does not exist. The enclave starts only from a state record it wrote: restore the state file this signer wrote (never an older copy), or import the last state this validator signed through the enclave with `tmkms-light-sgx-runner state import <priv_validator_state.json> -c {}`",
            config.state_file_path.display(),
            config_path.display()
        );
    };
    let node_sockets = config
        .validator
        .iter()
        .filter_map(|v| match &v.address {
            Address::Unix { path } => Some(path.clone()),
            Address::Tcp { .. } => None,
        })
        .collect();
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("installing the signal handler")?;
    }
    let metrics = tmkms_light_metrics::serve_config(&config, "sgx")?
        .map(|m| Arc::new(m) as Arc<dyn tmkms_light::observe::Observer>);
    let mut enclave = Enclave::launch(
        &settings,
        Plumbing {
            state: Some(store),
            node_sockets,
            metrics,
        },
    )?;
    let response = enclave.request(&Request::Start {
        settings: EnclaveSettings::from_config(&config),
        sealed_consensus_key,
        sealed_identity_key,
    });
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            let _ = enclave.stop();
            return Err(e.into());
        }
    };
    if let Response::Started {
        consensus_public_key,
    } = &response
    {
        info!(
            pubkey = %PublicKey(consensus_public_key.as_slice().try_into().unwrap_or([0; 32])).to_base64(),
            chain_id = %config.chain_id,
            "enclave started; signing"
        );
    }
    loop {
        if shutdown.load(Ordering::Relaxed) {
            info!("stopping on signal");
            enclave.stop().context("stopping the enclave")?;
            return Ok(());
        }
        if let Some(status) = enclave.try_wait().context("watching the enclave")? {
            bail!("the enclave exited ({status}); see its log lines above");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `state import` for an SGX home: the enclave tags the state (forward only
/// unless `--danger-allow-regression`) and the runner writes the record. The state
/// file stays locked from reading its slots to writing the record, so a
/// running signer makes this fail instead of racing it.
pub fn state_import(args: StateImportArgs) -> Result<()> {
    let config_path = args.config.path();
    let (config, settings) = load(config_path)?;
    let policy = configured_policy(&config, config_path)?;
    let requested = tmkms_light_cli::read_state_json(&args.source, args.format)?;
    let sealed_consensus_key = read_blob(&config.consensus_key_path, "sealed consensus key")?;
    let store = open_existing_state(&config.state_file_path).context("state import reads the current state file first; stop the signer before importing, and move a corrupt file aside")?;
    let current_slots = store
        .as_ref()
        .map(|store| slots_to_wire(&store.raw_slots()));
    if settings.mode == Mode::Simulation {
        ensure_sim_cpu_secret(&settings.sim_cpu_secret_path)?;
    }
    let mut enclave = Enclave::launch(&settings, Plumbing::default())?;
    let response = enclave.request(&Request::ImportState {
        sealed_consensus_key,
        policy,
        current_slots,
        state: to_cometbft_json(&requested),
        allow_regression: args.danger_allow_regression,
    });
    let _ = enclave.stop();
    let Response::StateImported { previous, records } = response? else {
        bail!("the enclave answered ImportState with something else");
    };
    let records = ImportedRecords::try_from(&records).context("the enclave's state records")?;
    match (store, &records) {
        (Some(mut store), ImportedRecords::Append(record)) => {
            store.write_record(record).with_context(|| {
                format!(
                    "writing the imported state into {}",
                    config.state_file_path.display()
                )
            })?;
        }
        (None, ImportedRecords::Create(_)) => {
            tmkms_light_cli::write_imported_state(&config.state_file_path, &records)?;
        }
        _ => bail!("the enclave's answer does not fit the state file (append to a missing file, or create over an existing one)"),
    }
    match previous {
        Some(before) => eprintln!("state moved from {before} to {}", requested.position),
        None => eprintln!(
            "state created at {} in {}",
            requested.position,
            config.state_file_path.display()
        ),
    }
    Ok(())
}
