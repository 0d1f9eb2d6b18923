//! Sealing: encrypting a secret so only an enclave of the same signer, at the
//! same or a newer security version, in the same DEBUG/production mode, on
//! the same CPU can decrypt it.
//!
//! # Key policy
//! The sealing key is EGETKEY's Seal key with
//! * key policy MRSIGNER — any enclave signed by the same key (and with the
//!   same ISVPRODID) can derive it, so a signed upgrade keeps its keys;
//! * the sealing enclave's own ISVSVN and the CPU's CPUSVN at sealing time,
//!   recorded in the blob: a newer enclave (higher ISVSVN) may derive keys of
//!   older versions and so unseals; an older enclave cannot derive a newer
//!   version's key and fails;
//! * ATTRIBUTEMASK = INIT | MODE64BIT | DEBUG (XFRM not bound): a debug
//!   enclave's seal cannot be opened by a production enclave or vice versa;
//! * MISCMASK = 0;
//! * a random 32-byte key id, so each blob has its own key.
//!
//! The secret is encrypted with AES-128-GCM-SIV (the Seal key is 128-bit),
//! with the whole header — key request fields, the caller's label (e.g.
//! `consensus-key`) and the digest of the caller's *bound data* — as
//! associated data.
//!
//! # Bound data
//! [`seal_bound`] binds a secret to bytes the caller chooses and the blob
//! does not hold (the SGX enclave binds its consensus key to the encoded
//! policy of the init ceremony: chain id, sign-bytes flag, protocol versions,
//! pinned node ids). The header records SHA-256 of those bytes, and the
//! header is authenticated, so [`unseal_bound`] opens the blob only for the
//! same bytes: other bound data is refused before decryption with
//! [`SealError::BoundDataMismatch`], and a header whose digest was edited to
//! match fails authentication. [`seal`]/[`unseal`] bind the empty string.
//!
//! # Sealed blob format, version 2
//! All integers little-endian; the host may store the blob as a file as is.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TMKLSEAL` |
//! | 8 | 2 | format version = 2 |
//! | 10 | 2 | KEYREQUEST.KEYPOLICY (v1: 0x0002, MRSIGNER) |
//! | 12 | 2 | KEYREQUEST.ISVSVN (the sealing enclave's ISVSVN) |
//! | 14 | 16 | KEYREQUEST.CPUSVN (the CPU's CPUSVN at sealing) |
//! | 30 | 8 | KEYREQUEST.ATTRIBUTEMASK flags (v1: 0x07, INIT\|DEBUG\|MODE64BIT) |
//! | 38 | 8 | KEYREQUEST.ATTRIBUTEMASK xfrm (v1: 0) |
//! | 46 | 4 | KEYREQUEST.MISCMASK (v1: 0) |
//! | 50 | 32 | KEYREQUEST.KEYID (random) |
//! | 82 | 8 | sealing enclave's ATTRIBUTES flags (informational; DEBUG = bit 1) |
//! | 90 | 12 | AES-GCM-SIV nonce (random) |
//! | 102 | 1 | label length L, 1..=64 |
//! | 103 | L | label, printable ASCII |
//! | 103+L | 32 | SHA-256 of the bound data (of the empty string for [`seal`]) |
//! | 135+L | n+16 | AES-128-GCM-SIV ciphertext of the n-byte secret ‖ 16-byte tag |
//!
//! Associated data = bytes `0 .. 135+L`, so every header byte is
//! authenticated. The header is untrusted until decryption succeeds: its
//! ISVSVN and DEBUG fields only choose a clearer error message; the binding
//! itself comes from the key derivation and the authenticated digest.
//!
//! Version 1 (written before bound data existed) is the same without the
//! digest (associated data `0 .. 103+L`). It is still read, as bound to the
//! empty string: such a blob opens with [`unseal`] but never with non-empty
//! bound data.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes128GcmSiv, Nonce};
use rand_core::{OsRng, RngCore};
use sgx_isa::{AttributesFlags, Keyname, Keypolicy, Keyrequest};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{append_encrypted, validate_label, Reader, MAX_LABEL_LEN};
use crate::hw::{HwError, SgxHardware};

/// Label of the sealed consensus (validator) key.
pub const LABEL_CONSENSUS_KEY: &str = "consensus-key";
/// Label of the sealed SecretConnection identity key.
pub const LABEL_IDENTITY_KEY: &str = "identity-key";
/// Label of the sealed cloud-backup wrapping key.
pub const LABEL_CLOUD_WRAP_KEY: &str = "cloud-wrap-key";

