//! Ed25519 keys: the consensus key that signs votes and proposals, the
//! identity key that authenticates SecretConnection, their files, import from
//! CometBFT and tmkms, and the ways a public key is shown to operators.
//!
//! # Key file format
//!
//! A key file holds the standard base64 (with padding) of the 32-byte Ed25519
//! seed followed by a newline — the format of tmkms's softsign key files, so
//! those are read as they are. Reading also accepts base64 of 64 bytes (seed
//! followed by public key; the public key must match the seed) and surrounding
//! whitespace, nothing else. Files are written with mode 0600 into directories
//! created with mode 0700, atomically (temporary file, fsync, link or rename,
//! directory fsync).
//!
//! # Secrets
//!
//! Key types redact themselves in `Debug`; intermediate secret buffers are
//! [`Zeroizing`]; no error message or log line contains secret bytes (file
//! parse errors describe the expected shape instead of quoting the input).

use std::fmt;
#[cfg(unix)]
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;
#[cfg(unix)]
use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use serde::{Deserialize, Deserializer};
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::signer::{ConsensusSigner, SignError};
use crate::types::{Signature, ADDRESS_LEN, SIGNATURE_LEN};

/// Length of an Ed25519 seed (the secret key as stored).
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of CometBFT's private-key encoding: seed followed by public key.
pub const KEYPAIR_LEN: usize = SEED_LEN + PUBLIC_KEY_LEN;
/// Length of a node (peer) id: the first 20 bytes of SHA-256 of the public key.
pub const PEER_ID_LEN: usize = 20;

/// Amino prefix of an Ed25519 public key (`tendermint/PubKeyEd25519`): the
/// 4-byte amino type prefix followed by the length byte 0x20. The Cosmos SDK
/// still puts it in front of the key in bech32 `…valconspub` strings.
pub const AMINO_ED25519_PUBKEY_PREFIX: [u8; 5] = [0x16, 0x24, 0xDE, 0x64, 0x20];

/// Mode of key files we write.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Mode of directories we create for key files.
pub const KEY_DIR_MODE: u32 = 0o700;

/// Largest key file we read. Key files are well below 1 KiB; anything bigger
/// is not a key file.
pub const MAX_KEY_FILE_LEN: u64 = 8 * 1024;

/// Base64 length of a 32-byte seed.
const SEED_B64_LEN: usize = 44;
/// Base64 length of 64 bytes.
const KEYPAIR_B64_LEN: usize = 88;
/// Decode buffer: `decode_slice` wants room for its rounded-up estimate.
const DECODE_BUF_LEN: usize = 66;

/// CometBFT's JSON type names for Ed25519 keys.
const COMET_PUBKEY_TYPE: &str = "tendermint/PubKeyEd25519";
const COMET_PRIVKEY_TYPE: &str = "tendermint/PrivKeyEd25519";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a key file could not be read, imported or written. Every variant names
/// the file.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("could not {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("key file {} already exists; refusing to replace a key (move the old file away first if you really mean to replace it)", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("{} is not a regular file; expected a key file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} exists but is not a directory; key files need a directory there", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} has no file name; give the path of a key file", path.display())]
    NoFileName { path: PathBuf },
    #[error("key file {} is larger than {MAX_KEY_FILE_LEN} bytes; expected a small text file (base64 of a 32-byte Ed25519 seed, or a CometBFT key JSON)", path.display())]
    TooLarge { path: PathBuf },
    #[error("key file {}: {problem}", path.display())]
    Format {
        path: PathBuf,
        problem: FormatProblem,
    },
}

/// What is wrong with the contents of a key file. Messages describe what was
/// expected and never quote secret material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatProblem {
    #[error("is empty; expected the base64 of a 32-byte Ed25519 seed")]
    Empty,
    #[error("is not UTF-8 text; expected the base64 of a 32-byte Ed25519 seed")]
    NotText,
    #[error("has {found} characters; expected {SEED_B64_LEN} characters of base64 (a 32-byte Ed25519 seed) or {KEYPAIR_B64_LEN} (64 bytes: seed followed by public key), on one line")]
    Base64Length { found: usize },
    #[error(
        "is not valid base64; expected the standard base64 alphabet with '=' padding, on one line"
    )]
    Base64,
    #[error("decodes to {found} bytes; expected 32 (an Ed25519 seed) or 64 (seed followed by public key)")]
    DecodedLength { found: usize },
    #[error("holds a seed and a public key that do not belong together (the file is corrupt or was assembled by hand)")]
    EmbeddedPublicKeyMismatch,
    #[error("is not valid JSON (line {line}, column {column}); expected a CometBFT priv_validator_key.json or node_key.json, or a base64 key file")]
    Json { line: usize, column: usize },
    #[error("does not have the shape of a CometBFT key file (line {line}, column {column}); expected {{\"priv_key\":{{\"type\":\"{COMET_PRIVKEY_TYPE}\",\"value\":\"<base64>\"}}, ...}}")]
    JsonShape { line: usize, column: usize },
    #[error("has no \"{field}\"; a CometBFT {file} always has one")]
    MissingField {
        field: &'static str,
        file: &'static str,
    },
    #[error(
        "has \"{field}\" {found:?}; expected \"{expected}\" (tmkms-light only uses Ed25519 keys)"
    )]
    KeyType {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("\"{field}\" is not {expected}")]
    FieldValue {
        field: &'static str,
        expected: &'static str,
    },
    #[error("\"priv_key\" holds a seed and a public key that do not belong together (the file is corrupt)")]
    PrivKeyInconsistent,
    #[error("\"pub_key\" is {found} but \"priv_key\" belongs to the public key {derived}; the file mixes two keys")]
    PublicKeyMismatch { found: String, derived: String },
    #[error("\"address\" is {found} but the key's address is {derived}; the file mixes two keys")]
    AddressMismatch { found: String, derived: String },
    #[error("is JSON, but a key file (base64 of a 32-byte Ed25519 seed) is expected here; import the CometBFT key into a key file first")]
    JsonNotKeyFile,
    #[error("is a CometBFT node_key.json (the node's p2p identity), not a validator consensus key; import the node's priv_validator_key.json instead")]
    NodeKeyNotConsensusKey,
    #[error("is a CometBFT priv_validator_key.json (a validator consensus key); the identity key must be a different key: generate one or import a node_key.json")]
    ConsensusKeyNotIdentityKey,
}

