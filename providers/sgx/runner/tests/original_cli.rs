//! The original tmkms-light's SGX command lines, typed the way its README and
//! `--help` give them: `init -c -p -b -w -e -k`, `cloud-wrap -e -s -d`,
//! `recover -c -p -b -w -e -k -r` and `start [-c]`. None is refused by the
//! argument parser, and each does what it did there:
//!
//! * with no `--enclave`/`--sigstruct`, the enclave and its SIGSTRUCT are
//!   `enclave/tmkms-light-sgx-app.sgxs` and `.sig` next to the config, where
//!   the original README has them placed; `cloud-wrap -e` takes the SIGSTRUCT
//!   next to the enclave it names (as the EDP runner does);
//! * `cloud-wrap -s` writes the sealed wrap key, `-d` asks for a DCAP quote;
//! * `init` prints the public key in the `-p` format with the `-b` prefix;
//! * `recover -r` restores the consensus key (only that one).
//!
//! On this host there is no SGX: the lines exactly as written (hardware mode)
//! fail for that reason only. The effects are checked with the same lines
//! plus `--mode simulation` (and, for `init`, the chain id and node address
//! the original had the operator edit into tmkms.toml afterwards; here the
//! key is bound to them at init). The simulation's `cloud-wrap` needs
//! `--danger-allow-debug` and has no DCAP quoting enclave, so it runs
//! without `-d`.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{accept, app_path, kill, sign_checked_prevote, sigstruct, Guard, Sgx, Signer, RUNNER};
use rand_core::{OsRng, RngCore};
use tmkms_light::keys::PublicKey;
use tmkms_light_sgx_seal::wrap_backup_key_for;
use tmkms_node_sim::harness::{parsed_failure, parsed_ok};
use tmkms_node_sim::home::{logging_to, SignerHome, SIGNER_LOG};
use tmkms_node_sim::{Dialect, NodeListener};

const CHAIN: &str = "original-chain";
/// The bech32 prefix of the original README's examples.
const PREFIX: &str = "crocnclconspub";
const DEFAULT_SGXS: &str = "enclave/tmkms-light-sgx-app.sgxs";
const DEFAULT_SIG: &str = "enclave/tmkms-light-sgx-app.sig";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The runner with `args`, in `cwd` (where the original's defaults live).
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(RUNNER)
        .args(args)
        .current_dir(cwd)
        .env("TMKMS_LOG", "info")
        .output()
        .expect("run tmkms-light-sgx-runner")
}

/// `args` in `cwd` succeeded; its stdout.
fn ok_in(cwd: &Path, args: &[&str]) -> String {
    parsed_ok(args, &run_in(cwd, args))
}

/// `args` in `cwd` was parsed and failed; its stderr.
fn fails_in(cwd: &Path, args: &[&str]) -> String {
    parsed_failure(args, &run_in(cwd, args))
}

/// A home laid out as the original README says: the `.sgxs` and `.sig` in
/// `enclave/`. The `.sgxs` is a link to the host build of the enclave app
/// (what the simulation runs); the `.sig` is a test SIGSTRUCT.
fn original_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("enclave")).unwrap();
    std::os::unix::fs::symlink(app_path(), dir.path().join(DEFAULT_SGXS)).unwrap();
    let sig = sigstruct(dir.path(), Signer::A, 1, false);
    fs::rename(sig, dir.path().join(DEFAULT_SIG)).unwrap();
    dir
}

/// The cloud KMS wraps `backup_key` for the public key `cloud-wrap` wrote
/// into `home`; returns the `-e` file.
fn kms_wrap(home: &Path, backup_key: &[u8; 32]) -> PathBuf {
    let der = fs::read(home.join("cloud-wrap.pub.der")).unwrap();
    let path = home.join("backup-key.wrapped");
    fs::write(&path, wrap_backup_key_for(&der, backup_key).unwrap()).unwrap();
    path
}

/// The original's `cloud-wrap -e ENCLAVE -s SEALED_WRAP_KEY` (before any
/// tmkms.toml), in the simulation; returns the sealed wrap key.
fn cloud_wrap(cwd: &Path, enclave: &Path) -> PathBuf {
    let sealed = cwd.join("sealed-wrap.key");
    let printed = ok_in(
        cwd,
        &[
            "cloud-wrap",
            "-e",
            s(enclave),
            "-s",
            s(&sealed),
            "--mode",
            "simulation",
            "--danger-allow-debug",
        ],
    );
    assert!(sealed.is_file(), "-s names where the sealed wrap key goes");
    assert!(printed.contains("BEGIN PUBLIC KEY"), "{printed}");
    sealed
}

