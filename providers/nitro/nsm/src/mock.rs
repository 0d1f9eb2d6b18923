//! **Test-only** stand-in for the Nitro Security Module.
//!
//! It produces documents in the exact AWS format — untagged COSE_Sign1, ES384, the same CBOR
//! payload fields — signed by a throw-away chain root → intermediate → leaf (all P-384) that
//! it generates at construction. Such documents verify only against
//! [`MockNsm::root_certificate_der`], never against the AWS root, so a mock can never be
//! mistaken for an enclave by a correctly configured verifier.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::Encode;
use p384::ecdsa::signature::{Keypair, Signer};
use p384::ecdsa::{DerSignature, SigningKey};
use rand_core::OsRng;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::time::{Time, Validity};

use crate::cose;
use crate::error::NsmError;
use crate::payload::{Payload, PCR_COUNT};
use crate::request::{AttestationRequest, Nsm};

/// Length of a SHA-384 PCR.
pub const PCR_LEN: usize = 48;

/// How the mock's chain and documents look. `Default` is "valid from a minute ago", with
/// AWS-like lifetimes and PCR0..=15 all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockNsmConfig {
    /// `module_id` written into documents.
    pub module_id: String,
    /// PCR values; indices `0..32`. Indices 0..=15 that are not set here are zero, as on an
    /// enclave in debug mode.
    pub pcrs: BTreeMap<u16, [u8; PCR_LEN]>,
    /// Start of validity of all three certificates (unix seconds).
    pub not_before_unix_secs: u64,
    /// Lifetime of the leaf (AWS: about three hours).
    pub leaf_lifetime_secs: u64,
    /// Lifetime of the root and intermediate.
    pub ca_lifetime_secs: u64,
    /// Fixed document timestamp (ms); `None` uses the system clock at each request.
    pub timestamp_ms: Option<u64>,
}

impl Default for MockNsmConfig {
    fn default() -> Self {
        let now = unix_now().as_secs();
        Self {
            module_id: "i-00000000000000000-enc0000000000000000".into(),
            pcrs: BTreeMap::new(),
            not_before_unix_secs: now.saturating_sub(60),
            leaf_lifetime_secs: 3 * 3600,
            ca_lifetime_secs: 30 * 24 * 3600,
            timestamp_ms: None,
        }
    }
}

impl MockNsmConfig {
    /// Sets one PCR (e.g. 0, 1, 2 for the image measurements, 8 for the signing certificate).
    #[must_use]
    pub fn with_pcr(mut self, index: u16, value: [u8; PCR_LEN]) -> Self {
        self.pcrs.insert(index, value);
        self
    }
}

/// A software NSM for tests and demos. **Never use it in production**: its signing key lives
/// in ordinary memory and its root is not AWS's.
pub struct MockNsm {
    module_id: String,
    pcrs: BTreeMap<u16, Vec<u8>>,
    timestamp_ms: Option<u64>,
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    leaf_der: Vec<u8>,
    /// Zeroized on drop by `p384`.
    leaf_key: SigningKey,
}

