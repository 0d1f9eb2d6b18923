//! The helper's side of the enclave's streams: durable state, node traffic
//! (spliced byte for byte; SecretConnection runs in the enclave) and logs.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tmkms_light::config::Address;
use tmkms_light::link::read_announcement;
use tmkms_light::state::file::FileStore;
use tmkms_light::state::remote::serve_state;
use tmkms_nitro_host::proxy::splice;
use tmkms_nitro_protocol::messages::node_stream_name;
use tmkms_nitro_protocol::messages::STREAM_STATE;
use tmkms_nitro_transport::{Endpoint, Listener, Stream};
use tracing::{debug, warn};

const POLL: Duration = Duration::from_millis(200);
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the enclave's streams may reach.
struct Reach {
    state: Mutex<FileStore>,
    /// (stream name, where it goes) for each configured validator.
    nodes: Vec<(String, Endpoint)>,
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
    shutdown: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    let reach = Arc::new(Reach {
        state: Mutex::new(state),
        nodes: validators
            .iter()
            .map(|a| (node_stream_name(a), node_endpoint(a)))
            .collect(),
    });
    thread::Builder::new()
        .name("enclave-streams".into())
        .spawn(move || {
            while !shutdown.load(Ordering::Relaxed) {
                match listener.accept_timeout(POLL) {
                    Ok(Some((stream, _peer))) => {
                        let reach = Arc::clone(&reach);
                        let spawned = thread::Builder::new()
                            .name("enclave-stream".into())
                            .spawn(move || serve_one(stream, &reach));
                        if let Err(e) = spawned {
                            warn!(error = %e, "cannot start a thread for an enclave stream");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "accepting an enclave stream failed");
                        thread::sleep(POLL);
                    }
                }
            }
        })
}

fn serve_one(mut stream: Stream, reach: &Reach) {
    let name = match read_announcement(&mut stream) {
        Ok(name) => name,
        Err(e) => {
            warn!(error = %e, "enclave stream without a valid name; closing it");
            return;
        }
    };
    if name == STREAM_STATE {
        // One state stream at a time: the lock is held while it is served.
        let Ok(mut store) = reach.state.lock() else {
            return;
        };
        match serve_state(&mut stream, &mut store) {
            Ok(()) => debug!("enclave closed the state stream"),
            Err(e) => warn!(error = %e, "state stream ended"),
        }
        return;
    }
    let Some((_, target)) = reach.nodes.iter().find(|(n, _)| *n == name) else {
        warn!(
            name,
            "the enclave asked for a stream that is not configured; refusing"
        );
        return;
    };
    match target.connect(NODE_CONNECT_TIMEOUT) {
        Ok(node) => {
            let _ = splice(stream, node);
        }
        Err(e) => debug!(node = %target, error = %e, "node not reachable"),
    }
}
