//! The host is hostile after `init`: these tests play it. Each home is made
//! by an honest `init` of the real runner; then the test starts the real
//! enclave app (host simulation) itself and serves its `init` and `state`
//! streams on its own Unix socket, misbehaving on purpose, while the node
//! simulator talks to the enclave over tcp:// (SecretConnection ends in the
//! enclave). Checked throughout: no two valid signatures over different sign
//! bytes at one height/round/step, no signature before the host's
//! acknowledgement, and no start the init ceremony did not allow.
//!
//! The state protocol the test host speaks is `tmkms_light::state::remote`'s:
//! `L` → `S` + both slots; `W` + 512-byte record → `A` + 8-byte sequence
//! number, or `E` + reason.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{accept, app_path, listen, run_fails, run_ok, wait_exit, Guard, Sgx};
use tmkms_light::config::Config;
use tmkms_light::enclave::EnclaveSettings;
use tmkms_light::link::{read_announcement, read_frame, recv_json, send_json, write_frame};
use tmkms_light::state::file::FileStore;
use tmkms_light::state::record::{decode_slot, SLOT_LEN};
use tmkms_light::types::SignState;
use tmkms_light_sgx_protocol::{sim_env, Request, Response, MAX_CONTROL_MESSAGE};
use tmkms_node_sim::harness::loopback_only;
use tmkms_node_sim::{
    extension_sign_bytes, proposal_sign_bytes, verify_signature, verify_vote, vote_sign_bytes,
    BlockIdSpec, Dialect, NodeListener, ProposalSpec, SignerConn, VoteSpec,
};

const CHAIN: &str = "hostile-chain";

type Slots = [Option<[u8; SLOT_LEN]>; 2];

/// How the test host answers the next state write (then it is honest again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ack {
    Honest,
    /// Stores the record durably, then answers `E` (a "failed" write the
    /// host kept).
    ErrorButKeep,
    /// Stores the record, acknowledges another sequence number.
    WrongSeq,
    /// Stores the record, answers nothing and closes the state stream.
    CloseWithoutReply,
    /// Stores the record, acknowledges it correctly after this long.
    Delay(Duration),
}

/// One state write the enclave sent.
#[derive(Debug, Clone)]
struct Written {
    state: SignState,
    /// When the host's answer left (`None`: never answered).
    answered: Option<Instant>,
}

/// The test host's disk and behaviour.
struct HostState {
    slots: Slots,
    next: Ack,
    writes: Vec<Written>,
    /// The live state stream, to cut it.
    stream: Option<UnixStream>,
}

fn seq_of(slot: &Option<[u8; SLOT_LEN]>) -> Option<u64> {
    slot.as_ref()
        .and_then(|bytes| decode_slot(bytes).ok())
        .map(|(seq, _)| seq)
}

impl HostState {
    /// Store `record` in the slot not holding the newest record, as the
    /// runner's file store does.
    fn store(&mut self, record: [u8; SLOT_LEN]) {
        let target = match (seq_of(&self.slots[0]), seq_of(&self.slots[1])) {
            (Some(a), Some(b)) if a > b => 1,
            (Some(_), Some(_)) => 0,
            (Some(_), None) => 1,
            _ => 0,
        };
        self.slots[target] = Some(record);
    }
}

