//! A hostile host against the real Nitro enclave process.
//!
//! After an honest `init` with the real helper (the trusted ceremony), the
//! test plays the helper itself: it starts `tmkms-nitro-enclave --mock-nsm`,
//! sends `Start` with settings of its choosing over the control connection,
//! and serves the enclave's streams — state (write-ahead records, where it
//! withholds, falsifies or never sends acknowledgements, and serves old,
//! torn, untagged or no slots), node traffic (spliced to the node
//! simulator) and logs (the real `serve_logs_to`). KMS is the emulator
//! behind the helper's real `enclave vsock-proxy`.
//!
//! What must hold whatever the host does:
//! * never two valid signatures over different sign bytes at one
//!   height/round/step (every released signature is checked against init's
//!   public key and kept in a ledger);
//! * no signature for a vote before the host acknowledged its record, and
//!   the record itself carries none;
//! * the enclave starts only from a record it authenticated (a torn slot
//!   falls back to the other authentic one);
//! * the policy bound at init (chain id, sign-bytes flag, protocol
//!   versions, pinned node ids) is enforced inside the enclave: other
//!   settings get no key;
//! * raw-bytes signing never signs a consensus message;
//! * a dead state stream ends the enclave process (non-zero exit).
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    accept, kill, kms_endpoint, listen, sign_checked_prevote, wait_exit, Guard, Nitro, REGION,
};
use tmkms_light::config::Config;
use tmkms_light::enclave::EnclaveSettings;
use tmkms_light::link::{read_announcement, read_frame, recv_json, send_json, write_frame};
use tmkms_light::state::file::FileStore;
use tmkms_light::state::record::{decode_slot, encode_slot, SLOT_LEN};
use tmkms_light::types::SignState;
use tmkms_nitro_host::log_server::{serve_logs_to, LogServeConfig};
use tmkms_nitro_host::proxy::splice;
use tmkms_nitro_kms::Credentials;
use tmkms_nitro_protocol::encryption_context::{context, CONTEXT_CONSENSUS};
use tmkms_nitro_protocol::messages::{
    KmsAccess, Request, Response, MAX_CONTROL_MESSAGE, STREAM_NODE_PREFIX, STREAM_STATE,
};
use tmkms_nitro_transport::{Endpoint, Stream};
use tmkms_node_sim::{
    codes, extension_sign_bytes, proposal_sign_bytes, verify_proposal, verify_signature,
    verify_vote, vote_sign_bytes, BlockIdSpec, Dialect, NodeListener, ProposalSpec, RemoteError,
    SignedVote, SignerConn, VoteSpec,
};
use zeroize::Zeroizing;

const CHAIN: &str = "hostile-chain";
/// How long the enclave may take to stop after its state stream died.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

// ------------------------------------------------------------ the host's disk

/// What the host does with the next state record the enclave sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum OnWrite {
    /// Store it in the older slot and acknowledge its sequence number.
    #[default]
    Honest,
    /// Keep the record, but answer `E` (a "failed" write the host holds).
    Withhold,
    /// Store it and acknowledge another sequence number.
    WrongAck,
    /// Keep it, never answer, then close the state stream.
    SilentThenClose,
}

/// The host's copy of the state file, and what it saw.
#[derive(Default)]
struct Disk {
    slots: [Option<[u8; SLOT_LEN]>; 2],
    on_write: OnWrite,
    /// Every record the enclave sent, in order.
    writes: Vec<[u8; SLOT_LEN]>,
    /// The state stream being served (to cut it).
    live: Option<Stream>,
}

fn seq_of(slot: &Option<[u8; SLOT_LEN]>) -> Option<u64> {
    slot.as_ref()
        .and_then(|bytes| decode_slot(bytes).ok())
        .map(|(seq, _)| seq)
}

impl Disk {
    /// Write `record` over the slot that does not hold the newest record.
    fn place(&mut self, record: [u8; SLOT_LEN]) {
        let older = if seq_of(&self.slots[0]) <= seq_of(&self.slots[1]) {
            0
        } else {
            1
        };
        self.slots[older] = Some(record);
    }

    /// The index of the slot with the highest sequence number.
    fn newest(&self) -> usize {
        if seq_of(&self.slots[0]) >= seq_of(&self.slots[1]) {
            0
        } else {
            1
        }
    }
}

