//! Command-line behaviour of the runner that needs no enclave.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use common::{app_path, enclave_args, run};

#[test]
fn init_with_a_missing_sigstruct_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tmkms.toml");
    let app = app_path();
    let missing = dir.path().join("missing.sig");
    let init = ["init", "-c", config.to_str().unwrap()];
    let out = run(&[&init[..], &enclave_args("simulation", &app, &missing)].concat());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--sigstruct") && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(
        !config.exists(),
        "a failed init must not leave a config behind"
    );
}

#[test]
fn hardware_mode_without_sgx_support_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sig = common::sigstruct(dir.path(), common::Signer::A, 1, false);
    let config = dir.path().join("tmkms.toml");
    let fake_sgxs = dir.path().join("app.sgxs");
    std::fs::write(&fake_sgxs, b"not an enclave").unwrap();
    let init = ["init", "-c", config.to_str().unwrap()];
    let out = run(&[&init[..], &enclave_args("hardware", &fake_sgxs, &sig)].concat());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hardware") && !stderr.contains("panicked"),
        "{stderr}"
    );
    // It says how to get hardware support, and never suggests switching a
    // (production) config to the simulation, which protects nothing.
    assert!(
        stderr.contains("--features hardware") && !stderr.contains("simulation"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("secrets/consensus-key.sealed").exists(),
        "no key written when the enclave cannot run"
    );
}

/// Migration into an SGX home: `state import` of CometBFT's state file goes
/// through the enclave, which tags the record; then the enclave refuses
/// below it and signs above it, and `state show` reads the enclave-written
/// records back. Moving the state back needs --danger-allow-regression.
#[test]
fn state_import_sets_the_floor_the_enclave_signs_above() {
    use std::time::Duration;
    use tmkms_node_sim::{BlockIdSpec, Dialect, VoteSpec};

    let dir = tempfile::tempdir().unwrap();
    let listener =
        tmkms_node_sim::NodeListener::bind_unix(dir.path().join("node.sock"), Dialect::V0_38)
            .unwrap();
    let kms = common::Sgx::init_in(dir, "mig-chain", &listener.local_addr(), "v0.38", &[]);
    let source = kms.path("priv_validator_state.json");
    std::fs::write(&source, r#"{"height":"50","round":0,"step":3}"#).unwrap();
    let config = kms.config.to_str().unwrap().to_owned();
    common::run_ok(&["state", "import", source.to_str().unwrap(), "-c", &config]);
    assert_eq!(kms.state().position.height.value(), 50);
    let shown = common::run_ok(&["state", "show", "-c", &config]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("height 50"),
        "{shown:?}"
    );

    let mut signer = common::Guard(kms.spawn());
    let mut conn = common::accept(&listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no connection:\n{}", kms.log()));
    let block = Some(BlockIdSpec::from_seed(b"b"));
    let below = conn
        .sign_vote("mig-chain", &VoteSpec::precommit(49, 0, block), false)
        .unwrap();
    assert_eq!(below.unwrap_err().code, 2, "below the imported state");
    let above = conn
        .sign_vote("mig-chain", &VoteSpec::prevote(51, 0, block), false)
        .unwrap();
    assert!(above.is_ok(), "{above:?}\n{}", kms.log());
    let shown = common::run_ok(&["state", "show", "-c", &config]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("height 51") && text.contains("prevote"),
        "{text}"
    );
    // The enclave tagged the imported record itself: it starts from it as
    // authentic, with no record passed over.
    let log = kms.log();
    assert!(
        log.contains("authenticated=true") && !log.contains("passed over"),
        "{log}"
    );

    // Not while the signer runs (the state file is locked) ...
    let older = kms.path("older.json");
    std::fs::write(&older, r#"{"height":"10","round":0,"step":2}"#).unwrap();
    let err = common::run_fails(&["state", "import", older.to_str().unwrap(), "-c", &config]);
    assert!(err.contains("locked"), "{err}");
    drop(conn);
    drop(signer);
    // ... and never backwards without the danger flag.
    let err = common::run_fails(&["state", "import", older.to_str().unwrap(), "-c", &config]);
    assert!(
        err.contains("refusing to move the state backwards from 51/0/prevote"),
        "{err}"
    );
    assert_eq!(kms.state().position.height.value(), 51);
    let out = common::run_ok(&[
        "state",
        "import",
        older.to_str().unwrap(),
        "-c",
        &config,
        "--danger-allow-regression",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("state moved from 51/0/prevote to 10/0/"),
        "{out:?}"
    );
    assert_eq!(kms.state().position.height.value(), 10);
}

/// `start --allow-empty-state` and too many `[[validator]]` tables are
/// refused before the enclave is launched, saying why.
#[test]
fn start_refuses_allow_empty_state_and_too_many_validators() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("node.sock").display());
    let kms = common::Sgx::init_in(dir, "cli-chain", &address, "v0.38", &[]);
    let err = common::run_fails(&["start", "-c", kms.config_str(), "--allow-empty-state"]);
    assert!(
        err.contains("--allow-empty-state is not available for SGX")
            && err.contains("state import"),
        "{err}"
    );
    let mut text = std::fs::read_to_string(&kms.config).unwrap();
    for i in 0..2 {
        text.push_str(&format!(
            "\n[[validator]]\naddress = \"unix://{}\"\nprotocol_version = \"v0.38\"\n",
            kms.path(&format!("sentry{i}.sock")).display()
        ));
    }
    std::fs::write(&kms.config, text).unwrap();
    let err = common::run_fails(&["start", "-c", kms.config_str()]);
    assert!(
        err.contains("3 [[validator]] tables") && err.contains("at most 2"),
        "{err}"
    );
}

/// `[ha]` is refused, not ignored: this provider does not reserve in etcd,
/// so an operator must not believe a second signer is safe.
#[test]
fn start_refuses_ha_it_does_not_support() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("node.sock").display());
    let kms = common::Sgx::init_in(dir, "cli-chain", &address, "v0.38", &[]);
    let mut text = std::fs::read_to_string(&kms.config).unwrap();
    text.push_str(
        "\n[ha]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nsigner_id = \"a\"\n",
    );
    std::fs::write(&kms.config, text).unwrap();
    let err = common::run_fails(&["start", "-c", kms.config_str()]);
    assert!(
        err.contains("[ha] is not supported by the SGX provider yet")
            && err.contains("remove [ha]"),
        "{err}"
    );
}
