//! Sealing, at the CLI: the keys `init` seals open only in an enclave of the
//! same signer, at the same or a newer ISVSVN, in the same debug/production
//! mode, on the same (simulated) CPU, from the unmodified file — and every
//! refusal says why. Also: sealed files are private, and no secret reaches
//! any output or log.
//!
//! Each case changes one input of the real runner + enclave (host
//! simulation) and runs `pubkey` and `start`; the test also unseals the files
//! itself with the same simulated hardware, so "the same key" means the same
//! sealed seed, not only the same printed string.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{
    accept, assert_no_secret, listen, mode_of, run_env_within, run_fails, Guard, Sgx, Signer,
};
use ed25519_dalek::SigningKey;
use tmkms_light_sgx_seal::{LABEL_CONSENSUS_KEY, LABEL_IDENTITY_KEY};
use tmkms_node_sim::{verify_vote, BlockIdSpec, Dialect, VoteSpec};

const CHAIN: &str = "sealing-chain";
const CONSENSUS: &str = "secrets/consensus-key.sealed";
const IDENTITY: &str = "secrets/id-key.sealed";

fn home(identity: (Signer, u16, bool)) -> (Sgx, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("node.sock").display());
    Sgx::init_as(dir, identity, CHAIN, &address, "v0.38", &[])
}

/// `pubkey` and `start` both fail, each naming `cause`; returns pubkey's stderr.
fn refused(kms: &Sgx, causes: &[&str]) -> String {
    let pubkey = run_fails(&["pubkey", "-c", kms.config_str(), "-p", "hex"]);
    let started = Instant::now();
    let start = kms.start_within(Duration::from_secs(30));
    let start_err = String::from_utf8_lossy(&start.stderr).into_owned();
    assert!(
        !start.status.success(),
        "start succeeded but should have failed:\n{start_err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start took {:?} to refuse",
        started.elapsed()
    );
    for cause in causes {
        assert!(
            pubkey.contains(cause),
            "pubkey error lacks {cause:?}:\n{pubkey}"
        );
        assert!(
            start_err.contains(cause),
            "start error lacks {cause:?}:\n{start_err}"
        );
    }
    assert!(!pubkey.contains("panicked") && !start_err.contains("panicked"));
    pubkey
}

