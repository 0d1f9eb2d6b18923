//! The helper's commands. The helper never holds a key in the clear: it
//! stores KMS ciphertexts, relays the enclave's streams, persists the state
//! records the enclave authenticated, and runs the KMS proxy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tmkms_light::config::{render_template, Address, Config};
use tmkms_light::enclave::{BoundPolicy, EnclaveSettings, ImportedRecords};
use tmkms_light::keys::{write_secret_file, PublicKey, WriteMode};
use tmkms_light::link::{recv_json, send_json};
use tmkms_light::state::file::FileStore;
use tmkms_light::state::import::to_cometbft_json;
use tmkms_light::state::wire::{pair_from_wire, slots_to_wire};
use tmkms_light::state::StateError;
use tmkms_light_cli::{
    open_existing_state, read_capped, write_config_if_missing, ConfigArg, InitChainArgs,
    PubkeyOutputArgs, StateImportArgs,
};
use tmkms_nitro_host::log_server::serve_logs;
use tmkms_nitro_host::nitro_cli::{NitroCli, RunEnclave, Terminate};
use tmkms_nitro_host::proxy::{serve_proxy, ProxyConfig};
use tmkms_nitro_host::supervise::{install_signal_handlers, Supervisor};
use tmkms_nitro_protocol::messages::{
    parse_init_user_data, KmsAccess, Request, Response, UserDataError, MAX_CONTROL_MESSAGE,
    UNBOUND_POLICY_DIGEST,
};
use tmkms_nitro_transport::{Endpoint, Stream, VSOCK_CID_ANY};
use tracing::{info, warn};

use crate::settings::{render_section, EnclaveConfig, NitroSettings, DEFAULT_CID, KMS_PROXY_PORT};
use crate::streams;

/// How long `init`/`start` wait for the enclave's control listener.
const ENCLAVE_WAIT: Duration = Duration::from_secs(60);
/// Largest ciphertext file read.
const MAX_CIPHERTEXT_FILE: u64 = 64 * 1024;

fn load(config_path: &Path) -> Result<(Config, NitroSettings)> {
    let config = Config::load_for(config_path, &["nitro"])?;
    tmkms_light_cli::warn_settings_tee_hosts_ignore(&config);
    tmkms_light_cli::refuse_settings_tee_hosts_lack(&config, config_path, "Nitro")?;
    let settings = NitroSettings::from_section(config.provider_section("nitro"), config_path)?;
    Ok((config, settings))
}

fn kms_access(settings: &NitroSettings) -> Result<KmsAccess> {
    Ok(KmsAccess {
        region: settings.region.clone(),
        key_id: settings.kms_key_id.clone(),
        endpoint_url: settings.kms_endpoint.clone(),
        proxy: settings.kms_proxy_for_enclave.clone(),
        credentials: crate::credentials::session_credentials()?,
    })
}

/// Connect to the enclave's control listener, retrying while it boots.
fn connect_enclave(endpoint: &Endpoint, within: Duration) -> Result<Stream> {
    let deadline = Instant::now() + within;
    loop {
        match endpoint.connect(Duration::from_secs(2)) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(%endpoint, error = %e, "enclave not reachable yet");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot reach the enclave at {endpoint} within {within:?}; is it running (`tmkms-nitro-helper enclave run`)?")
                })
            }
        }
    }
}

fn exchange(stream: &mut Stream, request: &Request) -> Result<Response> {
    send_json(stream, request).context("sending the request to the enclave")?;
    match recv_json(stream, MAX_CONTROL_MESSAGE).context("reading the enclave's answer")? {
        Response::Error { message } => bail!("the enclave refused: {message}"),
        response => Ok(response),
    }
}

fn read_ciphertext(path: &Path, what: &str) -> Result<Vec<u8>> {
    Ok(read_capped(path, MAX_CIPHERTEXT_FILE, what)?)
}