#[cfg(unix)]
fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |error| KeyError::Io {
        action,
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(unix)]
fn format_error(path: &Path) -> impl FnOnce(FormatProblem) -> KeyError + '_ {
    move |problem| KeyError::Format {
        path: path.to_path_buf(),
        problem,
    }
}

// ---------------------------------------------------------------------------
// Secret key storage shared by both key kinds
// ---------------------------------------------------------------------------

/// An Ed25519 secret key. `ed25519_dalek::SigningKey` zeroizes itself on
/// drop (crate feature `zeroize`).
struct Ed25519Secret(SigningKey);

impl Ed25519Secret {
    fn generate() -> Self {
        Self(SigningKey::generate(&mut OsRng))
    }

    fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// From seed followed by public key; the public key must match the seed.
    fn from_keypair(bytes: &[u8; KEYPAIR_LEN]) -> Option<Self> {
        let seed = Zeroizing::new(*bytes.first_chunk::<SEED_LEN>()?);
        let embedded: &[u8; PUBLIC_KEY_LEN] = bytes.last_chunk()?;
        let secret = Self::from_seed(&seed);
        (secret.public_key().0 == *embedded).then_some(secret)
    }

    fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        ed25519_dalek::Signer::sign(&self.0, message).to_bytes()
    }

    #[cfg(unix)]
    /// The key file contents: base64 of the seed and a newline. The buffer
    /// is allocated once at its final size, so no unzeroized copy is left
    /// behind by a reallocation.
    fn key_file_contents(&self) -> Zeroizing<String> {
        let seed = self.seed();
        let mut out = Zeroizing::new(String::with_capacity(SEED_B64_LEN + 1));
        STANDARD.encode_string(seed.as_slice(), &mut out);
        out.push('\n');
        out
    }
}

// ---------------------------------------------------------------------------
// Public keys and their display forms
// ---------------------------------------------------------------------------

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

/// A bech32 human-readable prefix (`-b`) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{hrp:?} cannot be used as a bech32 prefix ({reason}); use e.g. \"cosmosvalconspub\" for keys or \"cosmosvalcons\" for addresses")]
pub struct Bech32Error {
    pub hrp: String,
    pub reason: String,
}

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Standard base64, as in CometBFT's `pub_key.value`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Uppercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// The Cosmos SDK's JSON form, as `gaiad tx staking create-validator
    /// --pubkey` takes it.
    pub fn to_cosmos_json(&self) -> String {
        format!(
            "{{\"@type\":\"/cosmos.crypto.ed25519.PubKey\",\"key\":\"{}\"}}",
            self.to_base64()
        )
    }

    /// The amino encoding: [`AMINO_ED25519_PUBKEY_PREFIX`] then the key.
    pub fn to_amino_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(AMINO_ED25519_PUBKEY_PREFIX.len() + PUBLIC_KEY_LEN);
        out.extend_from_slice(&AMINO_ED25519_PUBKEY_PREFIX);
        out.extend_from_slice(&self.0);
        out
    }

    /// Bech32 of the amino encoding, e.g. `cosmosvalconspub1zcjduepq…` for
    /// the prefix `cosmosvalconspub`.
    pub fn to_bech32(&self, hrp: &str) -> Result<String, Bech32Error> {
        bech32_encode(hrp, &self.to_amino_bytes())
    }

    /// Validator address: the first 20 bytes of SHA-256 of the key.
    pub fn validator_address(&self) -> [u8; ADDRESS_LEN] {
        truncated_sha256(&self.0)
    }

    /// Validator address as CometBFT shows it (uppercase hex).
    pub fn validator_address_hex(&self) -> String {
        hex::encode_upper(self.validator_address())
    }

    /// Bech32 of the 20 address bytes, e.g. with the prefix `cosmosvalcons`.
    pub fn validator_address_bech32(&self, hrp: &str) -> Result<String, Bech32Error> {
        bech32_encode(hrp, &self.validator_address())
    }

    /// Node (peer) id, as used in `tcp://<id>@host:port`: the same truncated
    /// hash as the validator address.
    pub fn peer_id(&self) -> [u8; PEER_ID_LEN] {
        truncated_sha256(&self.0)
    }

    /// Node id as CometBFT prints it (lowercase hex).
    pub fn peer_id_hex(&self) -> String {
        hex::encode(self.peer_id())
    }

    /// Verify an Ed25519 signature (strict: rejects small-order keys and
    /// non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &signature).is_ok()
    }

    /// The key in the chosen format; `bech32_hrp` is only used for
    /// [`PubkeyFormat::Bech32`].
    pub fn format(&self, format: PubkeyFormat, bech32_hrp: &str) -> Result<String, Bech32Error> {
        Ok(match format {
            PubkeyFormat::Bech32 => self.to_bech32(bech32_hrp)?,
            PubkeyFormat::Base64 => self.to_base64(),
            PubkeyFormat::Json => self.to_cosmos_json(),
            PubkeyFormat::Hex => self.to_hex(),
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

fn truncated_sha256(bytes: &[u8]) -> [u8; 20] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 20];
    out.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
    out
}

fn bech32_encode(hrp: &str, data: &[u8]) -> Result<String, Bech32Error> {
    let err = |reason: String| Bech32Error {
        hrp: hrp.to_owned(),
        reason,
    };
    let parsed = bech32::Hrp::parse(hrp).map_err(|e| err(e.to_string()))?;
    bech32::encode::<bech32::Bech32>(parsed, data).map_err(|e| err(e.to_string()))
}

/// How `pubkey` prints a public key (`-p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PubkeyFormat {
    /// Bech32 of the amino encoding (`cosmosvalconspub1…`).
    #[default]
    Bech32,
    /// Standard base64 of the 32 key bytes.
    Base64,
    /// Cosmos SDK JSON (`{"@type":"/cosmos.crypto.ed25519.PubKey","key":…}`).
    Json,
    /// Uppercase hex of the 32 key bytes.
    Hex,
}

