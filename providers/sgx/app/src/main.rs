//! tmkms-light SGX enclave application

fn main() {}
