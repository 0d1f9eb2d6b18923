//! `tmkms_nitro_kms::ber_to_der` and `open_enveloped_data` on a KMS
//! `CiphertextForRecipient`: bytes that reach the enclave from KMS through
//! the untrusted host's proxy.
//!
//! Input: the envelope. The recipient key is fixed (an RSA-2048 key in
//! `fuzz/fixtures/kms_recipient_rsa2048.der`, written by the seed generator
//! with the seeds), so the seeds — envelopes for that key, in DER and in the
//! BER form KMS sends — open, and mutations reach every step up to and past
//! the RSA and AES decryptions.
//!
//! Invariants besides "never panics":
//! * `ber_to_der` is idempotent: its output converts to itself (it only
//!   resolves indefinite lengths, minimizes length forms and flattens
//!   segmented strings, and its output has none of those left);
//! * it never amplifies: below 64 KiB (where a definite length needs at most
//!   3 bytes, as much as the indefinite form's `80 … 00 00`) the DER is no
//!   longer than the BER;
//! * opening the DER gives the same result as opening the BER, and a
//!   plaintext is shorter than the envelope it came from.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tmkms_nitro_kms::rsa::pkcs1::DecodeRsaPrivateKey;
use tmkms_nitro_kms::rsa::RsaPrivateKey;
use tmkms_nitro_kms::{ber_to_der, open_enveloped_data};

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::from_pkcs1_der(include_bytes!("../fixtures/kms_recipient_rsa2048.der"))
            .expect("fixture RSA key")
    })
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    let opened = open_enveloped_data(data, key);
    match ber_to_der(data) {
        Ok(der) => {
            assert_eq!(
                ber_to_der(&der).as_deref(),
                Ok(&der[..]),
                "ber_to_der is not idempotent"
            );
            if data.len() < 0x1_0000 {
                assert!(
                    der.len() <= data.len(),
                    "DER ({}) longer than BER ({})",
                    der.len(),
                    data.len()
                );
            }
            let again = open_enveloped_data(&der, key);
            match (&opened, &again) {
                (Ok(a), Ok(b)) => assert_eq!(&a[..], &b[..]),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("opening BER and its DER disagree: {opened:?} vs {again:?}"),
            }
        }
        Err(_) => assert!(opened.is_err(), "opened an envelope that is not BER"),
    }
    if let Ok(plaintext) = &opened {
        assert!(plaintext.len() < data.len());
    }
});