/// Run `f` with a KMS proxy serving the enclave (for `init` and `state
/// import`, which run without `enclave vsock-proxy`). The listener is bound
/// before `f` asks the enclave, so its first KMS call finds it.
fn with_kms_proxy<T>(settings: &NitroSettings, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let proxy_stop = Arc::new(AtomicBool::new(false));
    let proxy_listener = settings
        .kms_proxy_listen
        .bind()
        .with_context(|| format!("KMS proxy: listening on {}", settings.kms_proxy_listen))?;
    let proxy = {
        let (target, stop) = (settings.kms_proxy_target.clone(), Arc::clone(&proxy_stop));
        std::thread::spawn(move || {
            serve_proxy(&proxy_listener, &target, &ProxyConfig::default(), &stop)
        })
    };
    let result = f();
    proxy_stop.store(true, Ordering::Relaxed);
    let _ = proxy.join();
    result
}

/// Where `init` keeps a plaintext copy of the policy it bound to the key.
/// Only for a friendly early error: the enclave is the barrier (KMS decrypts
/// a key only for the policy it was bound to).
fn policy_path(settings: &NitroSettings) -> PathBuf {
    settings
        .encrypted_consensus_key_path
        .with_file_name("policy.json")
}

/// Compare `config` with the policy `init` bound to the key, so that a
/// changed setting is named before the enclave refuses it.
fn check_bound_policy(config: &Config, settings: &NitroSettings) -> Result<()> {
    let path = policy_path(settings);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is missing: this home was initialized before the chain id, danger_allow_sign_bytes, \
             protocol versions and pinned node ids were bound to the key at init, and the enclave \
             cannot decrypt its key any more. Run `tmkms-nitro-helper init` again for a new key \
             (move secrets/ and the state file aside first)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let bound: BoundPolicy = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a policy written by init", path.display()))?;
    bound
        .check(&BoundPolicy::from_config(config))
        .with_context(|| {
            format!(
                "the configuration differs from the policy bound to the key at init ({}); the enclave would refuse to decrypt the key",
                path.display()
            )
        })
}

/// `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// AWS region of the KMS key.
    #[arg(short = 'a', long)]
    pub region: String,
    /// KMS key id, ARN or alias.
    #[arg(short = 'k', long)]
    pub kms_key_id: String,
    /// The enclave's vsock CID.
    #[arg(long)]
    pub cid: Option<u32>,
    #[command(flatten)]
    pub chain: InitChainArgs,
    /// The enclave image, for enclave.toml.
    #[arg(long, default_value = "tmkms-nitro-enclave.eif")]
    pub eif_path: PathBuf,
    #[command(flatten)]
    pub pubkey: PubkeyOutputArgs,
}

/// The config file `-c` names: a file, or (the original tmkms-light's
/// meaning) the directory to keep tmkms.toml and enclave.toml in.
fn config_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("tmkms.toml")
    } else {
        path.to_owned()
    }
}