#[test]
fn the_original_lines_as_written_fail_here_only_for_want_of_sgx() {
    // init in a home without the enclave files: it names the default paths.
    let empty = tempfile::tempdir().unwrap();
    let init = ["init", "-b", PREFIX, "-p", "bech32"];
    let err = fails_in(empty.path(), &init);
    assert!(err.contains(DEFAULT_SGXS), "{err}");

    // With them: the hardware launch is what fails (no SGX support here).
    let home = original_home();
    let err = fails_in(home.path(), &init);
    assert!(
        err.contains("SGX") && !err.contains("no such file"),
        "{err}"
    );
    assert!(!home.path().join("secrets/consensus-key.sealed").exists());
    let config = fs::read_to_string(home.path().join("tmkms.toml")).unwrap_or_default();
    if !config.is_empty() {
        let sgxs = home.path().join(DEFAULT_SGXS);
        let sig = home.path().join(DEFAULT_SIG);
        assert!(
            config.contains(s(&sgxs)) && config.contains(s(&sig)),
            "{config}"
        );
        fs::remove_file(home.path().join("tmkms.toml")).unwrap();
    }

    // cloud-wrap -e -s -d: -d asks for a DCAP quote, which needs SGX.
    let sgxs = home.path().join(DEFAULT_SGXS);
    let sealed = home.path().join("sealed-wrap.key");
    let err = fails_in(
        home.path(),
        &["cloud-wrap", "-e", s(&sgxs), "-s", s(&sealed), "-d"],
    );
    assert!(err.contains("SGX") && err.contains("-d"), "{err}");
    assert!(!sealed.exists());

    // start with no tmkms.toml says so.
    let err = fails_in(empty.path(), &["start"]);
    assert!(err.contains("tmkms.toml"), "{err}");
}

/// The original's backup ceremony and start, end to end: cloud-wrap, init
/// with backups, recover -r on a new (simulated) CPU, start with and
/// without -c, signing through the node simulator.
#[test]
fn the_original_lines_back_up_recover_and_sign() {
    let home = original_home();
    let dir = home.path().to_owned();
    let sgxs = dir.join(DEFAULT_SGXS);
    let listener = NodeListener::bind_unix(dir.join("node.sock"), Dialect::V0_38).unwrap();
    let node = listener.local_addr();

    let wrap = cloud_wrap(&dir, &sgxs);
    let mut backup_key = [0u8; 32];
    OsRng.fill_bytes(&mut backup_key);
    let payload = kms_wrap(&dir, &backup_key);
    let backups = dir.join("backups");
    fs::create_dir(&backups).unwrap();
    let config = dir.join("tmkms.toml");
    let printed = ok_in(
        &dir,
        &[
            "init",
            "-c",
            s(&config),
            "-p",
            "bech32",
            "-b",
            PREFIX,
            "-w",
            s(&wrap),
            "-e",
            s(&payload),
            "-k",
            s(&backups),
            "--mode",
            "simulation",
            "--chain-id",
            CHAIN,
            "--address",
            &node,
        ],
    );
    // The SIGSTRUCT is the default one next to the config.
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains(s(&dir.join(DEFAULT_SIG))), "{text}");
    for rel in [
        "secrets/consensus-key.sealed",
        "secrets/id-key.sealed",
        "backups/consensus-key.backup",
        "backups/id-key.backup",
        "state/consensus.state",
    ] {
        assert!(dir.join(rel).is_file(), "init wrote {rel}");
    }
    let kms = Sgx {
        home: SignerHome {
            dir: home,
            config: config.clone(),
        },
    };
    let pubkey = kms.pubkey();
    let bech32 = PublicKey(pubkey).to_bech32(PREFIX).unwrap();
    assert_eq!(printed.trim(), bech32, "-p bech32 with the -b prefix");

    // A new CPU: cloud-wrap there (no config yet), the KMS wraps the same
    // backup key for it, the config comes over, then the README's recover
    // line (which leaves out -w: refused, as the original refused it) and
    // the full one.
    let new_cpu = tempfile::tempdir().unwrap();
    let dir2 = new_cpu.path();
    let wrap2 = cloud_wrap(dir2, &sgxs);
    let payload2 = kms_wrap(dir2, &backup_key);
    let config2 = dir2.join("tmkms.toml");
    fs::copy(&config, &config2).unwrap();
    fs::create_dir(dir2.join("backups")).unwrap();
    for name in ["consensus-key.backup", "id-key.backup"] {
        fs::copy(backups.join(name), dir2.join("backups").join(name)).unwrap();
    }
    let backups2 = dir2.join("backups");
    let err = fails_in(
        dir2,
        &[
            "recover",
            "-b",
            PREFIX,
            "-p",
            "bech32",
            "-e",
            s(&payload2),
            "-k",
            s(&backups2),
            "-r",
        ],
    );
    assert!(err.contains("-w"), "{err}");
    let printed = ok_in(
        dir2,
        &[
            "recover",
            "-c",
            s(&config2),
            "-p",
            "bech32",
            "-b",
            PREFIX,
            "-w",
            s(&wrap2),
            "-e",
            s(&payload2),
            "-k",
            s(&backups2),
            "-r",
        ],
    );
    assert_eq!(
        printed.trim(),
        bech32,
        "the same consensus key, as -p/-b say"
    );
    assert!(dir2.join("secrets/consensus-key.sealed").is_file());
    assert!(
        !dir2.join("secrets/id-key.sealed").exists(),
        "-r recovers the consensus key only"
    );

    // start (the README's line, tmkms.toml in the current directory), then
    // start -c.
    let mut signer = Guard(
        logging_to(
            Command::new(RUNNER)
                .arg("start")
                .current_dir(&dir)
                .env("TMKMS_LOG", "info"),
            &kms,
            SIGNER_LOG,
        )
        .spawn()
        .unwrap(),
    );
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("`start` never connected:\n{}", kms.log()));
    sign_checked_prevote(&mut conn, CHAIN, &pubkey, Dialect::V0_38, 1);
    drop(conn);
    kill(&mut signer.0);

    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("`start -c` never connected:\n{}", kms.log()));
    sign_checked_prevote(&mut conn, CHAIN, &pubkey, Dialect::V0_38, 2);
}
