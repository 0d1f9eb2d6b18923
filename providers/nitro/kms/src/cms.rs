//! Opening the CMS EnvelopedData that KMS returns as `CiphertextForRecipient`.
//!
//! KMS encrypts the plaintext under a fresh AES-256 key (CBC, PKCS#7
//! padding) and transports that key with RSAES-OAEP (SHA-256, MGF1-SHA-256)
//! to the public key of the attestation document. Exactly these algorithms
//! are accepted; anything else is refused by name, so a downgrade (e.g. to
//! PKCS#1 v1.5 or OAEP's SHA-1 default) cannot slip through.
//!
//! AES-CBC has no integrity protection of its own: the envelope is trusted
//! because it arrives inside the TLS session that ends in the enclave, not
//! because of its format. The RSA-OAEP step does detect a wrong key.
//!
//! Written here over the `cms` crate's parsed types (and `rsa`, `aes`, `cbc`)
//! because no maintained crate opens an EnvelopedData yet: `cms` parses and
//! builds the structures but does not decrypt them.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use cms::content_info::ContentInfo;
use cms::enveloped_data::{EnvelopedData, RecipientInfo};
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{AnyRef, Decode, Tag, Tagged};
use pkcs1::RsaOaepParams;
use rsa::{Oaep, RsaPrivateKey};
use zeroize::Zeroizing;

use crate::ber::{ber_to_der, BerError};

/// `id-envelopedData` (RFC 5652).
pub const ID_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
/// `id-data` (RFC 5652).
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// `id-RSAES-OAEP` (RFC 8017).
pub const ID_RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
/// `id-mgf1` (RFC 8017).
pub const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// `id-pSpecified` (RFC 8017).
pub const ID_P_SPECIFIED: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.9");
/// `id-sha256` (NIST).
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// `id-aes256-CBC` (NIST).
pub const ID_AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

/// Why an envelope could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// Not well-formed BER.
    #[error("the envelope is not valid BER/DER: {0}")]
    Encoding(#[from] BerError),
    /// Well-formed but not the CMS structure expected.
    #[error("the envelope is not a CMS ContentInfo/EnvelopedData: {0}")]
    Structure(der::Error),
    /// ContentInfo of another type.
    #[error("the CMS content type is {0}, expected id-envelopedData (1.2.840.113549.1.7.3)")]
    NotEnvelopedData(ObjectIdentifier),
    /// Not exactly one recipient.
    #[error("the envelope has {0} recipients; KMS addresses exactly one")]
    RecipientCount(usize),
    /// A recipient kind other than key transport.
    #[error(
        "the recipient is not a KeyTransRecipientInfo (RSA key transport); KMS uses only that"
    )]
    UnsupportedRecipient,
    /// A key-encryption algorithm other than RSAES-OAEP with SHA-256/MGF1-SHA-256.
    #[error("unsupported key-encryption algorithm: {0}; only RSAES-OAEP with SHA-256 and MGF1-SHA-256 (KMS RSAES_OAEP_SHA_256) is accepted")]
    UnsupportedKeyEncryption(String),
    /// A content-encryption algorithm other than AES-256-CBC.
    #[error("unsupported content-encryption algorithm: {0}; only AES-256-CBC is accepted")]
    UnsupportedContentEncryption(String),
    /// The encrypted content is not of type `id-data`.
    #[error("the encrypted content type is {0}, expected id-data")]
    UnsupportedContentType(ObjectIdentifier),
    /// RSA-OAEP decryption of the content key failed.
    #[error("could not decrypt the content key: the envelope was made for another RSA key, or it was altered")]
    KeyTransport,
    /// The content key is not 32 bytes.
    #[error("the transported content key is {0} bytes, AES-256 needs 32")]
    ContentKeyLength(usize),
    /// No encrypted content (detached content is not used by KMS).
    #[error("the envelope carries no encrypted content")]
    MissingContent,
    /// AES-CBC decryption or its padding failed.
    #[error("could not decrypt the content: bad length or padding (altered envelope)")]
    Content,
}

