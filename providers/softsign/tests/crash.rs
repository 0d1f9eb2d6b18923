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
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{accept, listen, Kms};
use rand_core::{OsRng, RngCore};
use tmkms_light::types::{Height, Position, Round, Step};
use tmkms_node_sim::{
    codes, proposal_sign_bytes, verify_proposal, verify_vote, vote_sign_bytes, BlockIdSpec,
    Dialect, ProposalSpec, SignerConn, VoteSpec,
};

const CHAIN: &str = "crash-chain";
const KILLS: usize = 200;

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
                if v.kind == tmkms_node_sim::VoteKind::Prevote {
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
    let dialect = Dialect::V0_38;
    let (result, bytes) = match msg {
        Msg::Vote(v) => match conn.sign_vote(CHAIN, v, false) {
            Ok(Ok(signed)) => {
                verify_vote(pubkey, CHAIN, v, &signed, dialect, false)
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

/// Requests for height `h`: proposal, prevote, precommit.
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

#[test]
fn sigkill_during_signing_never_double_signs_or_loses_state() {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), false, Dialect::V0_38);
    let kms = Kms::init(CHAIN, &listener.local_addr(), "v0.38");
    let pubkey = kms.pubkey();
    let mut ledger = Ledger::default();
    let mut last_durable = Position::default();
    let mut in_flight: Option<Msg> = None;
    let mut last_released: Option<Msg> = None;
    let mut height = 1i64;
    let (mut connected, mut refused_conflicts, mut replays) = (0, 0, 0);

    for round in 0..KILLS {
        let mut child = kms.spawn();
        let pid = child.id() as i32;
        let delay = Duration::from_micros(u64::from(OsRng.next_u32() % 40_000));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            sigkill(pid);
        });
        if let Some(mut conn) = accept(&listener, &mut child, Duration::from_secs(10)) {
            connected += 1;
            if std::env::var_os("CRASH_TRACE").is_some() {
                eprintln!(
                    "session {round}: durable {last_durable} released {:?} in-flight {:?}",
                    last_released.as_ref().map(Msg::position),
                    in_flight.as_ref().map(Msg::position)
                );
            }
            // Tempt the restarted signer first.
            if let Some(last) = &last_released {
                match send(&mut conn, &pubkey, &last.conflicting(), &mut ledger) {
                    Outcome::Refused(code) => {
                        assert_eq!(code, codes::DOUBLE_SIGN);
                        refused_conflicts += 1;
                    }
                    Outcome::Signed => panic!("conflicting message signed after restart"),
                    Outcome::Lost => {}
                }
            }
            let mut alive = true;
            if let Some(msg) = in_flight.clone() {
                match send(&mut conn, &pubkey, &msg, &mut ledger) {
                    Outcome::Signed => {
                        replays += 1;
                        last_released = Some(msg);
                        in_flight = None;
                    }
                    Outcome::Refused(code) => {
                        panic!("in-flight request refused with {code} after restart")
                    }
                    Outcome::Lost => alive = false,
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
                            panic!("unexpected refusal {code} at {}", msg.position())
                        }
                        Outcome::Lost => break 'signing,
                    }
                }
                height += 1;
            }
        }
        killer.join().unwrap();
        let _ = child.wait();
        let durable = kms.state().position;
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
    eprintln!(
        "{KILLS} kills, {connected} connected sessions, {} signatures, last height {height}, {refused_conflicts} conflicts refused, {replays} in-flight requests re-signed",
        ledger.signed.len()
    );
    assert!(
        connected >= KILLS / 2,
        "too few kills hit a connected signer ({connected})"
    );
    assert!(ledger.signed.len() > KILLS, "too little signing happened");
}

fn sigkill(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}
