//! Core of the tmkms-light remote signer.
//!
//! Everything that is the same for every signing provider lives here. The
//! modules an enclave runs (`types`, `privval`, `sign_bytes`, `guard`,
//! `session`, `signer`) do no file, clock or socket I/O of their own: they work
//! over `Read + Write` streams and the [`state::StateStore`] trait.

pub mod busy_poll;
pub mod chain;
pub mod config;
pub mod enclave;
pub mod guard;
pub mod ha;
pub mod keys;
pub mod link;
pub mod net;
pub mod observe;
pub mod paths;
pub mod phases;
pub mod privval;
pub mod refusal;
pub mod session;
pub mod sign_bytes;
pub mod signer;
pub mod state;
pub mod types;
