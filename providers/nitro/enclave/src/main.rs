//! tmkms-light Nitro enclave application

fn main() {}