impl PubkeyFormat {
    pub const ALL: [PubkeyFormat; 4] = [
        PubkeyFormat::Bech32,
        PubkeyFormat::Base64,
        PubkeyFormat::Json,
        PubkeyFormat::Hex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PubkeyFormat::Bech32 => "bech32",
            PubkeyFormat::Base64 => "base64",
            PubkeyFormat::Json => "json",
            PubkeyFormat::Hex => "hex",
        }
    }
}

impl fmt::Display for PubkeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown public key format {0:?}; expected one of bech32, base64, json, hex")]
pub struct UnknownPubkeyFormat(pub String);

impl FromStr for PubkeyFormat {
    type Err = UnknownPubkeyFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownPubkeyFormat(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------
// Consensus and identity keys
// ---------------------------------------------------------------------------

/// How to write a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail with [`KeyError::AlreadyExists`] if the file exists.
    CreateNew,
    /// Atomically replace an existing file.
    Overwrite,
}

/// The validator's consensus key: signs votes, proposals and (v1) raw bytes.
pub struct ConsensusKey(Ed25519Secret);

impl ConsensusKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(Ed25519Secret::generate())
    }

    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self(Ed25519Secret::from_seed(seed))
    }

    /// The secret seed, for a provider that seals or encrypts it. Do not log
    /// or display it.
    pub fn secret_seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        self.0.seed()
    }

    pub fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }

    /// Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message)
    }

    #[cfg(unix)]
    /// Read a key file in our format (see the module docs). Use
    /// [`import_key_file`] to also accept CometBFT's JSON.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        load_key_file(path).map(Self)
    }

    #[cfg(unix)]
    /// Write the key file (mode 0600; missing parent directories 0700).
    pub fn write(&self, path: &Path, mode: WriteMode) -> Result<(), KeyError> {
        write_secret_file(path, self.0.key_file_contents().as_bytes(), mode)
    }
}

