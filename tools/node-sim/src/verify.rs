//! Checks a signed vote or proposal the way the node (and every other
//! validator) will: signature over independently computed sign bytes, plus
//! the extension-signature presence rules of CometBFT's `SignAndCheckVote`.

use ed25519_consensus::{Signature, VerificationKey};

use crate::dialect::Dialect;
use crate::sign_bytes::{extension_sign_bytes, proposal_sign_bytes, vote_sign_bytes, SpecError};
use crate::spec::{ProposalSpec, SignedProposal, SignedVote, VoteKind, VoteSpec};

/// Why a signed vote or proposal would be rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("the public key is not a valid Ed25519 key")]
    BadPublicKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the extension signature does not verify")]
    BadExtensionSignature,
    #[error("no extension signature on a non-nil precommit (the node halts)")]
    MissingExtensionSignature,
    #[error("extension signature on {0} (the node halts with CONSENSUS FAILURE)")]
    UnexpectedExtensionSignature(&'static str),
}

/// Verifies an Ed25519 signature over `msg`.
pub fn verify_signature(
    pubkey: &[u8; 32],
    msg: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let key = VerificationKey::try_from(*pubkey).map_err(|_| VerifyError::BadPublicKey)?;
    key.verify(&Signature::from(*signature), msg)
        .map_err(|_| VerifyError::BadSignature)
}

/// Whether CometBFT requires an extension signature on this vote.
pub fn expects_extension_signature(
    vote: &VoteSpec,
    dialect: Dialect,
    skip_extension_signing: bool,
) -> bool {
    dialect.has_extensions()
        && vote.is_non_nil_precommit()
        && !(dialect == Dialect::V1 && skip_extension_signing)
}

/// Verifies `signed` as the answer to `spec`.
///
/// The vote signature is checked over `spec` with the **returned** timestamp,
/// since the node copies that timestamp into the vote it broadcasts. Then the
/// extension signature rules:
/// * v0.38/v1 non-nil precommit: required, over the `CanonicalVoteExtension`
///   (also for an empty extension);
/// * v1 with `skip_extension_signing`: not required; one that is present is
///   ignored by the node and not checked here;
/// * prevotes, nil precommits, and every vote of v0.34/v0.37: must be absent.
pub fn verify_vote(
    pubkey: &[u8; 32],
    chain_id: &str,
    spec: &VoteSpec,
    signed: &SignedVote,
    dialect: Dialect,
    skip_extension_signing: bool,
) -> Result<(), VerifyError> {
    let mut as_broadcast = spec.clone();
    as_broadcast.timestamp = signed.timestamp;
    if !dialect.has_extensions() {
        // The node of these versions has no extension field.
        as_broadcast.extension.clear();
    }
    let sign_bytes = vote_sign_bytes(chain_id, &as_broadcast)?;
    verify_signature(pubkey, &sign_bytes, &signed.signature)?;

    if expects_extension_signature(spec, dialect, skip_extension_signing) {
        let ext_sig = signed
            .extension_signature
            .ok_or(VerifyError::MissingExtensionSignature)?;
        let ext_bytes = extension_sign_bytes(chain_id, spec)?;
        return verify_signature(pubkey, &ext_bytes, &ext_sig)
            .map_err(|_| VerifyError::BadExtensionSignature);
    }
    if signed.extension_signature.is_none() {
        return Ok(());
    }
    if !dialect.has_extensions() {
        return Err(VerifyError::UnexpectedExtensionSignature(
            "a vote of a protocol without vote extensions",
        ));
    }
    match (spec.kind, spec.is_nil()) {
        (VoteKind::Prevote, _) => Err(VerifyError::UnexpectedExtensionSignature("a prevote")),
        (VoteKind::Precommit, true) => {
            Err(VerifyError::UnexpectedExtensionSignature("a nil precommit"))
        }
        // A skipped non-nil precommit: the node drops the signature.
        (VoteKind::Precommit, false) => Ok(()),
    }
}

/// Verifies `signed` as the answer to `spec`. The signature is checked over
/// the **requested** proposal: the node ignores a returned timestamp.
pub fn verify_proposal(
    pubkey: &[u8; 32],
    chain_id: &str,
    spec: &ProposalSpec,
    signed: &SignedProposal,
) -> Result<(), VerifyError> {
    let sign_bytes = proposal_sign_bytes(chain_id, spec)?;
    verify_signature(pubkey, &sign_bytes, &signed.signature)
}

#[cfg(test)]
mod tests {
    use ed25519_consensus::SigningKey;

    use super::*;
    use crate::spec::BlockIdSpec;

    const CHAIN: &str = "test-chain";

    fn key() -> SigningKey {
        SigningKey::from([7u8; 32])
    }

    fn pubkey() -> [u8; 32] {
        key().verification_key().to_bytes()
    }

    /// Signs like a correct signer would, with the given extension-signature choice.
    fn sign(vote: &VoteSpec, with_ext: bool) -> SignedVote {
        let k = key();
        let sig = k.sign(&vote_sign_bytes(CHAIN, vote).unwrap()).to_bytes();
        let ext = with_ext.then(|| {
            k.sign(&extension_sign_bytes(CHAIN, vote).unwrap())
                .to_bytes()
        });
        SignedVote {
            signature: sig,
            extension_signature: ext,
            timestamp: vote.timestamp,
            raw_len: 0,
            echoed_extension_len: 0,
        }
    }

