//! Crash safety: SIGKILL the real signer at random moments during
//! continuous signing, hundreds of times, restarting it each time.
//!
//! After every kill the node simulator tempts the restarted signer with a
//! conflicting message at the last released height/round/step and with the
//! exact request that was in flight. Checked throughout:
//! * no two different messages are ever signed at one height/round/step;
//! * every released signature verifies;
//! * the durable state never goes backwards and is never behind a released
//!   signature (the state is persisted before the signature leaves).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{accept, listen, sigkill, Kms};
use tmkms_node_sim::crash::{CrashConfig, CrashRun, Position, ScheduledKill};
use tmkms_node_sim::Dialect;

const CHAIN: &str = "crash-chain";
const KILLS: usize = 200;
/// Kills land uniformly in this window after the signer starts.
const KILL_WINDOW: Duration = Duration::from_millis(40);

#[test]
fn sigkill_during_signing_never_double_signs_or_loses_state() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let kms = Kms::init(CHAIN, &listener.local_addr(), "v0.38");
    let pubkey = kms.pubkey();
    let mut run = CrashRun::new(CrashConfig::new(CHAIN, Dialect::V0_38));

    for round in 0..KILLS {
        let mut child = kms.spawn();
        let pid = child.id();
        let killer = ScheduledKill::within(KILL_WINDOW, move || {
            sigkill(pid);
            true
        });
        if let Some(mut conn) = accept(&listener, &mut child, Duration::from_secs(10)) {
            if std::env::var_os("CRASH_TRACE").is_some() {
                eprintln!("session {round}: {}", run.trace());
            }
            run.session(&mut conn, &pubkey)
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        killer.join();
        let _ = child.wait();
        let p = kms.state().position;
        let durable = Position::new(p.height.as_i64(), p.round.as_i64(), p.step.as_u8());
        run.check_durable(durable)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    eprintln!("{KILLS} kills, {run}");
    run.check_enough(KILLS, KILLS / 2, 0)
        .unwrap_or_else(|e| panic!("{e}"));
}
