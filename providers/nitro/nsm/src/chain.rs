//! X.509 chain check for attestation documents: leaf ← cabundle ← trusted root.
//!
//! The path check proper — signatures, issuer names, validity at the caller's time, basic
//! constraints, path lengths, critical extensions — is rustls-webpki's, with the caller's root
//! as the only trust anchor and the caller's time (never the system clock). Around it stay the
//! rules webpki does not know or does not do:
//! * the Nitro bundle is one chain in order, root first: `cabundle[0]` is the trusted root
//!   itself or issued by it, and the verified path must use every certificate, in that order
//!   (webpki would build any path through them, skipping the rest);
//! * webpki takes a trust anchor as a bare name and key, so the root's own validity and CA
//!   extensions are checked here;
//! * webpki ignores the key usage extension and does not require basic constraints to be
//!   critical, so keyCertSign and critical basic constraints on CAs, and digitalSignature on
//!   the document signer, are checked here;
//! * webpki says what failed but not in which certificate: a refused chain is located by
//!   running webpki again on ever longer tails of the chain (see [`locate`]).

use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use p384::pkcs8::DecodePublicKey;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::{EndEntityCert, KeyPurposeIdIter, VerifiedPath};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::error::VerifyError;

/// Certificate signatures accepted: AWS signs with P-384/SHA-384; P-256/SHA-256 issuers are
/// accepted too, as before. The pairs are exact (no P-384 key with SHA-256).
static SIGNATURE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ECDSA_P256_SHA256,
];

/// A parsed certificate: x509-cert's view gives the names, validity and key usage for the
/// checks and messages here; the DER goes to webpki.
pub(crate) struct Cert<'a> {
    /// Human name for errors: `leaf certificate`, `cabundle[1]`, `trusted root`.
    pub which: String,
    pub der: CertificateDer<'a>,
    pub cert: Certificate,
}

impl<'a> Cert<'a> {
    pub(crate) fn parse(which: impl Into<String>, der: &'a [u8]) -> Result<Self, VerifyError> {
        let which = which.into();
        let cert = Certificate::from_der(der).map_err(|e| VerifyError::Certificate {
            which: which.clone(),
            reason: format!("not DER X.509: {e}"),
        })?;
        Ok(Self {
            which,
            der: CertificateDer::from(der),
            cert,
        })
    }

    /// [`Cert::parse`], and webpki's parser must accept it too (it is stricter on some
    /// fields: serial numbers, versions, duplicate extensions).
    fn parse_for_path(which: String, der: &'a [u8]) -> Result<Self, VerifyError> {
        let cert = Self::parse(which, der)?;
        EndEntityCert::try_from(&cert.der).map_err(|e| cert.malformed(&e))?;
        Ok(cert)
    }

    fn malformed(&self, error: &webpki::Error) -> VerifyError {
        VerifyError::Certificate {
            which: self.which.clone(),
            reason: format!("refused by the X.509 parser: {error:?}"),
        }
    }

    fn violated(&self, reason: impl Into<String>) -> VerifyError {
        VerifyError::Constraint {
            which: self.which.clone(),
            reason: reason.into(),
        }
    }

