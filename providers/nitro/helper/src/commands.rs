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
use tmkms_nitro_host::proxy::{run_proxy, serve_proxy, ProxyConfig};
use tmkms_nitro_host::supervise::{install_signal_handlers, Supervisor};
use tmkms_nitro_protocol::messages::{
    parse_init_user_data, KmsAccess, Request, Response, UserDataError, MAX_CONTROL_MESSAGE,
    UNBOUND_POLICY_DIGEST,
};
use tmkms_nitro_transport::{Endpoint, Stream};
use tracing::{info, warn};

use crate::settings::{render_section, EnclaveConfig, NitroSettings, DEFAULT_CID};
use crate::streams;

/// How long `init`/`start` wait for the enclave's control listener.
const ENCLAVE_WAIT: Duration = Duration::from_secs(60);
/// Largest ciphertext file read.
const MAX_CIPHERTEXT_FILE: u64 = 64 * 1024;

fn load(config_path: &Path) -> Result<(Config, NitroSettings)> {
    let config = Config::load_for(config_path, &["nitro"])?;
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

pub fn init(args: InitArgs) -> Result<()> {
    let config_path = args.config.path();
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

pub fn start(config_path: &Path, allow_empty_state: bool) -> Result<()> {
    if allow_empty_state {
        bail!(
            "--allow-empty-state does not apply to the Nitro provider: the enclave starts only from \
             a state record it wrote itself. `init` writes the first one; to start from a CometBFT \
             or tmkms state file, run `tmkms-nitro-helper state import` (with the enclave running)"
        );
    }
    let (config, settings) = load(config_path)?;
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

fn nitro_cli_settings(settings: &NitroSettings) -> Result<RunEnclave> {
    let enclave = EnclaveConfig::load(&settings.enclave_config_path)?;
    if enclave.debug_mode {
        warn!("debug_mode = true: attestation documents carry all-zero PCRs; a KMS key policy on PCRs will refuse this enclave");
    }
    Ok(RunEnclave {
        eif_path: enclave.eif_path,
        cpu_count: enclave.cpu_count,
        memory_mib: enclave.memory_mib,
        enclave_cid: Some(enclave.enclave_cid),
        debug_mode: enclave.debug_mode,
        enclave_name: Some("tmkms".to_owned()),
    })
}

/// `enclave run`: start the enclave; with `wait`, stay until it stops (and
/// terminate it on Ctrl-C), so a supervisor can watch it.
pub fn enclave_run(config_path: &Path, wait: bool) -> Result<()> {
    let (_, settings) = load(config_path)?;
    let cli = NitroCli::from_env();
    let run = nitro_cli_settings(&settings)?;
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

pub fn enclave_stop(config_path: &Path) -> Result<()> {
    let (_, settings) = load(config_path)?;
    let enclave = EnclaveConfig::load(&settings.enclave_config_path)?;
    let cli = NitroCli::from_env();
    let ours: Vec<_> = cli
        .describe_enclaves()?
        .into_iter()
        .filter(|e| e.enclave_cid == enclave.enclave_cid)
        .collect();
    if ours.is_empty() {
        println!("no enclave with CID {} is running", enclave.enclave_cid);
    }
    for e in ours {
        cli.terminate_enclave(&Terminate::Id(e.enclave_id.clone()))?;
        println!("terminated {}", e.enclave_id);
    }
    Ok(())
}

pub fn vsock_proxy(config_path: &Path) -> Result<()> {
    let (_, settings) = load(config_path)?;
    let shutdown = install_signal_handlers()?;
    info!(listen = %settings.kms_proxy_listen, target = %settings.kms_proxy_target, "KMS proxy");
    run_proxy(
        &settings.kms_proxy_listen,
        &settings.kms_proxy_target,
        &shutdown,
    )
    .context("KMS proxy")
}

/// `launch-all`: the enclave, the KMS proxy and the signer as one unit; if
/// one stops, all stop (a service manager restarts the unit).
pub fn launch_all(config_path: &Path) -> Result<()> {
    load(config_path)?;
    let me = std::env::current_exe().context("locating this executable")?;
    let config = config_path.as_os_str();
    let command = |args: &[&str]| {
        let mut c = Command::new(&me);
        c.args(args).arg("-c").arg(config);
        c
    };
    let shutdown = install_signal_handlers()?;
    let outcome = Supervisor::new(Duration::from_secs(5))
        .child("enclave", command(&["enclave", "run", "--wait"]))
        .child("vsock-proxy", command(&["enclave", "vsock-proxy"]))
        .child("signer", command(&["start"]))
        .run(&shutdown)?;
    for exit in &outcome.stopped {
        info!(name = %exit.name, status = ?exit.status, "stopped");
    }
    Ok(())
}