/// Opens a KMS `CiphertextForRecipient` (BER or DER CMS ContentInfo holding
/// EnvelopedData) with the enclave's RSA private key; returns the plaintext.
pub fn open_enveloped_data(
    der: &[u8],
    recipient_key: &RsaPrivateKey,
) -> Result<Zeroizing<Vec<u8>>, CmsError> {
    let der = ber_to_der(der)?;
    let info = ContentInfo::from_der(&der).map_err(CmsError::Structure)?;
    if info.content_type != ID_ENVELOPED_DATA {
        return Err(CmsError::NotEnvelopedData(info.content_type));
    }
    let enveloped: EnvelopedData = info.content.decode_as().map_err(CmsError::Structure)?;

    let recipients = enveloped.recip_infos.0.as_slice();
    let ktri = match recipients {
        [RecipientInfo::Ktri(ktri)] => ktri,
        [_] => return Err(CmsError::UnsupportedRecipient),
        other => return Err(CmsError::RecipientCount(other.len())),
    };
    check_key_encryption(&ktri.key_enc_alg)?;
    let key = Zeroizing::new(
        recipient_key
            .decrypt(Oaep::new::<sha2::Sha256>(), ktri.enc_key.as_bytes())
            .map_err(|_| CmsError::KeyTransport)?,
    );
    if key.len() != 32 {
        return Err(CmsError::ContentKeyLength(key.len()));
    }

    let content = &enveloped.encrypted_content;
    if content.content_type != ID_DATA {
        return Err(CmsError::UnsupportedContentType(content.content_type));
    }
    let iv = aes256_cbc_iv(&content.content_enc_alg)?;
    let ciphertext = content
        .encrypted_content
        .as_ref()
        .ok_or(CmsError::MissingContent)?
        .as_bytes();
    let decryptor =
        cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv).map_err(|_| CmsError::Content)?;
    decryptor
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| CmsError::Content)
}

fn is_absent_or_null(params: Option<AnyRef<'_>>) -> bool {
    params.is_none_or(|p| p.is_null())
}

