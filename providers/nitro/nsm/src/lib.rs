//! Nitro Security Module boundary, mock NSM and attestation document verification.
//!
//! * [`Nsm`] is the hardware boundary: [`DeviceNsm`] talks to `/dev/nsm` inside a Nitro
//!   Enclave, [`MockNsm`] (tests only) signs real-format documents with a throw-away chain.
//! * [`verify`] checks a document (COSE_Sign1/ES384, AWS payload rules, certificate chain to a
//!   caller-chosen root at a caller-chosen time) and returns an [`AttestationDoc`].
//! * [`aws_root_der`] is the pinned AWS Nitro Enclaves root G1; [`describe`] prints a summary.
//!
//! Crates: `coset` (COSE framing, `Sig_structure`), `ciborium` (CBOR), `x509-cert` + `der`
//! (X.509 fields and the mock's certificates), `rustls-webpki` (the certificate path check,
//! as in rustls), `p384` (the document's ECDSA signature) — all written for untrusted input.
//! The existing Nitro verifiers were not used: they pin the root or read the system clock,
//! while the enclave helper and the tests must pass both.

mod chain;
mod cose;
mod describe;
mod device;
mod error;
mod mock;
mod payload;
mod request;
mod root;
mod verify;

#[cfg(test)]
mod tests;

pub use describe::describe;
pub use device::{DeviceNsm, NSM_DEVICE_PATH};
pub use error::{NsmError, VerifyError};
pub use mock::{MockNsm, MockNsmConfig, PCR_LEN};
pub use request::{AttestationRequest, Nsm, MAX_NONCE_LEN, MAX_PUBLIC_KEY_LEN, MAX_USER_DATA_LEN};
pub use root::{aws_root_der, AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256};
pub use verify::{verify, AttestationDoc, MAX_DOCUMENT_LEN};