    fn precommit() -> VoteSpec {
        VoteSpec::precommit(10, 0, Some(BlockIdSpec::for_height(10))).with_extension(b"e".to_vec())
    }

    #[test]
    fn accepts_correct_votes_per_dialect() {
        let pk = pubkey();
        let prevote = VoteSpec::prevote(10, 0, Some(BlockIdSpec::for_height(10)));
        let nil_pc = VoteSpec::precommit(10, 1, None);
        for d in Dialect::ALL {
            verify_vote(&pk, CHAIN, &prevote, &sign(&prevote, false), d, false).unwrap();
            verify_vote(&pk, CHAIN, &nil_pc, &sign(&nil_pc, false), d, false).unwrap();
            let pc = precommit();
            let signed = sign(&pc, d.has_extensions());
            verify_vote(&pk, CHAIN, &pc, &signed, d, false).unwrap();
        }
        // Empty extension still needs its signature.
        let pc = precommit().with_extension(Vec::new());
        verify_vote(&pk, CHAIN, &pc, &sign(&pc, true), Dialect::V0_38, false).unwrap();
        // v1 skip: absent is fine, present is ignored.
        let pc = precommit();
        verify_vote(&pk, CHAIN, &pc, &sign(&pc, false), Dialect::V1, true).unwrap();
        verify_vote(&pk, CHAIN, &pc, &sign(&pc, true), Dialect::V1, true).unwrap();
    }

    #[test]
    fn rejects_wrong_signature() {
        let pc = precommit();
        let mut signed = sign(&pc, true);
        signed.signature[0] ^= 1;
        assert_eq!(
            verify_vote(&pubkey(), CHAIN, &pc, &signed, Dialect::V0_38, false),
            Err(VerifyError::BadSignature)
        );
        // Signed for another chain.
        let signed = sign(&pc, true);
        assert_eq!(
            verify_vote(
                &pubkey(),
                "other-chain",
                &pc,
                &signed,
                Dialect::V0_38,
                false
            ),
            Err(VerifyError::BadSignature)
        );
        // A signature over another timestamp than the one returned.
        let mut signed = sign(&pc, true);
        signed.timestamp.0 += 1;
        assert_eq!(
            verify_vote(&pubkey(), CHAIN, &pc, &signed, Dialect::V0_38, false),
            Err(VerifyError::BadSignature)
        );
        let p = ProposalSpec::new(3, 0, Some(BlockIdSpec::for_height(3)));
        let sig = key()
            .sign(&proposal_sign_bytes(CHAIN, &p).unwrap())
            .to_bytes();
        let good = SignedProposal {
            signature: sig,
            timestamp: p.timestamp,
            raw_len: 0,
        };
        verify_proposal(&pubkey(), CHAIN, &p, &good).unwrap();
        let moved = p.clone().with_timestamp(1, 0);
        assert_eq!(
            verify_proposal(&pubkey(), CHAIN, &moved, &good),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn flags_missing_or_bad_extension_signature() {
        let pc = precommit();
        for d in [Dialect::V0_38, Dialect::V1] {
            assert_eq!(
                verify_vote(&pubkey(), CHAIN, &pc, &sign(&pc, false), d, false),
                Err(VerifyError::MissingExtensionSignature)
            );
            let mut signed = sign(&pc, true);
            signed.extension_signature = Some(signed.signature);
            assert_eq!(
                verify_vote(&pubkey(), CHAIN, &pc, &signed, d, false),
                Err(VerifyError::BadExtensionSignature)
            );
        }
    }

    #[test]
    fn flags_extra_extension_signature() {
        let prevote = VoteSpec::prevote(10, 0, Some(BlockIdSpec::for_height(10)));
        let nil_pc = VoteSpec::precommit(10, 1, None);
        for d in [Dialect::V0_38, Dialect::V1] {
            assert!(matches!(
                verify_vote(&pubkey(), CHAIN, &prevote, &sign(&prevote, true), d, false),
                Err(VerifyError::UnexpectedExtensionSignature(_))
            ));
            assert!(matches!(
                verify_vote(&pubkey(), CHAIN, &nil_pc, &sign(&nil_pc, true), d, false),
                Err(VerifyError::UnexpectedExtensionSignature(_))
            ));
        }
        // No dialect before v0.38 knows extensions at all.
        let pc = precommit();
        for d in [Dialect::V0_34, Dialect::V0_37] {
            assert!(matches!(
                verify_vote(&pubkey(), CHAIN, &pc, &sign(&pc, true), d, false),
                Err(VerifyError::UnexpectedExtensionSignature(_))
            ));
        }
    }

    #[test]
    fn rejects_bad_public_key() {
        let pc = precommit();
        // The y-coordinate 2 has no point on the curve.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(matches!(
            verify_vote(&bad, CHAIN, &pc, &sign(&pc, true), Dialect::V0_38, false),
            Err(VerifyError::BadPublicKey | VerifyError::BadSignature)
        ));
    }
}