impl fmt::Debug for ConsensusKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsensusKey")
            .field("public_key", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ConsensusSigner for ConsensusKey {
    fn public_key(&self) -> [u8; 32] {
        self.0.public_key().0
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignError> {
        Ok(Signature(self.0.sign(message)))
    }
}

/// The signer's SecretConnection identity key (`id_key_path`). Kept apart
/// from the consensus key by type so the two cannot be mixed up.
pub struct IdentityKey(Ed25519Secret);

impl IdentityKey {
    pub fn generate() -> Self {
        Self(Ed25519Secret::generate())
    }

    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self(Ed25519Secret::from_seed(seed))
    }

    /// The secret seed, for a provider that seals or encrypts it. Do not log
    /// or display it.
    pub fn secret_seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        self.0.seed()
    }

    pub fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }

    /// Our node id as the node sees it (first 20 bytes of SHA-256 of the
    /// public key).
    pub fn peer_id(&self) -> [u8; PEER_ID_LEN] {
        self.public_key().peer_id()
    }

    /// [`Self::peer_id`] in lowercase hex, as CometBFT prints node ids.
    pub fn peer_id_hex(&self) -> String {
        self.public_key().peer_id_hex()
    }

    /// The key in the form tendermint-p2p's SecretConnection takes. That type
    /// implements `Zeroize` but does not zeroize itself on drop.
    pub fn to_p2p_signing_key(&self) -> ed25519_consensus::SigningKey {
        let seed = self.0.seed();
        ed25519_consensus::SigningKey::from(*seed)
    }

    #[cfg(unix)]
    /// Read a key file in our format (see the module docs). Use
    /// [`import_identity_key_file`] to also accept CometBFT's node_key.json.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        load_key_file(path).map(Self)
    }

    #[cfg(unix)]
    /// Write the key file (mode 0600; missing parent directories 0700).
    pub fn write(&self, path: &Path, mode: WriteMode) -> Result<(), KeyError> {
        write_secret_file(path, self.0.key_file_contents().as_bytes(), mode)
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKey")
            .field("peer_id", &self.peer_id_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------

#[cfg(unix)]
/// Read a consensus key from a key file in our (= tmkms's) base64 format or
/// from a CometBFT `priv_validator_key.json`, detected by content. The JSON's
/// key types, public key and address are all checked against the private key.
pub fn import_key_file(path: &Path) -> Result<ConsensusKey, KeyError> {
    let contents = read_key_file(path)?;
    parse_consensus_key_file(&contents).map_err(format_error(path))
}

#[cfg(unix)]
/// Read an identity key from a key file in our base64 format or from a
/// CometBFT `node_key.json`, detected by content.
pub fn import_identity_key_file(path: &Path) -> Result<IdentityKey, KeyError> {
    let contents = read_key_file(path)?;
    parse_identity_key_file(&contents).map_err(format_error(path))
}

/// The contents of a file [`import_key_file`] reads, parsed without any
/// file I/O.
pub fn parse_consensus_key_file(contents: &[u8]) -> Result<ConsensusKey, FormatProblem> {
    parse_key_contents(contents, JsonKind::PrivValidatorKey).map(ConsensusKey)
}

/// The contents of a file [`import_identity_key_file`] reads, parsed
/// without any file I/O.
pub fn parse_identity_key_file(contents: &[u8]) -> Result<IdentityKey, FormatProblem> {
    parse_key_contents(contents, JsonKind::NodeKey).map(IdentityKey)
}

fn parse_key_contents(contents: &[u8], kind: JsonKind) -> Result<Ed25519Secret, FormatProblem> {
    let text = key_text(contents)?;
    if looks_like_json(text) {
        parse_comet_json(text, kind)
    } else {
        parse_base64_key(text)
    }
}

#[cfg(unix)]
/// Reads a key file in our format only.
fn load_key_file(path: &Path) -> Result<Ed25519Secret, KeyError> {
    let contents = read_key_file(path)?;
    let text = key_text(&contents).map_err(format_error(path))?;
    if looks_like_json(text) {
        return Err(format_error(path)(FormatProblem::JsonNotKeyFile));
    }
    parse_base64_key(text).map_err(format_error(path))
}

/// The trimmed text of a key file.
fn key_text(contents: &[u8]) -> Result<&str, FormatProblem> {
    let text = std::str::from_utf8(contents)
        .map_err(|_| FormatProblem::NotText)?
        .trim();
    if text.is_empty() {
        return Err(FormatProblem::Empty);
    }
    Ok(text)
}

/// JSON documents start with an object or array; base64 never does.
fn looks_like_json(text: &str) -> bool {
    text.starts_with(['{', '['])
}

/// Base64 of a 32-byte seed, or of 64 bytes (seed, public key).
fn parse_base64_key(text: &str) -> Result<Ed25519Secret, FormatProblem> {
    let len = text.len();
    if len != SEED_B64_LEN && len != KEYPAIR_B64_LEN {
        return Err(FormatProblem::Base64Length { found: len });
    }
    let mut buf = Zeroizing::new([0u8; DECODE_BUF_LEN]);
    let written = STANDARD
        .decode_slice(text, buf.as_mut_slice())
        .map_err(|_| FormatProblem::Base64)?;
    secret_from_decoded(&buf, written)
}

/// Builds the key from the first `written` bytes of `buf` (32: seed; 64:
/// seed and public key, which must match).
fn secret_from_decoded(
    buf: &[u8; DECODE_BUF_LEN],
    written: usize,
) -> Result<Ed25519Secret, FormatProblem> {
    let wrong_length = FormatProblem::DecodedLength { found: written };
    if written == SEED_LEN {
        let seed = Zeroizing::new(*buf.first_chunk::<SEED_LEN>().ok_or(wrong_length)?);
        Ok(Ed25519Secret::from_seed(&seed))
    } else if written == KEYPAIR_LEN {
        let pair = Zeroizing::new(*buf.first_chunk::<KEYPAIR_LEN>().ok_or(wrong_length)?);
        Ed25519Secret::from_keypair(&pair).ok_or(FormatProblem::EmbeddedPublicKeyMismatch)
    } else {
        Err(wrong_length)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    PrivValidatorKey,
    NodeKey,
}

/// A JSON string holding secret material: zeroized on drop.
struct SecretString(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretString(Zeroizing::new(s)))
    }
}

#[derive(Deserialize)]
struct CometKeyFile {
    address: Option<String>,
    pub_key: Option<CometTyped<String>>,
    priv_key: Option<CometTyped<SecretString>>,
}

#[derive(Deserialize)]
struct CometTyped<V> {
    #[serde(rename = "type")]
    key_type: String,
    value: V,
}

/// Limits how much of a peer-written string goes into an error message.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_type(
    field: &'static str,
    found: &str,
    expected: &'static str,
) -> Result<(), FormatProblem> {
    if found == expected {
        Ok(())
    } else {
        Err(FormatProblem::KeyType {
            field,
            found: shorten(found),
            expected,
        })
    }
}

