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
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{accept, kms_endpoint, listen, wait_exit, Guard, Nitro};
use rand_core::{OsRng, RngCore};
use tmkms_light::types::{Height, Position, Round, Step};
use tmkms_node_sim::{
    codes, proposal_sign_bytes, verify_proposal, verify_vote, vote_sign_bytes, BlockIdSpec,
    Dialect, ProposalSpec, SignerConn, VoteKind, VoteSpec,
};

const CHAIN: &str = "nitro-crash";
/// Kills per run; `NITRO_CRASH_KILLS` overrides it (for a quick local look).
const KILLS: usize = 100;
/// Kills land this long (at most) after the node accepted the connection.
const MAX_KILL_DELAY_US: u32 = 30_000;

#[derive(Clone, Debug)]
enum Msg {
    Proposal(ProposalSpec),
    Vote(VoteSpec),
}

impl Msg {
    fn position(&self) -> Position {
        let (h, r, step) = match self {
            Msg::Proposal(p) => (p.height, p.round, Step::Propose),
            Msg::Vote(v) => (
                v.height,
                v.round,
                if v.kind == VoteKind::Prevote {
                    Step::Prevote
                } else {
                    Step::Precommit
                },
            ),
        };
        Position {
            height: Height::try_from(h).unwrap(),
            round: Round::try_from(i64::from(r)).unwrap(),
            step,
        }
    }

    /// The same message with another block id (a would-be double sign).
    fn conflicting(&self) -> Msg {
        let other = Some(BlockIdSpec::from_seed(b"conflict"));
        match self {
            Msg::Proposal(p) => Msg::Proposal(ProposalSpec {
                block_id: other,
                ..p.clone()
            }),
            Msg::Vote(v) => Msg::Vote(VoteSpec {
                block_id: other,
                ..v.clone()
            }),
        }
    }
}

/// Every signature released so far, by position: the bytes signed.
#[derive(Default)]
struct Ledger {
    signed: HashMap<Position, Vec<u8>>,
    highest: Position,
}

enum Outcome {
    Signed,
    Refused(i32),
    Lost,
}

fn send(conn: &mut SignerConn, pubkey: &[u8; 32], msg: &Msg, ledger: &mut Ledger) -> Outcome {
    let (result, bytes) = match msg {
        Msg::Vote(v) => match conn.sign_vote(CHAIN, v, false) {
            Ok(Ok(signed)) => {
                verify_vote(pubkey, CHAIN, v, &signed, Dialect::V0_38, false)
                    .expect("released vote signature verifies");
                let mut as_signed = v.clone();
                as_signed.timestamp = signed.timestamp;
                (Ok(()), vote_sign_bytes(CHAIN, &as_signed).unwrap())
            }
            Ok(Err(e)) => (Err(e.code), Vec::new()),
            Err(_) => return Outcome::Lost,
        },
        Msg::Proposal(p) => match conn.sign_proposal(CHAIN, p) {
            Ok(Ok(signed)) => {
                verify_proposal(pubkey, CHAIN, p, &signed)
                    .expect("released proposal signature verifies");
                (Ok(()), proposal_sign_bytes(CHAIN, p).unwrap())
            }
            Ok(Err(e)) => (Err(e.code), Vec::new()),
            Err(_) => return Outcome::Lost,
        },
    };
    match result {
        Ok(()) => {
            let position = msg.position();
            let previous = ledger
                .signed
                .entry(position)
                .or_insert_with(|| bytes.clone());
            assert_eq!(*previous, bytes, "DOUBLE SIGN at {position}");
            ledger.highest = ledger.highest.max(position);
            Outcome::Signed
        }
        Err(code) => Outcome::Refused(code),
    }
}

/// Requests for height `h`: proposal, prevote, precommit (with extension).
fn height_messages(h: i64) -> [Msg; 3] {
    let block = Some(BlockIdSpec::for_height(h));
    let mut precommit = VoteSpec::precommit(h, 0, block);
    precommit.extension = format!("ext-{h}").into_bytes();
    [
        Msg::Proposal(ProposalSpec::new(h, 0, block)),
        Msg::Vote(VoteSpec::prevote(h, 0, block)),
        Msg::Vote(precommit),
    ]
}