fn serve_state(mut stream: Stream, disk: &Mutex<Disk>) {
    disk.lock().unwrap().live = stream.try_clone().ok();
    loop {
        let Ok(request) = read_frame(&mut stream, 1 + SLOT_LEN) else {
            return;
        };
        match request.split_first() {
            Some((&b'L', [])) => {
                let mut reply = vec![b'S'];
                for slot in &disk.lock().unwrap().slots {
                    reply.push(u8::from(slot.is_some()));
                    reply.extend_from_slice(slot.as_ref().unwrap_or(&[0u8; SLOT_LEN]));
                }
                if write_frame(&mut stream, &reply).is_err() {
                    return;
                }
            }
            Some((&b'W', record)) => {
                let record: [u8; SLOT_LEN] = record.try_into().unwrap();
                let (seq, _) = decode_slot(&record).expect("the enclave sent a valid record");
                let reply = {
                    let mut disk = disk.lock().unwrap();
                    disk.writes.push(record);
                    match disk.on_write {
                        OnWrite::Honest => {
                            disk.place(record);
                            Some([&b"A"[..], &seq.to_le_bytes()].concat())
                        }
                        OnWrite::Withhold => Some(b"Edisk full (a host that keeps it)".to_vec()),
                        OnWrite::WrongAck => {
                            disk.place(record);
                            Some([&b"A"[..], &(seq + 1).to_le_bytes()].concat())
                        }
                        OnWrite::SilentThenClose => None,
                    }
                };
                match reply {
                    Some(reply) => {
                        if write_frame(&mut stream, &reply).is_err() {
                            return;
                        }
                    }
                    None => {
                        thread::sleep(Duration::from_millis(500));
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            }
            _ => return,
        }
    }
}

/// A stream the enclave opened: state, or node traffic to the simulator.
fn serve_stream(mut stream: Stream, disk: &Mutex<Disk>) {
    let Ok(name) = read_announcement(&mut stream) else {
        return;
    };
    if name == STREAM_STATE {
        serve_state(stream, disk);
    } else if let Some(path) = name
        .strip_prefix(STREAM_NODE_PREFIX)
        .and_then(|a| a.strip_prefix("unix://"))
    {
        let node = Endpoint::Unix { path: path.into() };
        if let Ok(node) = node.connect(Duration::from_secs(5)) {
            let _ = splice(stream, node);
        }
    }
}

// ------------------------------------------------------------ the test host

/// A Nitro home after an honest `init`, whose helper side is this test.
struct TestHost {
    nitro: Nitro,
    kms: String,
    node: NodeListener,
    dialect: Dialect,
    disk: Arc<Mutex<Disk>>,
    logs: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    _proxy: Guard,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One enclave process the test started, with its control connection
/// (kept open: the enclave exits when it closes).
struct Run {
    enclave: Guard,
    control: Stream,
    answer: Response,
}

impl Run {
    fn started(&self) -> bool {
        matches!(self.answer, Response::Started { .. })
    }

    fn error(&self) -> String {
        match &self.answer {
            Response::Error { message } => message.clone(),
            other => panic!("expected a refusal, the enclave answered {other:?}"),
        }
    }
}

impl TestHost {
    fn new(kms: &str, dialect: &str, top_level: &str) -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let sim_dialect: Dialect = dialect.parse().unwrap();
        let node = listen(dir.path(), false, sim_dialect).unwrap();
        let nitro =
            Nitro::configured(dir, kms, CHAIN, &node.local_addr(), dialect, top_level).init();
        let proxy = Guard(nitro.spawn_proxy());
        let slots = FileStore::open(nitro.state_path()).unwrap().raw_slots();
        let disk = Arc::new(Mutex::new(Disk {
            slots,
            ..Disk::default()
        }));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));

        let streams = Endpoint::Unix {
            path: nitro.sock("host"),
        }
        .bind()
        .unwrap();
        {
            let (disk, stop) = (Arc::clone(&disk), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(Some((stream, _))) =
                        streams.accept_timeout(Duration::from_millis(100))
                    {
                        let disk = Arc::clone(&disk);
                        thread::spawn(move || serve_stream(stream, &disk));
                    }
                }
            });
        }
        let log_listener = Endpoint::Unix {
            path: nitro.sock("logs"),
        }
        .bind()
        .unwrap();
        {
            let (out, stop) = (
                Arc::clone(&logs) as Arc<Mutex<dyn Write + Send>>,
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                let _ = serve_logs_to(&log_listener, out, &LogServeConfig::default(), &stop);
            });
        }
        TestHost {
            nitro,
            kms: kms.to_owned(),
            node,
            dialect: sim_dialect,
            disk,
            logs,
            stop,
            _proxy: proxy,
        }
    }

    /// The settings an honest helper would send for this home's tmkms.toml.
    fn settings(&self) -> EnclaveSettings {
        EnclaveSettings::from_config(&Config::load(&self.nitro.config).unwrap())
    }

    fn kms_access(&self) -> KmsAccess {
        KmsAccess {
            region: REGION.to_owned(),
            key_id: self.nitro.kms_key_id.clone(),
            endpoint_url: Some(self.kms.clone()),
            proxy: Endpoint::Unix {
                path: self.nitro.sock("kms-proxy"),
            },
            credentials: Credentials {
                access_key_id: "test".to_owned(),
                secret_access_key: Zeroizing::new("test".to_owned()),
                session_token: Some(Zeroizing::new("test-session".to_owned())),
            },
        }
    }

    /// What the enclave logged: over the log stream, then on stderr.
    fn enclave_log(&self) -> String {
        self.enclave_log_since((0, 0))
    }

    /// Where both logs end now, for [`Self::enclave_log_since`].
    fn log_mark(&self) -> (usize, usize) {
        (
            self.logs.lock().unwrap().len(),
            self.nitro.enclave_log().len(),
        )
    }

    fn enclave_log_since(&self, (stream, stderr): (usize, usize)) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()[stream..]).into_owned()
            + &self.nitro.enclave_log()[stderr..]
    }

    /// Start a fresh enclave process with `settings` and the consensus key
    /// ciphertext `encrypted_consensus_key` (init's, unless a test forges one).
    fn start_with(&self, settings: EnclaveSettings, encrypted_consensus_key: Vec<u8>) -> Run {
        let mut enclave = Guard(self.nitro.spawn_enclave());
        let endpoint = Endpoint::Unix {
            path: self.nitro.sock("enclave"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut control = loop {
            match endpoint.connect(Duration::from_secs(2)) {
                Ok(stream) => break stream,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline && matches!(enclave.0.try_wait(), Ok(None)),
                        "the enclave never listened: {e}\n{}",
                        self.enclave_log()
                    );
                    thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let encrypted_identity_key = settings
            .uses_tcp()
            .then(|| fs::read(self.nitro.path("secrets/id.key")).unwrap_or_default());
        send_json(
            &mut control,
            &Request::Start {
                kms: self.kms_access(),
                settings,
                encrypted_consensus_key,
                encrypted_identity_key,
                host: Endpoint::Unix {
                    path: self.nitro.sock("host"),
                },
                logs: Endpoint::Unix {
                    path: self.nitro.sock("logs"),
                },
            },
        )
        .unwrap();
        let answer: Response = recv_json(&mut control, MAX_CONTROL_MESSAGE)
            .unwrap_or_else(|e| panic!("no answer to Start: {e}\n{}", self.enclave_log()));
        Run {
            enclave,
            control,
            answer,
        }
    }

    fn start(&self, settings: EnclaveSettings) -> Run {
        self.start_with(
            settings,
            fs::read(self.nitro.path("secrets/secret.key")).unwrap(),
        )
    }

    /// Start with honest settings and accept the node connection.
    fn start_signing(&self) -> (Run, SignerConn) {
        let mut run = self.start(self.settings());
        assert!(
            run.started(),
            "start refused: {:?}\n{}",
            run.answer,
            self.enclave_log()
        );
        let conn =
            accept(&self.node, &mut run.enclave.0, Duration::from_secs(30)).unwrap_or_else(|| {
                panic!(
                    "the enclave never reached the node:\n{}",
                    self.enclave_log()
                )
            });
        (run, conn)
    }

    /// The node is never reached while the enclave lives; returns its exit.
    fn never_reaches_node(&self, run: &mut Run) -> std::process::ExitStatus {
        let conn = accept(&self.node, &mut run.enclave.0, Duration::from_secs(10));
        assert!(
            conn.is_none(),
            "the enclave reached the node:\n{}",
            self.enclave_log()
        );
        wait_exit(&mut run.enclave.0, EXIT_WITHIN).unwrap_or_else(|| {
            panic!(
                "the enclave kept running after refusing:\n{}",
                self.enclave_log()
            )
        })
    }

    fn set_on_write(&self, on_write: OnWrite) {
        self.disk.lock().unwrap().on_write = on_write;
    }

    fn slots(&self) -> [Option<[u8; SLOT_LEN]>; 2] {
        self.disk.lock().unwrap().slots
    }

    fn set_slots(&self, slots: [Option<[u8; SLOT_LEN]>; 2]) {
        self.disk.lock().unwrap().slots = slots;
    }

    fn last_write(&self) -> [u8; SLOT_LEN] {
        *self
            .disk
            .lock()
            .unwrap()
            .writes
            .last()
            .expect("a state write")
    }

    fn cut_state_stream(&self) {
        let live = self.disk.lock().unwrap().live.take();
        live.expect("a state stream is open")
            .shutdown(std::net::Shutdown::Both)
            .unwrap();
    }
}

// ------------------------------------------------------------ the ledger

/// Every signature the enclave released, by height/round/step.
struct Ledger {
    pubkey: [u8; 32],
    dialect: Dialect,
    signed: HashMap<(i64, i32, i32), Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Signed,
    Refused(i32),
    /// The connection or the process went away.
    Lost,
}

impl Ledger {
    fn new(host: &TestHost) -> Self {
        Ledger {
            pubkey: host.nitro.pubkey(),
            dialect: host.dialect,
            signed: HashMap::new(),
        }
    }

    fn record(&mut self, hrs: (i64, i32, i32), sign_bytes: Vec<u8>) {
        if let Some(before) = self.signed.get(&hrs) {
            assert_eq!(
                before, &sign_bytes,
                "DOUBLE SIGN: two valid signatures over different sign bytes at {hrs:?}"
            );
        }
        self.signed.insert(hrs, sign_bytes);
    }

    fn vote(&mut self, conn: &mut SignerConn, vote: &VoteSpec) -> Outcome {
        match conn.sign_vote(CHAIN, vote, false) {
            Ok(Ok(signed)) => {
                self.check_vote(vote, &signed);
                Outcome::Signed
            }
            Ok(Err(RemoteError { code, .. })) => Outcome::Refused(code),
            Err(_) => Outcome::Lost,
        }
    }

    fn check_vote(&mut self, vote: &VoteSpec, signed: &SignedVote) {
        verify_vote(&self.pubkey, CHAIN, vote, signed, self.dialect, false)
            .unwrap_or_else(|e| panic!("released signature does not verify: {e}"));
        let as_broadcast = vote
            .clone()
            .with_timestamp(signed.timestamp.0, signed.timestamp.1);
        let bytes = vote_sign_bytes(CHAIN, &as_broadcast).unwrap();
        self.record((vote.height, vote.round, vote.kind.raw()), bytes);
    }

    fn proposal(&mut self, conn: &mut SignerConn, proposal: &ProposalSpec) -> Outcome {
        match conn.sign_proposal(CHAIN, proposal) {
            Ok(Ok(signed)) => {
                verify_proposal(&self.pubkey, CHAIN, proposal, &signed).unwrap();
                // Proposals that differ only in the timestamp may be re-signed;
                // the ledger keys them without it.
                let mut canonical = proposal.clone();
                canonical.timestamp = (0, 0);
                let bytes = proposal_sign_bytes(CHAIN, &canonical).unwrap();
                self.record((proposal.height, proposal.round, 32), bytes);
                Outcome::Signed
            }
            Ok(Err(RemoteError { code, .. })) => Outcome::Refused(code),
            Err(_) => Outcome::Lost,
        }
    }

    /// Proposal, prevote and precommit for each height in `heights`.
    fn heights(&mut self, conn: &mut SignerConn, heights: std::ops::Range<i64>) {
        for h in heights {
            let block = Some(BlockIdSpec::for_height(h));
            assert_eq!(
                self.proposal(conn, &ProposalSpec::new(h, 0, block)),
                Outcome::Signed
            );
            for vote in [
                VoteSpec::prevote(h, 0, block),
                VoteSpec::precommit(h, 0, block),
            ] {
                assert_eq!(self.vote(conn, &vote), Outcome::Signed, "{vote:?}");
            }
        }
    }
}

/// Vote A and the conflicting vote B at height 2, round 0, prevote.
fn conflicting_votes() -> (VoteSpec, VoteSpec) {
    (
        VoteSpec::prevote(2, 0, Some(BlockIdSpec::for_height(2))),
        VoteSpec::prevote(2, 0, Some(BlockIdSpec::from_seed(b"conflicting block"))),
    )
}

/// The record the host kept for `vote`: it names the vote's sign bytes and
/// carries no signature (the enclave signs only after the acknowledgement).
fn assert_unsigned_record_of(record: &[u8; SLOT_LEN], vote: &VoteSpec) {
    let (_, state) = decode_slot(record).unwrap();
    assert_eq!(
        (
            state.position.height.as_i64(),
            state.position.round.as_i64()
        ),
        (vote.height, i64::from(vote.round))
    );
    assert_eq!(
        state.sign_bytes,
        vote_sign_bytes(CHAIN, vote).unwrap(),
        "the record is not vote A's"
    );
    assert!(
        state.signature.is_none(),
        "the record written ahead carries a signature the host could use"
    );
}

// ------------------------------------------------------------ acknowledgements

/// Where every acknowledgement test starts: a fresh host with height 1
/// signed honestly, then vote A (conflicting with B) sent while the host
/// answers A's record with `on_write`. The record the host got for A names
/// A and carries no signature. [`AckScene::new`] also returns the run and
/// its connection, still live.
struct AckScene {
    host: TestHost,
    ledger: Ledger,
    a: VoteSpec,
    b: VoteSpec,
    /// The slots from before vote A.
    before_a: [Option<[u8; SLOT_LEN]>; 2],
    /// What became of vote A.
    a_outcome: Outcome,
}

impl AckScene {
    fn new(kms: &str, on_write: OnWrite) -> (Self, Run, SignerConn) {
        let host = TestHost::new(kms, "v0.38", "");
        let mut ledger = Ledger::new(&host);
        let (a, b) = conflicting_votes();
        let (run, mut conn) = host.start_signing();
        ledger.heights(&mut conn, 1..2);
        let before_a = host.slots();
        host.set_on_write(on_write);
        let a_outcome = ledger.vote(&mut conn, &a);
        assert_unsigned_record_of(&host.last_write(), &a);
        let scene = AckScene {
            host,
            ledger,
            a,
            b,
            before_a,
            a_outcome,
        };
        (scene, run, conn)
    }

    /// After the previous run stopped: the signer restarted on the slots
    /// from before A signs B (never signed before), and then refuses A.
    /// Returns the new run.
    fn restart_before_a_signs_b_not_a(&mut self) -> (Run, SignerConn) {
        self.host.set_slots(self.before_a);
        let (run, mut conn) = self.host.start_signing();
        assert_eq!(self.ledger.vote(&mut conn, &self.b), Outcome::Signed);
        assert_eq!(
            self.ledger.vote(&mut conn, &self.a),
            Outcome::Refused(codes::DOUBLE_SIGN)
        );
        (run, conn)
    }

    /// Vote A was refused as not persisted; `otherwise` says what went
    /// wrong if it was not.
    fn assert_a_refused_as_unpersisted(&self, otherwise: &str) {
        assert_eq!(
            self.a_outcome,
            Outcome::Refused(codes::PERSIST_FAILED),
            "{otherwise}"
        );
    }
}

#[test]
fn withheld_ack_releases_nothing_and_old_slots_after_a_restart_sign_only_one_vote() {
    let Some(kms) = kms_endpoint() else { return };
    let (mut t, run, mut conn) = AckScene::new(&kms, OnWrite::Withhold);
    t.assert_a_refused_as_unpersisted(
        "vote A was signed although the host did not acknowledge its record",
    );
    // The host now behaves: B conflicts with A, whose record the host may
    // hold, so B is refused for the rest of this run (signing B now would
    // let the host replay A's record later and get A signed too).
    t.host.set_on_write(OnWrite::Honest);
    assert_eq!(
        t.ledger.vote(&mut conn, &t.b),
        Outcome::Refused(codes::DOUBLE_SIGN)
    );
    drop(conn);
    drop(run);

    // Restart on the slots from before A: B may be signed, then never A.
    let (_run, mut conn) = t.restart_before_a_signs_b_not_a();
    t.ledger.heights(&mut conn, 3..4);
}

#[test]
fn false_ack_releases_nothing_and_the_kept_record_after_a_restart_signs_only_that_vote() {
    let Some(kms) = kms_endpoint() else { return };
    let (mut t, run, mut conn) = AckScene::new(&kms, OnWrite::WrongAck);
    t.assert_a_refused_as_unpersisted("vote A was signed on an acknowledgement of another record");
    assert_eq!(
        t.ledger.vote(&mut conn, &t.b),
        Outcome::Refused(codes::DOUBLE_SIGN)
    );
    drop(conn);
    drop(run);

    // The host stored A's record: after a restart A is durable and may be
    // signed (it is released only now), B never.
    t.host.set_on_write(OnWrite::Honest);
    let (_run, mut conn) = t.host.start_signing();
    assert_eq!(
        t.ledger.vote(&mut conn, &t.b),
        Outcome::Refused(codes::DOUBLE_SIGN)
    );
    assert_eq!(t.ledger.vote(&mut conn, &t.a), Outcome::Signed);
    t.ledger.heights(&mut conn, 3..4);
}

#[test]
fn no_reply_then_a_closed_state_stream_ends_the_enclave_and_releases_nothing() {
    let Some(kms) = kms_endpoint() else { return };
    let (mut t, mut run, mut conn) = AckScene::new(&kms, OnWrite::SilentThenClose);
    let outcome = &t.a_outcome;
    assert!(
        matches!(
            outcome,
            Outcome::Refused(codes::PERSIST_FAILED) | Outcome::Lost
        ),
        "vote A: {outcome:?}"
    );
    let cut_at = Instant::now();
    // Whatever B gets in this run, it is no signature (the ledger checks).
    let outcome = t.ledger.vote(&mut conn, &t.b);
    assert_ne!(outcome, Outcome::Signed);
    let status = wait_exit(&mut run.enclave.0, EXIT_WITHIN).unwrap_or_else(|| {
        panic!(
            "the enclave outlived its state stream:\n{}",
            t.host.enclave_log()
        )
    });
    assert!(!status.success(), "exit {status:?}");
    eprintln!(
        "enclave exited {:?} after the state stream was cut",
        cut_at.elapsed()
    );
    assert!(
        t.host
            .enclave_log()
            .contains("state stream to the host is gone"),
        "{}",
        t.host.enclave_log()
    );
    drop(conn);
    drop(run);

    t.host.set_on_write(OnWrite::Honest);
    t.restart_before_a_signs_b_not_a();
}

#[test]
fn state_stream_closed_by_the_host_ends_the_enclave_with_a_failure() {
    let Some(kms) = kms_endpoint() else { return };
    let host = TestHost::new(&kms, "v0.38", "");
    let mut ledger = Ledger::new(&host);
    let (mut run, mut conn) = host.start_signing();
    ledger.heights(&mut conn, 1..2);
    host.cut_state_stream();
    let cut_at = Instant::now();
    // The next state write finds the stream gone: nothing is signed, and
    // the process ends (its supervisor restarts it) instead of answering
    // code 5 for ever.
    let outcome = ledger.vote(&mut conn, &VoteSpec::prevote(2, 0, None));
    assert_ne!(outcome, Outcome::Signed);
    let status = wait_exit(&mut run.enclave.0, EXIT_WITHIN).unwrap_or_else(|| {
        panic!(
            "the enclave outlived its state stream:\n{}",
            host.enclave_log()
        )
    });
    let took = cut_at.elapsed();
    assert!(!status.success(), "exit {status:?}");
    // Exit code 3 is the enclave noticing the helper's control connection
    // closing; here the control connection is still open.
    assert_ne!(status.code(), Some(3), "{}", host.enclave_log());
    eprintln!("enclave exited with {status:?} {took:?} after the state stream was cut");
    assert!(conn.is_closed_by_peer(Duration::from_secs(5)));
    drop(run.control);
}

// ------------------------------------------------------------ state files

/// Sign heights 1..=3 with the test host, then stop the enclave.
fn signed_host(kms: &str) -> (TestHost, Ledger) {
    let host = TestHost::new(kms, "v0.38", "");
    let mut ledger = Ledger::new(&host);
    let (run, mut conn) = host.start_signing();
    ledger.heights(&mut conn, 1..4);
    drop(conn);
    drop(run);
    (host, ledger)
}

fn untagged(state: &SignState) -> [Option<[u8; SLOT_LEN]>; 2] {
    [
        Some(encode_slot(1, state).unwrap()),
        Some(encode_slot(0, state).unwrap()),
    ]
}

#[test]
fn fresh_untagged_or_deleted_state_after_signing_is_refused_by_the_enclave() {
    let Some(kms) = kms_endpoint() else { return };
    let (host, _) = signed_host(&kms);
    let signed = host.slots();
    let far_ahead = SignState::at_height(tmkms_light::types::Height::from(1_000_000u32));
    let cases: [(&str, [Option<[u8; SLOT_LEN]>; 2]); 4] = [
        ("deleted (no slots)", [None, None]),
        ("fresh at height 0", untagged(&SignState::default())),
        ("untagged, far ahead", untagged(&far_ahead)),
        ("zeroed", [Some([0u8; SLOT_LEN]), Some([0u8; SLOT_LEN])]),
    ];
    for (what, slots) in cases {
        host.set_slots(slots);
        let mark = host.log_mark();
        let mut run = host.start(host.settings());
        // The keys decrypt; the state is what stops the start.
        assert!(run.started(), "{what}: {:?}", run.answer);
        let status = host.never_reaches_node(&mut run);
        assert!(!status.success(), "{what}: exit {status:?}");
        let log = host.enclave_log_since(mark);
        assert!(
            log.contains("no state record the enclave wrote itself")
                && log.contains("state import"),
            "{what}: the refusal must say what happened and how to recover:\n{log}"
        );
    }
    // The authentic slots start again.
    host.set_slots(signed);
    let mut ledger = Ledger::new(&host);
    let (_run, mut conn) = host.start_signing();
    ledger.heights(&mut conn, 4..5);
}

#[test]
fn torn_newest_slot_falls_back_to_the_other_authentic_slot() {
    let Some(kms) = kms_endpoint() else { return };
    let (host, mut ledger) = signed_host(&kms);
    let mut slots = host.slots();
    let newest = host.disk.lock().unwrap().newest();
    let (older_seq, older_state) = decode_slot(&slots[1 - newest].unwrap()).unwrap();
    // A torn write: the second half of the newest record never reached the disk.
    let torn = slots[newest].as_mut().unwrap();
    torn[SLOT_LEN / 2..].fill(0);
    assert!(decode_slot(torn).is_err());
    host.set_slots(slots);
    let (_run, mut conn) = host.start_signing();
    let log = host.enclave_log();
    assert!(
        log.contains(&format!("slot {newest}: damaged")),
        "the torn slot is named:\n{log}"
    );
    assert!(
        log.contains(&format!("seq={older_seq}"))
            || log.contains(&older_state.position.to_string()),
        "started from the older slot:\n{log}"
    );
    ledger.heights(&mut conn, 4..6);
}

#[test]
fn helper_refuses_a_deleted_state_file_and_state_import_through_the_enclave_recovers() {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = listen(dir.path(), false, Dialect::V0_38).unwrap();
    let nitro = Nitro::configured(dir, &kms, CHAIN, &node.local_addr(), "v0.38", "").init();
    let config = nitro.config.to_str().unwrap().to_owned();
    let pubkey = nitro.pubkey();
    let sign = |heights: std::ops::Range<i64>| {
        let (mut running, mut conn) = nitro.start_connected(&node, Duration::from_secs(30));
        for h in heights {
            sign_checked_prevote(&mut conn, CHAIN, &pubkey, Dialect::V0_38, h);
        }
        drop(conn);
        kill(&mut running.helper.0);
    };
    sign(1..4);

    // Deleted: the helper refuses before asking the enclave.
    fs::remove_file(nitro.state_path()).unwrap();
    let out = nitro.helper(&["start", "-c", &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no state file") && stderr.contains("state import"),
        "{stderr}"
    );
    // --allow-empty-state is no way around it.
    let out = nitro.helper(&["start", "-c", &config, "--allow-empty-state"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--allow-empty-state does not apply") && stderr.contains("state import"),
        "{stderr}"
    );

    // A fresh file the host made itself: the helper relays, the enclave refuses.
    drop(FileStore::create(nitro.state_path(), &SignState::default()).unwrap());
    {
        let mut enclave = Guard(nitro.spawn_enclave());
        let _proxy = Guard(nitro.spawn_proxy());
        let mut helper = Guard(nitro.spawn_helper());
        assert!(accept(&node, &mut helper.0, Duration::from_secs(10)).is_none());
        assert!(wait_exit(&mut enclave.0, EXIT_WITHIN).is_some_and(|s| !s.success()));
        assert!(wait_exit(&mut helper.0, EXIT_WITHIN).is_some_and(|s| !s.success()));
        assert!(
            nitro
                .log()
                .contains("no state record the enclave wrote itself"),
            "{}",
            nitro.log()
        );
    }

    // Recovery: import the last signed height through the enclave.
    fs::remove_file(nitro.state_path()).unwrap();
    let json = nitro.path("priv_validator_state.json");
    fs::write(&json, r#"{"height": "3", "round": 0, "step": 2}"#).unwrap();
    let import = |args: &[&str]| {
        let _enclave = Guard(nitro.spawn_enclave());
        let mut all = vec!["state", "import", json.to_str().unwrap(), "-c", &config];
        all.extend_from_slice(args);
        nitro.helper(&all)
    };
    let out = import(&[]);
    assert!(
        out.status.success(),
        "state import failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        nitro.enclave_log()
    );
    assert_eq!(nitro.state().position.height.value(), 3);
    // Importing a lower height is refused by the enclave without the danger flag.
    fs::write(&json, r#"{"height": "2", "round": 0, "step": 2}"#).unwrap();
    let out = import(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("backwards") && stderr.contains("--danger-allow-regression"),
        "{stderr}"
    );
    assert_eq!(nitro.state().position.height.value(), 3);

    // The imported record starts; height 3 prevotes are refused, 4 signs.
    let (_running, mut conn) = nitro.start_connected(&node, Duration::from_secs(30));
    let stale = VoteSpec::prevote(3, 0, Some(BlockIdSpec::from_seed(b"other")));
    assert_eq!(
        conn.sign_vote(CHAIN, &stale, false)
            .unwrap()
            .unwrap_err()
            .code,
        codes::DOUBLE_SIGN
    );
    sign_checked_prevote(&mut conn, CHAIN, &pubkey, Dialect::V0_38, 4);
}

// ------------------------------------------------------------ bound policy

#[test]
fn settings_that_differ_from_the_policy_bound_at_init_get_no_key() {
    let Some(kms) = kms_endpoint() else { return };
    let host = TestHost::new(&kms, "v0.38", "");

    // The helper names the changed field before it asks the enclave.
    let original = fs::read_to_string(&host.nitro.config).unwrap();
    host.nitro.set_setting("chain_id", "\"other-chain\"");
    let out = host
        .nitro
        .helper(&["start", "-c", host.nitro.config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("differs from the policy bound to the key at init")
            && stderr.contains("chain_id"),
        "{stderr}"
    );
    fs::write(&host.nitro.config, original).unwrap();

    // A hostile helper skips that check; the enclave is the barrier.
    let honest = host.settings();
    let mut changes: Vec<(&str, EnclaveSettings)> = Vec::new();
    let mut s = honest.clone();
    s.chain_id = "other-chain".into();
    changes.push(("chain id", s));
    let mut s = honest.clone();
    s.danger_allow_sign_bytes = true;
    changes.push(("sign-bytes flag", s));
    let mut s = honest.clone();
    s.validators[0].protocol_version = "v0.37".into();
    changes.push(("protocol version", s));
    let mut s = honest.clone();
    s.validators.push(tmkms_light::enclave::ValidatorSettings {
        address: format!("tcp://{}@127.0.0.1:1", "ab".repeat(20)),
        ..honest.validators[0].clone()
    });
    changes.push(("pinned node id", s));
    for (what, settings) in changes {
        let mut run = host.start(settings);
        let message = run.error();
        assert!(
            message.contains("cannot decrypt the keys")
                && (message.contains("KMS refused to decrypt")
                    || message.contains("bound to another policy")),
            "{what}: {message}"
        );
        eprintln!("{what}: {message}");
        assert!(accept(&host.node, &mut run.enclave.0, Duration::from_millis(500)).is_none());
    }

    // A ciphertext of the real seed moved to the changed policy's context
    // (what KMS ReEncrypt could do) passes KMS, not the enclave.
    let seed = host.nitro.consensus_seed(&kms);
    let mut moved = honest.clone();
    moved.danger_allow_sign_bytes = true;
    let bound = host.nitro.bound_policy();
    let moved_policy = tmkms_light::enclave::BoundPolicy::from_settings(&moved).unwrap();
    let plaintext = [&seed[..], bound.digest_hex().as_bytes()].concat();
    let blob = common::kms_client(&kms)
        .encrypt(
            &host.nitro.kms_key_id,
            &plaintext,
            Some(&context(CONTEXT_CONSENSUS, &moved_policy)),
        )
        .unwrap();
    let mut run = host.start_with(moved, blob);
    let message = run.error();
    assert!(message.contains("bound to another policy"), "{message}");
    assert!(accept(&host.node, &mut run.enclave.0, Duration::from_millis(500)).is_none());

    // What is not bound (max_height) may change; the honest settings start.
    let mut s = honest.clone();
    s.max_height = Some(100);
    let run = host.start(s);
    assert!(run.started(), "{:?}", run.answer);
}

// ------------------------------------------------------------ raw bytes

#[test]
fn sign_bytes_never_signs_a_consensus_message_of_any_chain() {
    let Some(kms) = kms_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = listen(dir.path(), false, Dialect::V1).unwrap();
    let nitro = Nitro::configured(
        dir,
        &kms,
        CHAIN,
        &node.local_addr(),
        "v1",
        "danger_allow_sign_bytes = true",
    )
    .init();
    assert!(nitro.bound_policy().danger_allow_sign_bytes);
    let (_running, mut conn) = nitro.start_connected(&node, Duration::from_secs(30));
    let pubkey = nitro.pubkey();

    // The flag works: application bytes are signed.
    let app = b"app/v1:transfer 10 to alice";
    let signature = conn.sign_bytes(app).unwrap().unwrap();
    verify_signature(&pubkey, app, &signature).unwrap();

    let block = Some(BlockIdSpec::for_height(7));
    for chain in [CHAIN, "another-chain"] {
        let precommit = VoteSpec::precommit(7, 0, block).with_extension(b"ext".to_vec());
        let messages = [
            (
                "prevote",
                vote_sign_bytes(chain, &VoteSpec::prevote(7, 0, block)).unwrap(),
            ),
            ("precommit", vote_sign_bytes(chain, &precommit).unwrap()),
            (
                "proposal",
                proposal_sign_bytes(chain, &ProposalSpec::new(7, 0, block)).unwrap(),
            ),
            (
                "vote extension",
                extension_sign_bytes(chain, &precommit).unwrap(),
            ),
        ];
        for (what, bytes) in messages {
            match conn.sign_bytes(&bytes) {
                Ok(Err(e)) => assert_ne!(e.code, 0, "{chain} {what}"),
                Ok(Ok(sig)) => panic!(
                    "signed a {what} of {chain} as raw bytes (valid: {})",
                    verify_signature(&pubkey, &bytes, &sig).is_ok()
                ),
                Err(e) => panic!("{chain} {what}: {e}"),
            }
        }
    }
    // The session goes on, and the state never moved.
    conn.ping().unwrap();
    assert_eq!(nitro.state().position.height.value(), 0);
}