/// Serve one state stream from `shared`, misbehaving as told.
fn serve_state(mut conn: UnixStream, shared: Arc<Mutex<HostState>>) {
    shared.lock().unwrap().stream = conn.try_clone().ok();
    loop {
        let Ok(request) = read_frame(&mut conn, 1 + SLOT_LEN) else {
            return;
        };
        match request.split_first() {
            Some((b'L', [])) => {
                let slots = shared.lock().unwrap().slots;
                let mut reply = vec![b'S'];
                for slot in slots {
                    match slot {
                        Some(bytes) => {
                            reply.push(1);
                            reply.extend_from_slice(&bytes);
                        }
                        None => reply.extend_from_slice(&[0u8; 1 + SLOT_LEN]),
                    }
                }
                if write_frame(&mut conn, &reply).is_err() {
                    return;
                }
            }
            Some((b'W', record)) => {
                let record: [u8; SLOT_LEN] = record.try_into().unwrap();
                let (seq, state) = decode_slot(&record).unwrap();
                let (mode, index) = {
                    let mut host = shared.lock().unwrap();
                    let mode = std::mem::replace(&mut host.next, Ack::Honest);
                    host.store(record);
                    host.writes.push(Written {
                        state,
                        answered: None,
                    });
                    (mode, host.writes.len() - 1)
                };
                let reply = match mode {
                    Ack::Honest => [&[b'A'][..], &seq.to_le_bytes()].concat(),
                    Ack::ErrorButKeep => b"Eno space left on device".to_vec(),
                    Ack::WrongSeq => [&[b'A'][..], &(seq + 1).to_le_bytes()].concat(),
                    Ack::CloseWithoutReply => {
                        let _ = conn.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    Ack::Delay(d) => {
                        std::thread::sleep(d);
                        [&[b'A'][..], &seq.to_le_bytes()].concat()
                    }
                };
                shared.lock().unwrap().writes[index].answered = Some(Instant::now());
                if write_frame(&mut conn, &reply).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// The real enclave app, started and served by the test host.
struct Enclave {
    child: Guard,
    control: UnixStream,
    host: Arc<Mutex<HostState>>,
    log: PathBuf,
    _socket_dir: tempfile::TempDir,
}

impl Enclave {
    /// Start the enclave of `kms` (its SIGSTRUCT and simulated CPU), serve
    /// `slots` as the state file, and send `Start` with `settings` and the
    /// home's sealed keys. Returns the enclave and its answer.
    fn start(kms: &Sgx, slots: Slots, settings: &EnclaveSettings) -> (Self, Response) {
        let socket_dir = tempfile::Builder::new()
            .prefix("sgx-host-")
            .tempdir()
            .unwrap();
        let socket = socket_dir.path().join("host.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let host = Arc::new(Mutex::new(HostState {
            slots,
            next: Ack::Honest,
            writes: Vec::new(),
            stream: None,
        }));
        let (init_tx, init_rx) = mpsc::channel();
        let shared = Arc::clone(&host);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let Ok(name) = read_announcement(&mut conn) else {
                    continue;
                };
                match name.as_str() {
                    "init" => {
                        let _ = init_tx.send(conn);
                    }
                    "state" => {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || serve_state(conn, shared));
                    }
                    // tcp:// node connections are dialed by the enclave itself.
                    _ => {}
                }
            }
        });
        let log = kms.path("enclave.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Guard(
            loopback_only(&mut Command::new(app_path()))
                .env(sim_env::HOST_SOCKET, &socket)
                .env(sim_env::SIGSTRUCT, kms.current_sigstruct())
                .env(sim_env::CPU_SECRET, kms.sim_cpu_secret_path())
                .env("TMKMS_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        let mut control = init_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the enclave did not open its init stream"));
        let config = Config::load(&kms.config).unwrap();
        let sealed_identity_key = config
            .id_key_path
            .as_ref()
            .filter(|_| config.uses_tcp())
            .map(|p| std::fs::read(p).unwrap());
        send_json(
            &mut control,
            &Request::Start {
                settings: settings.clone(),
                sealed_consensus_key: std::fs::read(&config.consensus_key_path).unwrap(),
                sealed_identity_key,
            },
        )
        .unwrap();
        let response: Response = recv_json(&mut control, MAX_CONTROL_MESSAGE).unwrap();
        let enclave = Self {
            child,
            control,
            host,
            log,
            _socket_dir: socket_dir,
        };
        (enclave, response)
    }

    /// Start with the home's own settings, expecting the enclave to accept.
    fn started(kms: &Sgx, slots: Slots) -> Self {
        let (enclave, response) = Self::start(kms, slots, &settings_of(kms));
        assert!(
            matches!(response, Response::Started { .. }),
            "{response:?}\n{}",
            enclave.log()
        );
        enclave
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn slots(&self) -> Slots {
        self.host.lock().unwrap().slots
    }

    fn next_write(&self, ack: Ack) {
        self.host.lock().unwrap().next = ack;
    }

    fn writes(&self) -> Vec<Written> {
        self.host.lock().unwrap().writes.clone()
    }

    fn connect(&mut self, listener: &NodeListener) -> SignerConn {
        accept(listener, &mut self.child.0, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("the enclave did not connect:\n{}", self.log()))
    }

    fn exits_within(&mut self, within: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child.0, within)
    }

    /// Kill the enclave (the host may do that at any time).
    fn kill(mut self) {
        let _ = self.control.flush();
        common::kill(&mut self.child.0);
    }
}

