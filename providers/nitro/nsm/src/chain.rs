//! X.509 chain check for attestation documents: leaf ← cabundle ← trusted root.
//!
//! Written over RustCrypto's `x509-cert` and `p384`/`p256` rather than a general path builder
//! because the Nitro chain is fixed by the format (the bundle is ordered root-first, there is no
//! path search, no CRLs) and the caller must choose the trust anchor and the time — which the
//! ready-made verifiers either pin or take from the system clock.

use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, SECP_256_R_1, SECP_384_R_1,
};
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode, Reader, SliceReader};
use ecdsa::signature::Verifier;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::error::VerifyError;

/// A parsed certificate with the exact bytes its signature covers.
pub(crate) struct Cert<'a> {
    /// Human name for errors: `leaf certificate`, `cabundle[1]`, `trusted root`.
    pub which: String,
    pub der: &'a [u8],
    tbs: &'a [u8],
    pub cert: Certificate,
}

/// Curves accepted for certificate keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Curve {
    P256,
    P384,
}

impl<'a> Cert<'a> {
    pub(crate) fn parse(which: impl Into<String>, der: &'a [u8]) -> Result<Self, VerifyError> {
        let which = which.into();
        let bad = |reason: String| VerifyError::Certificate {
            which: which.clone(),
            reason,
        };
        let cert = Certificate::from_der(der).map_err(|e| bad(format!("not DER X.509: {e}")))?;
        let tbs = raw_tbs(der).map_err(|e| bad(format!("not DER X.509: {e}")))?;
        Ok(Self {
            which,
            der,
            tbs,
            cert,
        })
    }

    fn curve(&self) -> Result<Curve, VerifyError> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let unsupported = |reason: &str| VerifyError::Certificate {
            which: self.which.clone(),
            reason: reason.to_owned(),
        };
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(unsupported("the public key is not an EC key"));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match curve {
            Some(c) if c == SECP_384_R_1 => Ok(Curve::P384),
            Some(c) if c == SECP_256_R_1 => Ok(Curve::P256),
            _ => Err(unsupported("the EC key is not on P-384 or P-256")),
        }
    }

    fn key_bytes(&self) -> Result<&[u8], VerifyError> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| VerifyError::Certificate {
                which: self.which.clone(),
                reason: "the public key bit string has unused bits".into(),
            })
    }

    /// The P-384 key of this certificate (the document signer must use P-384).
    pub(crate) fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
        let bad = |reason: &str| VerifyError::Certificate {
            which: self.which.clone(),
            reason: reason.to_owned(),
        };
        if self.curve()? != Curve::P384 {
            return Err(bad("the document signing key must be on P-384"));
        }
        p384::ecdsa::VerifyingKey::from_sec1_bytes(self.key_bytes()?)
            .map_err(|_| bad("the P-384 public key is not a valid curve point"))
    }

    /// Checks that `issuer` signed this certificate (and that the names chain).
    pub(crate) fn verify_signed_by(&self, issuer: &Cert<'_>) -> Result<(), VerifyError> {
        let bad = |reason: String| VerifyError::Certificate {
            which: self.which.clone(),
            reason,
        };
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(VerifyError::ChainSignature {
                which: format!(
                    "{} (its issuer `{}` is not the subject `{}`)",
                    self.which,
                    self.cert.tbs_certificate.issuer,
                    issuer.cert.tbs_certificate.subject
                ),
                issuer: issuer.which.clone(),
            });
        }
        let alg = &self.cert.signature_algorithm;
        if *alg != self.cert.tbs_certificate.signature {
            return Err(bad("the outer and inner signature algorithms differ".into()));
        }
        if alg.parameters.is_some() {
            return Err(bad("ECDSA signature algorithm with parameters".into()));
        }
        let signature = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| bad("the signature bit string has unused bits".into()))?;
        let key = issuer.key_bytes()?;
        let fail = || VerifyError::ChainSignature {
            which: self.which.clone(),
            issuer: issuer.which.clone(),
        };
        match (issuer.curve()?, alg.oid) {
            (Curve::P384, oid) if oid == ECDSA_WITH_SHA_384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| fail())?;
                let sig = p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| fail())?;
                key.verify(self.tbs, &sig).map_err(|_| fail())
            }
            (Curve::P256, oid) if oid == ECDSA_WITH_SHA_256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| fail())?;
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| fail())?;
                key.verify(self.tbs, &sig).map_err(|_| fail())
            }
            (curve, oid) => Err(bad(format!(
                "signature algorithm {oid} with a {curve:?} issuer key is not supported (ECDSA P-384/SHA-384 or P-256/SHA-256 only)"
            ))),
        }
    }

    /// Checks the validity period at `now` (unix seconds).
    pub(crate) fn check_validity(&self, now: u64) -> Result<(), VerifyError> {
        let validity = &self.cert.tbs_certificate.validity;
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        if now < not_before || now > not_after {
            return Err(VerifyError::Validity {
                which: self.which.clone(),
                now,
                not_before,
                not_after,
            });
        }
        Ok(())
    }

    /// Rules for a CA: basic constraints present, critical, CA=true, path length respected
    /// (`cas_below` CA certificates follow it before the leaf), keyCertSign usage.
    pub(crate) fn check_ca(&self, cas_below: usize) -> Result<(), VerifyError> {
        let violated = |reason: String| VerifyError::Constraint {
            which: self.which.clone(),
            reason,
        };
        let (critical, bc) = self
            .extension::<BasicConstraints>(ID_CE_BASIC_CONSTRAINTS)?
            .ok_or_else(|| violated("a CA certificate without basic constraints".into()))?;
        if !critical {
            return Err(violated(
                "basic constraints of a CA must be critical".into(),
            ));
        }
        if !bc.ca {
            return Err(violated(
                "it signs other certificates but is not a CA (cA=false)".into(),
            ));
        }
        if let Some(max) = bc.path_len_constraint {
            if cas_below > usize::from(max) {
                return Err(violated(format!(
                    "path length constraint {max} allows fewer than the {cas_below} CA certificates below it"
                )));
            }
        }
        let (_, usage) = self
            .extension::<KeyUsage>(ID_CE_KEY_USAGE)?
            .ok_or_else(|| violated("a CA certificate without key usage".into()))?;
        if !usage.0.contains(KeyUsages::KeyCertSign) {
            return Err(violated("key usage lacks keyCertSign".into()));
        }
        self.reject_unknown_critical()
    }

    /// Rules for the document signer: not a CA, digitalSignature usage.
    pub(crate) fn check_leaf(&self) -> Result<(), VerifyError> {
        let violated = |reason: &str| VerifyError::Constraint {
            which: self.which.clone(),
            reason: reason.to_owned(),
        };
        if let Some((_, bc)) = self.extension::<BasicConstraints>(ID_CE_BASIC_CONSTRAINTS)? {
            if bc.ca || bc.path_len_constraint.is_some() {
                return Err(violated("the document signer must not be a CA"));
            }
        }
        let (_, usage) = self
            .extension::<KeyUsage>(ID_CE_KEY_USAGE)?
            .ok_or_else(|| violated("the document signer has no key usage extension"))?;
        if !usage.0.contains(KeyUsages::DigitalSignature) {
            return Err(violated("key usage lacks digitalSignature"));
        }
        self.reject_unknown_critical()
    }

    /// Finds and decodes one extension; a duplicate is an error (RFC 5280 §4.2).
    fn extension<T: for<'b> Decode<'b>>(
        &self,
        oid: ObjectIdentifier,
    ) -> Result<Option<(bool, T)>, VerifyError> {
        let mut found = None;
        for ext in self.cert.tbs_certificate.extensions.iter().flatten() {
            if ext.extn_id != oid {
                continue;
            }
            if found.is_some() {
                return Err(VerifyError::Certificate {
                    which: self.which.clone(),
                    reason: format!("extension {oid} appears twice"),
                });
            }
            let value =
                T::from_der(ext.extn_value.as_bytes()).map_err(|e| VerifyError::Certificate {
                    which: self.which.clone(),
                    reason: format!("extension {oid} is malformed: {e}"),
                })?;
            found = Some((ext.critical, value));
        }
        Ok(found)
    }

    fn reject_unknown_critical(&self) -> Result<(), VerifyError> {
        for ext in self.cert.tbs_certificate.extensions.iter().flatten() {
            if ext.critical
                && ext.extn_id != ID_CE_BASIC_CONSTRAINTS
                && ext.extn_id != ID_CE_KEY_USAGE
            {
                return Err(VerifyError::Constraint {
                    which: self.which.clone(),
                    reason: format!("unsupported critical extension {}", ext.extn_id),
                });
            }
        }
        Ok(())
    }
}