    /// The P-384 key of this certificate (the document signer must use P-384).
    pub(crate) fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
        let not_p384 = || VerifyError::Certificate {
            which: self.which.clone(),
            reason: "the document signing key must be a valid point on P-384".into(),
        };
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|_| not_p384())?;
        p384::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|_| not_p384())
    }

    /// The validity error for this certificate at `now` (unix seconds).
    fn validity_error(&self, now: u64) -> VerifyError {
        let validity = &self.cert.tbs_certificate.validity;
        VerifyError::Validity {
            which: self.which.clone(),
            now,
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
        }
    }

    /// Validity at `now`, inclusive at both ends like webpki's; webpki never checks it for a
    /// trust anchor.
    fn check_validity(&self, now: u64) -> Result<(), VerifyError> {
        let validity = &self.cert.tbs_certificate.validity;
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        if now < not_before || now > not_after {
            return Err(self.validity_error(now));
        }
        Ok(())
    }

    /// The checks webpki never makes on a trust anchor: validity at `now`, CA basic
    /// constraints with room for `cas_below` CA certificates, and [`Cert::check_ca_usage`].
    fn check_as_anchor(&self, now: u64, cas_below: usize) -> Result<(), VerifyError> {
        self.check_validity(now)?;
        match self.basic_constraints()? {
            Some((_, bc)) if bc.ca => {
                if bc
                    .path_len_constraint
                    .is_some_and(|max| cas_below > usize::from(max))
                {
                    return Err(self.path_len_error(cas_below));
                }
            }
            _ => return Err(self.not_a_ca_error()),
        }
        self.check_ca_usage()
    }

    /// What webpki leaves out for every CA: basic constraints marked critical (RFC 5280
    /// §4.2.1.9) and keyCertSign in the key usage (webpki ignores key usage).
    fn check_ca_usage(&self) -> Result<(), VerifyError> {
        let (critical, _) = self
            .basic_constraints()?
            .ok_or_else(|| self.violated("a CA certificate without basic constraints"))?;
        if !critical {
            return Err(self.violated("basic constraints of a CA must be critical"));
        }
        self.require_key_usage(
            KeyUsages::KeyCertSign,
            "keyCertSign",
            "a CA certificate without key usage",
        )
    }

    /// What webpki leaves out for the document signer: digitalSignature in the key usage.
    fn check_leaf_usage(&self) -> Result<(), VerifyError> {
        self.require_key_usage(
            KeyUsages::DigitalSignature,
            "digitalSignature",
            "the document signer has no key usage extension",
        )
    }

    /// The key usage extension is present (else `absent` is the reason) and allows `needed`
    /// (RFC 5280 name `needed_name`).
    fn require_key_usage(
        &self,
        needed: KeyUsages,
        needed_name: &str,
        absent: &str,
    ) -> Result<(), VerifyError> {
        let (_, usage) = self
            .extension::<KeyUsage>(ID_CE_KEY_USAGE)?
            .ok_or_else(|| self.violated(absent))?;
        if !usage.0.contains(needed) {
            return Err(self.violated(format!("key usage lacks {needed_name}")));
        }
        Ok(())
    }

    fn basic_constraints(&self) -> Result<Option<(bool, BasicConstraints)>, VerifyError> {
        self.extension::<BasicConstraints>(ID_CE_BASIC_CONSTRAINTS)
    }

    fn not_a_ca_error(&self) -> VerifyError {
        match self.basic_constraints() {
            Ok(None) => self.violated("a CA certificate without basic constraints"),
            _ => self.violated("it signs other certificates but is not a CA (cA=false)"),
        }
    }

    fn path_len_error(&self, cas_below: usize) -> VerifyError {
        let max = match self.basic_constraints() {
            Ok(Some((_, bc))) => bc.path_len_constraint.map(|m| m.to_string()),
            _ => None,
        };
        self.violated(format!(
            "path length constraint {} allows fewer than the {cas_below} CA certificates below it",
            max.as_deref().unwrap_or("(unreadable)")
        ))
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
}

/// The chain as the format fixes it: `cas[0]` is the trust anchor, each CA issues the next,
/// the last issues `leaf`.
struct Chain<'c, 'a> {
    cas: Vec<&'c Cert<'a>>,
    leaf: &'c Cert<'a>,
    /// `cas[0]` is the caller's root and not in the bundle: `cas[1]` is `cabundle[0]`.
    root_outside_bundle: bool,
}