fn settings_of(kms: &Sgx) -> EnclaveSettings {
    EnclaveSettings::from_config(&Config::load(&kms.config).unwrap())
}

/// The home's state file as the runner would serve it.
fn file_slots(kms: &Sgx) -> Slots {
    FileStore::open(kms.state_path()).unwrap().raw_slots()
}

/// A home over tcp:// (SecretConnection and the node id pinned).
fn home(dialect: Dialect, extra_top_level: &[&str]) -> (Sgx, NodeListener, [u8; 32]) {
    let dir = tempfile::tempdir().unwrap();
    let listener = listen(dir.path(), true, dialect).unwrap();
    let kms = Sgx::init_in(dir, CHAIN, &listener.local_addr(), dialect.name(), &[]);
    if !extra_top_level.is_empty() {
        // Re-run init on the edited config, so the setting is bound to the
        // key at the ceremony.
        let config = Config::load(&kms.config).unwrap();
        for path in [
            config.consensus_key_path.clone(),
            config.consensus_key_path.with_extension("policy.json"),
            config.id_key_path.clone().unwrap(),
            config.state_file_path.clone(),
        ] {
            std::fs::remove_file(path).unwrap();
        }
        for line in extra_top_level {
            kms.set_top_level(line);
        }
        let sig = kms.current_sigstruct();
        run_ok(&[
            "init",
            "-c",
            kms.config_str(),
            "--sigstruct",
            sig.to_str().unwrap(),
        ]);
    }
    let pubkey = kms.pubkey();
    (kms, listener, pubkey)
}

/// Every signature the node received, by height/round/step: never two
/// different sign bytes at one of them.
#[derive(Default)]
struct Ledger(HashMap<(i64, i32, u8), BTreeSet<Vec<u8>>>);

impl Ledger {
    fn vote(&mut self, pubkey: &[u8; 32], vote: &VoteSpec, answer: &SignResult) -> bool {
        let Ok(Ok(signed)) = answer else {
            return false;
        };
        verify_vote(pubkey, CHAIN, vote, signed, Dialect::V0_38, false).unwrap();
        let key = (vote.height, vote.round, vote.kind.raw() as u8);
        let signed_bytes = self.0.entry(key).or_default();
        signed_bytes.insert(vote_sign_bytes(CHAIN, vote).unwrap());
        assert_eq!(
            signed_bytes.len(),
            1,
            "DOUBLE SIGN: two different votes signed at {key:?}"
        );
        true
    }
}

type SignResult = Result<
    Result<tmkms_node_sim::SignedVote, tmkms_node_sim::RemoteError>,
    tmkms_node_sim::SimError,
>;

fn prevote(height: i64, block: &[u8]) -> VoteSpec {
    VoteSpec::prevote(height, 0, Some(BlockIdSpec::from_seed(block)))
}

/// The enclave started on the home's state file and connected to the node,
/// with prevote and precommit at `heights` signed honestly.
fn started_and_signed(
    kms: &Sgx,
    listener: &NodeListener,
    ledger: &mut Ledger,
    pubkey: &[u8; 32],
    heights: [i64; 2],
) -> (Enclave, SignerConn) {
    let mut enclave = Enclave::started(kms, file_slots(kms));
    let mut conn = enclave.connect(listener);
    sign_honestly(&mut conn, ledger, pubkey, heights);
    (enclave, conn)
}