/// Magic bytes that start a sealed blob.
pub const SEALED_MAGIC: [u8; 8] = *b"TMKLSEAL";
/// The sealed blob format version written by [`seal`].
pub const SEALED_VERSION: u16 = 2;
/// The format before bound data, still read.
pub const SEALED_VERSION_UNBOUND: u16 = 1;
/// Largest secret [`seal`] accepts (an RSA-2048 PKCS#8 key is about 1.2 KiB).
pub const MAX_SEALED_SECRET_LEN: usize = 8192;

/// Attributes bound into the seal key: a seal made in debug mode only opens
/// in debug mode, and one made in production only in production.
pub const SEAL_ATTRIBUTE_MASK: AttributesFlags = AttributesFlags::from_bits_truncate(
    AttributesFlags::INIT.bits()
        | AttributesFlags::MODE64BIT.bits()
        | AttributesFlags::DEBUG.bits(),
);

const HEADER_FIXED_LEN: usize = 103;
const DIGEST_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// What a sealed blob's header says, before anything is decrypted. Untrusted:
/// for display (e.g. an `info` command) and error messages only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    /// Format version.
    pub version: u16,
    /// What the blob holds.
    pub label: String,
    /// ISVSVN of the enclave that sealed it.
    pub isvsvn: u16,
    /// CPUSVN of the CPU at sealing time.
    pub cpusvn: [u8; 16],
    /// Whether the sealing enclave was a debug enclave.
    pub debug: bool,
    /// Length of the sealed secret in bytes.
    pub secret_len: usize,
    /// SHA-256 of the bound data (`None`: a version 1 blob, which binds
    /// nothing).
    pub bound_digest: Option<[u8; 32]>,
}

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The caller passed an unusable label.
    #[error("invalid seal label {label:?}: {reason}")]
    InvalidLabel {
        /// The label given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The secret is empty or too large.
    #[error(
        "cannot seal a secret of {len} bytes: 1 to {MAX_SEALED_SECRET_LEN} bytes are supported"
    )]
    SecretLength {
        /// Length given.
        len: usize,
    },
    /// The input is not a sealed blob this version understands.
    #[error("not a valid sealed blob: {0}; pass the file the enclave wrote, unmodified")]
    Format(&'static str),
    /// The blob was written by a newer format.
    #[error("sealed blob format version {found} is not supported (this build reads versions {SEALED_VERSION_UNBOUND} and {SEALED_VERSION}): upgrade the enclave")]
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// The blob holds something else than the caller asked for.
    #[error("sealed blob holds {found:?}, expected {expected:?}: check which file is configured for which key")]
    LabelMismatch {
        /// Label the caller asked for.
        expected: String,
        /// Label in the blob.
        found: String,
    },
    /// The blob was sealed for other bound data than the caller gave.
    #[error("sealed for other bound data (SHA-256 {}) than given (SHA-256 {given}): the secret is bound to what the sealing enclave was asked to bind it to", sealed.as_deref().unwrap_or("none: an older blob format that binds nothing"))]
    BoundDataMismatch {
        /// The digest recorded in the (untrusted) header, hex; `None` for a
        /// version 1 blob.
        sealed: Option<String>,
        /// SHA-256 of the bound data given, hex.
        given: String,
    },
    /// The blob was sealed by a newer enclave version.
    #[error("sealed by a newer enclave (ISVSVN {sealed} > this enclave's {own}): an older enclave cannot open it; run the newer enclave")]
    SealedByNewerEnclave {
        /// ISVSVN recorded in the blob.
        sealed: u16,
        /// This enclave's ISVSVN.
        own: u16,
    },
    /// Debug/production mode mismatch.
    #[error("sealed by a {} enclave but this enclave is a {} enclave: debug and production enclaves cannot open each other's seals; run the enclave in the mode that sealed it", mode(*sealed_debug), mode(*own_debug))]
    DebugMismatch {
        /// The sealing enclave's DEBUG attribute (from the untrusted header).
        sealed_debug: bool,
        /// This enclave's DEBUG attribute.
        own_debug: bool,
    },
    /// The blob was sealed at a CPUSVN this CPU no longer reaches.
    #[error("sealed at a newer CPU security version than this CPU now has (microcode or BIOS downgraded?): {0}")]
    SealedOnNewerCpu(#[source] HwError),
    /// Decryption failed.
    #[error(
        "authentication failed: sealed by another enclave signer, on another CPU, or modified"
    )]
    AuthenticationFailed,
    /// The hardware refused a request.
    #[error("SGX hardware error while sealing/unsealing: {0}")]
    Hardware(#[from] HwError),
    /// The random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// Encryption failed (a local invariant broke).
    #[error("internal error while sealing: {0}")]
    Internal(&'static str),
}

fn mode(debug: bool) -> &'static str {
    if debug {
        "DEBUG"
    } else {
        "production"
    }
}

