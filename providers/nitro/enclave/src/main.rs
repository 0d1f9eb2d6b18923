//! `tmkms-nitro-enclave`: the signer inside an AWS Nitro enclave. It
//! listens for the helper's control connection; `init` and `start` requests
//! arrive there (see the library docs). Started by `nitro-cli run-enclave`
//! from the EIF in production, directly as a process in tests.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use clap::Parser;
use tmkms_light::enclave::{
    import_state_records, run_signer, BoundPolicy, EnclaveError, SignerParts,
};
use tmkms_light::link::{recv_json, send_json};
use tmkms_light::observe::to_host_events;
use tmkms_light::state::import::{parse_state_json, ImportFormat};
use tmkms_light::state::wire::slots_from_wire;
use tmkms_nitro_enclave::host::{HelperDialer, HelperHost};
use tmkms_nitro_enclave::keys;
use tmkms_nitro_enclave::protocol::{
    KmsAccess, Request, Response, WireRecords, WireSlot, MAX_CONTROL_MESSAGE, STREAM_EVENTS,
    STREAM_STATE,
};
use tmkms_nitro_nsm::{DeviceNsm, MockNsm, Nsm, NSM_DEVICE_PATH};
use tmkms_nitro_transport::log_sink::{LogSink, LogSinkConfig};
use tmkms_nitro_transport::{Endpoint, Stream};
use tracing::{error, info, warn};

#[derive(Debug, Parser)]
#[command(
    name = "tmkms-nitro-enclave",
    version,
    about = "tmkms-light signer inside an AWS Nitro enclave"
)]
struct Args {
    /// Where the helper connects (vsock://any:5050 inside an enclave).
    #[arg(long, default_value = "vsock://any:5050")]
    listen: Endpoint,
    /// TESTS ONLY: a mock NSM signing attestation documents with a throwaway test chain;
    /// also lets KMS calls go to endpoints other than AWS KMS (a local emulator, plain HTTP).
    #[arg(long)]
    mock_nsm: bool,
    /// TESTS ONLY: write the mock NSM's root certificate (DER) here.
    #[arg(long, requires = "mock_nsm")]
    mock_nsm_root_out: Option<PathBuf>,
}

/// Log lines go to stderr (the console of a debug enclave) until `start`
/// connects the helper's log stream; then all lines go there.
static LOG_SINK: OnceLock<LogSink> = OnceLock::new();

struct LogOutput;

enum LogWriter {
    Sink(LogSink),
    Stderr(io::Stderr),
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LogWriter::Sink(sink) => sink.write(buf),
            LogWriter::Stderr(stderr) => stderr.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LogWriter::Sink(sink) => sink.flush(),
            LogWriter::Stderr(stderr) => stderr.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogOutput {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        match LOG_SINK.get() {
            Some(sink) => LogWriter::Sink(sink.clone()),
            None => LogWriter::Stderr(io::stderr()),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogOutput)
        .with_ansi(false)
        .init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            if let Some(sink) = LOG_SINK.get() {
                sink.drain(std::time::Duration::from_secs(2));
            }
            ExitCode::FAILURE
        }
    }
}

/// The NSM: the device, opened at its first use (so that every request is
/// checked — the KMS endpoint first — before the device is needed), or with
/// `--mock-nsm` the test stand-in, which also lets KMS calls go to a
/// non-AWS endpoint (a local emulator over plain HTTP).
fn open_nsm(args: &Args) -> Result<Box<dyn Nsm>, String> {
    if !args.mock_nsm {
        if !std::path::Path::new(NSM_DEVICE_PATH).exists() {
            warn!("{NSM_DEVICE_PATH} does not exist: this is not a Nitro Enclave, and every request that needs an attestation will fail");
        }
        return Ok(Box::new(DeviceNsm::lazy()));
    }
    warn!("MOCK NSM: attestation documents are signed by a throwaway TEST chain that AWS KMS rejects, and KMS calls may go to any endpoint, plain HTTP included; tests only");
    let mock = MockNsm::new().map_err(|e| e.to_string())?;
    if let Some(path) = &args.mock_nsm_root_out {
        std::fs::write(path, mock.root_certificate_der())
            .map_err(|e| format!("writing the mock NSM root to {}: {e}", path.display()))?;
    }
    Ok(Box::new(mock))
}

