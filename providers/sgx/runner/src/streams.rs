//! The streams the enclave opens, named in their first frame, and what
//! answers them: `init` (the control stream), `state` (the enclave's
//! write-ahead state, served from the durable file store) and
//! `node:<path>` (a configured `unix://` node socket, spliced byte for
//! byte). Both modes serve them with this code: the simulation from its
//! Unix listener ([`accept_streams`]), a real enclave from socket pairs its
//! stream router makes ([`serve_stream`]).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tmkms_light::observe::{Observer, Unobserved};
use tmkms_light::state::file::FileStore;
use tmkms_light_cli::{NodeDialer, StreamRouter};
use tmkms_light_sgx_protocol::{STREAM_INIT, STREAM_NODE_PREFIX, STREAM_STATE};
use tracing::warn;

/// How long a starting enclave may take to connect back.
pub(crate) const CONNECT_BACK_TIMEOUT: Duration = Duration::from_secs(20);

/// The enclave did not open its control stream.
#[derive(Debug, Error)]
pub enum ConnectBackError {
    #[error("the enclave exited before connecting back ({0}); see its log lines above")]
    ExitedEarly(ExitStatus),
    #[error("the enclave did not connect back within {0:?}")]
    NoConnection(Duration),
}

/// What the streams of one enclave may reach.
#[derive(Default)]
pub struct Plumbing {
    /// The state file, for `start`.
    pub state: Option<FileStore>,
    /// `unix://` node sockets the enclave may open.
    pub node_sockets: Vec<PathBuf>,
    /// Where the enclave's events go, when `metrics_listen` is set.
    pub metrics: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Plumbing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plumbing")
            .field("state", &self.state)
            .field("node_sockets", &self.node_sockets)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// What the enclave's named streams are served from.
pub(crate) struct Streams {
    /// `state` and the `node:<path>` streams.
    router: Arc<StreamRouter<UnixStream>>,
    /// Taken by the first `init` connection; there is only one.
    init: Mutex<Option<mpsc::Sender<UnixStream>>>,
}

impl Streams {
    /// The streams for `plumbing`, and where the `init` stream arrives.
    pub(crate) fn new(plumbing: Plumbing) -> (Arc<Self>, mpsc::Receiver<UnixStream>) {
        let (init_tx, init_rx) = mpsc::channel();
        let streams = Arc::new(Self {
            router: Arc::new(
                StreamRouter::new(
                    STREAM_STATE,
                    plumbing.state,
                    NodeSockets(plumbing.node_sockets),
                )
                .with_events(plumbing.metrics.unwrap_or_else(|| Arc::new(Unobserved))),
            ),
            init: Mutex::new(Some(init_tx)),
        });
        (streams, init_rx)
    }
}

/// The configured `unix://` node sockets; the enclave names one as
/// `node:<path>`.
struct NodeSockets(Vec<PathBuf>);

impl NodeDialer<UnixStream> for NodeSockets {
    fn dial(&self, name: &str) -> Option<io::Result<UnixStream>> {
        let path = Path::new(name.strip_prefix(STREAM_NODE_PREFIX)?);
        self.0
            .iter()
            .any(|configured| configured == path)
            .then(|| UnixStream::connect(path))
    }
}

/// Serve every stream the simulated enclave opens on `listener`.
pub(crate) fn accept_streams(listener: &UnixListener, streams: &Arc<Streams>) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "accepting an enclave stream failed");
                continue;
            }
        };
        let for_others = Arc::clone(streams);
        streams
            .router
            .spawn(conn, move |name, conn| serve_other(name, conn, &for_others));
    }
}

/// Serve the enclave's stream `name` on `conn` until either side closes
/// (the streams a hardware enclave opens through usercalls).
#[cfg(feature = "hardware")]
pub(crate) fn serve_stream(name: &str, conn: UnixStream, streams: &Streams) {
    if let Err(conn) = streams.router.serve(name, conn) {
        serve_other(name, conn, streams);
    }
}

/// The streams the router does not serve: the control stream, and refusals.
fn serve_other(name: &str, conn: UnixStream, streams: &Streams) {
    if name == STREAM_INIT {
        let sender = streams.init.lock().ok().and_then(|mut s| s.take());
        match sender {
            Some(sender) => {
                let _ = sender.send(conn);
            }
            None => warn!("the enclave opened a second init stream; closing it"),
        }
    } else if let Some(path) = name.strip_prefix(STREAM_NODE_PREFIX) {
        warn!(
            path,
            "the enclave asked for a node socket that is not configured; refusing"
        );
    } else {
        warn!(name, "the enclave opened an unknown stream; closing it");
    }
}
