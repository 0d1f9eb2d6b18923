//! tmkms-light SGX host runner

fn main() {}
