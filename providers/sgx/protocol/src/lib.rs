//! Shared by the SGX runner and enclave app.
