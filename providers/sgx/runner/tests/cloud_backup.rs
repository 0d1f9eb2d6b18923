//! Cloud backup, at the CLI: `cloud-wrap` → the cloud KMS wraps a backup key
//! for the enclave's RSA key → `init -w -e -k` writes encrypted backups → on
//! a new CPU (new home, new simulated CPU secret, the same SIGSTRUCT)
//! `cloud-wrap` again, the KMS wraps the SAME backup key for the new public
//! key → `recover` → the same consensus key and the same identity (peer id).
//! Wrong keys, tampered or swapped backups, and `-d` in simulation are
//! refused with errors that say what is wrong.
//!
//! The KMS is emulated with `wrap_backup_key_for` (RSA-OAEP SHA-256 + AES-KWP,
//! the RSA_AES_KEY_WRAP_SHA_256 layout), applied to the DER the runner wrote.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{app_path, enclave_args, mode_of, run_fails, run_ok, sigstruct, Sgx, Signer};
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tmkms_light_sgx_seal::sgx_isa::Report;
use tmkms_light_sgx_seal::{
    report_data_for, wrap_backup_key_for, LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY,
};
use tmkms_node_sim::home::SignerHome;

const CHAIN: &str = "backup-chain";
const CONSENSUS_BACKUP: &str = "consensus-key.backup";
const IDENTITY_BACKUP: &str = "id-key.backup";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `identity peer id: <hex>` from a command's output.
fn peer_id_in(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("identity peer id: "))
        .unwrap_or_else(|| panic!("no peer id in:\n{text}"))
        .trim()
        .to_owned()
}

/// A node id as CometBFT computes it: hex of the first 20 bytes of SHA-256(pubkey).
fn peer_id_of(seed: &[u8; 32]) -> String {
    let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    hex::encode(&Sha256::digest(public)[..20])
}

/// The files of `cloud-wrap` in a home: the config it reads, the sealed
/// wrap key and the public key PEM it writes.
struct CloudWrapFiles {
    config: PathBuf,
    sealed: PathBuf,
    pem: PathBuf,
}

impl CloudWrapFiles {
    fn in_home(home: &Path) -> Self {
        CloudWrapFiles {
            config: home.join("tmkms.toml"),
            sealed: home.join("cloud-wrap.sealed"),
            pem: home.join("cloud-wrap.pub.pem"),
        }
    }

    /// `cloud-wrap` with these files (and nothing else yet).
    fn args(&self) -> Vec<&str> {
        let (config, sealed, pem) = (s(&self.config), s(&self.sealed), s(&self.pem));
        vec!["cloud-wrap", "-c", config, "-w", sealed, "-o", pem]
    }
}

/// `cloud-wrap` into `home`; returns (sealed wrap key, DER public key).
fn cloud_wrap(home: &Path, extra: &[&str]) -> (PathBuf, Vec<u8>) {
    let files = CloudWrapFiles::in_home(home);
    let (sealed, pem) = (&files.sealed, &files.pem);
    // The simulation protects nothing: cloud-wrap there is for tests only.
    let mut args = files.args();
    args.push("--danger-allow-debug");
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    let printed = stdout(&out);
    // Without -d the REPORT targets no one: the runner says it proves nothing.
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(
        notes.contains("made for no target enclave")
            && notes.contains("ATTRIBUTES DEBUG = 0")
            && notes.contains("SHA-256 of the DER public key"),
        "{notes}"
    );
    assert!(
        printed.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{printed}"
    );
    assert_eq!(fs::read_to_string(pem).unwrap(), printed);
    let der = fs::read(pem.with_extension("der")).unwrap();
    // The REPORT binds the public key: report data = SHA-256(DER) ‖ zeros.
    let report = fs::read(sealed.with_extension("report")).unwrap();
    let report = Report::try_copy_from(&report).expect("a 432-byte REPORT");
    assert_eq!(report.reportdata, report_data_for(&der));
    assert_eq!(mode_of(sealed), 0o600, "the sealed wrap key is private");
    (files.sealed, der)
}

/// The cloud KMS: wrap `backup_key` for `der`, write it as the `-e` payload.
fn kms_wrap(home: &Path, name: &str, der: &[u8], backup_key: &[u8; 32]) -> PathBuf {
    let path = home.join(name);
    fs::write(&path, wrap_backup_key_for(der, backup_key).unwrap()).unwrap();
    path
}

/// A "new CPU": a new home with a copy of the old config (same enclave and
/// SIGSTRUCT) and of the backups, and no secrets (cloud-wrap creates a new
/// simulated CPU secret).
fn new_cpu(old: &Sgx) -> Sgx {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tmkms.toml");
    fs::copy(&old.config, &config).unwrap();
    fs::create_dir(dir.path().join("backups")).unwrap();
    for name in [CONSENSUS_BACKUP, IDENTITY_BACKUP] {
        fs::copy(
            old.path("backups").join(name),
            dir.path().join("backups").join(name),
        )
        .unwrap();
    }
    Sgx {
        home: SignerHome { dir, config },
    }
}

