//! Host/enclave transport for the Nitro provider.
//!
//! * [`Endpoint`], [`Stream`], [`Listener`]: one address type and one stream type over vsock,
//!   Unix sockets and TCP, so the enclave (vsock in production) and the tests (Unix/TCP, as
//!   this kind of host has no vsock loopback) run the same code.
//! * [`proxy`]: the host's `vsock-proxy`, relaying enclave connections to AWS KMS.
//! * [`logstream`]: enclave logs to the host over one long-lived, acknowledged stream.
//! * [`nitro_cli`]: running, describing and terminating enclaves through `nitro-cli`.
//! * [`supervise`]: the `launch-all` core, running the helper's processes as one unit.

pub mod endpoint;
pub mod logstream;
pub mod nitro_cli;
pub mod proxy;
mod stream;
pub mod supervise;
pub mod unix;
#[cfg(target_os = "linux")]
mod vsock;

pub use endpoint::{Endpoint, EndpointParseError, NITRO_PARENT_CID, VSOCK_CID_ANY};
pub use stream::{Listener, Stream};
