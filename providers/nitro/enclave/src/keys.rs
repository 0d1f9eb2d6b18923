//! Key generation, KMS encryption and attested decryption inside the enclave.

use std::collections::BTreeMap;
use std::time::Duration;

use rsa::pkcs8::EncodePublicKey;
use rsa::RsaPrivateKey;
use thiserror::Error;
use tmkms_light::keys::{ConsensusKey, IdentityKey, SEED_LEN};
use tmkms_nitro_kms::{open_enveloped_data, CmsError, Credentials, KmsClient, KmsConfig, KmsError};
use tmkms_nitro_nsm::{AttestationRequest, Nsm, NsmError};
use zeroize::Zeroizing;

use crate::protocol::{
    init_user_data, KmsAccess, Response, CONTEXT_CONSENSUS, CONTEXT_IDENTITY, CONTEXT_KEY,
};

/// Per-request timeout of KMS calls through the proxy.
const KMS_TIMEOUT: Duration = Duration::from_secs(15);
/// Size of the ephemeral key KMS encrypts the plaintext to.
const RECIPIENT_KEY_BITS: usize = 2048;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("KMS endpoint: {0}")]
    Endpoint(String),
    #[error("KMS: {0}")]
    Kms(#[from] KmsError),
    #[error("NSM attestation: {0}")]
    Nsm(#[from] NsmError),
    #[error("opening the KMS envelope: {0}")]
    Envelope(#[from] CmsError),
    #[error("the {which} key KMS returned is {len} bytes, expected a {SEED_LEN}-byte seed (wrong ciphertext file?)")]
    SeedLength { which: &'static str, len: usize },
    #[error("ephemeral RSA key: {0}")]
    Rsa(String),
}

fn client(access: &KmsAccess) -> Result<KmsClient, KeyError> {
    let config = match &access.endpoint_url {
        Some(url) => KmsConfig::with_endpoint_url(&access.region, url)
            .map_err(|e| KeyError::Endpoint(e.to_string()))?,
        None => KmsConfig::for_region(&access.region),
    };
    let creds = &access.credentials;
    let credentials = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.as_str(),
        creds.session_token.as_ref().map(|t| t.to_string()),
    );
    let proxy = access.proxy.clone();
    let connector: tmkms_nitro_kms::Connector = Box::new(move || {
        let stream = proxy.connect(KMS_TIMEOUT)?;
        stream.set_read_timeout(Some(KMS_TIMEOUT))?;
        stream.set_write_timeout(Some(KMS_TIMEOUT))?;
        Ok(Box::new(stream) as tmkms_nitro_kms::Stream)
    });
    Ok(KmsClient::new(config, credentials, connector)?)
}

fn context(purpose: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(CONTEXT_KEY.to_owned(), purpose.to_owned())])
}

/// `init`: new keys, encrypted under the KMS key, with an attestation that
/// binds the consensus public key and the KMS key id to this enclave.
pub fn init(nsm: &dyn Nsm, access: &KmsAccess) -> Result<Response, KeyError> {
    let consensus = ConsensusKey::generate();
    let identity = IdentityKey::generate();
    let mut kms = client(access)?;
    let encrypted_consensus_key = kms.encrypt(
        &access.key_id,
        &*consensus.secret_seed(),
        Some(&context(CONTEXT_CONSENSUS)),
    )?;
    let encrypted_identity_key = kms.encrypt(
        &access.key_id,
        &*identity.secret_seed(),
        Some(&context(CONTEXT_IDENTITY)),
    )?;
    let public_key = *consensus.public_key().as_bytes();
    let attestation_document = nsm.attestation(
        &AttestationRequest::new().with_user_data(init_user_data(&public_key, &access.key_id)),
    )?;
    Ok(Response::Initialized {
        encrypted_consensus_key,
        encrypted_identity_key,
        consensus_public_key: public_key.to_vec(),
        identity_public_key: identity.public_key().as_bytes().to_vec(),
        attestation_document,
    })
}

/// `start`: decrypt the keys through KMS for this enclave only (Decrypt
/// with an attested Recipient; the plaintext never leaves the enclave).
pub fn decrypt_keys(
    nsm: &dyn Nsm,
    access: &KmsAccess,
    encrypted_consensus_key: &[u8],
    encrypted_identity_key: Option<&[u8]>,
) -> Result<(ConsensusKey, Option<IdentityKey>), KeyError> {
    let recipient = RsaPrivateKey::new(&mut rand_core::OsRng, RECIPIENT_KEY_BITS)
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let public_der = recipient
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let document = nsm
        .attestation(&AttestationRequest::new().with_public_key(public_der.as_bytes().to_vec()))?;
    let mut kms = client(access)?;
    let mut open = |blob: &[u8],
                    purpose: &str,
                    which: &'static str|
     -> Result<Zeroizing<[u8; SEED_LEN]>, KeyError> {
        let envelope = kms.decrypt_for_recipient_with_context(
            blob,
            Some(&access.key_id),
            Some(&context(purpose)),
            &document,
        )?;
        let plaintext = open_enveloped_data(&envelope, &recipient)?;
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        if plaintext.len() != SEED_LEN {
            return Err(KeyError::SeedLength {
                which,
                len: plaintext.len(),
            });
        }
        seed.copy_from_slice(&plaintext);
        Ok(seed)
    };
    let consensus_seed = open(encrypted_consensus_key, CONTEXT_CONSENSUS, "consensus")?;
    let consensus = ConsensusKey::from_seed(&consensus_seed);
    let identity = encrypted_identity_key
        .map(|blob| open(blob, CONTEXT_IDENTITY, "identity").map(|s| IdentityKey::from_seed(&s)))
        .transpose()?;
    Ok((consensus, identity))
}