/// A parsed blob: header fields, the authenticated-data bytes and the
/// ciphertext.
struct Parsed<'a> {
    header: SealedHeader,
    request: Keyrequest,
    nonce: [u8; 12],
    aad: &'a [u8],
    ciphertext: &'a [u8],
}

fn check_label(label: &str) -> Result<(), SealError> {
    validate_label(label).map_err(|reason| SealError::InvalidLabel {
        label: label.to_owned(),
        reason,
    })
}

fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| SealError::Random(e.to_string()))?;
    Ok(out)
}

/// The key request [`seal`] uses, for the given ISVSVN, CPUSVN and key id.
pub fn seal_key_request(isvsvn: u16, cpusvn: [u8; 16], keyid: [u8; 32]) -> Keyrequest {
    Keyrequest {
        keyname: Keyname::Seal as u16,
        keypolicy: Keypolicy::MRSIGNER,
        isvsvn,
        cpusvn,
        attributemask: [SEAL_ATTRIBUTE_MASK.bits(), 0],
        keyid,
        miscmask: 0,
        ..Default::default()
    }
}

fn encode_header(
    request: &Keyrequest,
    sealer_flags: u64,
    nonce: &[u8; 12],
    label: &str,
    bound_digest: &[u8; DIGEST_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_FIXED_LEN + label.len() + DIGEST_LEN);
    out.extend_from_slice(&SEALED_MAGIC);
    out.extend_from_slice(&SEALED_VERSION.to_le_bytes());
    out.extend_from_slice(&request.keypolicy.bits().to_le_bytes());
    out.extend_from_slice(&request.isvsvn.to_le_bytes());
    out.extend_from_slice(&request.cpusvn);
    for v in request.attributemask {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&request.miscmask.to_le_bytes());
    out.extend_from_slice(&request.keyid);
    out.extend_from_slice(&sealer_flags.to_le_bytes());
    out.extend_from_slice(nonce);
    // Validated labels are at most 64 bytes.
    out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(bound_digest);
    out
}

fn digest(bound: &[u8]) -> [u8; DIGEST_LEN] {
    Sha256::digest(bound).into()
}

/// Seals `secret` for this enclave's signer under `label`, bound to nothing
/// ([`seal_bound`] with empty bound data). Returns the blob described in the
/// module documentation.
pub fn seal<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    secret: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_bound(hw, label, secret, &[])
}

/// Seals `secret` for this enclave's signer under `label`, bound to `bound`:
/// only [`unseal_bound`] with the same bytes opens it.
pub fn seal_bound<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    secret: &[u8],
    bound: &[u8],
) -> Result<Vec<u8>, SealError> {
    check_label(label)?;
    if secret.is_empty() || secret.len() > MAX_SEALED_SECRET_LEN {
        return Err(SealError::SecretLength { len: secret.len() });
    }
    let id = hw.identity();
    let cpusvn = hw.self_report()?.cpusvn;
    let request = seal_key_request(id.isvsvn, cpusvn, random()?);
    let nonce: [u8; 12] = random()?;
    let mut blob = encode_header(
        &request,
        id.attributes.flags.bits(),
        &nonce,
        label,
        &digest(bound),
    );
    let key = hw.egetkey(&request)?;
    let cipher = Aes128GcmSiv::new(key.as_ref().into());
    append_encrypted(&cipher, Nonce::from_slice(&nonce), secret, &mut blob)
        .map_err(|_| SealError::Internal("AES-GCM-SIV encryption failed"))?;
    Ok(blob)
}