fn parse_comet_json(text: &str, kind: JsonKind) -> Result<Ed25519Secret, FormatProblem> {
    // serde_json's messages can quote input values, so only positions are kept.
    let file: CometKeyFile = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => FormatProblem::JsonShape { line, column },
            _ => FormatProblem::Json { line, column },
        }
    })?;
    let file_name = match kind {
        JsonKind::PrivValidatorKey => "priv_validator_key.json",
        JsonKind::NodeKey => "node_key.json",
    };
    let looks_like_node_key = file.address.is_none() && file.pub_key.is_none();
    match kind {
        JsonKind::PrivValidatorKey if looks_like_node_key && file.priv_key.is_some() => {
            return Err(FormatProblem::NodeKeyNotConsensusKey);
        }
        JsonKind::NodeKey if !looks_like_node_key => {
            return Err(FormatProblem::ConsensusKeyNotIdentityKey);
        }
        _ => {}
    }

    let priv_key = file.priv_key.ok_or(FormatProblem::MissingField {
        field: "priv_key",
        file: file_name,
    })?;
    check_type("priv_key.type", &priv_key.key_type, COMET_PRIVKEY_TYPE)?;
    let mut buf = Zeroizing::new([0u8; DECODE_BUF_LEN]);
    let written = STANDARD
        .decode_slice(priv_key.value.0.trim(), buf.as_mut_slice())
        .ok()
        .filter(|n| *n == KEYPAIR_LEN)
        .ok_or(FormatProblem::FieldValue {
            field: "priv_key.value",
            expected: "base64 of 64 bytes (seed followed by public key)",
        })?;
    let secret =
        secret_from_decoded(&buf, written).map_err(|_| FormatProblem::PrivKeyInconsistent)?;
    let derived = secret.public_key();

    if kind == JsonKind::NodeKey {
        return Ok(secret);
    }

    let pub_key = file.pub_key.ok_or(FormatProblem::MissingField {
        field: "pub_key",
        file: file_name,
    })?;
    check_type("pub_key.type", &pub_key.key_type, COMET_PUBKEY_TYPE)?;
    let found_pub = STANDARD
        .decode(pub_key.value.trim())
        .ok()
        .and_then(|v| <[u8; PUBLIC_KEY_LEN]>::try_from(v).ok())
        .ok_or(FormatProblem::FieldValue {
            field: "pub_key.value",
            expected: "base64 of a 32-byte Ed25519 public key",
        })?;
    if found_pub != derived.0 {
        return Err(FormatProblem::PublicKeyMismatch {
            found: PublicKey(found_pub).to_base64(),
            derived: derived.to_base64(),
        });
    }

    let address = file.address.ok_or(FormatProblem::MissingField {
        field: "address",
        file: file_name,
    })?;
    let found_address = hex::decode(address.trim())
        .ok()
        .and_then(|v| <[u8; ADDRESS_LEN]>::try_from(v).ok())
        .ok_or(FormatProblem::FieldValue {
            field: "address",
            expected: "40 hex characters (20 bytes)",
        })?;
    if found_address != derived.validator_address() {
        return Err(FormatProblem::AddressMismatch {
            found: hex::encode_upper(found_address),
            derived: derived.validator_address_hex(),
        });
    }
    Ok(secret)
}

// ---------------------------------------------------------------------------
// File I/O
// ---------------------------------------------------------------------------

#[cfg(unix)]
/// Reads a small secret file into a zeroizing buffer that never reallocates.
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    // Checked before opening so that a FIFO or device does not block us.
    let meta = fs::metadata(path).map_err(io_error("read key file", path))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let file = File::open(path).map_err(io_error("open key file", path))?;
    let meta = file
        .metadata()
        .map_err(io_error("read key file metadata of", path))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    warn_if_loose(path, meta.mode());
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let cap = usize::try_from(MAX_KEY_FILE_LEN)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    file.take(MAX_KEY_FILE_LEN.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_error("read key file", path))?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

/// Whether a file mode gives group or others any access.
pub fn is_mode_too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

#[cfg(unix)]
fn warn_if_loose(path: &Path, mode: u32) {
    if is_mode_too_open(mode) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "key file is accessible to other users; run `chmod 600 {}`",
            path.display()
        );
    }
}

#[cfg(unix)]
/// The directory a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

