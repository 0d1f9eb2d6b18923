//! `tmkms-light-sgx-app`: the enclave. Started by `tmkms-light-sgx-runner`,
//! never by hand: it connects back to the runner, takes one request on the
//! `init` stream and answers it; for `start` it signs until the runner goes
//! away (exit 3) or the state stream to the runner is lost (exit 1: nothing
//! more can be made durable, so its supervisor must restart it).

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tmkms_light::config::LogFormat;
use tmkms_light::enclave::{run_signer, BoundPolicy, EnclaveSettings, SignerParts};
use tmkms_light::link::{recv_json, send_json};
use tmkms_light::observe::to_host_events;
use tmkms_light_sgx_app::commands::{handle, unseal_keys};
use tmkms_light_sgx_app::host::{Host, HostDialer};
use tmkms_light_sgx_app::protocol::{
    Request, Response, ARG_LOG_FORMAT, MAX_CONTROL_MESSAGE, MAX_VALIDATOR_CONNECTIONS,
    STREAM_EVENTS, STREAM_INIT, STREAM_STATE,
};
use tmkms_light_sgx_seal::SgxHardware;
use tracing::error;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMKMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match log_format_argument(std::env::args()) {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.init(),
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The log format the runner asked for ([`ARG_LOG_FORMAT`]); text when it
/// asked for none or for something else.
fn log_format_argument(args: impl Iterator<Item = String>) -> LogFormat {
    let mut args = args.skip_while(|arg| arg != ARG_LOG_FORMAT).skip(1);
    args.next()
        .and_then(|value| LogFormat::parse(&value))
        .unwrap_or_default()
}

/// Every validator connection runs on its own enclave thread, and the
/// enclave has a TCS (and heap) for [`MAX_VALIDATOR_CONNECTIONS`] of them.
fn check_connections(settings: &EnclaveSettings) -> Result<(), String> {
    let n = settings.validators.len();
    if n > MAX_VALIDATOR_CONNECTIONS {
        return Err(format!(
            "{n} [[validator]] connections configured; this enclave serves at most {MAX_VALIDATOR_CONNECTIONS} (its thread count and heap are sized for a validator and one sentry, see docs/sgx-build.md): remove the extra [[validator]] tables"
        ));
    }
    Ok(())
}

/// The hardware and the runner, as this build reaches them.
type Platform = (Arc<dyn SgxHardware>, Arc<dyn Host>);

fn run() -> Result<(), String> {
    let (hw, host) = platform::open()?;
    let mut control = host
        .open(STREAM_INIT)
        .map_err(|e| format!("cannot open the init stream to the runner: {e}"))?;
    let request: Request = recv_json(&mut control, MAX_CONTROL_MESSAGE)
        .map_err(|e| format!("reading the runner's request: {e}"))?;
    let Request::Start {
        settings,
        sealed_consensus_key,
        sealed_identity_key,
    } = request
    else {
        let response = handle(&*hw, request);
        return send_json(&mut control, &response)
            .map_err(|e| format!("answering the runner: {e}"));
    };

    // The policy comes from the host's settings, and the consensus key
    // unseals only if it is the one bound at init.
    let unsealed = check_connections(&settings)
        .and_then(|()| BoundPolicy::from_settings(&settings).map_err(|e| e.to_string()))
        .and_then(|bound| {
            unseal_keys(
                &*hw,
                &sealed_consensus_key,
                sealed_identity_key.as_deref(),
                &bound,
            )
            .map(|(key, identity)| (bound, key, identity))
            .map_err(|e| e.to_string())
        });
    let (bound, key, identity) = match unsealed {
        Ok(unsealed) => unsealed,
        Err(message) => {
            let _ = send_json(
                &mut control,
                &Response::Error {
                    message: message.clone(),
                },
            );
            return Err(message);
        }
    };
    send_json(
        &mut control,
        &Response::Started {
            consensus_public_key: key.public_key().as_bytes().to_vec(),
        },
    )
    .map_err(|e| format!("answering the runner: {e}"))?;

    // The init stream stays open while the runner lives. When it closes the
    // runner is gone (killed, crashed, stopped): stop at once rather than
    // keep node connections that can no longer persist state.
    tmkms_light::enclave::exit_when_host_leaves(control, "runner-watch", "runner")
        .map_err(|e| format!("cannot start the runner watch thread: {e}"))?;

    let state_link = host
        .open(STREAM_STATE)
        .map_err(|e| format!("cannot open the state stream to the runner: {e}"))?;
    let observer = to_host_events(host.open(STREAM_EVENTS));
    let parts = SignerParts {
        settings,
        bound,
        key,
        identity,
        state_link,
        dialer: Arc::new(HostDialer::new(Arc::clone(&host))),
        // Used for latency figures in logs and metrics only.
        clock: Some(std::time::Instant::now),
        observer,
    };
    run_signer(parts, Arc::new(AtomicBool::new(false))).map_err(|e| e.to_string())
}

#[cfg(target_env = "sgx")]
mod platform {
    use super::*;
    use tmkms_light_sgx_app::host::UsercallHost;
    use tmkms_light_sgx_seal::EnclaveHardware;

    pub fn open() -> Result<Platform, String> {
        Ok((Arc::new(EnclaveHardware::new()), Arc::new(UsercallHost)))
    }
}

/// The host simulation: the runner names its socket and the simulated
/// hardware's inputs in the environment.
#[cfg(not(target_env = "sgx"))]
mod platform {
    use super::*;
    use tmkms_light_sgx_app::host::SocketHost;
    use tmkms_light_sgx_seal::{EnclaveIdentity, SimulatedCpu, SimulatedHardware};
    use zeroize::Zeroizing;

    use tmkms_light_sgx_app::protocol::sim_env::{
        CPU_SECRET as ENV_CPU_SECRET, HOST_SOCKET as ENV_HOST_SOCKET, SIGSTRUCT as ENV_SIGSTRUCT,
    };

    /// The simulated CPU's security version.
    pub const SIM_CPUSVN: [u8; 16] = [1; 16];

    fn var(name: &str) -> Result<String, String> {
        std::env::var(name).map_err(|_| {
            format!("{name} is not set: this program is started by tmkms-light-sgx-runner")
        })
    }

    pub fn open() -> Result<Platform, String> {
        let sigstruct_path = var(ENV_SIGSTRUCT)?;
        let sigstruct = std::fs::read(&sigstruct_path)
            .map_err(|e| format!("reading SIGSTRUCT {sigstruct_path}: {e}"))?;
        let identity = EnclaveIdentity::from_sigstruct(&sigstruct)
            .map_err(|e| format!("SIGSTRUCT {sigstruct_path}: {e}"))?;
        let secret_path = var(ENV_CPU_SECRET)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&secret_path)
                .map_err(|e| format!("reading the simulated CPU secret {secret_path}: {e}"))?,
        );
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut *secret)
            .map_err(|_| format!("simulated CPU secret {secret_path} must hold 64 hex digits"))?;
        let hw = SimulatedHardware::new(identity, SimulatedCpu::new(*secret, SIM_CPUSVN));
        let host = SocketHost::new(var(ENV_HOST_SOCKET)?);
        Ok((Arc::new(hw), Arc::new(host)))
    }
}
