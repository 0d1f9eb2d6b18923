//! The `tmkms-softsign` command line, run as the real binary: what every
//! subcommand writes, prints and refuses, and that its errors name the flag,
//! file or field to fix. Each test has its own temp directory (and socket),
//! so the tests run in parallel.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{accept, Guard, Kms, BIN};
use ed25519_dalek::SigningKey;
use tmkms_node_sim::{validator_address, Dialect, NodeListener};

const CHAIN: &str = "cli-test-chain";

/// How long a command that should fail at once may take before the test
/// gives up on it (it is then killed).
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// A finished command with its output as text.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from_output(out: Output) -> Ran {
        Ran {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn succeeded(self) -> Ran {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Exited by itself with a non-zero code (not killed by a signal).
    #[track_caller]
    fn failed(self) -> Ran {
        assert!(
            matches!(self.status.code(), Some(c) if c != 0),
            "expected a non-zero exit code, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains every one of `needles`.
    #[track_caller]
    fn says(&self, needles: &[&str]) -> &Ran {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr does not mention {needle:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

fn cli(args: &[&str]) -> Ran {
    Ran::from_output(common::run(args))
}

/// Runs the binary, killing it if it has not exited within [`WAIT`] (for
/// `start`, which runs forever when it does not fail). Output goes through
/// files in `scratch`, so a chatty child cannot block on a full pipe.
fn cli_within(scratch: &Path, args: &[&str]) -> Ran {
    let out_path = scratch.join("cli.stdout");
    let err_path = scratch.join("cli.stderr");
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn tmkms-softsign");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            common::kill(&mut child);
            panic!(
                "tmkms-softsign {args:?} still running after {WAIT:?}; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: fs::read_to_string(&out_path).unwrap(),
        stderr: fs::read_to_string(&err_path).unwrap(),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A temp directory and, inside it, the path of a config in a home directory
/// that does not exist yet.
fn fresh_home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("home").join("tmkms.toml");
    (dir, config)
}

/// A signer home whose validator connection is `unix://<dir>/node.sock`
/// (where [`listen_unix`] binds), made by `init` with `extra` arguments.
fn unix_home(extra: &[&str]) -> Kms {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", s(&dir.path().join("node.sock")));
    Kms::init_in(dir, CHAIN, &address, "v0.38", extra)
}

fn listen_unix(kms: &Kms) -> NodeListener {
    NodeListener::bind_unix(kms.path("node.sock"), Dialect::V0_38).unwrap()
}

/// Every file `init` creates, with its contents, so that "untouched" can be
/// checked.
fn snapshot(kms: &Kms) -> Vec<(PathBuf, Vec<u8>)> {
    [
        "tmkms.toml",
        "secrets/consensus.key",
        "secrets/id.key",
        "state/consensus.state",
    ]
    .iter()
    .map(|rel| {
        let path = kms.path(rel);
        let bytes = fs::read(&path).unwrap();
        (path, bytes)
    })
    .collect()
}

/// Standard output lines, trimmed.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------
// Keys and files in the formats operators bring
// ---------------------------------------------------------------------------

/// A fixed test key (the seed is `seed_byte` repeated), so expectations are
/// computed here, independently of the signer's own key code.
fn test_key(seed_byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed_byte; 32])
}

fn public_of(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

/// Validator address as CometBFT shows it: uppercase hex of the first 20
/// bytes of SHA-256 of the public key (computed by the node simulator).
fn address_hex(public: &[u8; 32]) -> String {
    hex::encode_upper(validator_address(public))
}

/// `priv_validator_key.json` as CometBFT's `privval/file.go` writes it
/// (`FilePVKey`, amino JSON of the key types), from its three fields.
fn priv_validator_key_json(address: &str, pub_b64: &str, priv_b64: &str) -> String {
    format!(
        r#"{{
  "address": "{address}",
  "pub_key": {{
    "type": "tendermint/PubKeyEd25519",
    "value": "{pub_b64}"
  }},
  "priv_key": {{
    "type": "tendermint/PrivKeyEd25519",
    "value": "{priv_b64}"
  }}
}}
"#
    )
}

/// A consistent `priv_validator_key.json` for `key`: `priv_key` is the seed
/// followed by the public key, as Go's `ed25519.PrivateKey`.
fn good_key_json(key: &SigningKey) -> String {
    let public = public_of(key);
    let mut pair = key.to_bytes().to_vec();
    pair.extend_from_slice(&public);
    priv_validator_key_json(
        &address_hex(&public),
        &B64.encode(public),
        &B64.encode(pair),
    )
}

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path
}

/// Decodes a bech32 string (BIP-173: checksum verified, 5-bit groups
/// regrouped into bytes) into its prefix and data.
fn bech32_decode(text: &str) -> (String, Vec<u8>) {
    const CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let (hrp, data) = text.rsplit_once('1').expect("bech32 separator");
    let values: Vec<u8> = data
        .chars()
        .map(|c| u8::try_from(CHARSET.find(c).expect("bech32 character")).unwrap())
        .collect();
    assert!(values.len() >= 6, "bech32 without checksum: {text}");
    let mut checked: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    checked.push(0);
    checked.extend(hrp.bytes().map(|b| b & 31));
    checked.extend(&values);
    let mut chk: u32 = 1;
    for v in checked {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    assert_eq!(chk, 1, "bech32 checksum of {text}");
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in &values[..values.len() - 6] {
        acc = ((acc << 5) | u32::from(*v)) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    assert!(
        bits < 5 && acc & ((1 << bits) - 1) == 0,
        "bech32 padding of {text}"
    );
    (hrp.to_owned(), bytes)
}

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

#[test]
fn init_writes_config_keys_and_state_with_private_modes() {
    let (dir, config) = fresh_home();
    // A permissive umask, so the modes must come from the signer itself.
    let out = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", BIN, "init", "-c"])
        .arg(&config)
        .args(["--chain-id", CHAIN, "--address", "tcp://127.0.0.1:26658"])
        .output()
        .unwrap();
    let ran = Ran::from_output(out).succeeded();

    let home = dir.path().join("home");
    for rel in ["", "secrets", "state"] {
        let path = home.join(rel);
        assert!(path.is_dir(), "{} is not a directory", path.display());
        assert_eq!(mode(&path), 0o700, "mode of {}", path.display());
    }
    for rel in [
        "tmkms.toml",
        "secrets/consensus.key",
        "secrets/id.key",
        "state/consensus.state",
    ] {
        let path = home.join(rel);
        assert!(path.is_file(), "{} is not a file", path.display());
        assert_eq!(mode(&path), 0o600, "mode of {}", path.display());
    }
    let consensus = fs::read(home.join("secrets/consensus.key")).unwrap();
    let identity = fs::read(home.join("secrets/id.key")).unwrap();
    assert_ne!(
        consensus, identity,
        "the identity key must not be the consensus key"
    );
    let toml = fs::read_to_string(&config).unwrap();
    assert!(toml.contains(&format!("chain_id = \"{CHAIN}\"")), "{toml}");

    // It printed the new key, and the home it made is usable as it is.
    let printed = lines(&ran.stdout);
    assert!(
        printed[0].starts_with("cosmosvalconspub1"),
        "{}",
        ran.stdout
    );
    assert!(
        printed[1].starts_with("validator address: "),
        "{}",
        ran.stdout
    );
    let pubkey = cli(&["pubkey", "-c", s(&config)]).succeeded();
    assert_eq!(lines(&pubkey.stdout), printed);
    let state = cli(&["state", "show", "-c", s(&config)]).succeeded();
    assert!(
        state
            .stdout
            .contains("last signed: height 0 round 0 step none"),
        "{}",
        state.stdout
    );
}

#[test]
fn init_refuses_to_overwrite_an_existing_config() {
    let kms = unix_home(&[]);
    let before = snapshot(&kms);
    let ran = cli(&["init", "-c", s(&kms.config), "--chain-id", "another-chain"]).failed();
    ran.says(&[s(&kms.config), "already exists", "never overwrites"]);
    assert_eq!(snapshot(&kms), before, "init changed an existing home");
}

#[test]
fn init_rejects_a_bad_chain_id_naming_the_flag() {
    let too_long = "c".repeat(51);
    for chain_id in ["", "has space", "tab\there", too_long.as_str()] {
        let (dir, config) = fresh_home();
        let ran = cli(&["init", "-c", s(&config), "--chain-id", chain_id]).failed();
        ran.says(&["--chain-id", "chain id"]);
        assert!(
            !dir.path().join("home").exists(),
            "init wrote files for chain id {chain_id:?}"
        );
    }
}

#[test]
fn init_rejects_a_bad_address_naming_the_flag() {
    for (address, problem) in [
        ("127.0.0.1:26658", "no scheme"),
        ("http://127.0.0.1:26658", "unsupported scheme"),
        ("tcp://127.0.0.1", "no port"),
        ("tcp://127.0.0.1:0", "port"),
        ("tcp://127.0.0.1:99999", "port"),
        ("tcp://nothex@127.0.0.1:26658", "node id"),
        ("unix://relative.sock", "absolute"),
    ] {
        let (dir, config) = fresh_home();
        let ran = cli(&["init", "-c", s(&config), "--address", address]).failed();
        ran.says(&["--address", address, problem]);
        assert!(
            !dir.path().join("home").exists(),
            "init wrote files for address {address:?}"
        );
    }
}

#[test]
fn init_rejects_an_unknown_protocol_version_naming_the_flag() {
    let (dir, config) = fresh_home();
    let ran = cli(&["init", "-c", s(&config), "--protocol-version", "v0.99"]).failed();
    ran.says(&["--protocol-version", "v0.99", "v0.38"]);
    assert!(!dir.path().join("home").exists());
}

#[test]
fn init_with_an_invalid_bech32_prefix_fails_before_writing_anything() {
    let (dir, config) = fresh_home();
    let ran = cli(&["init", "-c", s(&config), "-b", "Mixed Case"]).failed();
    ran.says(&["\"Mixed Case\"", "bech32 prefix"]);
    // A failed init leaves nothing behind, so it can simply be run again.
    assert!(
        !dir.path().join("home").exists(),
        "a failed init left files behind"
    );
    cli(&["init", "-c", s(&config), "-b", "cosmosvalconspub"]).succeeded();
}

#[test]
fn init_imports_a_cometbft_key_and_state() {
    let key = test_key(0x42);
    let public = public_of(&key);
    let sources = tempfile::tempdir().unwrap();
    let key_file = write_file(
        sources.path(),
        "priv_validator_key.json",
        &good_key_json(&key),
    );
    // CometBFT's priv_validator_state.json: height as a string, step 3 = precommit.
    let state_file = write_file(
        sources.path(),
        "priv_validator_state.json",
        r#"{"height":"1234","round":0,"step":3}"#,
    );
    let kms = unix_home(&[
        "--import-key",
        s(&key_file),
        "--import-state",
        s(&state_file),
        "-p",
        "base64",
    ]);

    let ran = cli(&["pubkey", "-c", s(&kms.config), "-p", "base64"]).succeeded();
    assert_eq!(
        lines(&ran.stdout),
        [
            B64.encode(public),
            format!("validator address: {}", address_hex(&public))
        ]
    );
    assert_eq!(mode(&kms.path("secrets/consensus.key")), 0o600);

    let shown = cli(&["state", "show", "-c", s(&kms.config)]).succeeded();
    assert!(
        shown
            .stdout
            .contains("last signed: height 1234 round 0 step precommit"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains(CHAIN), "{}", shown.stdout);

    let json = cli(&["state", "show", "-c", s(&kms.config), "--json"]).succeeded();
    let compact: String = json.stdout.split_whitespace().collect();
    assert!(
        compact.starts_with('{') && compact.ends_with('}'),
        "{compact}"
    );
    for field in [r#""height":"1234""#, r#""round":0"#, r#""step":3"#] {
        assert!(compact.contains(field), "{field} missing in {compact}");
    }
}

// ---------------------------------------------------------------------------
// pubkey
// ---------------------------------------------------------------------------

#[test]
fn pubkey_prints_every_format_and_the_validator_address() {
    let key = test_key(0x07);
    let public = public_of(&key);
    let sources = tempfile::tempdir().unwrap();
    let key_file = write_file(sources.path(), "key.json", &good_key_json(&key));
    let kms = unix_home(&["--import-key", s(&key_file)]);
    let address_line = format!("validator address: {}", address_hex(&public));

    for (format, hrp) in [
        ("bech32", "cosmosvalconspub"),
        ("bech32", "junovalconspub"),
        ("base64", "cosmosvalconspub"),
        ("json", "cosmosvalconspub"),
        ("hex", "cosmosvalconspub"),
    ] {
        let ran = cli(&["pubkey", "-c", s(&kms.config), "-p", format, "-b", hrp]).succeeded();
        let printed = lines(&ran.stdout);
        assert_eq!(printed.len(), 2, "{format}: {}", ran.stdout);
        assert_eq!(printed[1], address_line, "{format}");
        let shown = printed[0];
        match format {
            "bech32" => {
                assert!(shown.starts_with(&format!("{hrp}1")), "{shown}");
                let (prefix, data) = bech32_decode(shown);
                assert_eq!(prefix, hrp);
                // Amino prefix of tendermint/PubKeyEd25519, then the key.
                let mut amino = vec![0x16, 0x24, 0xDE, 0x64, 0x20];
                amino.extend_from_slice(&public);
                assert_eq!(data, amino, "{shown}");
            }
            "base64" => assert_eq!(shown, B64.encode(public)),
            "json" => assert_eq!(
                shown,
                format!(
                    r#"{{"@type":"/cosmos.crypto.ed25519.PubKey","key":"{}"}}"#,
                    B64.encode(public)
                )
            ),
            "hex" => assert_eq!(shown, hex::encode_upper(public)),
            _ => unreachable!(),
        }
    }
}

#[test]
fn pubkey_rejects_an_invalid_bech32_prefix() {
    let kms = unix_home(&[]);
    for hrp in ["", "Mixed", "has space"] {
        let ran = cli(&["pubkey", "-c", s(&kms.config), "-p", "bech32", "-b", hrp]).failed();
        ran.says(&[&format!("{hrp:?}"), "bech32 prefix"]);
        assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    }
}

#[test]
fn pubkey_rejects_an_unknown_format_naming_the_choices() {
    let kms = unix_home(&[]);
    let ran = cli(&["pubkey", "-c", s(&kms.config), "-p", "pem"]).failed();
    ran.says(&["--pubkey-format", "\"pem\"", "bech32, base64, json, hex"]);
}

// ---------------------------------------------------------------------------
// keygen and import
// ---------------------------------------------------------------------------

#[test]
fn keygen_writes_a_private_key_file_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("consensus.key");

    let ran = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", BIN, "keygen"])
        .arg(&path)
        .output()
        .unwrap();
    let ran = Ran::from_output(ran).succeeded();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    let first = fs::read_to_string(&path).unwrap();
    let seed: [u8; 32] = B64.decode(first.trim()).unwrap().try_into().unwrap();
    let public = public_of(&SigningKey::from_bytes(&seed));
    assert_eq!(
        lines(&ran.stdout),
        [
            B64.encode(public),
            format!("validator address: {}", address_hex(&public))
        ]
    );

    let refused = cli(&["keygen", s(&path)]).failed();
    refused.says(&[s(&path), "already exists"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), first, "key replaced");

    cli(&["keygen", s(&path), "--force"]).succeeded();
    let second = fs::read_to_string(&path).unwrap();
    assert_ne!(second, first, "--force did not write a new key");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn import_rejects_a_key_file_whose_halves_disagree() {
    let kms = unix_home(&[]);
    let before = fs::read(kms.path("secrets/consensus.key")).unwrap();
    let key = test_key(0x11);
    let other = public_of(&test_key(0x22));
    let public = public_of(&key);
    let mut pair = key.to_bytes().to_vec();
    pair.extend_from_slice(&public);
    let mut wrong_pair = key.to_bytes().to_vec();
    wrong_pair.extend_from_slice(&other);

    // (case, key the address is of, pub_key, priv_key, field named)
    for (name, address_of, pub_key, priv_key, problem) in [
        (
            "pub_key of another key",
            &public,
            &other,
            &pair,
            "\"pub_key\"",
        ),
        (
            "address of another key",
            &other,
            &public,
            &pair,
            "\"address\"",
        ),
        (
            "priv_key with another public half",
            &public,
            &public,
            &wrong_pair,
            "\"priv_key\"",
        ),
    ] {
        let json = priv_validator_key_json(
            &address_hex(address_of),
            &B64.encode(pub_key),
            &B64.encode(priv_key),
        );
        let source = write_file(kms.dir.path(), "tampered_key.json", &json);
        // --force: the file is refused for what it holds, not because a key exists.
        let ran = cli(&["import", s(&source), "-c", s(&kms.config), "--force"]).failed();
        ran.says(&[s(&source), problem]);
        assert!(
            ran.stderr.contains("mixes two keys") || ran.stderr.contains("do not belong together"),
            "{name}: {}",
            ran.stderr
        );
        assert_eq!(
            fs::read(kms.path("secrets/consensus.key")).unwrap(),
            before,
            "{name}: the existing key was replaced"
        );
    }
}

#[test]
fn import_replaces_the_key_only_with_force() {
    let kms = unix_home(&[]);
    let before = fs::read(kms.path("secrets/consensus.key")).unwrap();
    let key = test_key(0x33);
    let public = public_of(&key);
    let source = write_file(
        kms.dir.path(),
        "priv_validator_key.json",
        &good_key_json(&key),
    );

    let refused = cli(&["import", s(&source), "-c", s(&kms.config)]).failed();
    refused.says(&["already exists", "--force"]);
    assert_eq!(fs::read(kms.path("secrets/consensus.key")).unwrap(), before);

    let ran = cli(&["import", s(&source), "-c", s(&kms.config), "--force"]).succeeded();
    assert_eq!(lines(&ran.stdout)[0], B64.encode(public));
    assert_eq!(kms.pubkey(), public);
    assert_eq!(mode(&kms.path("secrets/consensus.key")), 0o600);
    // The key file is in the signer's own format: base64 of the seed.
    let stored = fs::read_to_string(kms.path("secrets/consensus.key")).unwrap();
    assert_eq!(stored.trim(), B64.encode(key.to_bytes()));
}

// ---------------------------------------------------------------------------
// state import
// ---------------------------------------------------------------------------

/// tmkms's state JSON (tendermint-rs `consensus::State`): step 1 = prevote.
fn tmkms_state_json(height: u64) -> String {
    format!(r#"{{"height":"{height}","round":"0","step":1,"block_id":null}}"#)
}

fn state_line(kms: &Kms) -> String {
    let ran = cli(&["state", "show", "-c", s(&kms.config)]).succeeded();
    ran.stdout
        .lines()
        .find(|l| l.starts_with("last signed:"))
        .unwrap_or_else(|| panic!("no state line in {}", ran.stdout))
        .to_owned()
}

#[test]
fn state_import_moves_the_state_forward() {
    let kms = unix_home(&[]);
    let source = write_file(kms.dir.path(), "state50.json", &tmkms_state_json(50));
    let ran = cli(&["state", "import", s(&source), "-c", s(&kms.config)]).succeeded();
    ran.says(&["50/0/prevote"]);
    assert_eq!(
        state_line(&kms),
        "last signed: height 50 round 0 step prevote"
    );
    assert_eq!(kms.state().position.height.value(), 50);
}

#[test]
fn state_import_refuses_a_regression_unless_danger_allowed() {
    let kms = unix_home(&[]);
    let high = write_file(kms.dir.path(), "state50.json", &tmkms_state_json(50));
    let low = write_file(kms.dir.path(), "state10.json", &tmkms_state_json(10));
    cli(&["state", "import", s(&high), "-c", s(&kms.config)]).succeeded();
    let durable = fs::read(kms.state_path()).unwrap();

    let refused = cli(&["state", "import", s(&low), "-c", s(&kms.config)]).failed();
    refused.says(&[
        "backwards",
        "50/0/prevote",
        "10/0/prevote",
        "--danger-allow-regression",
    ]);
    assert_eq!(
        fs::read(kms.state_path()).unwrap(),
        durable,
        "a refused import changed the state file"
    );
    assert_eq!(
        state_line(&kms),
        "last signed: height 50 round 0 step prevote"
    );

    cli(&[
        "state",
        "import",
        s(&low),
        "-c",
        s(&kms.config),
        "--danger-allow-regression",
    ])
    .succeeded();
    assert_eq!(
        state_line(&kms),
        "last signed: height 10 round 0 step prevote"
    );
}

#[test]
fn state_import_of_garbage_names_the_file() {
    let kms = unix_home(&[]);
    let durable = fs::read(kms.state_path()).unwrap();
    for (name, contents) in [
        ("garbage.json", "this is not json {"),
        ("empty.json", ""),
        ("wrong_shape.json", r#"{"height":"abc","round":0,"step":3}"#),
        (
            "unknown_field.json",
            r#"{"height":"5","round":0,"step":3,"x":1}"#,
        ),
    ] {
        let source = write_file(kms.dir.path(), name, contents);
        let ran = cli(&["state", "import", s(&source), "-c", s(&kms.config)]).failed();
        ran.says(&[s(&source)]);
        assert_eq!(fs::read(kms.state_path()).unwrap(), durable, "{name}");
    }
    let missing = kms.path("no_such_state.json");
    cli(&["state", "import", s(&missing), "-c", s(&kms.config)])
        .failed()
        .says(&[s(&missing)]);
}

// ---------------------------------------------------------------------------
// start
// ---------------------------------------------------------------------------

#[test]
fn start_without_a_state_file_requires_allow_empty_state() {
    let kms = unix_home(&[]);
    fs::remove_file(kms.state_path()).unwrap();
    let ran = cli_within(kms.dir.path(), &["start", "-c", s(&kms.config)]).failed();
    ran.says(&[
        s(&kms.state_path()),
        "does not exist",
        "--allow-empty-state",
    ]);
    assert!(!kms.state_path().exists(), "start created the state anyway");
}

#[test]
fn start_with_allow_empty_state_creates_the_state_and_serves() {
    let kms = unix_home(&[]);
    let expected = kms.pubkey();
    fs::remove_file(kms.state_path()).unwrap();
    let listener = listen_unix(&kms);
    let mut signer = Guard(kms.spawn_with_args(&["--allow-empty-state"]));

    let mut conn = accept(&listener, &mut signer.0, WAIT)
        .unwrap_or_else(|| panic!("signer did not connect; log:\n{}", kms.log()));
    let served = conn.pubkey(CHAIN).unwrap().unwrap();
    assert_eq!(served, expected);
    assert!(kms.state_path().is_file(), "no state file while running");
    drop(signer);

    assert_eq!(mode(&kms.state_path()), 0o600);
    assert_eq!(state_line(&kms), "last signed: height 0 round 0 step none");
    assert!(kms.log().contains("--allow-empty-state"), "{}", kms.log());
}

#[test]
fn start_rejects_a_broken_config_naming_file_and_field() {
    for (name, from, to, field) in [
        (
            "unknown top-level field",
            "state_file_path =",
            "max_heigth = 5\nstate_file_path =",
            "unknown field `max_heigth`",
        ),
        (
            "unknown validator field",
            "timeout_secs = 15",
            "timeout_secs = 15\ntimeout = 15",
            "unknown field `timeout`",
        ),
        (
            "bad protocol_version",
            "protocol_version = \"v0.38\"",
            "protocol_version = \"0.38.x\"",
            "field \"validator[0].protocol_version\"",
        ),
        (
            "tcp address without port",
            "address = \"unix://",
            "address = \"tcp://127.0.0.1\"\n# was: \"unix://",
            "field \"validator[0].address\"",
        ),
        (
            "timeout below the minimum",
            "timeout_secs = 15",
            "timeout_secs = 1",
            "field \"validator[0].timeout_secs\"",
        ),
    ] {
        let kms = unix_home(&[]);
        let text = fs::read_to_string(&kms.config).unwrap();
        assert!(text.contains(from), "{name}: template has no {from:?}");
        fs::write(&kms.config, text.replacen(from, to, 1)).unwrap();

        let ran = cli_within(kms.dir.path(), &["start", "-c", s(&kms.config)]).failed();
        ran.says(&["tmkms.toml", field]);
        assert!(
            !ran.stderr.contains("panicked"),
            "{name}: panicked:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn second_signer_on_the_same_state_is_refused_by_the_lock() {
    let kms = unix_home(&[]);
    let listener = listen_unix(&kms);
    let mut first = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut first.0, WAIT)
        .unwrap_or_else(|| panic!("signer did not connect; log:\n{}", kms.log()));
    let key = conn.pubkey(CHAIN).unwrap().unwrap();

    let second = cli_within(kms.dir.path(), &["start", "-c", s(&kms.config)]).failed();
    second.says(&[s(&kms.state_path()), "locked", "another process"]);

    // The first signer keeps serving, and the state stays readable.
    conn.ping().unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), key);
    assert!(first.0.try_wait().unwrap().is_none(), "first signer exited");
    assert_eq!(state_line(&kms), "last signed: height 0 round 0 step none");
}

// ---------------------------------------------------------------------------
// help
// ---------------------------------------------------------------------------

/// Options and arguments in clap's help that have no description. An entry
/// line (`  -c, --config <CONFIG>  text` or `  <SOURCE>  text`) counts as
/// documented when text other than `[default: …]` follows it on the line, or
/// on the next, further indented line (clap's long layout).
fn undocumented(help: &str) -> Vec<String> {
    let all: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    let mut in_entries = false;
    for (i, line) in all.iter().enumerate() {
        if !line.starts_with(' ') {
            in_entries = matches!(line.trim_end(), "Options:" | "Arguments:");
            continue;
        }
        let entry = line.trim_start();
        if !in_entries || !(entry.starts_with('-') || entry.starts_with('<')) {
            continue;
        }
        let indent = line.len() - entry.len();
        let text = entry.split_once("  ").map_or("", |(_, t)| t.trim());
        let next = all.get(i + 1).copied().unwrap_or("");
        let next_text = next.trim_start();
        let next_is_description = next.len() - next_text.len() > indent
            && !next_text.is_empty()
            && !next_text.starts_with('[');
        if (text.is_empty() || text.starts_with('[')) && !next_is_description {
            missing.push(entry.to_owned());
        }
    }
    missing
}

#[test]
fn every_subcommand_has_help_documenting_every_argument() {
    let top = cli(&["--help"]).succeeded();
    for command in ["init", "keygen", "import", "pubkey", "start", "state"] {
        assert!(
            top.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(command) && l.trim().len() > command.len()),
            "`{command}` is not described in --help:\n{}",
            top.stdout
        );
    }
    let state = cli(&["state", "--help"]).succeeded();
    for command in ["show", "import"] {
        assert!(
            state
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(command) && l.trim().len() > command.len()),
            "`state {command}` is not described:\n{}",
            state.stdout
        );
    }

    let mut problems = Vec::new();
    for command in [
        &["init"][..],
        &["keygen"],
        &["import"],
        &["pubkey"],
        &["start"],
        &["state"],
        &["state", "show"],
        &["state", "import"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let ran = cli(&args).succeeded();
        let name = command.join(" ");
        assert!(
            ran.stdout
                .contains(&format!("Usage: tmkms-softsign {name}")),
            "{name}: {}",
            ran.stdout
        );
        // The first line is the command's own description.
        let about = ran.stdout.lines().next().unwrap_or("");
        if about.trim().is_empty() || about.starts_with("Usage:") {
            problems.push(format!("`{name}` has no description"));
        }
        for entry in undocumented(&ran.stdout) {
            problems.push(format!("`{name}`: {entry} has no description"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