#[cfg(unix)]
/// Creates the missing directories leading to `dir`, each with mode 0700,
/// and makes each creation durable.
fn create_private_dirs(dir: &Path) -> Result<(), KeyError> {
    let mut missing = Vec::new();
    let mut current = dir;
    loop {
        match fs::metadata(current) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(KeyError::NotADirectory {
                    path: current.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                match current.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => current = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(io_error("inspect directory", current)(e)),
        }
    }
    for created in missing.into_iter().rev() {
        match DirBuilder::new().mode(KEY_DIR_MODE).create(created) {
            Ok(()) => {
                fs::set_permissions(created, fs::Permissions::from_mode(KEY_DIR_MODE))
                    .map_err(io_error("set permissions of directory", created))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && created.is_dir() => {}
            Err(e) => return Err(io_error("create directory", created)(e)),
        }
        sync_dir(parent_dir(created))?;
    }
    Ok(())
}

#[cfg(unix)]
/// A temporary file next to the destination, removed on drop unless it was
/// renamed away.
struct TempFile {
    path: PathBuf,
    file: File,
}

#[cfg(unix)]
impl TempFile {
    fn create(dir: &Path, name: &std::ffi::OsStr) -> Result<Self, KeyError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempts = 0u32;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
            let path = dir.join(tmp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(KEY_FILE_MODE)
                .open(&path)
            {
                Ok(file) => return Ok(Self { path, file }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error("create temporary key file", &path)(e)),
            }
        }
    }
}

#[cfg(unix)]
impl Drop for TempFile {
    fn drop(&mut self) {
        // Already gone after a rename; nothing else to do on failure.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
/// Writes `contents` to `path` so that after a crash the path holds either
/// nothing (or the old file) or the complete new file.
pub fn write_secret_file(path: &Path, contents: &[u8], mode: WriteMode) -> Result<(), KeyError> {
    let name = path.file_name().ok_or_else(|| KeyError::NoFileName {
        path: path.to_path_buf(),
    })?;
    let dir = parent_dir(path);
    create_private_dirs(dir)?;
    if mode == WriteMode::CreateNew && fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }

    let mut tmp = TempFile::create(dir, name)?;
    tmp.file
        .set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(io_error("set permissions of", &tmp.path))?;
    tmp.file
        .write_all(contents)
        .and_then(|()| tmp.file.sync_all())
        .map_err(io_error("write key file", &tmp.path))?;

    match mode {
        WriteMode::CreateNew => fs::hard_link(&tmp.path, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io_error("create key file", path)(e)
            }
        })?,
        WriteMode::Overwrite => {
            fs::rename(&tmp.path, path).map_err(io_error("replace key file", path))?
        }
    }
    drop(tmp);
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The example key from CometBFT's documentation of
    /// priv_validator_key.json (docs.cometbft.com/v1.0/references/config/
    /// priv_validator_key.json; a public test key, never to be used).
    const COMET_DOC_KEY: &str = r#"{
  "address": "E74FBE24164CFC4F88E311C3AC92E63D0DC310D8",
  "pub_key": {
    "type": "tendermint/PubKeyEd25519",
    "value": "UjxDQgVTlHJOZ7axpMl/iczMIJXiQpFxCFjwKGvzYqE="
  },
  "priv_key": {
    "type": "tendermint/PrivKeyEd25519",
    "value": "9giFjwnmAKCAI95l4Q32kXsau+itGrbsvz84CTLxGnJSPENCBVOUck5ntrGkyX+JzMwgleJCkXEIWPAoa/NioQ=="
  }
}"#;

    fn write_file(path: &Path, contents: &str) {
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn priv_validator_json(key: &ConsensusKey, pub_key: &PublicKey, address: &str) -> String {
        let mut pair = key.secret_seed().to_vec();
        pair.extend_from_slice(&key.public_key().0);
        format!(
            r#"{{"address":"{address}","pub_key":{{"type":"tendermint/PubKeyEd25519","value":"{}"}},"priv_key":{{"type":"tendermint/PrivKeyEd25519","value":"{}"}}}}"#,
            pub_key.to_base64(),
            STANDARD.encode(pair)
        )
    }

    #[test]
    fn bech32_matches_cosmos_sdk_vector() {
        // From tendermint-rs tendermint/src/public_key.rs
        // (test_consensus_serialization), produced there with the Cosmos SDK's
        // types.MustBech32ifyPubKey(Bech32PubKeyTypeConsPub, ed25519 key).
        let key = PublicKey(
            hex::decode("4A25C6640A1F72B9C975338294EF51B6D1C33158BB6ECBA69FBC3FB5A33C9DCE")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            key.to_bech32("cosmosvalconspub").unwrap(),
            "cosmosvalconspub1zcjduepqfgjuveq2raetnjt4xwpffm63kmguxv2chdhvhf5lhslmtgeunh8qmf7exk"
        );
        assert_eq!(
            key.format(PubkeyFormat::Bech32, "cosmosvalconspub")
                .unwrap(),
            key.to_bech32("cosmosvalconspub").unwrap()
        );
        // Uppercase prefixes are accepted and printed in lowercase.
        assert_eq!(
            key.to_bech32("COSMOSVALCONSPUB").unwrap(),
            key.to_bech32("cosmosvalconspub").unwrap()
        );
    }

    #[test]
    fn validator_address_matches_tendermint_rs_vector() {
        // From tendermint-rs tendermint/src/account.rs (test_ed25519_id).
        let key = PublicKey(
            hex::decode("14253D61EF42D166D02E68D540D07FDF8D65A9AF0ACAA46302688E788A8521E2")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            key.validator_address_hex(),
            "0CDA3F47EF3C4906693B170EF650EB968C5F4B2C"
        );
        assert_eq!(
            key.peer_id_hex(),
            "0cda3f47ef3c4906693b170ef650eb968c5f4b2c"
        );
        // The bech32 address round-trips to the same 20 bytes.
        let encoded = key.validator_address_bech32("cosmosvalcons").unwrap();
        let (hrp, data) = bech32::decode(&encoded).unwrap();
        assert_eq!(hrp.as_str(), "cosmosvalcons");
        assert_eq!(data, key.validator_address());
    }

    #[test]
    fn display_forms() {
        let key = PublicKey([0xAB; 32]);
        assert_eq!(key.to_hex(), "AB".repeat(32));
        assert_eq!(
            key.to_cosmos_json(),
            format!(
                r#"{{"@type":"/cosmos.crypto.ed25519.PubKey","key":"{}"}}"#,
                key.to_base64()
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&key.to_cosmos_json()).unwrap();
        assert_eq!(parsed["key"], key.to_base64());
        assert_eq!(&key.to_amino_bytes()[..5], &AMINO_ED25519_PUBKEY_PREFIX);
        assert!(key.to_bech32("").is_err());
        assert!(key.to_bech32("MiXed").is_err());
    }

    #[test]
    fn parses_pubkey_formats() {
        for f in PubkeyFormat::ALL {
            assert_eq!(f.name().parse::<PubkeyFormat>(), Ok(f));
            assert_eq!(f.to_string().to_uppercase().parse::<PubkeyFormat>(), Ok(f));
        }
        let err = "pem".parse::<PubkeyFormat>().unwrap_err();
        assert!(err.to_string().contains("bech32, base64, json, hex"));
    }

    #[test]
    fn signs_and_verifies() {
        let key = ConsensusKey::generate();
        let sig = key.sign(b"hello");
        assert!(key.public_key().verify(b"hello", &sig));
        assert!(!key.public_key().verify(b"hellO", &sig));
        let via_trait = ConsensusSigner::sign(&key, b"hello").unwrap();
        assert_eq!(via_trait.0, sig, "Ed25519 signatures are deterministic");
    }

    #[test]
    fn debug_redacts_secrets() {
        let key = ConsensusKey::from_seed(&[7u8; 32]);
        let seed_b64 = STANDARD.encode([7u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&seed_b64));
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        let id = IdentityKey::from_seed(&[7u8; 32]);
        let shown = format!("{id:?}");
        assert!(shown.contains("<redacted>") && !shown.contains(&seed_b64));
    }

    #[test]
    fn key_file_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/consensus.key");
        let key = ConsensusKey::generate();
        key.write(&path, WriteMode::CreateNew).unwrap();

        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o700);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && text.len() == SEED_B64_LEN + 1);
        assert_eq!(
            STANDARD.decode(text.trim()).unwrap(),
            key.secret_seed().to_vec()
        );
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);

        let loaded = ConsensusKey::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let imported = import_key_file(&path).unwrap();
        assert_eq!(imported.public_key(), key.public_key());
    }

    #[test]
    fn refuses_to_replace_a_key_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consensus.key");
        let first = ConsensusKey::generate();
        first.write(&path, WriteMode::CreateNew).unwrap();
        let second = ConsensusKey::generate();
        let err = second.write(&path, WriteMode::CreateNew).unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("consensus.key"));
        assert_eq!(
            ConsensusKey::load(&path).unwrap().public_key(),
            first.public_key()
        );

        second.write(&path, WriteMode::Overwrite).unwrap();
        assert_eq!(
            ConsensusKey::load(&path).unwrap().public_key(),
            second.public_key()
        );
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_names_a_blocking_file_in_the_directory_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("secrets");
        fs::write(&blocker, "not a directory").unwrap();
        let err = ConsensusKey::generate()
            .write(&blocker.join("consensus.key"), WriteMode::CreateNew)
            .unwrap_err();
        assert!(matches!(err, KeyError::NotADirectory { .. }), "{err}");
        assert!(err.to_string().contains("secrets"), "{err}");
    }

    #[test]
    fn reads_tmkms_style_files_with_whitespace_and_keypairs() {
        let dir = tempfile::tempdir().unwrap();
        let key = ConsensusKey::generate();
        let seed = key.secret_seed();

        let path = dir.path().join("seed");
        write_file(
            &path,
            &format!("  \n{}\r\n\n", STANDARD.encode(seed.as_slice())),
        );
        assert_eq!(
            ConsensusKey::load(&path).unwrap().public_key(),
            key.public_key()
        );

        let mut pair = seed.to_vec();
        pair.extend_from_slice(&key.public_key().0);
        write_file(&path, &STANDARD.encode(&pair));
        assert_eq!(
            ConsensusKey::load(&path).unwrap().public_key(),
            key.public_key()
        );

        // A keypair whose public half belongs to another key.
        pair[40] ^= 1;
        write_file(&path, &STANDARD.encode(&pair));
        let err = ConsensusKey::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Format {
                    problem: FormatProblem::EmbeddedPublicKeyMismatch,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_malformed_key_files_naming_path_and_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        let seed_b64 = STANDARD.encode([9u8; 32]);
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("abc", "44 characters of base64"),
            (&STANDARD.encode([1u8; 30]), "44 characters of base64"),
            (
                &STANDARD.encode([1u8; 33]),
                "decodes to 33 bytes; expected 32",
            ),
            (&seed_b64.replace('C', "!"), "not valid base64"),
            (
                &format!("{}\n{}", &seed_b64[..20], &seed_b64[20..]),
                "characters of base64",
            ),
        ];
        for (contents, expected) in cases {
            write_file(&path, contents);
            let err = ConsensusKey::load(&path).unwrap_err().to_string();
            assert!(err.contains("bad.key"), "{err}");
            assert!(err.contains(expected), "{contents:?}: {err}");
            assert!(!err.contains(&seed_b64), "{err}");
        }
        fs::write(&path, [0xFFu8, 0xFE, 0x00]).unwrap();
        let err = ConsensusKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");

        let big = dir.path().join("big.key");
        fs::write(&big, vec![b'A'; 9000]).unwrap();
        assert!(matches!(
            ConsensusKey::load(&big),
            Err(KeyError::TooLarge { .. })
        ));

        let missing = ConsensusKey::load(&dir.path().join("missing.key")).unwrap_err();
        assert!(missing.to_string().contains("missing.key"), "{missing}");
        assert!(matches!(
            ConsensusKey::load(dir.path()),
            Err(KeyError::NotAFile { .. })
        ));
    }

    /// Runs `f` with a subscriber that records every event as text.
    fn capture_logs(f: impl FnOnce()) -> Vec<String> {
        use std::fmt::Write as _;
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        use tracing::span;

        struct Line<'a>(&'a mut String);
        impl Visit for Line<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                let _ = write!(self.0, " {}={:?}", field.name(), value);
            }
        }

        struct Capture(Arc<Mutex<Vec<String>>>);
        impl tracing::Subscriber for Capture {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
                span::Id::from_u64(1)
            }
            fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
            fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut line = event.metadata().level().to_string();
                event.record(&mut Line(&mut line));
                self.0.lock().unwrap().push(line);
            }
            fn enter(&self, _: &span::Id) {}
            fn exit(&self, _: &span::Id) {}
        }

        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(lines.clone()), f);
        let out = lines.lock().unwrap().clone();
        out
    }

    #[test]
    fn loose_permissions_are_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loose.key");
        ConsensusKey::generate()
            .write(&path, WriteMode::CreateNew)
            .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let logged = capture_logs(|| assert!(ConsensusKey::load(&path).is_ok()));
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].contains("WARN"), "{logged:?}");
        assert!(logged[0].contains("loose.key"), "{logged:?}");
        assert!(logged[0].contains("chmod 600"), "{logged:?}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let logged = capture_logs(|| assert!(ConsensusKey::load(&path).is_ok()));
        assert!(logged.is_empty(), "{logged:?}");
        assert!(is_mode_too_open(0o644));
        assert!(is_mode_too_open(0o640));
        assert!(!is_mode_too_open(0o600));
        assert!(!is_mode_too_open(0o400));
    }

    #[test]
    fn imports_cometbft_documentation_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_key.json");
        write_file(&path, COMET_DOC_KEY);
        let key = import_key_file(&path).unwrap();
        assert_eq!(
            key.public_key().to_base64(),
            "UjxDQgVTlHJOZ7axpMl/iczMIJXiQpFxCFjwKGvzYqE="
        );
        assert_eq!(
            key.public_key().validator_address_hex(),
            "E74FBE24164CFC4F88E311C3AC92E63D0DC310D8"
        );
        // Converting to our format and back keeps the key.
        let err = ConsensusKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("import the CometBFT key"), "{err}");

        let converted = dir.path().join("consensus.key");
        key.write(&converted, WriteMode::CreateNew).unwrap();
        assert_eq!(
            ConsensusKey::load(&converted).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn import_accepts_generated_priv_validator_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_key.json");
        let key = ConsensusKey::generate();
        let pk = key.public_key();
        write_file(
            &path,
            &priv_validator_json(&key, &pk, &pk.validator_address_hex()),
        );
        assert_eq!(import_key_file(&path).unwrap().public_key(), pk);
        // Lowercase addresses are accepted too.
        write_file(
            &path,
            &priv_validator_json(&key, &pk, &pk.validator_address_hex().to_lowercase()),
        );
        assert_eq!(import_key_file(&path).unwrap().public_key(), pk);
    }

    #[test]
    fn import_rejects_mismatching_pub_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_key.json");
        let key = ConsensusKey::generate();
        let other = ConsensusKey::generate().public_key();
        write_file(
            &path,
            &priv_validator_json(&key, &other, &key.public_key().validator_address_hex()),
        );
        let err = import_key_file(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Format {
                    problem: FormatProblem::PublicKeyMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("priv_validator_key.json") && msg.contains("pub_key"),
            "{msg}"
        );
        assert!(!msg.contains(&STANDARD.encode(key.secret_seed().as_slice())));
    }

    #[test]
    fn import_rejects_mismatching_address_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_key.json");
        let key = ConsensusKey::generate();
        let pk = key.public_key();
        let other = ConsensusKey::generate().public_key();
        write_file(
            &path,
            &priv_validator_json(&key, &pk, &other.validator_address_hex()),
        );
        let err = import_key_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("\"address\"") && err.contains(&pk.validator_address_hex()),
            "{err}"
        );

        let good = priv_validator_json(&key, &pk, &pk.validator_address_hex());
        let bad_types = [
            (
                good.replace("tendermint/PrivKeyEd25519", "tendermint/PrivKeySecp256k1"),
                "priv_key.type",
            ),
            (
                good.replace("tendermint/PubKeyEd25519", "tendermint/PubKeySecp256k1"),
                "pub_key.type",
            ),
            (good.replace("\"address\"", "\"addr\""), "\"address\""),
            (good.replace("{", "[").replace("}", "]"), "line 1"),
            (good[..good.len() - 3].to_owned(), "not valid JSON"),
        ];
        for (text, expected) in bad_types {
            write_file(&path, &text);
            let err = import_key_file(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains(&STANDARD.encode(key.secret_seed().as_slice())));
        }
    }

    #[test]
    fn json_shape_errors_do_not_quote_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let secret = STANDARD.encode([5u8; 64]);
        write_file(&path, &format!(r#"{{"priv_key":"{secret}"}}"#));
        let err = import_identity_key_file(&path).unwrap_err().to_string();
        assert!(err.contains("shape"), "{err}");
        assert!(!err.contains(&secret), "{err}");
    }

    #[test]
    fn imports_node_key_as_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key.json");
        let id = IdentityKey::generate();
        let mut pair = id.secret_seed().to_vec();
        pair.extend_from_slice(&id.public_key().0);
        write_file(
            &path,
            &format!(
                r#"{{"priv_key":{{"type":"tendermint/PrivKeyEd25519","value":"{}"}}}}"#,
                STANDARD.encode(&pair)
            ),
        );
        let imported = import_identity_key_file(&path).unwrap();
        assert_eq!(imported.peer_id(), id.peer_id());
        assert_eq!(
            imported.peer_id_hex(),
            hex::encode(id.public_key().peer_id())
        );

        let err = import_key_file(&path).unwrap_err();
        assert!(err.to_string().contains("node_key.json"), "{err}");

        let pv = dir.path().join("priv_validator_key.json");
        write_file(&pv, COMET_DOC_KEY);
        let err = import_identity_key_file(&pv).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Format {
                    problem: FormatProblem::ConsensusKeyNotIdentityKey,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn identity_key_converts_to_p2p_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        let id = IdentityKey::generate();
        id.write(&path, WriteMode::CreateNew).unwrap();
        let loaded = IdentityKey::load(&path).unwrap();
        let p2p = loaded.to_p2p_signing_key();
        assert_eq!(p2p.verification_key().to_bytes(), id.public_key().0);
        assert_eq!(loaded.peer_id(), id.peer_id());
        let sig = p2p.sign(b"challenge");
        assert!(id.public_key().verify(b"challenge", &sig.to_bytes()));
    }
}
