//! Host/enclave transport for the Nitro provider, linked by both sides.
//!
//! * [`Endpoint`], [`Stream`], [`Listener`]: one address type and one stream type over vsock,
//!   Unix sockets and TCP, so the enclave (vsock in production) and the tests (Unix/TCP, as
//!   this kind of host has no vsock loopback) run the same code.
//! * [`log_sink`]: the enclave side of its log stream to the host.
//!
//! Host-only pieces (KMS proxy, log server, `nitro-cli`, supervision) live in
//! `tmkms-nitro-host`, so the enclave links none of them.

pub mod endpoint;
pub mod log_sink;
mod stream;
pub mod unix;
#[cfg(target_os = "linux")]
mod vsock;

pub use endpoint::{Endpoint, EndpointParseError, NITRO_PARENT_CID, VSOCK_CID_ANY};
pub use stream::{Listener, Stream};