pub fn init(args: InitArgs) -> Result<()> {
    let config_path = &config_file(args.config.path());
    write_config_if_missing(config_path, || {
        tmkms_nitro_protocol::kms_policy::KmsTarget::resolve(
            &args.region,
            &args.kms_key_id,
            None,
            tmkms_nitro_protocol::kms_policy::EndpointMode::Production,
        )
        .context("-a/--region, -k/--kms-key-id")?;
        let params = args.chain.template_params()?;
        let cid = args.cid.unwrap_or(DEFAULT_CID);
        Ok(render_template(&params) + &render_section(&args.region, &args.kms_key_id, cid))
    })?;
    let (config, settings) = load(config_path)?;
    if !settings.enclave_config_path.exists() {
        let enclave = EnclaveConfig {
            eif_path: args.eif_path.clone(),
            cpu_count: 2,
            memory_mib: 512,
            enclave_cid: args.cid.unwrap_or(DEFAULT_CID),
            debug_mode: false,
        };
        std::fs::write(&settings.enclave_config_path, enclave.render())
            .with_context(|| format!("writing {}", settings.enclave_config_path.display()))?;
        eprintln!("wrote {}", settings.enclave_config_path.display());
    }
    if settings.encrypted_consensus_key_path.exists() {
        bail!(
            "{} already exists; init never replaces a key (move it away first)",
            settings.encrypted_consensus_key_path.display()
        );
    }
    if std::fs::symlink_metadata(&config.state_file_path).is_ok() {
        bail!(
            "{} already exists; init writes the new key's first state record itself (the enclave \
             authenticates it), so move the old state file aside first. To carry a signing height \
             over, run `tmkms-nitro-helper state import` after init",
            config.state_file_path.display()
        );
    }
    let access = kms_access(&settings)?;
    // What the enclave will enforce, bound to the key now: this host is
    // trusted during the ceremony, not afterwards.
    let policy = BoundPolicy::from_config(&config);
    let response = with_kms_proxy(&settings, || {
        let mut control = connect_enclave(&settings.enclave, ENCLAVE_WAIT)?;
        exchange(
            &mut control,
            &Request::Init {
                kms: access,
                policy: policy.clone(),
            },
        )
    })?;
    let Response::Initialized {
        encrypted_consensus_key,
        encrypted_identity_key,
        consensus_public_key,
        identity_public_key,
        attestation_document,
        state_records,
    } = response
    else {
        bail!("the enclave answered init with something else");
    };
    let public_key = PublicKey(
        consensus_public_key
            .as_slice()
            .try_into()
            .context("public key length")?,
    );
    let shown = public_key
        .format(args.pubkey.pubkey_format, args.pubkey.hrp())
        .with_context(|| format!("-b {:?}", args.pubkey.hrp()))?;
    let records = pair_from_wire(&state_records).context("the enclave's first state record")?;
    write_secret_file(
        &settings.encrypted_consensus_key_path,
        &encrypted_consensus_key,
        WriteMode::CreateNew,
    )?;
    let id_path = &settings.encrypted_id_key_path;
    write_secret_file(id_path, &encrypted_identity_key, WriteMode::Overwrite)?;
    let attestation_path = settings
        .encrypted_consensus_key_path
        .with_file_name("init-attestation.cbor");
    std::fs::write(&attestation_path, &attestation_document)
        .with_context(|| format!("writing {}", attestation_path.display()))?;
    let policy_file = policy_path(&settings);
    let policy_json = serde_json::to_vec_pretty(&policy).context("encoding the policy")?;
    write_secret_file(&policy_file, &policy_json, WriteMode::Overwrite)?;
    drop(FileStore::create_from_records(
        &config.state_file_path,
        &records,
    )?);
    eprintln!(
        "state: {} at height 0 (written by the enclave)",
        config.state_file_path.display()
    );
    eprintln!(
        "bound to the key: chain id {:?}, danger_allow_sign_bytes = {}, protocol versions {:?}, pinned node ids {:?} (policy {}, copy in {})",
        policy.chain_id,
        policy.danger_allow_sign_bytes,
        policy.protocol_versions,
        policy.node_ids,
        policy.digest_hex(),
        policy_file.display()
    );
    let identity = PublicKey(
        identity_public_key
            .as_slice()
            .try_into()
            .context("identity key length")?,
    );
    eprintln!(
        "encrypted consensus key: {}",
        settings.encrypted_consensus_key_path.display()
    );
    eprintln!(
        "encrypted identity key: {} (peer id {})",
        id_path.display(),
        identity.peer_id_hex()
    );
    eprintln!(
        "attestation of the new key: {} (check it with `tmkms-nitro-helper verify {}`)",
        attestation_path.display(),
        attestation_path.display()
    );
    println!("{shown}");
    Ok(())
}