/// The exact DER bytes of `tbsCertificate`, as signed (not a re-encoding).
fn raw_tbs(der: &[u8]) -> der::Result<&[u8]> {
    let outer = AnyRef::from_der(der)?;
    let mut reader = SliceReader::new(outer.value())?;
    let header = reader.peek_header()?;
    let len = (header.encoded_len()? + header.length)?;
    reader.read_slice(len)
}

/// Verifies `leaf ← cabundle ← trusted_root` at `now` and returns the leaf's P-384 key.
///
/// `cabundle` is ordered root-first as in the document. Its first certificate must be the
/// trusted root byte for byte, or be signed by it (then the trusted root heads the chain).
pub(crate) fn verify_chain(
    leaf_der: &[u8],
    cabundle: &[Vec<u8>],
    trusted_root_der: &[u8],
    now: u64,
) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
    let root = Cert::parse("trusted root", trusted_root_der).map_err(|e| match e {
        VerifyError::Certificate { reason, .. } => VerifyError::TrustedRoot(reason),
        other => other,
    })?;
    let bundle = cabundle
        .iter()
        .enumerate()
        .map(|(i, der)| Cert::parse(format!("cabundle[{i}]"), der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = Cert::parse("leaf certificate", leaf_der)?;

    let first = bundle
        .first()
        .ok_or_else(|| VerifyError::Payload("`cabundle` is empty".into()))?;
    let mut cas: Vec<&Cert<'_>> = Vec::with_capacity(bundle.len() + 1);
    if first.der != root.der {
        first.verify_signed_by(&root).map_err(|e| {
            VerifyError::UntrustedRoot(format!(
                "cabundle[0] (`{}`) is neither the trusted root (`{}`) nor issued by it ({e})",
                first.cert.tbs_certificate.subject, root.cert.tbs_certificate.subject
            ))
        })?;
        cas.push(&root);
    }
    cas.extend(bundle.iter());

    for pair in cas.windows(2) {
        if let [issuer, child] = pair {
            child.verify_signed_by(issuer)?;
        }
    }
    let last = cas
        .last()
        .ok_or_else(|| VerifyError::Payload("`cabundle` is empty".into()))?;
    leaf.verify_signed_by(last)?;

    let total = cas.len();
    for (i, ca) in cas.iter().enumerate() {
        ca.check_validity(now)?;
        // CAs below this one, before the leaf.
        ca.check_ca(total - 1 - i)?;
    }
    leaf.check_validity(now)?;
    leaf.check_leaf()?;
    leaf.p384_key()
}
