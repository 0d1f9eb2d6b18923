//! Crash safety of the SGX provider (host simulation: runner and enclave are
//! two processes): SIGKILL the runner or the enclave — alternately — at
//! random moments during continuous signing, 100 times, restarting the runner
//! each time.
//!
//! After every restart the node simulator tempts the signer with a
//! conflicting message at the last released height/round/step and re-sends
//! the request that was in flight. Checked throughout:
//! * no two different messages are ever signed at one height/round/step, and
//!   every released signature verifies;
//! * the runner's durable state never goes backwards and is never behind a
//!   released signature (the enclave signs only after the runner acked a
//!   durable write);
//! * a conflicting message is always refused after a restart;
//! * a killed runner leaves no enclave behind (it exits when its init stream
//!   closes) and a killed enclave takes its runner down: within 2 s no
//!   enclave process of this signer home is alive.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{accept, is_alive, left_after, listen, Sgx};
use tmkms_node_sim::crash::{CrashConfig, CrashRun, Position, ScheduledKill};
use tmkms_node_sim::Dialect;

const CHAIN: &str = "sgx-crash-chain";
const KILLS: usize = 100;
/// Kills land uniformly in this window after the runner starts: early ones
/// hit the start-up (enclave launch, unsealing, state load), later ones the
/// signing loop.
const KILL_WINDOW: Duration = Duration::from_millis(250);

#[allow(unsafe_code)]
fn sigkill(pid: u32) {
    // SAFETY: kill(2) has no memory effects; the pid is the runner this test
    // started or the enclave child found under it.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// The enclave processes started for the signer home whose simulated CPU
/// secret is `secret` (the runner names it in the enclave's environment).
fn enclaves_of(secret: &Path) -> Vec<u32> {
    let marker = format!("TMKMS_SGX_SIM_CPU_SECRET={}", secret.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}

/// The enclave child of `runner`, from /proc/<runner>/task/*/children.
fn enclave_child_of(runner: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{runner}/task")).ok()?;
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| is_alive(*pid))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Target {
    Runner,
    Enclave,
}

#[test]
fn sigkill_of_runner_or_enclave_never_double_signs_or_loses_state() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let kms = Sgx::init_in(dir, CHAIN, &listener.local_addr(), "v0.38", &[]);
    let secret: PathBuf = kms.sim_cpu_secret_path();
    let pubkey = kms.pubkey();
    let mut run = CrashRun::new(CrashConfig {
        // The enclave lost its runner between accepting a request and
        // persisting it: nothing signed, the connection is about to go.
        persist_failure_is_loss: true,
        ..CrashConfig::new(CHAIN, Dialect::V0_38)
    });
    let mut kills = HashMap::from([(Target::Runner, 0usize), (Target::Enclave, 0usize)]);
    let mut slowest_cleanup = Duration::ZERO;
    let mut enclaves_seen = 0;

    for round in 0..KILLS {
        let target = if round % 2 == 0 {
            Target::Runner
        } else {
            Target::Enclave
        };
        let mut runner = kms.spawn();
        let runner_pid = runner.id();
        let killer = ScheduledKill::within(KILL_WINDOW, move || {
            match target {
                Target::Runner => {
                    sigkill(runner_pid);
                    true
                }
                Target::Enclave => {
                    // The enclave may not be started yet: wait for it while
                    // the runner lives.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while Instant::now() < deadline && is_alive(runner_pid) {
                        if let Some(enclave) = enclave_child_of(runner_pid) {
                            sigkill(enclave);
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    false
                }
            }
        });
        if let Some(mut conn) = accept(&listener, &mut runner, Duration::from_secs(10)) {
            // The orphan check below relies on this finding the enclave.
            if !enclaves_of(&secret).is_empty() {
                enclaves_seen += 1;
            }
            run.session(&mut conn, &pubkey)
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", kms.log()));
        }
        if killer.join() {
            *kills.get_mut(&target).unwrap() += 1;
        }
        // A killed enclave takes its runner down; a killed runner its enclave.
        let cleanup = Instant::now();
        let deadline = cleanup + Duration::from_secs(5);
        while runner.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "round {round}: the runner outlived its enclave by 5 s\n{}",
                kms.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = left_after(Duration::from_secs(2), Duration::from_millis(5), || {
            enclaves_of(&secret)
        });
        assert!(
            left.is_empty(),
            "round {round} ({target:?} killed): enclave process(es) {left:?} still alive 2 s after the runner died"
        );
        slowest_cleanup = slowest_cleanup.max(cleanup.elapsed());
        // A connection the dead runner made but nobody accepted is stale.
        while listener.accept(Duration::ZERO).is_ok() {}

        let p = kms.state().position;
        let durable = Position::new(p.height.as_i64(), p.round.as_i64(), p.step.as_u8());
        run.check_durable(durable)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let log = kms.log();
    assert!(!log.contains("panicked"), "a process panicked:\n{log}");
    eprintln!(
        "{} kills ({} runner, {} enclave), {run}, slowest cleanup {slowest_cleanup:?}, {:?} in all",
        kills.values().sum::<usize>(),
        kills[&Target::Runner],
        kills[&Target::Enclave],
        started.elapsed()
    );
    assert!(
        kills[&Target::Runner] >= KILLS / 2 - 2 && kills[&Target::Enclave] >= KILLS / 2 - 5,
        "too few kills landed: {kills:?}"
    );
    run.check_enough(KILLS, KILLS / 2, KILLS / 3)
        .unwrap_or_else(|e| panic!("{e}"));
    let sessions = run.tally().sessions;
    assert!(
        enclaves_seen >= sessions / 2,
        "the enclave process was found in only {enclaves_seen} of {sessions} sessions"
    );
}
