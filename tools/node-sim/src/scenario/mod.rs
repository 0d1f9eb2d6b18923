//! Scripted scenarios against one signer connection.
//!
//! Every scenario returns a typed report: a list of [`Case`]s, each with what
//! was expected ([`Expect`]) and what happened ([`Outcome`]). Errors are kept
//! for what the simulator itself cannot do (an invalid spec, a failed accept);
//! anything the signer does, including dropping the connection, is an outcome.
//!
//! Heights: every scenario uses the heights it is given and a few above
//! (see each function and [`Scripted`] variant); [`run_all`] hands out fresh heights, so the signer's
//! last signed state is always below the next scenario's first request.

mod extensions;
mod malformed_input;
mod normal_operation;
mod report;
mod request;
mod run;
mod scripted;
mod sign_bytes_request;
mod signing_policy;
mod suite;

pub use malformed_input::{invalid_request, malformed_frame, InvalidRequest, MalformedFrame};
pub use normal_operation::{drive, normal_heights, step, Stats, Step};
pub use report::{Case, Expect, Outcome, Report};
pub use scripted::Scripted;
pub use suite::{run_all, SignerAfterSuite, SuiteConfig, SuiteReport};
