//! AWS KMS client for the Nitro enclave: SigV4, Decrypt with Recipient, CMS envelopes.
//!
//! Inside a Nitro enclave there is no network: the host forwards a vsock port
//! to `kms.<region>.amazonaws.com:443`, and the enclave speaks HTTPS over the
//! stream it is handed, so TLS ends inside the enclave. This crate is that
//! client, kept synchronous and small (no async runtime, no AWS SDK):
//!
//! * [`KmsClient`] — SigV4-signed KMS JSON calls over any [`Connector`]
//!   (`Encrypt`, `Decrypt` with an attestation `Recipient`, plain `Decrypt`
//!   for host tools, `CreateKey` for tests);
//! * [`open_enveloped_data`] — opens the CMS envelope KMS returns for a
//!   `Recipient` with the enclave's ephemeral RSA key;
//! * [`Credentials`] — the signing credentials, redacted and zeroized.
//!
//! ```no_run
//! # use tmkms_nitro_kms::*;
//! # fn demo(doc: &[u8], rsa_key: &rsa::RsaPrivateKey, blob: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let config = KmsConfig::for_region("eu-west-1");
//! let connector = tcp_connector("127.0.0.1:8000", std::time::Duration::from_secs(10)); // or vsock
//! let mut kms = KmsClient::new(config, Credentials::from_env()?, connector)?;
//! let envelope = kms.decrypt_for_recipient(blob, None, doc)?;
//! let secret = open_enveloped_data(&envelope, rsa_key)?;
//! # Ok(()) }
//! ```

mod ber;
mod client;
mod cms;
mod config;
mod credentials;
mod error;
pub use tmkms_light_http as http;
pub mod sigv4;
mod transport;

pub use crate::ber::{ber_to_der, BerError};
pub use crate::client::{
    KmsClient, DEFAULT_MAX_RESPONSE_BYTES, MAX_ENCRYPT_PLAINTEXT,
    RECIPIENT_KEY_ENCRYPTION_ALGORITHM,
};
pub use crate::cms::{open_enveloped_data, CmsError};
pub use crate::config::{Endpoint, EndpointError, KmsConfig};
pub use crate::credentials::{Credentials, CredentialsError};
pub use crate::error::{KmsError, KmsErrorKind};
pub use crate::transport::{default_tls_config, tcp_connector, Connector, ReadWrite, Stream};
pub use rsa;
/// The TLS library the client uses (for tests that stand up a TLS server).
pub use rustls;