/// Sign prevote and precommit at `heights` honestly.
fn sign_honestly(conn: &mut SignerConn, ledger: &mut Ledger, pubkey: &[u8; 32], heights: [i64; 2]) {
    for h in heights[0]..=heights[1] {
        let block = Some(BlockIdSpec::for_height(h));
        for vote in [
            VoteSpec::prevote(h, 0, block),
            VoteSpec::precommit(h, 0, block),
        ] {
            let answer = conn.sign_vote(CHAIN, &vote, false);
            assert!(ledger.vote(pubkey, &vote, &answer), "{answer:?}");
        }
    }
}

/// The host answers the write of vote A with `ack`; then the node asks for a
/// conflicting vote B at the same height/round/step in the same run, and
/// again after the host restarted the enclave on the slots from before A
/// (or, when A was acknowledged, on the slots as they are).
fn misbehaving_ack(ack: Ack) {
    let (kms, listener, pubkey) = home(Dialect::V0_38, &[]);
    let mut ledger = Ledger::default();
    let (mut enclave, mut conn) = started_and_signed(&kms, &listener, &mut ledger, &pubkey, [1, 2]);
    let before_a = enclave.slots();
    let writes_before = enclave.writes().len();

    let a = prevote(3, b"A");
    let b = prevote(3, b"B");
    enclave.next_write(ack);
    let answer_a = conn.sign_vote(CHAIN, &a, false);
    let received_a = Instant::now();
    let signed_a = ledger.vote(&pubkey, &a, &answer_a);

    // The record written ahead for A is A's sign bytes, without a signature.
    let writes = enclave.writes();
    let written_a = writes
        .get(writes_before)
        .unwrap_or_else(|| panic!("no state write for A:\n{}", enclave.log()));
    assert_eq!(written_a.state.position.height.value(), 3);
    assert_eq!(
        written_a.state.sign_bytes,
        vote_sign_bytes(CHAIN, &a).unwrap()
    );
    assert!(
        written_a.state.signature.is_none(),
        "the record written ahead carries the signature: a host that keeps it and answers E holds a signed vote"
    );

    match ack {
        Ack::Delay(delay) => {
            assert!(
                signed_a,
                "an acknowledged write must release A: {answer_a:?}"
            );
            let acked = written_a.answered.expect("the host acknowledged A");
            assert!(
                received_a >= acked,
                "A's signature reached the node {:?} before the host's acknowledgement",
                acked - received_a
            );
            assert!(received_a.duration_since(acked) < delay);
        }
        _ => assert!(
            !signed_a,
            "{ack:?}: A was signed without a correct acknowledgement:\n{}",
            enclave.log()
        ),
    }

    if ack == Ack::CloseWithoutReply {
        // The state stream is gone: the enclave exits (non-zero) rather than
        // refuse every request for ever; its supervisor restarts it.
        let status = enclave
            .exits_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the enclave outlived its state stream:\n{}", enclave.log()));
        assert_eq!(status.code(), Some(1), "{status}\n{}", enclave.log());
    } else {
        // Same run: B conflicts with a message whose write may have
        // succeeded (or did): refused, whatever the host does now.
        let answer_b = conn.sign_vote(CHAIN, &b, false);
        assert!(
            !ledger.vote(&pubkey, &b, &answer_b),
            "{ack:?}: B signed in the same run after A's write: {answer_b:?}\n{}",
            enclave.log()
        );
        let Ok(Err(refusal)) = &answer_b else {
            panic!("{ack:?}: B got no refusal: {answer_b:?}");
        };
        assert!(refusal.code == 2 || refusal.code == 5, "{refusal:?}");
    }
    let after = enclave.slots();
    drop(conn);
    enclave.kill();

    // Restart. Unless A was acknowledged (then going back would be a replay
    // of an older record, which only a watermark outside the host can
    // catch), the host serves the slots from before A: B at the same
    // height/round/step may now be signed — A never was.
    let (slots, b_may_sign) = match ack {
        Ack::Delay(_) => (after, false),
        _ => (before_a, true),
    };
    while listener.accept(Duration::ZERO).is_ok() {}
    let mut enclave = Enclave::started(&kms, slots);
    let mut conn = enclave.connect(&listener);
    let answer_b = conn.sign_vote(CHAIN, &b, false);
    let signed_b = ledger.vote(&pubkey, &b, &answer_b);
    assert_eq!(
        signed_b,
        b_may_sign,
        "{ack:?} after restart: {answer_b:?}\n{}",
        enclave.log()
    );
    // And A (if it was not signed) now conflicts with B, or (if it was) is
    // the same message again: the ledger refuses any double sign.
    let answer_a = conn.sign_vote(CHAIN, &a, false);
    ledger.vote(&pubkey, &a, &answer_a);
    // The enclave goes on above it.
    let answer = conn.sign_vote(CHAIN, &prevote(4, b"next"), false);
    assert!(
        ledger.vote(&pubkey, &prevote(4, b"next"), &answer),
        "{answer:?}"
    );
    drop(conn);
    enclave.kill();
}

