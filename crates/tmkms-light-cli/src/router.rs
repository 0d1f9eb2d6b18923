//! The host's end of an enclave's named streams. An enclave (SGX or Nitro)
//! opens each stream it needs and names it in the first frame; the host
//! serves `state` from its durable file store and splices a node stream to
//! the node it names, and only to a node the configuration lists, and
//! relays `events` to the host's observer (metrics). What else a provider
//! serves (the SGX control stream) it handles itself.

use std::io;
use std::sync::{Arc, Mutex};
use std::thread;

use tmkms_light::link::read_announcement;
use tmkms_light::observe::{relay_events, Observer, Unobserved, EVENTS_STREAM};
use tmkms_light::state::file::FileStore;
use tmkms_light::state::remote::serve_state;
use tracing::{debug, warn};

use crate::splice::{splice, Duplex};

/// Connects an enclave's node stream to its node.
pub trait NodeDialer<S>: Send + Sync {
    /// The connection for the node stream `name`; `None` if no configured
    /// node has that name (the enclave asked for something not allowed).
    fn dial(&self, name: &str) -> Option<io::Result<S>>;
}

/// What one enclave's streams may reach: its state file (if the command has
/// one) and the configured nodes.
pub struct StreamRouter<S> {
    state_name: &'static str,
    /// One state stream at a time: the lock is held while it is served.
    state: Mutex<Option<FileStore>>,
    nodes: Box<dyn NodeDialer<S>>,
    /// Hears the enclave's events; without metrics they are read and
    /// dropped, so the enclave never waits on them.
    events: Arc<dyn Observer>,
}

impl<S> std::fmt::Debug for StreamRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRouter")
            .field("state_name", &self.state_name)
            .finish_non_exhaustive()
    }
}

impl<S: Duplex> StreamRouter<S> {
    /// Streams named `state_name` are served from `state`, node streams
    /// through `nodes`.
    pub fn new(
        state_name: &'static str,
        state: Option<FileStore>,
        nodes: impl NodeDialer<S> + 'static,
    ) -> Self {
        Self {
            state_name,
            state: Mutex::new(state),
            nodes: Box::new(nodes),
            events: Arc::new(Unobserved),
        }
    }

    /// The enclave's events go to `observer` (the host's metrics).
    #[must_use]
    pub fn with_events(mut self, observer: Arc<dyn Observer>) -> Self {
        self.events = observer;
        self
    }

    /// Serve the stream named `name` until either side closes. A name this
    /// router does not serve gives the stream back.
    pub fn serve(&self, name: &str, mut stream: S) -> Result<(), S> {
        if name == self.state_name {
            self.serve_state(&mut stream);
            return Ok(());
        }
        if name == EVENTS_STREAM {
            relay_events(stream, &*self.events);
            return Ok(());
        }
        match self.nodes.dial(name) {
            None => Err(stream),
            Some(Ok(node)) => {
                let _ = splice(stream, node);
                Ok(())
            }
            Some(Err(e)) => {
                debug!(stream = name, error = %e, "node not reachable");
                Ok(())
            }
        }
    }

    fn serve_state(&self, stream: &mut S) {
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        let Some(store) = guard.as_mut() else {
            warn!("the enclave asked for state, but this command has none; closing the stream");
            return;
        };
        match serve_state(stream, store) {
            Ok(()) => debug!("enclave closed the state stream"),
            Err(e) => warn!(error = %e, "state stream ended"),
        }
    }

    /// On a thread of its own: read the name `stream` announces and serve
    /// it; a name this router does not serve goes to `other`.
    pub fn spawn(self: &Arc<Self>, mut stream: S, other: impl FnOnce(&str, S) + Send + 'static) {
        let router = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("enclave-stream".into())
            .spawn(move || {
                let name = match read_announcement(&mut stream) {
                    Ok(name) => name,
                    Err(e) => {
                        warn!(error = %e, "enclave stream without a valid name; closing it");
                        return;
                    }
                };
                if let Err(stream) = router.serve(&name, stream) {
                    other(&name, stream);
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a thread for an enclave stream");
        }
    }
}
