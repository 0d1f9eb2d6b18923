//! `tmkms_light_sgx_seal::inspect` and `unseal` on sealed blobs: files the
//! untrusted host stores and hands back to the enclave.
//!
//! Input: the blob. The enclave is simulated (`SimulatedHardware`) with a
//! fixed identity — the SIGSTRUCT in `fuzz/fixtures/sgx_sigstruct.bin`,
//! ISVSVN 2, not debug — on a CPU whose TEST secret is 32 × 0x42, so the seed
//! blobs sealed by the seed generator for this enclave really unseal, and
//! mutations reach the key derivation and AES-GCM-SIV.
//!
//! Invariants besides "never panics":
//! * the fuzzer cannot forge AES-GCM-SIV, and every header byte is
//!   authenticated, so `unseal` succeeds only on a blob byte-identical to
//!   one the seed generator sealed (`fuzz/fixtures/sgx_sealed_blobs.bin`);
//! * `unseal` succeeds only if `inspect` does, for the label it reports, with
//!   a secret of the length it reports; and it never succeeds for a label
//!   other than the blob's.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tmkms_light_sgx_seal::testing::test_cpu;
use tmkms_light_sgx_seal::{
    inspect, unseal, EnclaveIdentity, SimulatedHardware, LABEL_CONSENSUS_KEY,
};

/// Must match the seed generator (`seed-gen/src/tee.rs`).
const CPU_SECRET_BYTE: u8 = 0x42;

struct Fixture {
    hw: SimulatedHardware,
    known: Vec<&'static [u8]>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let identity =
            EnclaveIdentity::from_sigstruct(include_bytes!("../fixtures/sgx_sigstruct.bin"))
                .expect("fixture SIGSTRUCT");
        let mut known = Vec::new();
        let mut list: &'static [u8] = include_bytes!("../fixtures/sgx_sealed_blobs.bin");
        while let Some((len, rest)) = list.split_first_chunk::<4>() {
            let (blob, rest) = rest.split_at(u32::from_le_bytes(*len) as usize);
            known.push(blob);
            list = rest;
        }
        Fixture {
            hw: SimulatedHardware::new(identity, test_cpu(CPU_SECRET_BYTE)),
            known,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let header = inspect(data);
    let mut labels = vec![LABEL_CONSENSUS_KEY.to_owned()];
    if let Ok(h) = &header {
        labels.push(h.label.clone());
    }
    for label in &labels {
        if let Ok(secret) = unseal(&f.hw, label, data) {
            let h = header.as_ref().expect("unsealed a blob inspect refuses");
            assert_eq!(&h.label, label, "unsealed under another label");
            assert_eq!(h.secret_len, secret.len(), "header secret length is wrong");
            assert!(f.known.contains(&data), "unsealed a blob nobody sealed");
        }
    }
});