#[test]
fn withheld_ack_host_keeps_the_record_and_answers_error() {
    misbehaving_ack(Ack::ErrorButKeep);
}

#[test]
fn false_ack_with_another_sequence_number() {
    misbehaving_ack(Ack::WrongSeq);
}

#[test]
fn no_reply_then_the_state_stream_closes() {
    misbehaving_ack(Ack::CloseWithoutReply);
}

#[test]
fn ack_after_a_delay_releases_the_signature_only_after_it() {
    misbehaving_ack(Ack::Delay(Duration::from_millis(1500)));
}

/// The state stream dies while the enclave is idle: at the next request the
/// enclave finds it gone and exits non-zero instead of answering code 5 for
/// ever.
#[test]
fn a_lost_state_stream_ends_the_enclave() {
    let (kms, listener, pubkey) = home(Dialect::V0_38, &[]);
    let mut ledger = Ledger::default();
    let (mut enclave, mut conn) = started_and_signed(&kms, &listener, &mut ledger, &pubkey, [1, 1]);
    let stream = enclave.host.lock().unwrap().stream.take().unwrap();
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    let vote = prevote(2, b"x");
    let answer = conn.sign_vote(CHAIN, &vote, false);
    assert!(!ledger.vote(&pubkey, &vote, &answer), "{answer:?}");
    let status = enclave
        .exits_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the enclave kept running without state:\n{}", enclave.log()));
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(
        enclave
            .log()
            .contains("the state stream to the host is gone"),
        "{}",
        enclave.log()
    );
}

