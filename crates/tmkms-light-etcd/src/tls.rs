//! TLS to the etcd members: only the configured CA is trusted (no system or
//! web roots), and this signer proves itself with its client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use zeroize::Zeroizing;

use crate::Stream;

/// The PEM files of `[ha]`, read.
pub struct TlsFiles {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").finish_non_exhaustive()
    }
}

/// Why the TLS settings cannot be used. Each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{field} {path}: {error}")]
    Read {
        field: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{field} holds no PEM certificate; write the path of the etcd CA's certificate (PEM)")]
    NoCa { field: &'static str },
    #[error("{field}: a certificate is not valid: {reason}")]
    BadCertificate { field: &'static str, reason: String },
    #[error("{field} holds no PEM certificate; write the path of this signer's client certificate (PEM)")]
    NoCertificate { field: &'static str },
    #[error("{field} holds no PEM private key (PKCS#8, PKCS#1 or SEC1); write the path of this signer's client key")]
    NoKey { field: &'static str },
    #[error("the client certificate and key cannot be used: {0}")]
    Rejected(String),
    #[error("{host:?} is not a valid TLS server name")]
    ServerName { host: String },
}

impl TlsFiles {
    /// Read the three files (`ha.ca_file`, `ha.cert_file`, `ha.key_file`).
    pub fn read(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |field: &'static str, path: &Path| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                field,
                path: path.to_path_buf(),
                error,
            })
        };
        Ok(Self {
            ca: read("ha.ca_file", ca)?,
            cert: read("ha.cert_file", cert)?,
            key: Zeroizing::new(read("ha.key_file", key)?),
        })
    }
}

fn certificates(field: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            field,
            reason: e.to_string(),
        })
}

/// A client configuration trusting only `files.ca`, presenting the client
/// certificate.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let cas = certificates("ha.ca_file", &files.ca)?;
    if cas.is_empty() {
        return Err(TlsError::NoCa {
            field: "ha.ca_file",
        });
    }
    for ca in cas {
        roots.add(ca).map_err(|e| TlsError::BadCertificate {
            field: "ha.ca_file",
            reason: e.to_string(),
        })?;
    }
    let chain = certificates("ha.cert_file", &files.cert)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            field: "ha.cert_file",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|_| TlsError::NoKey {
        field: "ha.key_file",
    })?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Rejected(e.to_string()))?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| TlsError::Rejected(e.to_string()))?;
    Ok(Arc::new(config))
}

/// `stream` as a TLS session with `host` (a name or IP address in the
/// member's certificate).
pub(crate) fn wrap(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    stream: Stream,
) -> Result<Stream, TlsError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName {
        host: host.to_owned(),
    })?;
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    Ok(Box::new(rustls::StreamOwned::new(conn, stream)))
}