fn check_key_encryption(alg: &spki::AlgorithmIdentifierOwned) -> Result<(), CmsError> {
    if alg.oid != ID_RSAES_OAEP {
        return Err(CmsError::UnsupportedKeyEncryption(format!(
            "OID {}",
            alg.oid
        )));
    }
    let Some(params) = &alg.parameters else {
        return Err(CmsError::UnsupportedKeyEncryption(
            "RSAES-OAEP without parameters (defaults to SHA-1)".into(),
        ));
    };
    let params: RsaOaepParams<'_> = params
        .decode_as()
        .map_err(|e| CmsError::UnsupportedKeyEncryption(format!("RSAES-OAEP parameters: {e}")))?;
    if params.hash.oid != ID_SHA256 || !is_absent_or_null(params.hash.parameters) {
        return Err(CmsError::UnsupportedKeyEncryption(format!(
            "RSAES-OAEP with hash {}",
            params.hash.oid
        )));
    }
    let mgf_hash_ok = params
        .mask_gen
        .parameters
        .as_ref()
        .is_some_and(|h| h.oid == ID_SHA256 && is_absent_or_null(h.parameters));
    if params.mask_gen.oid != ID_MGF1 || !mgf_hash_ok {
        return Err(CmsError::UnsupportedKeyEncryption(format!(
            "RSAES-OAEP with mask generation {} {:?}",
            params.mask_gen.oid,
            params.mask_gen.parameters.as_ref().map(|h| h.oid)
        )));
    }
    let empty_label = params.p_source.oid == ID_P_SPECIFIED
        && params
            .p_source
            .parameters
            .and_then(|p| p.decode_as::<OctetStringRef<'_>>().ok())
            .is_some_and(|label| label.is_empty());
    if !empty_label {
        return Err(CmsError::UnsupportedKeyEncryption(
            "RSAES-OAEP with a non-empty label".into(),
        ));
    }
    Ok(())
}

fn aes256_cbc_iv(alg: &spki::AlgorithmIdentifierOwned) -> Result<&[u8], CmsError> {
    if alg.oid != ID_AES256_CBC {
        return Err(CmsError::UnsupportedContentEncryption(format!(
            "OID {}",
            alg.oid
        )));
    }
    let iv = alg
        .parameters
        .as_ref()
        .filter(|p| p.tag() == Tag::OctetString)
        .map(|p| p.value())
        .filter(|iv| iv.len() == 16)
        .ok_or_else(|| {
            CmsError::UnsupportedContentEncryption("AES-256-CBC without a 16-byte IV".into())
        })?;
    Ok(iv)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;
    use cms::cert::x509::ext::pkix::SubjectKeyIdentifier;
    use cms::content_info::CmsVersion;
    use cms::enveloped_data::{
        EncryptedContentInfo, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfos,
    };
    use der::asn1::{OctetString, SetOfVec};
    use der::{Any, Encode};
    use rand_core::{OsRng, RngCore};
    use rsa::RsaPublicKey;
    use spki::AlgorithmIdentifierOwned;
    use std::sync::OnceLock;

    /// Two RSA-2048 keys, generated once per test run.
    pub(crate) fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
        static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            (
                RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
                RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
            )
        })
    }

    /// What to put in a test envelope; `Default` is what KMS sends.
    #[derive(Clone)]
    struct Recipe {
        key_enc_alg: AlgorithmIdentifierOwned,
        content_enc_oid: ObjectIdentifier,
        content_type: ObjectIdentifier,
        key_len: usize,
    }

    fn oaep_sha256() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: ID_RSAES_OAEP,
            parameters: Some(Any::encode_from(&RsaOaepParams::new::<sha2::Sha256>()).unwrap()),
        }
    }

    impl Default for Recipe {
        fn default() -> Self {
            Self {
                key_enc_alg: oaep_sha256(),
                content_enc_oid: ID_AES256_CBC,
                content_type: ID_DATA,
                key_len: 32,
            }
        }
    }

    /// Builds a DER ContentInfo(EnvelopedData) the way KMS does.
    fn seal(plaintext: &[u8], to: &RsaPublicKey, recipe: &Recipe) -> Vec<u8> {
        let mut key = vec![0u8; recipe.key_len];
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut key);
        OsRng.fill_bytes(&mut iv);
        // The content is always AES-256; `key_len` only changes what is transported.
        let mut aes_key = [0u8; 32];
        let n = key.len().min(32);
        aes_key[..n].copy_from_slice(&key[..n]);
        let ciphertext = cbc::Encryptor::<aes::Aes256>::new_from_slices(&aes_key, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let enc_key = to
            .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), &key)
            .unwrap();
        let ktri = KeyTransRecipientInfo {
            version: CmsVersion::V2,
            rid: RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
                OctetString::new(vec![7u8; 32]).unwrap(),
            )),
            key_enc_alg: recipe.key_enc_alg.clone(),
            enc_key: OctetString::new(enc_key).unwrap(),
        };
        let enveloped = EnvelopedData {
            version: CmsVersion::V2,
            originator_info: None,
            recip_infos: RecipientInfos(
                SetOfVec::try_from(vec![RecipientInfo::Ktri(ktri)]).unwrap(),
            ),
            encrypted_content: EncryptedContentInfo {
                content_type: recipe.content_type,
                content_enc_alg: AlgorithmIdentifierOwned {
                    oid: recipe.content_enc_oid,
                    parameters: Some(
                        Any::encode_from(&OctetString::new(iv.to_vec()).unwrap()).unwrap(),
                    ),
                },
                encrypted_content: Some(OctetString::new(ciphertext).unwrap()),
            },
            unprotected_attrs: None,
        };
        ContentInfo {
            content_type: ID_ENVELOPED_DATA,
            content: Any::encode_from(&enveloped).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn opens_an_envelope_sealed_with_the_kms_algorithms() {
        let (key, _) = keys();
        let secret: Vec<u8> = (0u8..32).collect();
        let envelope = seal(&secret, &key.to_public_key(), &Recipe::default());
        assert_eq!(
            &open_enveloped_data(&envelope, key).unwrap()[..],
            &secret[..]
        );
        // Block-aligned and short plaintexts too (PKCS#7 adds a full block / pads).
        for len in [1usize, 15, 16, 17, 100] {
            let pt = vec![0x5a; len];
            let envelope = seal(&pt, &key.to_public_key(), &Recipe::default());
            assert_eq!(&open_enveloped_data(&envelope, key).unwrap()[..], &pt[..]);
        }
    }

    #[test]
    fn rejects_the_wrong_private_key() {
        let (key, other) = keys();
        let envelope = seal(b"secret", &key.to_public_key(), &Recipe::default());
        assert!(matches!(
            open_enveloped_data(&envelope, other),
            Err(CmsError::KeyTransport)
        ));
    }

    #[test]
    fn rejects_tampered_envelopes() {
        let (key, _) = keys();
        let envelope = seal(&[1u8; 32], &key.to_public_key(), &Recipe::default());
        // Flip a bit in the transported key (the 256-byte OCTET STRING).
        let enc_key_at = envelope
            .windows(4)
            .position(|w| w == [0x04, 0x82, 0x01, 0x00])
            .unwrap()
            + 4;
        let mut tampered = envelope.clone();
        tampered[enc_key_at + 100] ^= 1;
        assert!(matches!(
            open_enveloped_data(&tampered, key),
            Err(CmsError::KeyTransport)
        ));
        // Truncate the content: no longer a whole number of blocks / bad DER.
        let mut truncated = envelope.clone();
        truncated.pop();
        assert!(open_enveloped_data(&truncated, key).is_err());
        // Not CMS at all, and garbage.
        assert!(matches!(
            open_enveloped_data(&[0x30, 0x00], key),
            Err(CmsError::Structure(_))
        ));
        assert!(open_enveloped_data(b"hello", key).is_err());
    }

    #[test]
    fn rejects_other_algorithms() {
        let (key, _) = keys();
        let pk = key.to_public_key();
        let open = |r: Recipe| open_enveloped_data(&seal(b"secret", &pk, &r), key);

        let pkcs1v15 = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(Any::encode_from(&der::asn1::Null).unwrap()),
        };
        let e = open(Recipe {
            key_enc_alg: pkcs1v15,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(matches!(e, CmsError::UnsupportedKeyEncryption(_)), "{e}");

        let oaep_sha1_default = AlgorithmIdentifierOwned {
            oid: ID_RSAES_OAEP,
            parameters: Some(Any::encode_from(&RsaOaepParams::default()).unwrap()),
        };
        let e = open(Recipe {
            key_enc_alg: oaep_sha1_default,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("hash 1.3.14.3.2.26"), "{e}");

        let oaep_no_params = AlgorithmIdentifierOwned {
            oid: ID_RSAES_OAEP,
            parameters: None,
        };
        let e = open(Recipe {
            key_enc_alg: oaep_no_params,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(matches!(e, CmsError::UnsupportedKeyEncryption(_)), "{e}");

        let aes128 = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
        let e = open(Recipe {
            content_enc_oid: aes128,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(
            matches!(e, CmsError::UnsupportedContentEncryption(_)),
            "{e}"
        );

        let signed_data = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
        let e = open(Recipe {
            content_type: signed_data,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(matches!(e, CmsError::UnsupportedContentType(_)), "{e}");

        let e = open(Recipe {
            key_len: 16,
            ..Recipe::default()
        })
        .unwrap_err();
        assert!(matches!(e, CmsError::ContentKeyLength(16)), "{e}");
    }

    /// A `CiphertextForRecipient` produced by real AWS KMS (BER, indefinite
    /// lengths, segmented content), as published in RustCrypto/formats issue
    /// #779. Its private key is not known, so this checks that the real
    /// format parses and passes the algorithm checks, up to the RSA step.
    const REAL_KMS_ENVELOPE_B64URL: &str = "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFrMIIBZwIBAoAgcQ0zX-yOdGR8CYwov05XCbHVlfydT4HojTIC6-f7aZcwPAYJKoZIhvcNAQEHMC-gDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAASCAQApz_6xMi9PgrgYx6rvL-IP5U3G3b914l3A6Z3dxV72IoZN7bi5ILgBHJND5x1WzLCKuiLcNboY3v776NaZcCcXpD_Gtn-0X7BECFTdDkO58xKEP-24A9F8YUp2Aa6WDPR6Sf3-KAmaSy9aIiwgqLjT_gQTjYBP9AfRUtpiCZCxLTbARkTt0sArPiRef9-ltIxXKptWfbT8pOacD8orrQVZ433UajAtGOOTiAVAt8PcCBNLpCEisamJoSyPhW5peAkuulELN9bCr-2cvl62-cUsZOoPElV8kIc9b2eCnf15MD38oyX-j99xwCfZB4bpSo9cAuTftyD0kH3tva3ZIhEDMIAGCSqGSIb3DQEHATAdBglghkgBZQMEASoEEDc0PfFHDfYl7rb0v9LxrMOggAQQzHSt9l2XPItyzVHhuSfw8AAAAAAAAAAAAAA";

    #[test]
    fn parses_a_real_kms_ber_envelope_up_to_the_rsa_step() {
        use base64::Engine as _;
        let ber = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(REAL_KMS_ENVELOPE_B64URL)
            .unwrap();
        assert_eq!(ber.len(), 461);
        assert!(
            ContentInfo::from_der(&ber).is_err(),
            "it really is BER, not DER"
        );
        let der = ber_to_der(&ber).unwrap();
        let info = ContentInfo::from_der(&der).unwrap();
        let env: EnvelopedData = info.content.decode_as().unwrap();
        assert_eq!(
            env.encrypted_content
                .encrypted_content
                .as_ref()
                .unwrap()
                .as_bytes()
                .len(),
            16
        );
        let [RecipientInfo::Ktri(ktri)] = env.recip_infos.0.as_slice() else {
            panic!()
        };
        check_key_encryption(&ktri.key_enc_alg).unwrap();
        assert_eq!(
            aes256_cbc_iv(&env.encrypted_content.content_enc_alg)
                .unwrap()
                .len(),
            16
        );
        // Our key is not the one it was made for.
        let (key, _) = keys();
        assert!(matches!(
            open_enveloped_data(&ber, key),
            Err(CmsError::KeyTransport)
        ));
    }
}