/// The enclave starts only from a record it authenticated: a deleted, fresh
/// or host-written (untagged) state file after signing stops the start
/// inside the enclave — nothing is signed, and the error says how to
/// recover. The runner says so too, before launching, for a missing file.
#[test]
fn no_authentic_state_record_stops_the_start() {
    let (kms, listener, pubkey) = home(Dialect::V0_38, &[]);
    let mut ledger = Ledger::default();
    {
        let (enclave, conn) = started_and_signed(&kms, &listener, &mut ledger, &pubkey, [1, 3]);
        drop(conn);
        enclave.kill();
    }
    let untagged = |state: SignState| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        FileStore::create(&path, &state).unwrap().raw_slots()
    };
    let high = SignState::at_height(tmkms_light::types::Height::try_from(1_000_000i64).unwrap());
    for (what, slots) in [
        ("deleted", [None, None]),
        ("fresh", untagged(SignState::default())),
        ("untagged, ahead", untagged(high)),
    ] {
        while listener.accept(Duration::ZERO).is_ok() {}
        let (mut enclave, response) = Enclave::start(&kms, slots, &settings_of(&kms));
        // The keys unseal; the state is verified next, and refused.
        assert!(matches!(response, Response::Started { .. }), "{response:?}");
        let status = enclave
            .exits_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: the enclave started:\n{}", enclave.log()));
        assert!(!status.success(), "{what}");
        assert!(
            listener.accept(Duration::from_millis(300)).is_err(),
            "{what}: the enclave dialed the node"
        );
        let log = enclave.log();
        assert!(
            log.contains("no state record the enclave wrote itself")
                && log.contains("state import"),
            "{what}:\n{log}"
        );
        std::fs::write(&enclave.log, "").unwrap();
    }

    // The real runner: a missing file is named before the enclave starts; a
    // fresh one is refused by the enclave.
    let state = kms.state_path();
    let kept = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    let err = run_fails(&["start", "-c", kms.config_str()]);
    assert!(
        err.contains("does not exist") && err.contains("state import"),
        "{err}"
    );
    drop(FileStore::create(&state, &SignState::default()).unwrap());
    let out = kms.start_within(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no state record the enclave wrote itself"),
        "{err}"
    );
    std::fs::write(&state, kept).unwrap();
}

/// A torn write (a checksum-damaged newest slot): the enclave starts from
/// the other authentic slot and signs on.
#[test]
fn a_torn_newest_slot_falls_back_to_the_other_authentic_slot() {
    let (kms, listener, pubkey) = home(Dialect::V0_38, &[]);
    let mut ledger = Ledger::default();
    let (enclave, conn) = started_and_signed(&kms, &listener, &mut ledger, &pubkey, [1, 2]);
    let mut slots = enclave.slots();
    drop(conn);
    enclave.kill();
    let newest = if seq_of(&slots[0]) > seq_of(&slots[1]) {
        0
    } else {
        1
    };
    slots[newest].as_mut().unwrap()[40] ^= 0x10;

    while listener.accept(Duration::ZERO).is_ok() {}
    let mut enclave = Enclave::started(&kms, slots);
    let mut conn = enclave.connect(&listener);
    let vote = prevote(3, b"on");
    let answer = conn.sign_vote(CHAIN, &vote, false);
    assert!(
        ledger.vote(&pubkey, &vote, &answer),
        "{answer:?}\n{}",
        enclave.log()
    );
    let log = enclave.log();
    assert!(
        log.contains(&format!("slot {newest}: damaged")) && log.contains("at=2/0/prevote"),
        "{log}"
    );
    drop(conn);
    enclave.kill();
}

/// What the enclave enforces was bound to the key at init. A host that hands
/// the enclave other settings — another chain id, sign-bytes on, another
/// protocol, no node pin — gets no key to sign with: the enclave refuses
/// before reading any state or dialing the node.
#[test]
fn changed_policy_in_the_hosts_settings_is_refused_inside_the_enclave() {
    let (kms, listener, _) = home(Dialect::V0_38, &[]);
    let honest = settings_of(&kms);
    let mut cases: Vec<(&str, EnclaveSettings)> = Vec::new();
    let mut s = honest.clone();
    s.chain_id = "other-chain".into();
    cases.push(("chain id", s));
    let mut s = honest.clone();
    s.danger_allow_sign_bytes = true;
    cases.push(("sign bytes", s));
    let mut s = honest.clone();
    s.validators[0].protocol_version = "v1".into();
    cases.push(("protocol", s));
    let mut s = honest.clone();
    let address = s.validators[0].address.clone();
    s.validators[0].address = format!("tcp://{}", address.rsplit_once('@').unwrap().1);
    cases.push(("node pin", s));
    for (what, settings) in cases {
        let (mut enclave, response) = Enclave::start(&kms, file_slots(&kms), &settings);
        let Response::Error { message } = &response else {
            panic!("{what}: the enclave accepted changed settings: {response:?}");
        };
        assert!(
            message.contains("bound to another policy at init"),
            "{what}: {message}"
        );
        let status = enclave.exits_within(Duration::from_secs(10)).unwrap();
        assert!(!status.success());
        assert!(enclave.writes().is_empty(), "{what}: wrote state");
        assert!(
            listener.accept(Duration::from_millis(300)).is_err(),
            "{what}: dialed the node"
        );
    }

    // More validator connections than the enclave has threads for (the
    // policy is the same: unpinned unix sockets of the same protocol).
    let mut s = honest.clone();
    for i in 0..2 {
        let mut extra = s.validators[0].clone();
        extra.address = format!("unix://{}", kms.path(&format!("sentry{i}.sock")).display());
        s.validators.push(extra);
    }
    let (mut enclave, response) = Enclave::start(&kms, file_slots(&kms), &s);
    let Response::Error { message } = &response else {
        panic!("three connections accepted: {response:?}");
    };
    assert!(message.contains("at most 2"), "{message}");
    assert!(!enclave
        .exits_within(Duration::from_secs(10))
        .unwrap()
        .success());
}

