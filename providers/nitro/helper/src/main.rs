//! tmkms-light Nitro host helper

fn main() {}
