use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::key_file::SEED_B64_LEN;
use super::*;
use crate::signer::ConsensusSigner;

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

/// Asserts that `err` is a format error with this problem, showing it if not.
macro_rules! assert_format_problem {
    ($err:expr, $problem:pat) => {{
        let err = &$err;
        assert!(
            matches!(
                err,
                KeyError::Format {
                    problem: $problem,
                    ..
                }
            ),
            "{err}"
        )
    }};
}

/// A path named `name` in a new temporary directory (kept while the
/// returned guard lives).
fn temp_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// The public key of the consensus key file at `path`.
fn loaded_public_key(path: &Path) -> PublicKey {
    ConsensusKey::load(path).unwrap().public_key()
}

/// A new consensus key, written to `path` (which must not exist).
fn new_key_at(path: &Path) -> ConsensusKey {
    let key = ConsensusKey::generate();
    key.write(path, WriteMode::CreateNew).unwrap();
    key
}

fn write_file(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn write_priv_validator_json(path: &Path, key: &ConsensusKey, pub_key: &PublicKey, address: &str) {
    write_file(path, &priv_validator_json(key, pub_key, address));
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
    let key = new_key_at(&path);

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
    let first = new_key_at(&path);
    let second = ConsensusKey::generate();
    let err = second.write(&path, WriteMode::CreateNew).unwrap_err();
    assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("consensus.key"));
    assert_eq!(loaded_public_key(&path), first.public_key());

    second.write(&path, WriteMode::Overwrite).unwrap();
    assert_eq!(loaded_public_key(&path), second.public_key());
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
    assert_eq!(loaded_public_key(&path), key.public_key());

    let mut pair = seed.to_vec();
    pair.extend_from_slice(&key.public_key().0);
    write_file(&path, &STANDARD.encode(&pair));
    assert_eq!(loaded_public_key(&path), key.public_key());

    // A keypair whose public half belongs to another key.
    pair[40] ^= 1;
    write_file(&path, &STANDARD.encode(&pair));
    let err = ConsensusKey::load(&path).unwrap_err();
    assert_format_problem!(err, FormatProblem::EmbeddedPublicKeyMismatch);
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
    assert_eq!(loaded_public_key(&converted), key.public_key());
}

#[test]
fn import_accepts_generated_priv_validator_key() {
    let (_dir, path) = temp_file("priv_validator_key.json");
    let key = ConsensusKey::generate();
    let pk = key.public_key();
    write_priv_validator_json(&path, &key, &pk, &pk.validator_address_hex());
    assert_eq!(import_key_file(&path).unwrap().public_key(), pk);
    // Lowercase addresses are accepted too.
    write_priv_validator_json(&path, &key, &pk, &pk.validator_address_hex().to_lowercase());
    assert_eq!(import_key_file(&path).unwrap().public_key(), pk);
}

#[test]
fn import_rejects_mismatching_pub_key() {
    let (_dir, path) = temp_file("priv_validator_key.json");
    let key = ConsensusKey::generate();
    let other = ConsensusKey::generate().public_key();
    write_priv_validator_json(
        &path,
        &key,
        &other,
        &key.public_key().validator_address_hex(),
    );
    let err = import_key_file(&path).unwrap_err();
    assert_format_problem!(err, FormatProblem::PublicKeyMismatch { .. });
    let msg = err.to_string();
    assert!(
        msg.contains("priv_validator_key.json") && msg.contains("pub_key"),
        "{msg}"
    );
    assert!(!msg.contains(&STANDARD.encode(key.secret_seed().as_slice())));
}

#[test]
fn import_rejects_mismatching_address_and_types() {
    let (_dir, path) = temp_file("priv_validator_key.json");
    let key = ConsensusKey::generate();
    let pk = key.public_key();
    let other = ConsensusKey::generate().public_key();
    write_priv_validator_json(&path, &key, &pk, &other.validator_address_hex());
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
    assert_format_problem!(err, FormatProblem::ConsensusKeyNotIdentityKey);
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
