//! What a scenario asks the signer to sign — a vote or a proposal — and how
//! the node checks the answer, so that one step can send, verify and record
//! any of them.

use crate::conn::SignerConn;
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{ProposalSpec, RemoteError, SignedProposal, SignedVote, VoteKind, VoteSpec};
use crate::verify::{verify_proposal, verify_vote, VerifyError};

/// The reply to a signing request: the signer's answer or its refusal, or
/// what went wrong on the wire.
pub(super) type Reply<T> = Result<Result<T, RemoteError>, SimError>;

/// What the node checks an answer against.
#[derive(Clone, Copy, Debug)]
pub(super) struct Verifier<'a> {
    /// The signer's consensus key.
    pub(super) pubkey: &'a [u8; 32],
    /// The chain the request named.
    pub(super) chain_id: &'a str,
    pub(super) dialect: Dialect,
}

/// A request for a signature, and the node's check of its answer.
pub(super) trait SignRequest {
    type Answer: Signed;

    /// Asks the signer to sign this for `chain_id`.
    fn send(&self, conn: &mut SignerConn, chain_id: &str) -> Reply<Self::Answer>;

    /// Checks `answer` the way the node (and every other validator) does.
    fn verify(&self, by: Verifier<'_>, answer: &Self::Answer) -> Result<(), VerifyError>;
}

/// A vote with the `skip_extension_signing` flag it is sent with (the flag
/// exists only in v1).
#[derive(Clone, Copy, Debug)]
pub(super) struct FlaggedVote<'v> {
    pub(super) vote: &'v VoteSpec,
    pub(super) skip: bool,
}

impl<'v> FlaggedVote<'v> {
    /// The flag as a node of `dialect` sets it: v1 nodes send
    /// `!extensionsEnabled`, and extensions are enabled only for precommits.
    pub(super) fn as_node_sends(vote: &'v VoteSpec, dialect: Dialect) -> Self {
        let skip = dialect == Dialect::V1 && vote.kind != VoteKind::Precommit;
        FlaggedVote { vote, skip }
    }
}

impl SignRequest for FlaggedVote<'_> {
    type Answer = SignedVote;

    fn send(&self, conn: &mut SignerConn, chain_id: &str) -> Reply<SignedVote> {
        conn.sign_vote(chain_id, self.vote, self.skip)
    }

    /// Over the returned timestamp, with the extension-signature rules of
    /// the flag (see [`verify_vote`]).
    fn verify(&self, by: Verifier<'_>, answer: &SignedVote) -> Result<(), VerifyError> {
        verify_vote(
            by.pubkey,
            by.chain_id,
            self.vote,
            answer,
            by.dialect,
            self.skip,
        )
    }
}

/// A vote as a node of the connection's dialect sends it.
impl SignRequest for VoteSpec {
    type Answer = SignedVote;

    fn send(&self, conn: &mut SignerConn, chain_id: &str) -> Reply<SignedVote> {
        let dialect = conn.dialect();
        FlaggedVote::as_node_sends(self, dialect).send(conn, chain_id)
    }

    fn verify(&self, by: Verifier<'_>, answer: &SignedVote) -> Result<(), VerifyError> {
        FlaggedVote::as_node_sends(self, by.dialect).verify(by, answer)
    }
}

impl SignRequest for ProposalSpec {
    type Answer = SignedProposal;

    fn send(&self, conn: &mut SignerConn, chain_id: &str) -> Reply<SignedProposal> {
        conn.sign_proposal(chain_id, self)
    }

    /// Over the requested proposal: the node ignores a returned timestamp.
    fn verify(&self, by: Verifier<'_>, answer: &SignedProposal) -> Result<(), VerifyError> {
        verify_proposal(by.pubkey, by.chain_id, self, answer)
    }
}

/// Sends `request` and verifies the answer, for a run that stops at the
/// first problem: a refusal is [`SimError::Remote`], an answer that does not
/// verify [`SimError::Verify`] with the `context` it names.
pub(super) fn sign_verified<R: SignRequest>(
    conn: &mut SignerConn,
    chain_id: &str,
    pubkey: &[u8; 32],
    request: &R,
    context: impl FnOnce() -> String,
) -> Result<R::Answer, SimError> {
    let dialect = conn.dialect();
    let answer = request.send(conn, chain_id)?.map_err(SimError::Remote)?;
    let by = Verifier {
        pubkey,
        chain_id,
        dialect,
    };
    request
        .verify(by, &answer)
        .map_err(|source| SimError::Verify {
            context: context(),
            source,
        })?;
    Ok(answer)
}

/// An answer carrying a signature.
pub(super) trait Signed {
    fn signature(&self) -> &[u8; 64];
}

impl Signed for SignedVote {
    fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

impl Signed for SignedProposal {
    fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}
