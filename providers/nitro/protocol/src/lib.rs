//! Shared by the Nitro helper and enclave.