/// The runner names the changed field from its copy of the bound policy;
/// without that copy the enclave still refuses.
#[test]
fn a_changed_tmkms_toml_is_named_by_the_runner_and_refused_by_the_enclave() {
    let (kms, _listener, _) = home(Dialect::V0_38, &[]);
    let text = std::fs::read_to_string(&kms.config).unwrap();
    let changed = text.replace(
        &format!("chain_id = \"{CHAIN}\""),
        "chain_id = \"another-chain\"",
    );
    assert_ne!(text, changed);
    std::fs::write(&kms.config, &changed).unwrap();
    for command in ["start", "pubkey"] {
        let err = run_fails(&[command, "-c", kms.config_str()]);
        assert!(
            err.contains(&format!("chain_id is \"another-chain\", bound \"{CHAIN}\""))
                && err.contains("init"),
            "{command}: {err}"
        );
    }
    let copy = Config::load(&kms.config)
        .unwrap()
        .consensus_key_path
        .with_extension("policy.json");
    std::fs::remove_file(copy).unwrap();
    let out = kms.start_within(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bound to another policy at init"), "{err}");
    std::fs::write(&kms.config, text).unwrap();
    kms.pubkey();
}

/// With sign-bytes allowed at init (v1), a sign-bytes request carrying a
/// canonical vote, proposal or vote extension — of this chain or any other —
/// is refused; other bytes are signed.
#[test]
fn sign_bytes_never_signs_a_consensus_message_of_any_chain() {
    let (kms, listener, pubkey) = home(Dialect::V1, &["danger_allow_sign_bytes = true"]);
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no connection:\n{}", kms.log()));
    let vote = prevote(5, b"v");
    let precommit = VoteSpec::precommit(5, 0, Some(BlockIdSpec::from_seed(b"v")))
        .with_extension(b"ext".to_vec());
    let proposal = ProposalSpec::new(5, 0, Some(BlockIdSpec::from_seed(b"p")));
    for chain in [CHAIN, "another-chain"] {
        for (what, bytes) in [
            ("vote", vote_sign_bytes(chain, &vote).unwrap()),
            ("proposal", proposal_sign_bytes(chain, &proposal).unwrap()),
            (
                "vote extension",
                extension_sign_bytes(chain, &precommit).unwrap(),
            ),
        ] {
            let answer = conn.sign_bytes(&bytes).unwrap();
            let Err(refusal) = answer else {
                panic!("{chain}: signed a canonical {what} through sign-bytes");
            };
            assert!(
                refusal.description.contains(what),
                "{chain} {what}: {refusal:?}"
            );
        }
    }
    let signature = conn.sign_bytes(b"hello, not a vote").unwrap().unwrap();
    verify_signature(&pubkey, b"hello, not a vote", &signature).unwrap();
    // The vote itself still goes through the guard.
    let signed = conn.sign_vote(CHAIN, &vote, false).unwrap().unwrap();
    verify_vote(&pubkey, CHAIN, &vote, &signed, Dialect::V1, false).unwrap();
}