fn sigkill(pid: u32) {
    // The pid is our child's and is reaped only after the killer joined, so
    // it cannot name another process by then.
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

#[test]
fn sigkill_helper_or_enclave_during_signing_never_double_signs_or_loses_state() {
    let Some(kms) = kms_endpoint() else { return };
    let kills: usize = std::env::var("NITRO_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KILLS);
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38);
    let nitro = Nitro::init_in(dir, &kms, CHAIN, &listener.local_addr(), "v0.38", "");
    let init_time = t0.elapsed();
    let pubkey = nitro.pubkey();
    let _proxy = Guard(nitro.spawn_proxy());

    let mut ledger = Ledger::default();
    let mut last_durable = Position::default();
    let mut in_flight: Option<Msg> = None;
    let mut last_released: Option<Msg> = None;
    let mut height = 1i64;
    let (mut refused_conflicts, mut replays, mut lost_replays) = (0, 0, 0);
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
        let delay = Duration::from_micros(u64::from(OsRng.next_u32() % MAX_KILL_DELAY_US));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(victim);
        });
        if std::env::var_os("CRASH_TRACE").is_some() {
            eprintln!(
                "round {round}: kill {} after {delay:?}; durable {last_durable} released {:?} in-flight {:?}",
                if kill_helper { "helper" } else { "enclave" },
                last_released.as_ref().map(Msg::position),
                in_flight.as_ref().map(Msg::position)
            );
        }

        // Tempt the restarted signer first.
        let mut alive = true;
        if let Some(last) = &last_released {
            match send(&mut conn, &pubkey, &last.conflicting(), &mut ledger) {
                Outcome::Refused(code) => {
                    assert_eq!(code, codes::DOUBLE_SIGN);
                    refused_conflicts += 1;
                }
                Outcome::Signed => panic!("round {round}: conflicting message signed"),
                Outcome::Lost => alive = false,
            }
        }
        if let Some(msg) = in_flight.clone().filter(|_| alive) {
            match send(&mut conn, &pubkey, &msg, &mut ledger) {
                Outcome::Signed => {
                    replays += 1;
                    last_released = Some(msg);
                    in_flight = None;
                }
                Outcome::Refused(code) => {
                    panic!("round {round}: in-flight request refused with {code} after restart")
                }
                Outcome::Lost => {
                    lost_replays += 1;
                    alive = false;
                }
            }
        }
        'signing: loop {
            if !alive {
                break;
            }
            for msg in height_messages(height) {
                if msg.position() <= ledger.highest {
                    continue;
                }
                in_flight = Some(msg.clone());
                match send(&mut conn, &pubkey, &msg, &mut ledger) {
                    Outcome::Signed => {
                        last_released = Some(msg);
                        in_flight = None;
                    }
                    Outcome::Refused(code) => {
                        panic!(
                            "round {round}: unexpected refusal {code} at {}",
                            msg.position()
                        )
                    }
                    Outcome::Lost => break 'signing,
                }
            }
            height += 1;
        }
        killer.join().unwrap();
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
        let durable = nitro.state().position;
        assert!(
            durable >= last_durable,
            "round {round}: state went backwards {last_durable} -> {durable}"
        );
        assert!(
            durable >= ledger.highest,
            "round {round}: state {durable} behind released {}",
            ledger.highest
        );
        last_durable = durable;
    }
    let loop_time = t_loop.elapsed();
    eprintln!(
        "nitro crash: {kills} kills ({helper_kills} helper, {enclave_kills} enclave), {} signatures, last height {height}, \
         {refused_conflicts} conflicts refused, {replays} in-flight requests re-signed ({lost_replays} re-sends cut by the next kill); \
         init {init_time:?}, restart to node connection avg {:?}, survivor stop max: enclave {enclave_exit:?}, helper {helper_exit:?}; loop {loop_time:?}",
        ledger.signed.len(),
        startup / kills as u32,
    );
    assert!(
        refused_conflicts >= kills / 2,
        "too few conflicts tried ({refused_conflicts})"
    );
    assert!(ledger.signed.len() > kills, "too little signing happened");
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
    let listener = listen(dir.path(), false, Dialect::V0_38);
    let nitro = Nitro::init_in(dir, &kms, "nitro-stop", &listener.local_addr(), "v0.38", "");
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