fn public_of(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

#[test]
fn upgrade_keeps_the_key_and_other_signers_cpus_modes_and_damage_are_refused() {
    let (kms, _) = home((Signer::A, 1, false));
    let pubkey = kms.pubkey();
    // The printed key is the key in the sealed file.
    let seed = kms.unseal_seed(CONSENSUS, LABEL_CONSENSUS_KEY);
    assert_eq!(public_of(&seed), pubkey, "pubkey shows the sealed key");

    // A signed upgrade (same signer, ISVSVN 2) unseals the same key.
    kms.use_sigstruct(Signer::A, 2, false);
    assert_eq!(kms.pubkey(), pubkey, "the upgraded enclave unseals the key");

    // Another enclave signer.
    kms.use_sigstruct(Signer::B, 1, false);
    refused(
        &kms,
        &[
            "consensus key",
            "authentication failed",
            "another enclave signer",
        ],
    );

    // A debug enclave cannot open a production seal.
    kms.use_sigstruct(Signer::A, 1, true);
    refused(
        &kms,
        &[
            "consensus key",
            "sealed by a production enclave but this enclave is a DEBUG enclave",
        ],
    );
    kms.use_sigstruct(Signer::A, 1, false);
    assert_eq!(kms.pubkey(), pubkey);

    // Another CPU: a different simulated CPU secret.
    let secret_path = kms.sim_cpu_secret_path();
    let secret_text = fs::read_to_string(&secret_path).unwrap();
    fs::write(&secret_path, format!("{}\n", "07".repeat(32))).unwrap();
    refused(
        &kms,
        &["consensus key", "authentication failed", "on another CPU"],
    );
    fs::write(&secret_path, &secret_text).unwrap();
    assert_eq!(kms.pubkey(), pubkey);

    // A flipped byte in the ciphertext, then in the header (the key id).
    let sealed = fs::read(kms.path(CONSENSUS)).unwrap();
    for (index, what) in [(sealed.len() - 1, "ciphertext"), (60, "key id")] {
        let mut bad = sealed.clone();
        bad[index] ^= 0x01;
        fs::write(kms.path(CONSENSUS), &bad).unwrap();
        let err = refused(
            &kms,
            &["consensus key", "authentication failed", "modified"],
        );
        eprintln!("flipped {what} byte: {}", err.trim());
    }
    // A flipped magic byte is not a sealed blob at all.
    let mut bad = sealed.clone();
    bad[0] ^= 0x20;
    fs::write(kms.path(CONSENSUS), &bad).unwrap();
    refused(&kms, &["consensus key", "not a valid sealed blob"]);
    fs::write(kms.path(CONSENSUS), &sealed).unwrap();

    // The identity key is checked too, and the error names it.
    let sealed_id = fs::read(kms.path(IDENTITY)).unwrap();
    let mut bad = sealed_id.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    fs::write(kms.path(IDENTITY), &bad).unwrap();
    let err = run_fails(&["pubkey", "-c", kms.config_str()]);
    assert!(
        err.contains("identity key") && err.contains("authentication failed"),
        "{err}"
    );
    // The consensus blob where the identity key belongs: labels differ.
    fs::write(kms.path(IDENTITY), &sealed).unwrap();
    let err = run_fails(&["pubkey", "-c", kms.config_str()]);
    assert!(
        err.contains("identity key") && err.contains("holds \"consensus-key\""),
        "{err}"
    );
    fs::write(kms.path(IDENTITY), &sealed_id).unwrap();

    // Everything restored: the same key again.
    assert_eq!(kms.pubkey(), pubkey);
}

#[test]
fn an_older_enclave_cannot_open_a_newer_seal() {
    let (kms, _) = home((Signer::A, 2, false));
    let pubkey = kms.pubkey();
    kms.use_sigstruct(Signer::A, 3, false);
    assert_eq!(kms.pubkey(), pubkey, "ISVSVN 3 opens an ISVSVN 2 seal");
    kms.use_sigstruct(Signer::A, 1, false);
    refused(
        &kms,
        &[
            "consensus key",
            "sealed by a newer enclave (ISVSVN 2 > this enclave's 1)",
        ],
    );
    kms.use_sigstruct(Signer::A, 2, false);
    assert_eq!(kms.pubkey(), pubkey);
}

#[test]
fn sealed_files_are_private_and_no_secret_reaches_any_log() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), true, Dialect::V0_38).unwrap();
    let (kms, init_out) = Sgx::init_as(
        dir,
        (Signer::A, 1, false),
        CHAIN,
        &listener.local_addr(),
        "v0.38",
        &[],
    );
    assert_eq!(mode_of(&kms.path("secrets")), 0o700, "secrets/ is 0700");
    for file in [CONSENSUS, IDENTITY, "secrets/sim-cpu-secret"] {
        assert_eq!(mode_of(&kms.path(file)), 0o600, "{file} is 0600");
    }
    assert_eq!(mode_of(&kms.state_path()), 0o600, "the state file is 0600");

    let mut logs = String::from_utf8_lossy(&init_out.stdout).into_owned();
    logs += &String::from_utf8_lossy(&init_out.stderr);
    let pubkey_out = run_env_within(
        &["pubkey", "-c", kms.config_str(), "-v"],
        &[("TMKMS_LOG", "trace")],
        Duration::from_secs(30),
    );
    assert!(pubkey_out.status.success());
    logs += &String::from_utf8_lossy(&pubkey_out.stdout);
    logs += &String::from_utf8_lossy(&pubkey_out.stderr);

    // Sign over tcp:// (SecretConnection with the identity key) with debug logs.
    let pubkey = kms.pubkey();
    let log_path = kms.log_path();
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Guard(
        std::process::Command::new(common::RUNNER)
            .args(["start", "-c", kms.config_str(), "-v"])
            .env("TMKMS_LOG", "trace")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let mut conn = accept(&listener, &mut child.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no connection:\n{}", kms.log()));
    for h in 1..=5 {
        let vote = VoteSpec::prevote(h, 0, Some(BlockIdSpec::for_height(h)));
        let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
        verify_vote(&pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false).unwrap();
    }
    drop(conn);
    drop(child);
    logs += &kms.log();
    assert!(logs.contains("enclave signer starting"), "{logs}");
    assert!(
        !kms.log().contains('\u{1b}'),
        "a log written to a file has no terminal colour codes:\n{}",
        kms.log()
    );

    let consensus = kms.unseal_seed(CONSENSUS, LABEL_CONSENSUS_KEY);
    let identity = kms.unseal_seed(IDENTITY, LABEL_IDENTITY_KEY);
    assert_eq!(public_of(&consensus), pubkey);
    assert_no_secret(&logs, &consensus, "the consensus key seed");
    assert_no_secret(&logs, &identity, "the identity key seed");
    assert_no_secret(&logs, &kms.sim_cpu_secret(), "the simulated CPU secret");
    // The expanded secret halves too (what a careless Debug of a dalek key shows).
    let expanded = SigningKey::from_bytes(&consensus).to_keypair_bytes();
    assert_no_secret(&logs, &expanded, "the consensus keypair");
    // The sealed files do not hold the seeds in the clear.
    for (file, seed) in [(CONSENSUS, &consensus), (IDENTITY, &identity)] {
        let blob = fs::read(kms.path(file)).unwrap();
        assert!(!blob.windows(32).any(|w| w == seed.as_slice()), "{file}");
    }
}