fn recover(kms: &Sgx, wrap: &Path, payload: &Path, extra: &[&str]) -> Vec<String> {
    let backups = kms.path("backups");
    let mut args = vec![
        "recover",
        "-c",
        kms.config_str(),
        "-w",
        s(wrap),
        "-e",
        s(payload),
        "-k",
        s(&backups),
        "-p",
        "hex",
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn backup_restores_the_same_keys_on_a_new_cpu_and_refuses_wrong_inputs() {
    // Machine 1: cloud-wrap before init (no config yet), then init with backups.
    let home1 = tempfile::tempdir().unwrap();
    let sig = sigstruct(home1.path(), Signer::A, 1, false);
    let app = app_path();
    let enclave = enclave_args("simulation", &app, &sig);
    let (wrap1, der1) = cloud_wrap(home1.path(), &enclave);
    let mut backup_key = [0u8; 32];
    OsRng.fill_bytes(&mut backup_key);
    let payload1 = kms_wrap(home1.path(), "backup-key.wrapped", &der1, &backup_key);
    let backups1 = home1.path().join("backups");
    let config1 = home1.path().join("tmkms.toml");
    let node = format!("unix://{}", home1.path().join("node.sock").display());
    let init = [
        "init",
        "-c",
        s(&config1),
        "--chain-id",
        CHAIN,
        "--address",
        &node,
    ];
    let backup = [
        "-p",
        "hex",
        "-w",
        s(&wrap1),
        "-e",
        s(&payload1),
        "-k",
        s(&backups1),
    ];
    let init = run_ok(&[&init[..], &enclave, &backup].concat());
    let kms1 = Sgx {
        home: SignerHome {
            dir: home1,
            config: config1,
        },
    };
    let consensus_hex = stdout(&init).trim().to_lowercase();
    assert_eq!(hex::encode(kms1.pubkey()), consensus_hex);
    for name in [CONSENSUS_BACKUP, IDENTITY_BACKUP] {
        assert_eq!(mode_of(&backups1.join(name)), 0o600, "{name} is 0600");
    }
    let pubkey1 = run_ok(&["pubkey", "-c", kms1.config_str(), "-p", "hex"]);
    let peer_id1 = peer_id_in(&String::from_utf8_lossy(&pubkey1.stderr));
    let identity_seed1 = kms1.unseal_seed("secrets/id-key.sealed", LABEL_IDENTITY_KEY);
    assert_eq!(peer_id1, peer_id_of(&identity_seed1));
    let consensus_seed1 = kms1.unseal_seed("secrets/consensus-key.sealed", LABEL_CONSENSUS_KEY);

    // -d needs hardware.
    let err = run_fails(&[
        "cloud-wrap",
        "-c",
        kms1.config_str(),
        "-w",
        s(&kms1.path("cw2.sealed")),
        "-o",
        s(&kms1.path("cw2.pem")),
        "--danger-allow-debug",
        "-d",
        s(&kms1.path("quote.json")),
    ]);
    assert!(err.contains("-d (DCAP quote) needs SGX hardware"), "{err}");
    assert!(!kms1.path("cw2.sealed").exists());

    // Machine 2: a new CPU.
    let kms2 = new_cpu(&kms1);
    let (wrap2, der2) = cloud_wrap(kms2.dir.path(), &[]);
    assert_ne!(der1, der2, "a new wrapping key");
    assert_ne!(
        kms2.sim_cpu_secret(),
        kms1.sim_cpu_secret(),
        "cloud-wrap made a new simulated CPU secret"
    );
    // The old sealed key does not open on the new CPU.
    fs::create_dir_all(kms2.path("secrets")).unwrap();
    fs::copy(
        kms1.path("secrets/consensus-key.sealed"),
        kms2.path("secrets/consensus-key.sealed"),
    )
    .unwrap();
    let err = run_fails(&["pubkey", "-c", kms2.config_str()]);
    assert!(err.contains("authentication failed"), "{err}");
    fs::remove_file(kms2.path("secrets/consensus-key.sealed")).unwrap();

    // Wrong backup key.
    let mut other_key = [0u8; 32];
    OsRng.fill_bytes(&mut other_key);
    let wrong = kms_wrap(kms2.dir.path(), "wrong.wrapped", &der2, &other_key);
    let err = run_fails(&strs(&recover(&kms2, &wrap2, &wrong, &[])));
    assert!(
        err.contains("consensus key backup: backup authentication failed: wrong backup key"),
        "{err}"
    );
    // The right backup key, but wrapped for the old machine's public key.
    let err = run_fails(&strs(&recover(&kms2, &wrap2, &payload1, &[])));
    assert!(
        err.contains("not wrapped for this enclave's cloud-wrap key"),
        "{err}"
    );
    // The old machine's sealed wrap key does not open here.
    let payload2 = kms_wrap(kms2.dir.path(), "backup-key.wrapped", &der2, &backup_key);
    let err = run_fails(&strs(&recover(&kms2, &wrap1, &payload2, &[])));
    assert!(
        err.contains("cannot open the sealed cloud-wrap key") && err.contains("another CPU"),
        "{err}"
    );
    // A tampered consensus backup.
    let backup_path = kms2.path("backups").join(CONSENSUS_BACKUP);
    let good_backup = fs::read(&backup_path).unwrap();
    let mut bad = good_backup.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x04;
    fs::write(&backup_path, &bad).unwrap();
    let err = run_fails(&strs(&recover(&kms2, &wrap2, &payload2, &[])));
    assert!(
        err.contains("consensus key backup: backup authentication failed")
            && err.contains("modified"),
        "{err}"
    );
    // The consensus backup renamed as the identity backup: the label says no.
    let id_path = kms2.path("backups").join(IDENTITY_BACKUP);
    let good_id = fs::read(&id_path).unwrap();
    fs::write(&id_path, &good_backup).unwrap();
    let err = run_fails(&strs(&recover(&kms2, &wrap2, &payload2, &["--identity"])));
    assert!(
        err.contains(
            "identity key backup: backup holds \"consensus-key\", expected \"identity-key\""
        ),
        "{err}"
    );
    fs::write(&backup_path, &good_backup).unwrap();
    fs::write(&id_path, &good_id).unwrap();
    assert!(
        !kms2.path("secrets/consensus-key.sealed").exists()
            && !kms2.path("secrets/id-key.sealed").exists(),
        "failed recoveries write nothing"
    );

    // The real recovery: both keys.
    let out = run_ok(&strs(&recover(&kms2, &wrap2, &payload2, &[])));
    let printed = stdout(&out);
    assert_eq!(
        printed.lines().next().unwrap().trim().to_lowercase(),
        consensus_hex
    );
    assert_eq!(peer_id_in(&printed), peer_id1, "the same identity");
    assert_eq!(kms2.pubkey(), kms1.pubkey(), "the same consensus key");
    let pubkey2 = run_ok(&["pubkey", "-c", kms2.config_str(), "-p", "hex"]);
    assert_eq!(
        peer_id_in(&String::from_utf8_lossy(&pubkey2.stderr)),
        peer_id1
    );
    // Sealed for the new CPU: the test opens them with machine 2's hardware.
    assert_eq!(
        kms2.unseal_seed("secrets/consensus-key.sealed", LABEL_CONSENSUS_KEY),
        consensus_seed1
    );
    assert_eq!(
        kms2.unseal_seed("secrets/id-key.sealed", LABEL_IDENTITY_KEY),
        identity_seed1
    );
    assert_eq!(mode_of(&kms2.path("secrets/consensus-key.sealed")), 0o600);
    // A second recover does not silently replace the keys.
    let err = run_fails(&strs(&recover(&kms2, &wrap2, &payload2, &[])));
    assert!(err.contains("pass --force"), "{err}");

    // Machine 3: the identity key only.
    let kms3 = new_cpu(&kms1);
    let (wrap3, der3) = cloud_wrap(kms3.dir.path(), &[]);
    let payload3 = kms_wrap(kms3.dir.path(), "backup-key.wrapped", &der3, &backup_key);
    let out = run_ok(&strs(&recover(&kms3, &wrap3, &payload3, &["--identity"])));
    assert_eq!(peer_id_in(&stdout(&out)), peer_id1);
    assert!(kms3.path("secrets/id-key.sealed").exists());
    assert!(
        !kms3.path("secrets/consensus-key.sealed").exists(),
        "--identity recovers the identity key only"
    );
    assert_eq!(
        kms3.unseal_seed("secrets/id-key.sealed", LABEL_IDENTITY_KEY),
        identity_seed1
    );

    // The backup files hold neither the seeds nor the backup key in the clear.
    for (name, seed) in [
        (CONSENSUS_BACKUP, &consensus_seed1),
        (IDENTITY_BACKUP, &identity_seed1),
    ] {
        let blob = fs::read(backups1.join(name)).unwrap();
        assert!(!blob.windows(32).any(|w| w == seed.as_slice()), "{name}");
        assert!(!blob.windows(32).any(|w| w == backup_key.as_slice()));
    }
}

/// A wrapping key in an enclave whose memory the host can read (the
/// simulation, or a DEBUG enclave) would hand the host every backup key the
/// KMS wraps for it: cloud-wrap refuses there unless the operator says
/// `--danger-allow-debug`, and writes nothing.
#[test]
fn cloud_wrap_refuses_debug_enclaves_and_the_simulation_without_the_danger_flag() {
    let app = app_path();
    // (The DEBUG-enclave refusal on hardware is a unit test of the app:
    // in the simulation the simulation itself is the reason.)
    for debug in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let sig = sigstruct(home.path(), Signer::A, 1, debug);
        let files = CloudWrapFiles::in_home(home.path());
        let err = run_fails(
            &[
                files.args(),
                enclave_args("simulation", &app, &sig).to_vec(),
            ]
            .concat(),
        );
        assert!(
            err.contains("refusing cloud-wrap") && err.contains("this is the SGX host simulation"),
            "debug={debug}: {err}"
        );
        assert!(err.contains("--danger-allow-debug"), "{err}");
        assert!(!files.sealed.exists(), "nothing written");
        assert!(!files.pem.exists());
    }
}