impl std::fmt::Debug for MockNsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockNsm")
            .field("module_id", &self.module_id)
            .field("leaf_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl MockNsm {
    /// A mock with the default configuration.
    pub fn new() -> Result<Self, NsmError> {
        Self::with_config(MockNsmConfig::default())
    }

    /// A mock with a fresh test chain built from `config`.
    pub fn with_config(config: MockNsmConfig) -> Result<Self, NsmError> {
        tracing::warn!(
            "MockNsm in use: attestation documents are signed by a throw-away test CA, not by AWS; this is for tests only"
        );
        if let Some(bad) = config.pcrs.keys().find(|i| **i >= PCR_COUNT) {
            return Err(NsmError::Mock(format!(
                "PCR index {bad} is outside 0..{PCR_COUNT}"
            )));
        }
        let mut pcrs: BTreeMap<u16, Vec<u8>> = (0..16).map(|i| (i, vec![0; PCR_LEN])).collect();
        for (i, v) in &config.pcrs {
            pcrs.insert(*i, v.to_vec());
        }

        let root_key = SigningKey::random(&mut OsRng);
        let intermediate_key = SigningKey::random(&mut OsRng);
        let leaf_key = SigningKey::random(&mut OsRng);
        let start = config.not_before_unix_secs;
        let ca_validity = validity(start, config.ca_lifetime_secs)?;
        let leaf_validity = validity(start, config.leaf_lifetime_secs)?;

        let root_name = name("CN=mock.nitro-enclaves,OU=TEST ONLY,O=tmkms-light,C=US")?;
        let intermediate_name =
            name("CN=mock-zonal.nitro-enclaves,OU=TEST ONLY,O=tmkms-light,C=US")?;
        let leaf_name = name(&format!(
            "CN={}.mock,OU=TEST ONLY,O=tmkms-light,C=US",
            config.module_id
        ))?;

        let root_der = issue::<DerSignature, _, _>(
            Profile::Root,
            1,
            ca_validity,
            root_name.clone(),
            &root_key,
            &root_key,
        )?;
        let intermediate_der = issue::<DerSignature, _, _>(
            Profile::SubCA {
                issuer: root_name,
                path_len_constraint: Some(0),
            },
            2,
            ca_validity,
            intermediate_name.clone(),
            &intermediate_key,
            &root_key,
        )?;
        let leaf_der = issue::<DerSignature, _, _>(
            Profile::Leaf {
                issuer: intermediate_name,
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            3,
            leaf_validity,
            leaf_name,
            &leaf_key,
            &intermediate_key,
        )?;

        Ok(Self {
            module_id: config.module_id,
            pcrs,
            timestamp_ms: config.timestamp_ms,
            root_der,
            intermediate_der,
            leaf_der,
            leaf_key,
        })
    }

    /// DER of the mock's root: the trust anchor to pass to [`crate::verify`] in tests.
    #[must_use]
    pub fn root_certificate_der(&self) -> &[u8] {
        &self.root_der
    }

    /// DER of the mock's intermediate CA.
    #[must_use]
    pub fn intermediate_certificate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// DER of the mock's document-signing (leaf) certificate.
    #[must_use]
    pub fn leaf_certificate_der(&self) -> &[u8] {
        &self.leaf_der
    }

    /// The payload this mock would sign for `request`.
    pub(crate) fn payload(&self, request: &AttestationRequest) -> Payload {
        let timestamp_ms = self
            .timestamp_ms
            .unwrap_or_else(|| u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX));
        Payload {
            module_id: self.module_id.clone(),
            timestamp_ms,
            pcrs: self.pcrs.clone(),
            certificate: self.leaf_der.clone(),
            cabundle: vec![self.root_der.clone(), self.intermediate_der.clone()],
            public_key: request.public_key.clone(),
            user_data: request.user_data.clone(),
            nonce: request.nonce.clone(),
        }
    }

    /// The leaf signing key, for tests that forge documents.
    #[cfg(test)]
    pub(crate) fn leaf_key(&self) -> &SigningKey {
        &self.leaf_key
    }
}

impl Nsm for MockNsm {
    fn attestation(&self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError> {
        request.validate()?;
        let payload = self.payload(request).encode().map_err(NsmError::Mock)?;
        cose::sign_es384(payload, &self.leaf_key).map_err(NsmError::Mock)
    }

    fn is_test_stand_in(&self) -> bool {
        true
    }
}

fn mock_err(e: impl std::fmt::Display) -> NsmError {
    NsmError::Mock(e.to_string())
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn name(s: &str) -> Result<Name, NsmError> {
    Name::from_str(s).map_err(mock_err)
}

/// Issues one certificate: `profile` (which sets the CA or leaf extensions) for `subject` and
/// the public half of `subject_key`, signed by `issuer_key`. Generic over the key type so that
/// tests can build chains on other curves; `Sig` is the signature encoding (`DerSignature`).
pub(crate) fn issue<Sig, K, S>(
    profile: Profile,
    serial: u8,
    validity: Validity,
    subject: Name,
    subject_key: &K,
    issuer_key: &S,
) -> Result<Vec<u8>, NsmError>
where
    K: Keypair,
    K::VerifyingKey: EncodePublicKey,
    S: Keypair + DynSignatureAlgorithmIdentifier + Signer<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let spki =
        SubjectPublicKeyInfoOwned::from_key(subject_key.verifying_key()).map_err(mock_err)?;
    CertificateBuilder::new(
        profile,
        SerialNumber::from(serial),
        validity,
        subject,
        spki,
        issuer_key,
    )
    .map_err(mock_err)?
    .build::<Sig>()
    .map_err(mock_err)?
    .to_der()
    .map_err(mock_err)
}

pub(crate) fn validity(start: u64, lifetime: u64) -> Result<Validity, NsmError> {
    let time = |secs: u64| Time::try_from(UNIX_EPOCH + Duration::from_secs(secs)).map_err(mock_err);
    Ok(Validity {
        not_before: time(start)?,
        not_after: time(start.saturating_add(lifetime))?,
    })
}