pub fn start(config_path: &Path, cid: Option<u32>, allow_empty_state: bool) -> Result<()> {
    if allow_empty_state {
        bail!(
            "--allow-empty-state does not apply to the Nitro provider: the enclave starts only from \
             a state record it wrote itself. `init` writes the first one; to start from a CometBFT \
             or tmkms state file, run `tmkms-nitro-helper state import` (with the enclave running)"
        );
    }
    let (config, mut settings) = load(config_path)?;
    if let Some(cid) = cid {
        reach_enclave_at(&mut settings, cid);
    }
    check_bound_policy(&config, &settings)?;
    let encrypted_consensus_key = read_ciphertext(
        &settings.encrypted_consensus_key_path,
        "encrypted consensus key",
    )?;
    let encrypted_identity_key = if config.uses_tcp() {
        Some(read_ciphertext(
            &settings.encrypted_id_key_path,
            "encrypted identity key",
        )?)
    } else {
        None
    };
    let Some(store) = open_existing_state(&config.state_file_path)? else {
        bail!(
            "no state file at {}: the Nitro enclave never starts from nothing. `init` writes the \
             first record; if the file was lost, import the last signed state (the node's \
             priv_validator_state.json, or `state show --json` of a copy) with \
             `tmkms-nitro-helper state import` while the enclave runs",
            config.state_file_path.display()
        );
    };
    let shutdown = install_signal_handlers().context("installing signal handlers")?;
    let streams_listener = settings
        .host_listen
        .bind()
        .with_context(|| format!("listening on {}", settings.host_listen))?;
    let logs_listener = settings
        .logs_listen
        .bind()
        .with_context(|| format!("listening on {}", settings.logs_listen))?;
    let validators: Vec<Address> = config.validator.iter().map(|v| v.address.clone()).collect();
    let events: Arc<dyn tmkms_light::observe::Observer> =
        match tmkms_light_metrics::serve_config(&config, "nitro")? {
            Some(metrics) => Arc::new(metrics),
            None => Arc::new(tmkms_light::observe::Unobserved),
        };
    streams::serve(
        streams_listener,
        store,
        &validators,
        events,
        Arc::clone(&shutdown),
    )?;
    {
        let shutdown = Arc::clone(&shutdown);
        std::thread::Builder::new()
            .name("enclave-logs".into())
            .spawn(move || serve_logs(&logs_listener, &shutdown))?;
    }
    let mut control = connect_enclave(&settings.enclave, ENCLAVE_WAIT)?;
    let response = exchange(
        &mut control,
        &Request::Start {
            kms: kms_access(&settings)?,
            settings: EnclaveSettings::from_config(&config),
            encrypted_consensus_key,
            encrypted_identity_key,
            host: settings.host_for_enclave.clone(),
            logs: settings.logs_for_enclave.clone(),
        },
    )?;
    if let Response::Started {
        consensus_public_key,
    } = &response
    {
        let key: [u8; 32] = consensus_public_key
            .as_slice()
            .try_into()
            .context("public key length")?;
        info!(pubkey = %PublicKey(key).to_base64(), chain_id = %config.chain_id, "enclave started; signing");
    }
    // The enclave keeps the control connection open while it runs.
    let enclave_gone = Arc::new(AtomicBool::new(false));
    {
        let gone = Arc::clone(&enclave_gone);
        let mut reader = control.try_clone()?;
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            while matches!(std::io::Read::read(&mut reader, &mut byte), Ok(n) if n > 0) {}
            gone.store(true, Ordering::Relaxed);
        });
    }
    loop {
        if shutdown.load(Ordering::Relaxed) {
            info!("stopping on signal");
            let _ = control.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        if enclave_gone.load(Ordering::Relaxed) {
            bail!("the enclave closed its control connection (it exited or was terminated)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `state import` for a Nitro home: the enclave (running, like for `init`)
/// decrypts the consensus key for the bound policy and tags the state as
/// the file's next record; this helper only writes what it returns.
pub fn state_import(args: StateImportArgs) -> Result<()> {
    let (config, settings) = load(args.config.path())?;
    check_bound_policy(&config, &settings)?;
    let state = tmkms_light_cli::read_state_json(&args.source, args.format)?;
    let encrypted_consensus_key = read_ciphertext(
        &settings.encrypted_consensus_key_path,
        "encrypted consensus key",
    )?;
    // Held (locked) until the enclave answered: a running signer makes this
    // fail at once instead of racing it.
    let store = match open_existing_state(&config.state_file_path) {
        Ok(store) => store,
        Err(StateError::Locked { path, lock }) => bail!(
            "{path} is in use (lock {lock}): stop the signer before importing a state; the enclave must run alone (`enclave run`)"
        ),
        Err(e) => return Err(e.into()),
    };
    let current_slots = store
        .as_ref()
        .map(|store| slots_to_wire(&store.raw_slots()));
    let request = Request::ImportState {
        kms: kms_access(&settings)?,
        policy: BoundPolicy::from_config(&config),
        encrypted_consensus_key,
        current_slots,
        state: to_cometbft_json(&state),
        allow_regression: args.danger_allow_regression,
    };
    let response = with_kms_proxy(&settings, || {
        let mut control = connect_enclave(&settings.enclave, ENCLAVE_WAIT)?;
        exchange(&mut control, &request)
    })?;
    let Response::StateImported { previous, records } = response else {
        bail!("the enclave answered state import with something else");
    };
    let records = ImportedRecords::try_from(&records).context("the enclave's state records")?;
    drop(store);
    tmkms_light_cli::write_imported_state(&config.state_file_path, &records)?;
    match previous {
        Some(before) => eprintln!("state moved from {before} to {}", state.position),
        None => eprintln!("state created at {}", state.position),
    }
    Ok(())
}

pub fn verify(document: &Path, root: Option<&Path>, hrp: &str) -> Result<()> {
    let bytes =
        std::fs::read(document).with_context(|| format!("reading {}", document.display()))?;
    let root_der = match root {
        Some(path) => {
            let data =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            pem_or_der(&data)?
        }
        None => tmkms_nitro_nsm::aws_root_der(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let doc = tmkms_nitro_nsm::verify(&bytes, &root_der, now)
        .with_context(|| format!("{} does not verify", document.display()))?;
    println!(
        "attestation document verified against the {} root",
        if root.is_some() {
            "given"
        } else {
            "AWS Nitro Enclaves"
        }
    );
    print!("{}", tmkms_nitro_nsm::describe(&doc));
    let Some(user_data) = doc.user_data() else {
        return Ok(());
    };
    // What init bound to the key, signed with the PCRs above.
    let init = match parse_init_user_data(user_data) {
        Ok(init) => init,
        Err(UserDataError::NotInit) => return Ok(()),
        Err(e) => bail!("{}: {e}", document.display()),
    };
    let key = PublicKey(init.consensus_public_key);
    println!(
        "consensus public key: {}",
        key.to_bech32(hrp).with_context(|| format!("-b {hrp:?}"))?
    );
    println!("validator address: {}", key.validator_address_hex());
    println!("KMS region: {}", init.region);
    println!("KMS key id: {}", init.kms_key_id);
    println!("KMS endpoint: {}", init.kms_endpoint);
    let unbound = init.policy_digest == UNBOUND_POLICY_DIGEST;
    println!(
        "bound policy digest: {}{}",
        init.policy_digest,
        if unbound { " (no policy bound)" } else { "" }
    );
    if init.test_enclave {
        println!("enclave: TEST (--mock-nsm): its KMS endpoint was not held to AWS KMS; not a production key");
    }
    Ok(())
}

/// A certificate file as PEM or DER.
fn pem_or_der(data: &[u8]) -> Result<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(data.to_vec());
    };
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .context("root certificate: not DER and not valid PEM")
}

/// `--cid` of `start`: the enclave's control listener at that CID, as
/// `enclave_cid` in [nitro] would put it. An `enclave` endpoint that is not
/// vsock (tests, a relay) stays as configured.
fn reach_enclave_at(settings: &mut NitroSettings, cid: u32) {
    match &mut settings.enclave {
        Endpoint::Vsock { cid: at, .. } => *at = cid,
        other => {
            warn!(enclave = %other, "--cid {cid} not applied: [nitro] enclave is not a vsock endpoint")
        }
    }
}

/// `enclave run` settings from the command line (the original tmkms-light's
/// flags), each in place of the value of enclave.toml; without a tmkms.toml
/// they and the defaults are all there is.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EnclaveRunArgs {
    /// The enclave.toml to read, instead of enclave_config_path in [nitro].
    #[arg(long = "enclave-config")]
    pub enclave_config: Option<PathBuf>,
    /// The enclave image (without enclave.toml: ~/.tmkms/tmkms.eif).
    #[arg(short = 'p', long)]
    pub eif_path: Option<PathBuf>,
    /// The enclave's CID.
    #[arg(short = 'i', long)]
    pub enclave_cid: Option<u32>,
    /// Memory for the enclave, in MiB.
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Number of the parent's vCPUs for the enclave.
    #[arg(long, conflicts_with = "cpu_ids")]
    pub cpu_count: Option<u32>,
    /// The parent's CPUs for the enclave, by id (instead of --cpu-count).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub cpu_ids: Vec<u32>,
    /// Accepted for the original tmkms-light's command line. The enclave's log lines reach
    /// `start` (logs_listen in [nitro]), which writes them to its own log.
    #[arg(long)]
    pub log_server_port: Option<u32>,
    /// Accepted for the original tmkms-light's command line; see --log-server-port.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Accepted for the original tmkms-light's command line: `start` always writes the
    /// enclave's log lines to its console.
    #[arg(short = 'l', long)]
    pub log_to_console: bool,
}

impl EnclaveRunArgs {
    /// `base` with the values these flags give.
    fn apply(&self, base: EnclaveConfig) -> EnclaveConfig {
        EnclaveConfig {
            eif_path: self.eif_path.clone().unwrap_or(base.eif_path),
            cpu_count: self.cpu_count.unwrap_or(base.cpu_count),
            memory_mib: self.memory_mib.unwrap_or(base.memory_mib),
            enclave_cid: self.enclave_cid.unwrap_or(base.enclave_cid),
            debug_mode: base.debug_mode,
        }
    }
}

/// What `enclave run` starts: enclave.toml (the one `--enclave-config` or
/// the config names), or with no tmkms.toml the defaults, where the original
/// README builds the image (`~/.tmkms/tmkms.eif`); the flags on top.
fn nitro_cli_settings(config_path: &Path, args: &EnclaveRunArgs) -> Result<RunEnclave> {
    if args.log_server_port.is_some() || args.log_file.is_some() {
        warn!("--log-server-port and --log-file have no effect: the enclave's log lines reach `start`, which writes them to its log");
    }
    let base = match &args.enclave_config {
        Some(path) => EnclaveConfig::load(path)?,
        None if config_path.exists() => {
            EnclaveConfig::load(&load(config_path)?.1.enclave_config_path)?
        }
        None => {
            info!(config = %config_path.display(), "no config: running the enclave with the command line's settings");
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
            EnclaveConfig {
                eif_path: home.join(".tmkms/tmkms.eif"),
                cpu_count: 2,
                memory_mib: 512,
                enclave_cid: DEFAULT_CID,
                debug_mode: false,
            }
        }
    };
    let enclave = args.apply(base);
    if enclave.debug_mode {
        warn!("debug_mode = true: attestation documents carry all-zero PCRs; a KMS key policy on PCRs will refuse this enclave");
    }
    Ok(RunEnclave {
        eif_path: enclave.eif_path,
        cpu_count: enclave.cpu_count,
        cpu_ids: args.cpu_ids.clone(),
        memory_mib: enclave.memory_mib,
        enclave_cid: Some(enclave.enclave_cid),
        debug_mode: enclave.debug_mode,
        enclave_name: Some("tmkms".to_owned()),
    })
}

/// `enclave run`: start the enclave; with `wait`, stay until it stops (and
/// terminate it on Ctrl-C), so a supervisor can watch it.
pub fn enclave_run(config_path: &Path, wait: bool, args: &EnclaveRunArgs) -> Result<()> {
    let cli = NitroCli::from_env();
    let run = nitro_cli_settings(config_path, args)?;
    let shutdown = if wait {
        Some(install_signal_handlers()?)
    } else {
        None
    };
    let info = cli.run_enclave(&run)?;
    println!(
        "enclave {} running: CID {}, {} vCPUs, {} MiB",
        info.enclave_id, info.enclave_cid, info.number_of_cpus, info.memory_mib
    );
    let Some(shutdown) = shutdown else {
        return Ok(());
    };
    loop {
        if shutdown.load(Ordering::Relaxed) {
            info!("terminating the enclave on signal");
            cli.terminate_enclave(&Terminate::Id(info.enclave_id.clone()))?;
            return Ok(());
        }
        let running = cli
            .describe_enclaves()?
            .iter()
            .any(|e| e.enclave_id == info.enclave_id && e.is_running());
        if !running {
            bail!("enclave {} is no longer running", info.enclave_id);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn enclave_info() -> Result<()> {
    let enclaves = NitroCli::from_env().describe_enclaves()?;
    if enclaves.is_empty() {
        println!("no enclave running");
    }
    for e in enclaves {
        println!(
            "{} {} CID {} {} vCPUs {} MiB {}",
            e.enclave_id, e.state, e.enclave_cid, e.number_of_cpus, e.memory_mib, e.flags
        );
    }
    Ok(())
}

/// `enclave stop`: the enclave `--cid` names (a CID, or an enclave id as
/// the original tmkms-light took it), else the one of enclave.toml's CID;
/// with neither a `--cid` nor a tmkms.toml, every enclave (as the original).
pub fn enclave_stop(config_path: &Path, cid: Option<&str>) -> Result<()> {
    let cli = NitroCli::from_env();
    let cid = match cid {
        Some(text) => match text.parse::<u32>() {
            Ok(cid) => cid,
            Err(_) => {
                cli.terminate_enclave(&Terminate::Id(text.to_owned()))?;
                println!("terminated {text}");
                return Ok(());
            }
        },
        None if config_path.exists() => {
            let (_, settings) = load(config_path)?;
            EnclaveConfig::load(&settings.enclave_config_path)?.enclave_cid
        }
        None => {
            cli.terminate_enclave(&Terminate::All)?;
            println!(
                "terminated every enclave (no --cid and no {})",
                config_path.display()
            );
            return Ok(());
        }
    };
    let ours: Vec<_> = cli
        .describe_enclaves()?
        .into_iter()
        .filter(|e| e.enclave_cid == cid)
        .collect();
    if ours.is_empty() {
        println!("no enclave with CID {cid} is running");
    }
    for e in ours {
        cli.terminate_enclave(&Terminate::Id(e.enclave_id.clone()))?;
        println!("terminated {}", e.enclave_id);
    }
    Ok(())
}

/// `enclave vsock-proxy` settings from the command line (the original
/// tmkms-light's flags), each in place of the value of tmkms.toml.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VsockProxyArgs {
    /// Connections relayed at once (default 64).
    #[arg(short = 'w', long)]
    pub num_workers: Option<usize>,
    /// The port to listen on (the vsock port the enclave dials; default: kms_proxy_listen's,
    /// 8000).
    #[arg(long)]
    pub local_port: Option<u32>,
    /// The TCP port to forward to (default: kms_proxy_target's, 443).
    #[arg(long)]
    pub remote_port: Option<u16>,
    /// The host to forward to (default: kms_proxy_target's, the KMS endpoint of the region).
    #[arg(long)]
    pub remote_addr: Option<String>,
    /// Accepted for the original tmkms-light's command line (the allowlist of the AWS
    /// vsock-proxy it ran). This proxy forwards only to the one target above.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
}

impl VsockProxyArgs {
    /// The listener and the target: those of tmkms.toml (or, with none,
    /// vsock port 8000 and `--remote-addr`), with the ports and the host
    /// these flags give.
    fn endpoints(&self, config_path: &Path) -> Result<(Endpoint, Endpoint)> {
        let (listen, target) = if config_path.exists() {
            let (_, settings) = load(config_path)?;
            (settings.kms_proxy_listen, Some(settings.kms_proxy_target))
        } else {
            let any = Endpoint::Vsock {
                cid: VSOCK_CID_ANY,
                port: KMS_PROXY_PORT,
            };
            (any, None)
        };
        let listen = match (listen, self.local_port) {
            (listen, None) => listen,
            (Endpoint::Vsock { cid, .. }, Some(port)) => Endpoint::Vsock { cid, port },
            (Endpoint::Tcp { host, .. }, Some(port)) => Endpoint::Tcp {
                host,
                port: u16::try_from(port)
                    .with_context(|| format!("--local-port {port}: not a TCP port"))?,
            },
            (listen @ Endpoint::Unix { .. }, Some(port)) => {
                bail!("--local-port {port}: kms_proxy_listen is {listen}, which has no port")
            }
        };
        let (host, port) = match target {
            Some(Endpoint::Tcp { host, port }) => (Some(host), port),
            _ => (None, 443),
        };
        let host = self.remote_addr.clone().or(host).context(
            "--remote-addr is needed without a tmkms.toml (e.g. kms.<region>.amazonaws.com)",
        )?;
        let target = Endpoint::Tcp {
            host,
            port: self.remote_port.unwrap_or(port),
        };
        Ok((listen, target))
    }
}

pub fn vsock_proxy(config_path: &Path, args: &VsockProxyArgs) -> Result<()> {
    if args.config_file.is_some() {
        info!("--config-file not read: this proxy forwards only to its one target");
    }
    let (listen, target) = args.endpoints(config_path)?;
    let mut proxy = ProxyConfig::default();
    if let Some(workers) = args.num_workers {
        proxy.max_connections = workers;
    }
    let shutdown = install_signal_handlers()?;
    info!(listen = %listen, target = %target, "KMS proxy");
    let listener = listen
        .bind()
        .with_context(|| format!("KMS proxy: listening on {listen}"))?;
    serve_proxy(&listener, &target, &proxy, &shutdown).context("KMS proxy")
}

/// `launch-all`: the enclave, the KMS proxy and the signer as one unit; if
/// one stops, all stop (a service manager restarts the unit).
pub fn launch_all(config_path: &Path, enclave_config: Option<&Path>) -> Result<()> {
    load(config_path)?;
    if let Some(path) = enclave_config {
        EnclaveConfig::load(path)?;
    }
    let me = std::env::current_exe().context("locating this executable")?;
    let config = config_path.as_os_str();
    let command = |args: &[&str]| {
        let mut c = Command::new(&me);
        c.args(args).arg("-c").arg(config);
        c
    };
    let shutdown = install_signal_handlers()?;
    let outcome = Supervisor::new(Duration::from_secs(5))
        .child("enclave", {
            let mut run = command(&["enclave", "run", "--wait"]);
            if let Some(path) = enclave_config {
                run.arg("--enclave-config").arg(path);
            }
            run
        })
        .child("vsock-proxy", command(&["enclave", "vsock-proxy"]))
        .child("signer", command(&["start"]))
        .run(&shutdown)?;
    for exit in &outcome.stopped {
        info!(name = %exit.name, status = ?exit.status, "stopped");
    }
    Ok(())
}
