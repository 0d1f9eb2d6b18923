//! Starting the enclave, in either mode, and talking to it.
//!
//! Simulation: the host build of the enclave runs as a child process and
//! connects back to a Unix socket in a private (0700) directory, naming each
//! stream in its first frame; [`crate::streams`] answers them. A real
//! enclave ([`crate::hardware`]) opens the same streams through EDP
//! usercalls.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;
use tmkms_light::link::{recv_json, send_json, LinkError};
use tmkms_light_sgx_protocol::{sim_env, Request, Response, ARG_LOG_FORMAT, MAX_CONTROL_MESSAGE};
use tracing::info;

use crate::settings::{Mode, SgxSettings};
pub use crate::streams::Plumbing;
use crate::streams::{accept_streams, ConnectBackError, Streams, CONNECT_BACK_TIMEOUT};

#[derive(Debug, Error)]
pub enum LaunchError {
    #[cfg(not(feature = "hardware"))]
    #[error("mode = \"hardware\" needs a runner built with SGX loading support, and this runner was built without it. Build it with `cargo build --release --locked -p tmkms-light-sgx-runner --features hardware` (needs protoc, Debian package protobuf-compiler) and run it on an SGX CPU with the SGX driver (/dev/sgx_enclave) and the AESM service (aesmd)")]
    HardwareUnavailable,
    #[cfg(feature = "hardware")]
    #[error(transparent)]
    Hardware(#[from] crate::hardware::HardwareError),
    #[error("cannot start the enclave {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("enclave I/O: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    ConnectBack(#[from] ConnectBackError),
    #[error("enclave control stream: {0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Enclave(String),
}

/// A running enclave and its control stream.
#[derive(Debug)]
pub struct Enclave {
    process: Process,
    control: UnixStream,
}

/// Where the enclave runs.
#[derive(Debug)]
enum Process {
    /// The host simulation: a child process.
    Child {
        child: Child,
        // Keeps the socket directory until the enclave is gone.
        _dir: tempfile::TempDir,
    },
    /// A real enclave, loaded into this process and run on its own thread.
    #[cfg(feature = "hardware")]
    InProcess(crate::hardware::Running),
}

impl Enclave {
    pub fn launch(settings: &SgxSettings, plumbing: Plumbing) -> Result<Self, LaunchError> {
        match settings.mode {
            #[cfg(feature = "hardware")]
            Mode::Hardware => {
                let (streams, init) = Streams::new(plumbing);
                let (running, control) = crate::hardware::launch(settings, streams, &init)?;
                Ok(Self {
                    process: Process::InProcess(running),
                    control,
                })
            }
            #[cfg(not(feature = "hardware"))]
            Mode::Hardware => {
                drop(plumbing);
                Err(LaunchError::HardwareUnavailable)
            }
            Mode::Simulation => launch_simulation(settings, plumbing),
        }
    }

    /// Send one request and read the answer; an `Error` answer is an error.
    pub fn request(&mut self, request: &Request) -> Result<Response, LaunchError> {
        send_json(&mut self.control, request)?;
        match recv_json(&mut self.control, MAX_CONTROL_MESSAGE)? {
            Response::Error { message } => Err(LaunchError::Enclave(message)),
            response => Ok(response),
        }
    }

    /// The enclave's exit status, if it exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.process {
            Process::Child { child, .. } => child.try_wait(),
            #[cfg(feature = "hardware")]
            Process::InProcess(running) => Ok(running.try_wait()),
        }
    }

    /// Wait up to `timeout` for the enclave to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop the enclave: close its control stream (it exits on its own), then
    /// kill it if it lingers. An in-process enclave cannot be killed on its
    /// own; it goes when this process exits.
    pub fn stop(mut self) -> io::Result<()> {
        let _ = self.control.shutdown(std::net::Shutdown::Both);
        if self.wait_timeout(Duration::from_secs(2))?.is_none() {
            match &mut self.process {
                Process::Child { child, .. } => {
                    child.kill()?;
                    child.wait()?;
                }
                #[cfg(feature = "hardware")]
                Process::InProcess(_) => {
                    tracing::warn!("the enclave did not exit within 2 s of closing its control stream; it ends with this process");
                }
            }
        }
        Ok(())
    }
}

/// The enclave's command line: the runner's log format
/// ([`ARG_LOG_FORMAT`]), so the enclave's lines on the shared stderr match.
pub(crate) fn enclave_args() -> [&'static str; 2] {
    [ARG_LOG_FORMAT, tmkms_light_cli::active_log_format().name()]
}

fn launch_simulation(settings: &SgxSettings, plumbing: Plumbing) -> Result<Enclave, LaunchError> {
    let dir = tempfile::Builder::new().prefix("tmkms-sgx-").tempdir()?;
    let socket = dir.path().join("host.sock");
    let listener = UnixListener::bind(&socket)?;
    let child = Command::new(&settings.enclave_path)
        .args(enclave_args())
        .env(sim_env::HOST_SOCKET, &socket)
        .env(sim_env::SIGSTRUCT, &settings.sigstruct_path)
        .env(sim_env::CPU_SECRET, &settings.sim_cpu_secret_path)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| LaunchError::Spawn {
            path: settings.enclave_path.display().to_string(),
            source,
        })?;
    let mut enclave_child = child;
    info!(
        pid = enclave_child.id(),
        "enclave process started (SGX host simulation)"
    );

    let (plumbing, init_rx) = Streams::new(plumbing);
    thread::Builder::new()
        .name("enclave-streams".into())
        .spawn(move || accept_streams(&listener, &plumbing))?;

    let deadline = Instant::now() + CONNECT_BACK_TIMEOUT;
    let control = loop {
        match init_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(stream) => break stream,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(ConnectBackError::NoConnection(CONNECT_BACK_TIMEOUT).into())
            }
        }
        if let Some(status) = enclave_child.try_wait()? {
            return Err(ConnectBackError::ExitedEarly(status).into());
        }
        if Instant::now() >= deadline {
            let _ = enclave_child.kill();
            let _ = enclave_child.wait();
            return Err(ConnectBackError::NoConnection(CONNECT_BACK_TIMEOUT).into());
        }
    };
    Ok(Enclave {
        process: Process::Child {
            child: enclave_child,
            _dir: dir,
        },
        control,
    })
}