fn run(args: &Args) -> Result<(), String> {
    let nsm = open_nsm(args)?;
    let listener = args
        .listen
        .bind()
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    info!(listen = %args.listen, "waiting for the helper");
    loop {
        let (mut control, peer) = listener
            .accept()
            .map_err(|e| format!("accepting the helper's connection: {e}"))?;
        info!(%peer, "helper connected");
        let request: Request = match recv_json(&mut control, MAX_CONTROL_MESSAGE) {
            Ok(request) => request,
            Err(e) => {
                warn!(error = %e, "unreadable request; closing the connection");
                continue;
            }
        };
        match request {
            Request::Init { kms, policy } => {
                let response = keys::init(&*nsm, &kms, &policy).map_err(|e| e.to_string());
                if response.is_ok() {
                    info!(chain_id = %policy.chain_id, policy = %policy.digest_hex(), "keys generated, bound to the policy and encrypted with KMS");
                }
                answer(&mut control, response, "init failed");
            }
            Request::ImportState {
                kms,
                policy,
                encrypted_consensus_key,
                current_slots,
                state,
                allow_regression,
            } => {
                let response = import_state(
                    &*nsm,
                    &kms,
                    &policy,
                    &encrypted_consensus_key,
                    current_slots,
                    &state,
                    allow_regression,
                );
                answer(&mut control, response, "state import refused");
            }
            Request::Start {
                kms,
                settings,
                encrypted_consensus_key,
                encrypted_identity_key,
                host,
                logs,
            } => {
                // The KMS settings first: a refused endpoint gets nothing,
                // not even a log stream.
                if let Err(e) = keys::kms_target(&*nsm, &kms) {
                    let message = format!("cannot decrypt the keys: {e}");
                    warn!("{message}");
                    let _ = send_json(&mut control, &Response::Error { message });
                    continue;
                }
                if LOG_SINK.get().is_none() {
                    let sink = LogSink::connect(logs, LogSinkConfig::default())
                        .map_err(|e| format!("cannot start the log stream: {e}"))?;
                    let _ = LOG_SINK.set(sink);
                }
                // The policy the host's settings ask for; the keys decrypt
                // only if it is the one bound to them at init.
                let keys = BoundPolicy::from_settings(&settings)
                    .map_err(|e| e.to_string())
                    .and_then(|bound| {
                        keys::decrypt_keys(
                            &*nsm,
                            &kms,
                            &bound,
                            &encrypted_consensus_key,
                            encrypted_identity_key.as_deref(),
                        )
                        .map(|(key, identity)| (bound, key, identity))
                        .map_err(|e| e.to_string())
                    });
                let (bound, key, identity) = match keys {
                    Ok(keys) => keys,
                    Err(e) => {
                        let message = format!("cannot decrypt the keys: {e}");
                        let _ = send_json(
                            &mut control,
                            &Response::Error {
                                message: message.clone(),
                            },
                        );
                        warn!("{message}");
                        continue;
                    }
                };
                send_json(
                    &mut control,
                    &Response::Started {
                        consensus_public_key: key.public_key().as_bytes().to_vec(),
                    },
                )
                .map_err(|e| format!("answering the helper: {e}"))?;
                watch_helper(control)?;
                let host = HelperHost::new(host);
                let state_link = host
                    .open(STREAM_STATE)
                    .map_err(|e| format!("cannot open the state stream to the helper: {e}"))?;
                let observer = to_host_events(host.open(STREAM_EVENTS));
                let parts = SignerParts {
                    settings,
                    bound,
                    key,
                    identity,
                    state_link,
                    dialer: Arc::new(HelperDialer::new(host)),
                    clock: Some(std::time::Instant::now),
                    observer,
                };
                return run_signer(parts, Arc::new(AtomicBool::new(false))).map_err(|e| match e {
                    // Without the state stream no signature can be made
                    // durable: stop, so the supervisor (launch-all, or the
                    // operator's service manager) starts a fresh pair.
                    EnclaveError::StateStreamLost(_) => {
                        format!("{e}; the state stream to the helper is gone, exiting so that the signer is restarted")
                    }
                    e => e.to_string(),
                });
            }
        }
    }
}

/// Answer a one-shot request (`init`, `state import`): its response, or
/// the error it failed with, logged as `refused`. The connection ends after
/// it either way, so a failed send is only logged.
fn answer(control: &mut Stream, response: Result<Response, String>, refused: &str) {
    let response = response.unwrap_or_else(|message| {
        warn!(error = %message, "{refused}");
        Response::Error { message }
    });
    if let Err(e) = send_json(control, &response) {
        warn!(error = %e, "could not answer the helper");
    }
}

/// `state import` (a trusted ceremony): decrypt the consensus key under
/// `policy` and tag the requested state as the file's next record(s).
fn import_state(
    nsm: &dyn Nsm,
    kms: &KmsAccess,
    policy: &BoundPolicy,
    encrypted_consensus_key: &[u8],
    current_slots: Option<[Option<WireSlot>; 2]>,
    state: &str,
    allow_regression: bool,
) -> Result<Response, String> {
    let requested = parse_state_json(state, ImportFormat::CometBft)
        .map_err(|e| format!("the state to import: {e}"))?;
    let current = current_slots
        .as_ref()
        .map(slots_from_wire)
        .transpose()
        .map_err(|e| e.to_string())?;
    let (key, _) = keys::decrypt_keys(nsm, kms, policy, encrypted_consensus_key, None)
        .map_err(|e| format!("cannot decrypt the consensus key: {e}"))?;
    let imported = import_state_records(
        &key.secret_seed(),
        &policy.chain_id,
        current,
        &requested,
        allow_regression,
    )
    .map_err(|e| e.to_string())?;
    info!(
        from = %imported.previous.map(|p| p.to_string()).unwrap_or_else(|| "no file".into()),
        to = %requested.position,
        "state import: records tagged"
    );
    Ok(Response::StateImported {
        previous: imported.previous.map(|p| p.to_string()),
        records: WireRecords::from(&imported.records),
    })
}

/// The control connection stays open while the helper lives. When it
/// closes, the helper is gone: exit rather than keep node connections that
/// can no longer persist state (the helper or launch-all starts us again).
/// No drain of the log stream: it ends at the helper, which is exiting or
/// dead, so nothing queued can be acknowledged any more; waiting would only
/// delay the restart while this process still holds the control listener.
fn watch_helper(control: Stream) -> Result<(), String> {
    tmkms_light::enclave::exit_when_host_leaves(control, "helper-watch", "helper")
        .map_err(|e| format!("cannot start the helper watch thread: {e}"))
}