/// Verifies `leaf ← cabundle ← trusted_root` at `now` and returns the leaf's P-384 key.
///
/// `cabundle` is ordered root-first as in the document. Its first certificate must be the
/// trusted root byte for byte, or be issued by it (then the trusted root heads the chain).
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
    webpki::anchor_from_trusted_cert(&root.der)
        .map_err(|e| VerifyError::TrustedRoot(format!("refused as a trust anchor: {e:?}")))?;
    let bundle = cabundle
        .iter()
        .enumerate()
        .map(|(i, der)| Cert::parse_for_path(format!("cabundle[{i}]"), der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = Cert::parse_for_path("leaf certificate".into(), leaf_der)?;

    let first = bundle
        .first()
        .ok_or_else(|| VerifyError::Payload("`cabundle` is empty".into()))?;
    let root_outside_bundle = first.der != root.der;
    let mut cas: Vec<&Cert<'_>> = Vec::with_capacity(bundle.len() + 1);
    if root_outside_bundle {
        cas.push(&root);
    }
    cas.extend(bundle.iter());
    let chain = Chain {
        cas,
        leaf: &leaf,
        root_outside_bundle,
    };

    let (anchor, below) = chain
        .cas
        .split_first()
        .ok_or_else(|| VerifyError::Payload("`cabundle` is empty".into()))?;
    if webpki_check(&chain.cas, chain.leaf, now).is_err() {
        let located = locate(&chain, now);
        // With the clock far off every certificate is out of its validity, and webpki names
        // the lowest; the root is named instead (as before), as it is the clearest sign of
        // a wrong clock. A chain that does not lead to the root is reported as such first.
        if matches!(located, VerifyError::Validity { .. }) {
            anchor.check_validity(now)?;
        }
        return Err(located);
    }
    anchor.check_as_anchor(now, below.len())?;
    for ca in below {
        ca.check_ca_usage()?;
    }
    leaf.check_leaf_usage()?;
    leaf.p384_key()
}

/// One webpki run: `leaf` through `cas[1..]` up to `cas[0]` as the only trust anchor.
fn webpki_check(cas: &[&Cert<'_>], leaf: &Cert<'_>, now: u64) -> Result<(), webpki::Error> {
    let (anchor, below) = cas.split_first().ok_or(webpki::Error::UnknownIssuer)?;
    let anchors = [webpki::anchor_from_trusted_cert(&anchor.der)?];
    let intermediates: Vec<CertificateDer<'_>> = below.iter().map(|c| c.der.clone()).collect();
    let end_entity = EndEntityCert::try_from(&leaf.der)?;
    // The path must be the bundle as given: every certificate, in order. A path webpki finds
    // through fewer of them is not the document's chain; refusing it reads as "issuer not found".
    let uses_every_certificate = |path: &VerifiedPath<'_>| {
        let used = path.intermediate_certificates().rev().map(|c| c.der());
        if used.eq(intermediates.iter().cloned()) {
            Ok(())
        } else {
            Err(webpki::Error::UnknownIssuer)
        }
    };
    end_entity.verify_for_usage(
        SIGNATURE_ALGORITHMS,
        &anchors,
        &intermediates,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        AnyExtendedKeyUsage,
        None,
        Some(&uses_every_certificate),
    )?;
    Ok(())
}

/// Names the certificate a refused chain fails at. webpki reports only the kind of failure,
/// so run it on the shortest tail (the leaf under the last CA as anchor), then one CA longer
/// each time: the first tail refused adds exactly one certificate (the leaf, or the CA below
/// the new anchor), and that is the one to blame, with the new anchor as its issuer.
fn locate(chain: &Chain<'_, '_>, now: u64) -> VerifyError {
    for top in (0..chain.cas.len()).rev() {
        let Some(tail) = chain.cas.get(top..) else {
            continue;
        };
        let Err(error) = webpki_check(tail, chain.leaf, now) else {
            continue;
        };
        let (issuer, child, cas_below) = match tail {
            [issuer, child, rest @ ..] => (*issuer, *child, rest.len()),
            [issuer] => (*issuer, chain.leaf, 0),
            [] => break,
        };
        let top_link = top == 0 && chain.root_outside_bundle;
        return explain(&error, child, issuer, cas_below, top_link, now);
    }
    // Every tail passed although the whole chain did not: webpki is deterministic, so this
    // does not happen; refuse anyway.
    VerifyError::UntrustedRoot("the chain was refused without a certificate to blame".into())
}

/// Maps webpki's verdict on `child` (issued by `issuer`) to the error that names them.
/// `top_link`: `child` is `cabundle[0]` and `issuer` the caller's root outside the bundle.
fn explain(
    error: &webpki::Error,
    child: &Cert<'_>,
    issuer: &Cert<'_>,
    cas_below: usize,
    top_link: bool,
    now: u64,
) -> VerifyError {
    use webpki::Error as E;
    let untrusted_root = |why: &str| {
        VerifyError::UntrustedRoot(format!(
            "cabundle[0] (`{}`) is neither the trusted root (`{}`) nor issued by it ({why})",
            child.cert.tbs_certificate.subject, issuer.cert.tbs_certificate.subject
        ))
    };
    match error {
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            child.validity_error(now)
        }
        E::UnknownIssuer if top_link => untrusted_root("its issuer is another name"),
        E::UnknownIssuer => VerifyError::ChainSignature {
            which: format!(
                "{} (its issuer `{}` is not the subject `{}`)",
                child.which, child.cert.tbs_certificate.issuer, issuer.cert.tbs_certificate.subject
            ),
            issuer: issuer.which.clone(),
        },
        E::InvalidSignatureForPublicKey if top_link => untrusted_root("its signature"),
        E::InvalidSignatureForPublicKey => VerifyError::ChainSignature {
            which: child.which.clone(),
            issuer: issuer.which.clone(),
        },
        E::CaUsedAsEndEntity => child.violated("the document signer must not be a CA"),
        E::EndEntityUsedAsCa => child.not_a_ca_error(),
        E::PathLenConstraintViolated => child.path_len_error(cas_below),
        E::UnsupportedCriticalExtension => {
            child.violated("it has a critical extension the verifier does not support")
        }
        E::MaximumPathDepthExceeded => child.violated(
            "it is beyond the deepest chain the verifier follows (6 CA certificates below the root)",
        ),
        E::SignatureAlgorithmMismatch => VerifyError::Certificate {
            which: child.which.clone(),
            reason: "the outer and inner signature algorithms differ".into(),
        },
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => VerifyError::Certificate {
            which: child.which.clone(),
            reason: format!(
                "its signature algorithm with the key of {} is not supported (ECDSA P-384/SHA-384 or P-256/SHA-256 only)",
                issuer.which
            ),
        },
        other => child.malformed(other),
    }
}

/// No extended key usage policy: Nitro certificates carry none and the document format
/// defines none, so (as before webpki) whatever a certificate lists is accepted.
struct AnyExtendedKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, purposes: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // Malformed entries are still refused.
        for purpose in purposes {
            purpose?;
        }
        Ok(())
    }
}