fn parse(blob: &[u8]) -> Result<Parsed<'_>, SealError> {
    const SHORT: SealError = SealError::Format("truncated header");
    let mut r = Reader::new(blob);
    if r.array::<8>().map_err(|_| SHORT)? != SEALED_MAGIC {
        return Err(SealError::Format("missing TMKLSEAL magic"));
    }
    let version = r.u16().map_err(|_| SHORT)?;
    if version != SEALED_VERSION && version != SEALED_VERSION_UNBOUND {
        return Err(SealError::UnsupportedVersion { found: version });
    }
    let policy = r.u16().map_err(|_| SHORT)?;
    let isvsvn = r.u16().map_err(|_| SHORT)?;
    let cpusvn = r.array::<16>().map_err(|_| SHORT)?;
    let mask_flags = r.u64().map_err(|_| SHORT)?;
    let mask_xfrm = r.u64().map_err(|_| SHORT)?;
    let miscmask = r.u32().map_err(|_| SHORT)?;
    let keyid = r.array::<32>().map_err(|_| SHORT)?;
    let sealer_flags = r.u64().map_err(|_| SHORT)?;
    let nonce = r.array::<12>().map_err(|_| SHORT)?;
    let label_len = usize::from(r.u8().map_err(|_| SHORT)?);
    if label_len == 0 || label_len > MAX_LABEL_LEN {
        return Err(SealError::Format("label length out of range"));
    }
    let label = r.take(label_len).map_err(|_| SHORT)?;
    let label = core::str::from_utf8(label)
        .ok()
        .filter(|l| validate_label(l).is_ok())
        .ok_or(SealError::Format("label is not printable ASCII"))?;
    let bound_digest = if version == SEALED_VERSION {
        Some(r.array::<DIGEST_LEN>().map_err(|_| SHORT)?)
    } else {
        None
    };
    let aad_len = r.consumed(blob);
    let ciphertext = r.remaining();
    if ciphertext.len() <= TAG_LEN {
        return Err(SealError::Format("ciphertext shorter than its tag"));
    }
    if ciphertext.len() > MAX_SEALED_SECRET_LEN + TAG_LEN {
        return Err(SealError::Format(
            "ciphertext longer than any sealed secret",
        ));
    }
    let request = seal_key_request(isvsvn, cpusvn, keyid);
    if policy != request.keypolicy.bits()
        || [mask_flags, mask_xfrm] != request.attributemask
        || miscmask != request.miscmask
    {
        return Err(SealError::Format(
            "key policy or masks differ from version 1's (MRSIGNER; INIT|MODE64BIT|DEBUG; no MISCSELECT)",
        ));
    }
    let aad = blob.get(..aad_len).ok_or(SHORT)?;
    Ok(Parsed {
        header: SealedHeader {
            version,
            label: label.to_owned(),
            isvsvn,
            cpusvn,
            debug: sealer_flags & AttributesFlags::DEBUG.bits() != 0,
            secret_len: ciphertext.len() - TAG_LEN,
            bound_digest,
        },
        request,
        nonce,
        aad,
        ciphertext,
    })
}

/// Reads a sealed blob's header without decrypting it (untrusted values, for
/// display).
pub fn inspect(blob: &[u8]) -> Result<SealedHeader, SealError> {
    parse(blob).map(|p| p.header)
}

/// Opens a blob [`seal`] made, checking it holds `label` (bound to nothing).
pub fn unseal<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    unseal_bound(hw, label, blob, &[])
}

/// Opens a blob [`seal_bound`] made for `bound`, checking it holds `label`.
pub fn unseal_bound<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    blob: &[u8],
    bound: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    check_label(label)?;
    let parsed = parse(blob)?;
    let header = &parsed.header;
    if header.label != label {
        return Err(SealError::LabelMismatch {
            expected: label.to_owned(),
            found: header.label.clone(),
        });
    }
    let given = digest(bound);
    let matches = match &header.bound_digest {
        Some(sealed) => *sealed == given,
        // A version 1 blob binds nothing: it opens for empty bound data only.
        None => bound.is_empty(),
    };
    if !matches {
        return Err(SealError::BoundDataMismatch {
            sealed: header.bound_digest.map(hex::encode),
            given: hex::encode(given),
        });
    }
    let id = hw.identity();
    if header.isvsvn > id.isvsvn {
        return Err(SealError::SealedByNewerEnclave {
            sealed: header.isvsvn,
            own: id.isvsvn,
        });
    }
    if header.debug != id.is_debug() {
        return Err(SealError::DebugMismatch {
            sealed_debug: header.debug,
            own_debug: id.is_debug(),
        });
    }
    let key = hw.egetkey(&parsed.request).map_err(|e| match e {
        e @ HwError::CpusvnTooHigh { .. } => SealError::SealedOnNewerCpu(e),
        HwError::IsvsvnTooHigh { requested, own } => SealError::SealedByNewerEnclave {
            sealed: requested,
            own,
        },
        e => SealError::Hardware(e),
    })?;
    let cipher = Aes128GcmSiv::new(key.as_ref().into());
    let mut buffer = Zeroizing::new(parsed.ciphertext.to_vec());
    cipher
        .decrypt_in_place(Nonce::from_slice(&parsed.nonce), parsed.aad, &mut *buffer)
        .map_err(|_| SealError::AuthenticationFailed)?;
    Ok(buffer)
}

/// [`unseal`] for a 32-byte seed (consensus or identity key).
pub fn unseal_seed<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    blob: &[u8],
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    unseal_seed_bound(hw, label, blob, &[])
}

/// [`unseal_bound`] for a 32-byte seed.
pub fn unseal_seed_bound<H: SgxHardware + ?Sized>(
    hw: &H,
    label: &str,
    blob: &[u8],
    bound: &[u8],
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let secret = unseal_bound(hw, label, blob, bound)?;
    let mut seed = Zeroizing::new([0u8; 32]);
    if secret.len() != seed.len() {
        return Err(SealError::Format("sealed secret is not a 32-byte seed"));
    }
    seed.copy_from_slice(&secret);
    Ok(seed)
}
