//! Key generation, KMS encryption and attested decryption inside the enclave.

use std::time::Duration;

use rsa::pkcs8::EncodePublicKey;
use rsa::RsaPrivateKey;
use thiserror::Error;
use tmkms_light::enclave::{initial_state_records, BoundPolicy};
use tmkms_light::keys::{ConsensusKey, IdentityKey, SEED_LEN};
use tmkms_light::state::wire::pair_to_wire;
use tmkms_light::types::{ChainId, SignState};
use tmkms_nitro_kms::{open_enveloped_data, CmsError, KmsClient, KmsError, KmsErrorKind};
use tmkms_nitro_nsm::{AttestationRequest, Nsm, NsmError};
use tracing::warn;
use zeroize::Zeroizing;

use crate::kms_policy::{EndpointMode, KmsPolicyError, KmsTarget};
use crate::protocol::{
    init_user_data, InitUserData, KmsAccess, Response, UserDataError, CONTEXT_CONSENSUS,
    CONTEXT_IDENTITY,
};
pub use tmkms_nitro_protocol::encryption_context::context;

/// Per-request timeout of KMS calls through the proxy.
const KMS_TIMEOUT: Duration = Duration::from_secs(15);
/// Size of the ephemeral key KMS encrypts the plaintext to.
const RECIPIENT_KEY_BITS: usize = 2048;
/// Length of the plaintext KMS holds for a key: seed ‖ policy digest (hex).
const BOUND_PLAINTEXT_LEN: usize = SEED_LEN + 64;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("the KMS settings from the host are refused: {0}")]
    KmsSettings(#[from] KmsPolicyError),
    #[error("{0}")]
    UserData(#[from] UserDataError),
    #[error("KMS: {0}")]
    Kms(#[from] KmsError),
    #[error("NSM attestation: {0}")]
    Nsm(#[from] NsmError),
    #[error("opening the KMS envelope: {0}")]
    Envelope(#[from] CmsError),
    #[error("the {which} key KMS returned is {len} bytes, expected a {BOUND_PLAINTEXT_LEN}-byte seed and policy digest (wrong ciphertext file?)")]
    PlaintextLength { which: &'static str, len: usize },
    #[error("KMS refused to decrypt the {which} key for the policy of the host's settings (chain id {chain_id:?}, policy digest {digest}): the settings differ from those bound to the key at init (chain_id, danger_allow_sign_bytes, protocol_version, pinned node ids) — restore them — or the home was initialized before policies were bound to keys (run init again): {source}")]
    ContextRefused {
        which: &'static str,
        chain_id: String,
        digest: String,
        source: Box<KmsError>,
    },
    #[error("the {which} key is bound to another policy than the one the host's settings ask for: the settings differ from those bound at init (chain_id, danger_allow_sign_bytes, protocol_version, pinned node ids); restore them")]
    PolicyMismatch { which: &'static str },
    #[error("the {which} key was encrypted before policies were bound to keys: run init again (a new key) to use this version")]
    Unbound { which: &'static str },
    #[error("the policy to bind: {0}")]
    Policy(String),
    #[error("ephemeral RSA key: {0}")]
    Rsa(String),
}

/// The KMS the host asks for, checked by the enclave's own rule
/// ([`crate::kms_policy`]): an enclave with the real NSM talks only to AWS
/// KMS of the region over TLS it verifies itself; only a test enclave (mock
/// NSM) may use another endpoint, and it says so loudly. Called before
/// anything else in every request that reaches KMS.
pub fn kms_target(nsm: &dyn Nsm, access: &KmsAccess) -> Result<KmsTarget, KeyError> {
    let mode = if nsm.is_test_stand_in() {
        EndpointMode::Test
    } else {
        EndpointMode::Production
    };
    let target = KmsTarget::resolve(
        &access.region,
        &access.key_id,
        access.endpoint_url.as_deref(),
        mode,
    )?;
    if !target.is_aws_endpoint() {
        warn!(endpoint = %target.endpoint(), "TEST ENCLAVE (--mock-nsm): KMS calls go to {}, which is not an AWS KMS endpoint of {} over verified TLS; whatever is sent there (the new keys at init) is readable by whoever runs it. A production enclave refuses this endpoint.", target.endpoint(), target.region());
    }
    Ok(target)
}

fn client(nsm: &dyn Nsm, access: &KmsAccess) -> Result<(KmsClient, KmsTarget), KeyError> {
    let target = kms_target(nsm, access)?;
    let config = target.config();
    let credentials = access.credentials.clone();
    let proxy = access.proxy.clone();
    let connector: tmkms_nitro_kms::Connector = Box::new(move || {
        let stream = proxy.connect(KMS_TIMEOUT)?;
        stream.set_read_timeout(Some(KMS_TIMEOUT))?;
        stream.set_write_timeout(Some(KMS_TIMEOUT))?;
        Ok(Box::new(stream) as tmkms_nitro_kms::Stream)
    });
    Ok((KmsClient::new(config, credentials, connector)?, target))
}

/// What KMS encrypts: the seed followed by the policy digest (hex), so that
/// the enclave itself checks the policy after decrypting — KMS `ReEncrypt`
/// could move a ciphertext to another context, never change its plaintext.
fn bound_plaintext(seed: &[u8; SEED_LEN], policy_digest: &str) -> Zeroizing<Vec<u8>> {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(BOUND_PLAINTEXT_LEN));
    plaintext.extend_from_slice(seed);
    plaintext.extend_from_slice(policy_digest.as_bytes());
    plaintext
}

/// The seed of a [`bound_plaintext`], if it was bound to `policy_digest`.
fn open_bound_plaintext(
    plaintext: &[u8],
    policy_digest: &str,
    which: &'static str,
) -> Result<Zeroizing<[u8; SEED_LEN]>, KeyError> {
    if plaintext.len() == SEED_LEN {
        return Err(KeyError::Unbound { which });
    }
    if plaintext.len() != BOUND_PLAINTEXT_LEN {
        return Err(KeyError::PlaintextLength {
            which,
            len: plaintext.len(),
        });
    }
    let (seed, digest) = plaintext.split_at(SEED_LEN);
    if digest != policy_digest.as_bytes() {
        return Err(KeyError::PolicyMismatch { which });
    }
    let mut out = Zeroizing::new([0u8; SEED_LEN]);
    out.copy_from_slice(seed);
    Ok(out)
}

/// `init`: new keys, encrypted under the KMS key and bound to `policy`,
/// with an attestation that binds the consensus public key, the policy and
/// the KMS region, key id and endpoint to this enclave, and the first state
/// records (height 0, tagged with the new key).
pub fn init(nsm: &dyn Nsm, access: &KmsAccess, policy: &BoundPolicy) -> Result<Response, KeyError> {
    let (mut kms, target) = client(nsm, access)?;
    policy
        .chain_id
        .parse::<ChainId>()
        .map_err(|e| KeyError::Policy(format!("chain_id: {e}")))?;
    let digest = policy.digest_hex();
    let consensus = ConsensusKey::generate();
    let identity = IdentityKey::generate();
    let state_records = initial_state_records(
        &consensus.secret_seed(),
        &policy.chain_id,
        &SignState::default(),
    )
    .map_err(|e| KeyError::Policy(e.to_string()))?;
    let public_key = *consensus.public_key().as_bytes();
    // Built (and its size checked) before anything is sent to KMS.
    let user_data = init_user_data(&InitUserData {
        consensus_public_key: public_key,
        policy_digest: digest.clone(),
        test_enclave: nsm.is_test_stand_in(),
        region: target.region().to_string(),
        kms_key_id: target.key_id().to_owned(),
        kms_endpoint: target.endpoint().to_string(),
    })?;
    let encrypted_consensus_key = kms.encrypt(
        target.key_id(),
        &bound_plaintext(&consensus.secret_seed(), &digest),
        Some(&context(CONTEXT_CONSENSUS, policy)),
    )?;
    let encrypted_identity_key = kms.encrypt(
        target.key_id(),
        &bound_plaintext(&identity.secret_seed(), &digest),
        Some(&context(CONTEXT_IDENTITY, policy)),
    )?;
    let attestation_document =
        nsm.attestation(&AttestationRequest::new().with_user_data(user_data))?;
    Ok(Response::Initialized {
        encrypted_consensus_key,
        encrypted_identity_key,
        consensus_public_key: public_key.to_vec(),
        identity_public_key: identity.public_key().as_bytes().to_vec(),
        attestation_document,
        state_records: pair_to_wire(&state_records),
    })
}

/// `start` and `state import`: decrypt the keys through KMS for this
/// enclave only (Decrypt with an attested Recipient; the plaintext never
/// leaves the enclave), under `policy` — the one the host's settings ask
/// for. A ciphertext bound to another policy gets no key: KMS refuses the
/// encryption context, and the enclave checks the digest inside the
/// plaintext.
pub fn decrypt_keys(
    nsm: &dyn Nsm,
    access: &KmsAccess,
    policy: &BoundPolicy,
    encrypted_consensus_key: &[u8],
    encrypted_identity_key: Option<&[u8]>,
) -> Result<(ConsensusKey, Option<IdentityKey>), KeyError> {
    let (mut kms, target) = client(nsm, access)?;
    let digest = policy.digest_hex();
    let recipient = RsaPrivateKey::new(&mut rand_core::OsRng, RECIPIENT_KEY_BITS)
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let public_der = recipient
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let document = nsm
        .attestation(&AttestationRequest::new().with_public_key(public_der.as_bytes().to_vec()))?;
    let mut open = |blob: &[u8],
                    purpose: &str,
                    which: &'static str|
     -> Result<Zeroizing<[u8; SEED_LEN]>, KeyError> {
        let envelope = kms
            .decrypt_for_recipient_with_context(
                blob,
                Some(target.key_id()),
                Some(&context(purpose, policy)),
                &document,
            )
            .map_err(|e| match e.kind() {
                Some(KmsErrorKind::InvalidCiphertext) => KeyError::ContextRefused {
                    which,
                    chain_id: policy.chain_id.clone(),
                    digest: digest.clone(),
                    source: Box::new(e),
                },
                _ => KeyError::Kms(e),
            })?;
        let plaintext = open_enveloped_data(&envelope, &recipient)?;
        open_bound_plaintext(&plaintext, &digest, which)
    };
    let consensus_seed = open(encrypted_consensus_key, CONTEXT_CONSENSUS, "consensus")?;
    let consensus = ConsensusKey::from_seed(&consensus_seed);
    let identity = encrypted_identity_key
        .map(|blob| open(blob, CONTEXT_IDENTITY, "identity").map(|s| IdentityKey::from_seed(&s)))
        .transpose()?;
    Ok((consensus, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_plaintext_opens_only_for_its_policy() {
        let seed = [9u8; SEED_LEN];
        let digest = "a".repeat(64);
        let plaintext = bound_plaintext(&seed, &digest);
        assert_eq!(
            *open_bound_plaintext(&plaintext, &digest, "consensus").unwrap(),
            seed
        );
        let other = "b".repeat(64);
        assert!(matches!(
            open_bound_plaintext(&plaintext, &other, "consensus"),
            Err(KeyError::PolicyMismatch { which: "consensus" })
        ));
        assert!(matches!(
            open_bound_plaintext(&seed, &digest, "identity"),
            Err(KeyError::Unbound { which: "identity" })
        ));
        assert!(matches!(
            open_bound_plaintext(&plaintext[..40], &digest, "identity"),
            Err(KeyError::PlaintextLength { len: 40, .. })
        ));
    }
}
