//! The helper's side of the enclave's streams: durable state, node traffic
//! (spliced byte for byte; SecretConnection runs in the enclave), events
//! (for metrics) and logs.
//! The routing is the shared [`StreamRouter`]; this module accepts the
//! streams on the helper's listener and dials the configured nodes.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tmkms_light::config::Address;
use tmkms_light::state::file::FileStore;
use tmkms_light_cli::{NodeDialer, StreamRouter};
use tmkms_nitro_host::link::Link;
use tmkms_nitro_protocol::messages::node_stream_name;
use tmkms_nitro_protocol::messages::STREAM_STATE;
use tmkms_nitro_transport::{Endpoint, Listener};
use tracing::warn;

const POLL: Duration = Duration::from_millis(200);
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// (stream name, where it goes) for each configured validator.
struct Nodes(Vec<(String, Endpoint)>);

impl NodeDialer<Link> for Nodes {
    fn dial(&self, name: &str) -> Option<io::Result<Link>> {
        let (_, target) = self.0.iter().find(|(n, _)| n == name)?;
        Some(target.connect(NODE_CONNECT_TIMEOUT).map(Link))
    }
}

fn node_endpoint(address: &Address) -> Endpoint {
    match address {
        Address::Tcp { host, port, .. } => Endpoint::Tcp {
            host: host.clone(),
            port: *port,
        },
        Address::Unix { path } => Endpoint::Unix { path: path.clone() },
    }
}

/// Serve the enclave's streams on `listener` until `shutdown` is set.
pub fn serve(
    listener: Listener,
    state: FileStore,
    validators: &[Address],
    events: Arc<dyn tmkms_light::observe::Observer>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    let nodes = Nodes(
        validators
            .iter()
            .map(|a| (node_stream_name(a), node_endpoint(a)))
            .collect(),
    );
    let router = Arc::new(StreamRouter::new(STREAM_STATE, Some(state), nodes).with_events(events));
    thread::Builder::new()
        .name("enclave-streams".into())
        .spawn(move || {
            while !shutdown.load(Ordering::Relaxed) {
                match listener.accept_timeout(POLL) {
                    Ok(Some((stream, _peer))) => router.spawn(Link(stream), |name, _| {
                        warn!(
                            name,
                            "the enclave asked for a stream that is not configured; refusing"
                        );
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "accepting an enclave stream failed");
                        thread::sleep(POLL);
                    }
                }
            }
        })
}
