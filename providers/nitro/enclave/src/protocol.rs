//! The control protocol and the encryption context, defined in
//! [`tmkms_nitro_protocol`] (shared with the helper) and re-exported here.

pub use tmkms_nitro_protocol::encryption_context::{
    CONTEXT_CHAIN_ID, CONTEXT_CONSENSUS, CONTEXT_IDENTITY, CONTEXT_KEY, CONTEXT_POLICY,
};
pub use tmkms_nitro_protocol::messages::*;
