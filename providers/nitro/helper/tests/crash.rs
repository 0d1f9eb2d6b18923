//! Crash safety of the two-process Nitro signer: SIGKILL the helper or the
//! enclave (alternately) at random moments during continuous signing, 100
//! times, restarting both each time.
//!
//! Whichever survives a kill must stop by itself (the enclave exits when the
//! helper's control connection closes; the helper exits when the enclave
//! closes it). After every restart the node simulator first tempts the
//! signer with a conflicting message at the last released height/round/step,
//! then re-sends the request that was in flight. Checked throughout:
//! * no two different messages are ever signed at one height/round/step;
//! * every released signature verifies against init's key;
//! * the durable state never goes backwards and is never behind a released
//!   signature (the enclave signs only after the helper acknowledged a
//!   durable write).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::{accept, kms_endpoint, listen, sigkill, wait_exit, Guard, Nitro};
use tmkms_node_sim::crash::{CrashConfig, CrashRun, Position, ScheduledKill};
use tmkms_node_sim::Dialect;

const CHAIN: &str = "nitro-crash";
/// Kills per run; `NITRO_CRASH_KILLS` overrides it (for a quick local look).
const KILLS: usize = 100;
/// Kills land this long (at most) after the node accepted the connection.
const MAX_KILL_DELAY: Duration = Duration::from_millis(30);

#[test]
fn sigkill_helper_or_enclave_during_signing_never_double_signs_or_loses_state() {
    let Some(kms) = kms_endpoint() else { return };
    let kills: usize = std::env::var("NITRO_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KILLS);
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro = Nitro::configured(dir, &kms, CHAIN, &listener.local_addr(), "v0.38", "").init();
    let init_time = t0.elapsed();
    let pubkey = nitro.pubkey();
    let _proxy = Guard(nitro.spawn_proxy());

    let mut run = CrashRun::new(CrashConfig::new(CHAIN, Dialect::V0_38));
    let (mut helper_kills, mut enclave_kills) = (0, 0);
    let mut startup = Duration::ZERO;
    // Longest time the survivor took to stop after the other was killed.
    let (mut enclave_exit, mut helper_exit) = (Duration::ZERO, Duration::ZERO);
    let t_loop = Instant::now();

    for round in 0..kills {
        let started = Instant::now();
        let mut enclave = Guard(nitro.spawn_enclave());
        let mut helper = Guard(nitro.spawn_helper());
        let mut conn =
            accept(&listener, &mut helper.0, Duration::from_secs(60)).unwrap_or_else(|| {
                panic!(
                    "round {round}: the restarted signer never connected:\n{}",
                    nitro.log()
                )
            });
        startup += started.elapsed();
        let kill_helper = round % 2 == 0;
        let victim = if kill_helper {
            helper_kills += 1;
            helper.0.id()
        } else {
            enclave_kills += 1;
            enclave.0.id()
        };
        let killer = ScheduledKill::within(MAX_KILL_DELAY, move || {
            // The pid is our child's and is reaped only after the killer
            // joined, so it cannot name another process by then.
            sigkill(victim);
            true
        });
        let delay = killer.delay;
        if std::env::var_os("CRASH_TRACE").is_some() {
            eprintln!(
                "round {round}: kill {} after {delay:?}; {}",
                if kill_helper { "helper" } else { "enclave" },
                run.trace()
            );
        }
        run.session(&mut conn, &pubkey)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        killer.join();
        drop(conn);
        // The survivor stops on its own.
        let (victim_child, survivor, name) = if kill_helper {
            (&mut helper.0, &mut enclave.0, "enclave")
        } else {
            (&mut enclave.0, &mut helper.0, "helper")
        };
        let _ = victim_child.wait();
        let killed_at = Instant::now();
        let status = wait_exit(survivor, Duration::from_secs(10));
        let took = killed_at.elapsed();
        if kill_helper {
            enclave_exit = enclave_exit.max(took);
        } else {
            helper_exit = helper_exit.max(took);
        }
        assert!(
            status.is_some(),
            "round {round}: the {name} kept running after the other process was killed"
        );
        if !kill_helper {
            assert!(
                !status.unwrap().success(),
                "the helper must report the enclave's loss as a failure"
            );
        }
        let p = nitro.state().position;
        let durable = Position::new(p.height.as_i64(), p.round.as_i64(), p.step.as_u8());
        run.check_durable(durable)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let loop_time = t_loop.elapsed();
    eprintln!(
        "nitro crash: {kills} kills ({helper_kills} helper, {enclave_kills} enclave), {run}; \
         init {init_time:?}, restart to node connection avg {:?}, survivor stop max: enclave {enclave_exit:?}, helper {helper_exit:?}; loop {loop_time:?}",
        startup / kills as u32,
    );
    // Every round connects (a failed accept fails the test above).
    run.check_enough(kills, kills, kills / 2)
        .unwrap_or_else(|e| panic!("{e}"));
    let log = nitro.log();
    assert!(!log.contains("panicked"), "a process panicked:\n{log}");
}

/// The enclave stops at once when the helper dies: its log stream died with
/// the helper, so there is nothing to wait for, and a lingering enclave
/// only delays the restart (and holds the control listener a new helper
/// would connect to).
#[test]
fn enclave_stops_promptly_when_the_helper_is_killed() {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro =
        Nitro::configured(dir, &kms, "nitro-stop", &listener.local_addr(), "v0.38", "").init();
    let _proxy = Guard(nitro.spawn_proxy());
    for attempt in 0..3 {
        let mut enclave = Guard(nitro.spawn_enclave());
        let mut helper = Guard(nitro.spawn_helper());
        let conn = accept(&listener, &mut helper.0, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no connection:\n{}", nitro.log()));
        sigkill(helper.0.id());
        let _ = helper.0.wait();
        let killed_at = Instant::now();
        let status = wait_exit(&mut enclave.0, Duration::from_secs(10));
        let took = killed_at.elapsed();
        assert!(status.is_some(), "the enclave outlived the helper");
        assert!(
            took < Duration::from_millis(500),
            "attempt {attempt}: the enclave took {took:?} to stop after the helper died"
        );
        drop(conn);
    }
}
