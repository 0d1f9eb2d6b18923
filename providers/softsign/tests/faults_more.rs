//! Fault injection beyond SIGKILL, on the real binary against the node
//! simulator: damaged state files, full disks, clock jumps and hostile or
//! erratic nodes. Expected throughout: clear errors naming what to fix, no
//! conflicting signature, no lost state, bounded memory and file
//! descriptors, and a signer that serves the next connection.
//!
//! Tests that mount a tmpfs need root (CI runs as root) and say so when
//! mounting fails.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{accept, error_line, Guard, Kms};
use tmkms_light::state::file::{slot_offset, FileStore, FILE_LEN};
use tmkms_light::state::record::{decode_slot, encode_slot, SLOT_LEN};
use tmkms_light::types::{Height, Position, Round, SignState, Signature, Step};
use tmkms_node_sim::codec::{
    decode_response, encode_frame, encode_request, FrameBuffer, Request, Response,
};
use tmkms_node_sim::home::SignerHome;
use tmkms_node_sim::{
    codes, verify_vote, vote_sign_bytes, BlockIdSpec, Dialect, NodeListener, SignerConn, VoteSpec,
};

const CHAIN: &str = "faults-chain";
const MIB: u64 = 1024;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A signer home dialing a Unix socket in its own directory.
fn home() -> (Kms, NodeListener) {
    let dir = tempfile::tempdir().unwrap();
    let listener = NodeListener::bind_unix(dir.path().join("node.sock"), Dialect::V0_38).unwrap();
    let kms = Kms::init_in(dir, CHAIN, &listener.local_addr(), "v0.38", &[]);
    (kms, listener)
}

fn prevote(h: i64, seed: &[u8]) -> VoteSpec {
    VoteSpec::prevote(h, 0, Some(BlockIdSpec::from_seed(seed)))
}

fn precommit(h: i64, seed: &[u8]) -> VoteSpec {
    VoteSpec::precommit(h, 0, Some(BlockIdSpec::from_seed(seed)))
}

/// Sign `vote`, verify what came back, and return it.
fn sign_ok(
    conn: &mut SignerConn,
    vote: &VoteSpec,
    pubkey: &[u8; 32],
) -> tmkms_node_sim::SignedVote {
    let signed = conn
        .sign_vote(CHAIN, vote, false)
        .expect("connection stays open")
        .unwrap_or_else(|e| panic!("refused {vote:?}: {e:?}"));
    verify_vote(pubkey, CHAIN, vote, &signed, conn.dialect(), false).expect("signature verifies");
    signed
}

fn refused(conn: &mut SignerConn, vote: &VoteSpec) -> i32 {
    match conn
        .sign_vote(CHAIN, vote, false)
        .expect("connection stays open")
    {
        Ok(_) => panic!("signed {vote:?}, which must be refused"),
        Err(e) => e.code,
    }
}

fn position(h: u32, step: Step) -> Position {
    Position {
        height: Height::from(h),
        round: Round::from(0u16),
        step,
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Wait up to `within` for `child` to exit.
fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Start the signer, expect it to exit with an error before it dials the
/// node, and return what it logged.
fn start_expecting_refusal(kms: &Kms, listener: &NodeListener) -> String {
    let before = kms.log().len();
    let mut child = kms.spawn();
    let Some(status) = wait_exit(&mut child, Duration::from_secs(10)) else {
        common::kill(&mut child);
        panic!("the signer started on a bad state file:\n{}", kms.log());
    };
    assert!(!status.success(), "exit status {status}");
    assert!(
        listener.accept(Duration::from_millis(50)).is_err(),
        "the signer dialed the node although it refused to start"
    );
    kms.log()[before..].to_owned()
}

/// Replace `key = <old>` in the config (first occurrence).
fn set_config(kms: &Kms, key: &str, value: &str) {
    let text = fs::read_to_string(&kms.config).unwrap();
    let mut done = false;
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            if !done && line.starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(done, "no `{key} =` line in the config");
    fs::write(&kms.config, edited.join("\n") + "\n").unwrap();
}

/// Run `mount` (needs root).
fn mount_tmpfs(at: &Path, size: &str) -> Mount {
    fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs root to mount a small tmpfs (mount -t tmpfs -o size={size}); run the suite as root"
    );
    Mount(at.to_owned())
}

/// Unmounts when dropped.
struct Mount(PathBuf);

impl Mount {
    fn remount(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remounting the tmpfs at {} failed", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fill the filesystem holding `dir` until it reports ENOSPC.
fn fill_disk(dir: &Path) {
    let mut filler = fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0xAAu8; 4096];
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = filler.sync_all();
    // Proof that the disk is full: not even one more byte fits.
    let probe = fs::write(dir.join("probe"), b"x");
    assert_eq!(
        probe.as_ref().err().and_then(std::io::Error::raw_os_error),
        Some(libc::ENOSPC),
        "the disk is not full: {probe:?}"
    );
}

/// The log without terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Damaged state files
// ---------------------------------------------------------------------------

#[test]
fn garbage_state_file_refuses_to_start_and_names_the_file() {
    let (kms, listener) = home();
    let state = kms.state_path();
    let mut random = vec![0u8; FILE_LEN as usize];
    for (i, b) in random.iter_mut().enumerate() {
        // Deterministic noise; no valid record can come out of it.
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0];
    }
    let json = br#"{"height":"100","round":0,"step":3,"signature":null,"signbytes":null}"#;
    let cases: [(&str, Vec<u8>); 3] = [
        ("random bytes", random),
        ("zeros", vec![0u8; FILE_LEN as usize]),
        ("a JSON state file", json.to_vec()),
    ];
    for (what, bytes) in cases {
        fs::write(&state, &bytes).unwrap();
        let log = start_expecting_refusal(&kms, &listener);
        assert!(
            log.contains(state.to_str().unwrap()),
            "{what}: the error names the state file:\n{log}"
        );
        assert!(
            log.contains("corrupt"),
            "{what}: says it is corrupt:\n{log}"
        );
        assert_eq!(
            fs::read(&state).unwrap(),
            bytes,
            "{what}: file left as it was"
        );
    }
}

#[test]
fn truncated_state_file_refuses_to_start_at_every_length_of_interest() {
    let (kms, listener) = home();
    let pubkey = kms.pubkey();
    {
        let mut signer = Guard(kms.spawn());
        let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
        for h in 1..=3 {
            sign_ok(&mut conn, &precommit(h, b"t"), &pubkey);
        }
    }
    let state = kms.state_path();
    let good = fs::read(&state).unwrap();
    let slot = SLOT_LEN;
    let stride = slot_offset(1).unwrap() as usize;
    for len in [
        0,
        1,
        slot - 1,
        slot,
        stride,
        stride + slot,
        FILE_LEN as usize - 1,
    ] {
        fs::write(&state, &good[..len]).unwrap();
        let log = start_expecting_refusal(&kms, &listener);
        assert!(
            log.contains(state.to_str().unwrap())
                && log.contains(&format!("it is {len} bytes long")),
            "length {len}: the error names the file and its length:\n{log}"
        );
        assert!(
            log.contains("truncated"),
            "length {len}: says truncated:\n{log}"
        );
        assert_eq!(
            fs::read(&state).unwrap().len(),
            len,
            "length {len}: not repaired behind our back"
        );
    }
    // One byte too many is as wrong as one too few.
    let mut long = good.clone();
    long.push(0);
    fs::write(&state, &long).unwrap();
    start_expecting_refusal(&kms, &listener);

    // The intact file starts again where it was.
    fs::write(&state, &good).unwrap();
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    assert_eq!(
        refused(&mut conn, &precommit(3, b"other")),
        codes::DOUBLE_SIGN
    );
    sign_ok(&mut conn, &precommit(4, b"t"), &pubkey);
}

/// A power cut in the middle of a state write leaves that slot torn. The
/// write was never acknowledged, so no signature for it left the signer:
/// start falls back to the other slot (the last acknowledged state), warns,
/// and may sign at the torn record's position — nothing was released there.
/// Everything that *was* released stays protected.
#[test]
fn torn_write_falls_back_to_the_last_acknowledged_state() {
    let (kms, listener) = home();
    let pubkey = kms.pubkey();
    let last = precommit(3, b"released");
    let released = {
        let mut signer = Guard(kms.spawn());
        let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
        for h in 1..=2 {
            sign_ok(&mut conn, &prevote(h, b"released"), &pubkey);
            sign_ok(&mut conn, &precommit(h, b"released"), &pubkey);
        }
        sign_ok(&mut conn, &prevote(3, b"released"), &pubkey);
        sign_ok(&mut conn, &last, &pubkey)
    }; // SIGKILL
    let state_path = kms.state_path();
    let acknowledged = fs::read(&state_path).unwrap();

    // Which slot is newest, and which one the next write would overwrite.
    let slot_bytes = |image: &[u8], i: usize| {
        let at = slot_offset(i).unwrap() as usize;
        image[at..at + SLOT_LEN].to_vec()
    };
    let decoded: Vec<_> = (0..2)
        .map(|i| decode_slot(&slot_bytes(&acknowledged, i)))
        .collect();
    let (newest, seq) = match (&decoded[0], &decoded[1]) {
        (Ok((s0, _)), Ok((s1, _))) if s1 > s0 => (1, *s1),
        (Ok((s0, _)), _) => (0, *s0),
        other => panic!("state file after a clean run: {other:?}"),
    };
    let target = 1 - newest;
    assert_eq!(
        FileStore::peek(&state_path).unwrap().position,
        position(3, Step::Precommit)
    );

    // The write that was cut short: a prevote at height 4 for block "torn".
    let torn_vote = prevote(4, b"torn");
    let torn_state = SignState {
        position: position(4, Step::Prevote),
        sign_bytes: vote_sign_bytes(CHAIN, &torn_vote).unwrap(),
        signature: Some(Signature([0x55; 64])),
    };
    let new_record = encode_slot(seq + 1, &torn_state).unwrap();
    let old_record = slot_bytes(&acknowledged, target);

    // Torn at several points, front-to-back and back-to-front (drives and
    // kernels make no promise about the order sectors land in).
    let mut cases = Vec::new();
    for cut in [24, 100, 256, 400, 500, 511] {
        let mut front = old_record.clone();
        front[..cut].copy_from_slice(&new_record[..cut]);
        cases.push((format!("first {cut} bytes new"), front));
        let mut back = old_record.clone();
        back[cut..].copy_from_slice(&new_record[cut..]);
        cases.push((format!("bytes from {cut} new"), back));
    }
    let mut bit_flip = new_record.to_vec();
    bit_flip[300] ^= 0x10;
    cases.push(("whole record, one bit flipped".into(), bit_flip));

    for (what, torn) in cases {
        assert!(
            decode_slot(&torn).is_err(),
            "{what}: the torn slot must not decode"
        );
        let mut image = acknowledged.clone();
        let at = slot_offset(target).unwrap() as usize;
        image[at..at + SLOT_LEN].copy_from_slice(&torn);
        fs::write(&state_path, &image).unwrap();

        let log_before = kms.log().len();
        let mut signer = Guard(kms.spawn());
        let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: signer did not start:\n{}", kms.log()));
        let log = strip_ansi(&kms.log()[log_before..]);
        assert!(
            log.contains("one state slot is invalid")
                && log.contains(&format!("bad_slot={target}")),
            "{what}: warns about the torn slot:\n{log}"
        );
        assert_eq!(
            FileStore::peek(&state_path).unwrap().position,
            position(3, Step::Precommit),
            "{what}: the last acknowledged state is in force"
        );
        // What was released is protected: the same precommit replays the
        // same signature, a different one is refused.
        let again = sign_ok(&mut conn, &last, &pubkey);
        assert_eq!(again.signature, released.signature, "{what}: replay");
        assert_eq!(
            refused(&mut conn, &precommit(3, b"conflict")),
            codes::DOUBLE_SIGN
        );
        assert_eq!(
            refused(&mut conn, &prevote(3, b"conflict")),
            codes::DOUBLE_SIGN
        );
        // Nothing was released for the torn record, so height 4 is free —
        // even a different block than the torn record's.
        sign_ok(&mut conn, &prevote(4, b"other block"), &pubkey);
        assert_eq!(kms.state().position, position(4, Step::Prevote), "{what}");
        drop(conn);
        drop(signer);
        // The file is valid again: both slots decode.
        let healed = fs::read(&state_path).unwrap();
        assert!(
            (0..2).all(|i| decode_slot(&slot_bytes(&healed, i)).is_ok()),
            "{what}: the next write replaced the torn slot"
        );
    }
}

// ---------------------------------------------------------------------------
// Full disk
// ---------------------------------------------------------------------------

/// `init` of a home whose config goes to `config`, for the node at `address`.
fn init_at(config: &Path, address: &str) -> std::process::Output {
    let config = config.to_str().unwrap();
    common::run(&[
        "init",
        "-c",
        config,
        "--chain-id",
        CHAIN,
        "--address",
        address,
    ])
}

/// `init` on a disk that fills up part-way: whatever step runs out of space,
/// the error is clear, and nothing is left behind that would stop a retry
/// once there is room.
#[test]
fn init_on_a_full_disk_fails_cleanly_and_can_be_retried() {
    // Each size fails at a different step of init (key, identity key, state
    // file, config); 24k is enough for all of it.
    for size in ["4k", "8k", "12k", "16k", "20k"] {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        let mount = mount_tmpfs(&mnt, size);
        let config = mnt.join("home/tmkms.toml");
        let out = init_at(&config, "unix:///run/node.sock");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{size}: init succeeded on a full disk?"
        );
        let error =
            error_line(&stderr).unwrap_or_else(|| panic!("{size}: no error line:\n{stderr}"));
        assert!(
            error.contains(mnt.to_str().unwrap()),
            "{size}: the error names the file: {error}"
        );
        assert_eq!(
            error.matches("No space left on device").count(),
            1,
            "{size}: the error states the cause, once: {error}"
        );
        eprintln!("tmpfs of {size}: {error}");
        // Nothing that would block a retry is left.
        for rel in [
            "home/tmkms.toml",
            "home/secrets/consensus.key",
            "home/secrets/id.key",
            "home/state/consensus.state",
        ] {
            assert!(
                !mnt.join(rel).exists(),
                "{size}: a failed init left {rel} behind:\n{stderr}"
            );
        }
        // Room again: the same command succeeds.
        mount.remount("1m");
        let out = init_at(&config, "unix:///run/node.sock");
        assert!(
            out.status.success(),
            "{size}: retry after freeing space failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown = common::run(&["pubkey", "-c", config.to_str().unwrap()]);
        assert!(shown.status.success());
        drop(mount);
    }
}

/// The state is overwritten in place, so a disk that fills up while the
/// signer runs — or that is full when it starts — does not stop signing.
#[test]
fn full_disk_while_running_keeps_signing() {
    // Declared in this order so that they are dropped the other way round:
    // the signer's log directory, then the tmpfs, then its mount point.
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    let _mount = mount_tmpfs(&mnt, "256k");
    let dir = tempfile::tempdir().unwrap();
    let listener = NodeListener::bind_unix(dir.path().join("node.sock"), Dialect::V0_38).unwrap();
    let config = mnt.join("home/tmkms.toml");
    let out = init_at(&config, &listener.local_addr());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Home on the tmpfs; the log stays outside it.
    let kms = Kms {
        home: SignerHome { dir, config },
    };
    let state_path = mnt.join("home/state/consensus.state");
    let pubkey = kms.pubkey();

    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    for h in 1..=5 {
        sign_ok(&mut conn, &prevote(h, b"b"), &pubkey);
    }
    fill_disk(&mnt);
    for h in 6..=105 {
        sign_ok(&mut conn, &prevote(h, b"b"), &pubkey);
        sign_ok(&mut conn, &precommit(h, b"b"), &pubkey);
    }
    assert_eq!(
        FileStore::peek(&state_path).unwrap().position,
        position(105, Step::Precommit)
    );
    drop(conn);
    drop(signer);

    // Start on the full disk: the lock file and state exist; still signs.
    let mut signer = Guard(kms.spawn());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("signer did not start on a full disk:\n{}", kms.log()));
    assert_eq!(
        refused(&mut conn, &precommit(105, b"other")),
        codes::DOUBLE_SIGN
    );
    sign_ok(&mut conn, &prevote(106, b"b"), &pubkey);
    assert_eq!(
        FileStore::peek(&state_path).unwrap().position,
        position(106, Step::Prevote)
    );
    assert!(
        fs::write(mnt.join("probe2"), b"x").is_err(),
        "disk still full"
    );
    drop(conn);
    drop(signer);
}

// ---------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------

/// Moves CLOCK_REALTIME (and gettimeofday/time) by the number of seconds
/// written in $TMKMS_CLOCK_FILE, re-read on every call.
const CLOCK_SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long offset_secs(void) {
    const char *path = getenv("TMKMS_CLOCK_FILE");
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long v = 0;
    if (fscanf(f, "%ld", &v) != 1) v = 0;
    fclose(f);
    return v;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset_secs();
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    (void)tz;
    return r;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
"#;

fn build_clock_shim(dir: &Path) -> PathBuf {
    let src = dir.join("clock_shim.c");
    fs::write(&src, CLOCK_SHIM).unwrap();
    let out = dir.join("clock_shim.so");
    common::build_preload_shim(&src, &out);
    out
}

/// Years of the RFC 3339 timestamps (`YYYY-MM-DDT`) in a log.
fn years_in(log: &str) -> Vec<i64> {
    let bytes = log.as_bytes();
    let mut years = Vec::new();
    for i in 0..bytes.len().saturating_sub(11) {
        let w = &bytes[i..i + 11];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        if digits(0..4)
            && w[4] == b'-'
            && digits(5..7)
            && w[7] == b'-'
            && digits(8..10)
            && w[10] == b'T'
        {
            years.push(std::str::from_utf8(&w[0..4]).unwrap().parse().unwrap());
        }
    }
    years
}

/// The signer has no clock in its signing path. Its only contact with time
/// in the protocol is the timestamp inside votes and proposals, which the
/// guard compares for equality (a replay) and never against a clock. So:
/// the host's wall clock jumping back ten years or forward thirty changes
/// nothing, requests whose timestamps go backwards at increasing heights are
/// signed, and a vote replayed with an older timestamp gets the stored
/// timestamp and signature back.
#[test]
fn wall_clock_jumps_and_backward_timestamps_do_not_matter() {
    let (kms, listener) = home();
    let pubkey = kms.pubkey();
    let shim = build_clock_shim(kms.dir.path());
    let clock = kms.path("clock-offset");
    fs::write(&clock, "0").unwrap();
    let mut signer = Guard(kms.spawn_with_env(&[
        ("LD_PRELOAD", shim.to_str().unwrap()),
        ("TMKMS_CLOCK_FILE", clock.to_str().unwrap()),
    ]));
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    let base = 1_750_000_000i64;
    let at = |h: i64, secs: i64| precommit(h, b"c").with_timestamp(secs, 0);

    sign_ok(&mut conn, &at(1, base), &pubkey);
    let year = 365 * 86_400i64;
    fs::write(&clock, (-10 * year).to_string()).unwrap();
    // Timestamps going backwards as heights go up: all signed.
    for h in 2..=6 {
        sign_ok(&mut conn, &at(h, base - h * 1000), &pubkey);
    }
    fs::write(&clock, (30 * year).to_string()).unwrap();
    let stored = sign_ok(&mut conn, &at(7, base - 10_000), &pubkey);
    // The same vote with an even older timestamp: the stored timestamp and
    // signature come back.
    let replay = sign_ok(&mut conn, &at(7, base - 50_000), &pubkey);
    assert_eq!(
        replay.timestamp,
        (base - 10_000, 0),
        "the stored timestamp is returned"
    );
    assert_eq!(replay.signature, stored.signature);
    // ... and one with a newer timestamp too.
    let replay = sign_ok(&mut conn, &at(7, base + 50_000), &pubkey);
    assert_eq!(replay.timestamp, (base - 10_000, 0));
    assert_eq!(
        refused(&mut conn, &precommit(7, b"other")),
        codes::DOUBLE_SIGN
    );
    fs::write(&clock, "0").unwrap();
    sign_ok(&mut conn, &at(8, 0), &pubkey);
    assert_eq!(kms.state().position, position(8, Step::Precommit));

    // The jumps happened: the log carries timestamps from both ends.
    let now_year = 1970
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            / year;
    let years = years_in(&kms.log());
    assert!(
        years.iter().any(|&y| y <= now_year - 9) && years.iter().any(|&y| y >= now_year + 29),
        "the clock shim did not take effect (years seen in the log: {years:?})"
    );
}

// ---------------------------------------------------------------------------
// Hostile and erratic nodes
// ---------------------------------------------------------------------------

/// A node that sends a length prefix and a few bytes, then nothing: the
/// signer gives up after its read timeout, frees what it allocated for the
/// message, and serves the next connection.
#[test]
fn stalled_node_is_dropped_after_the_read_timeout() {
    let (kms, listener) = home();
    set_config(&kms, "timeout_secs", "4");
    let mut signer = Guard(kms.spawn());
    let pid = signer.0.id();
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), kms.pubkey());
    let rss_before = rss_kib(pid);

    // Declared 100 bytes, then the largest message accepted (the signer
    // makes room for it as soon as the prefix is in).
    for declared in [100u64, 1_114_112] {
        let mut frame = Vec::new();
        let mut v = declared;
        while v >= 0x80 {
            frame.push((v as u8) | 0x80);
            v >>= 7;
        }
        frame.push(v as u8);
        frame.extend_from_slice(&[0x1a, 0x05, 0x0a]);
        conn.send_raw(&frame).unwrap();
        let stalled = Instant::now();
        assert!(
            conn.is_closed_by_peer(Duration::from_secs(10)),
            "declared {declared}: the signer kept a stalled connection"
        );
        let after = stalled.elapsed();
        assert!(
            after >= Duration::from_millis(3500) && after < Duration::from_secs(8),
            "declared {declared}: dropped after {after:?}, expected about 4 s"
        );
        eprintln!("stalled node (declared {declared} bytes) dropped after {after:?}");
        // The next connection is served.
        conn =
            accept(&listener, &mut signer.0, Duration::from_secs(10)).expect("signer reconnects");
        assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), kms.pubkey());
    }
    let rss_after = rss_kib(pid);
    eprintln!("RSS {rss_before} KiB before, {rss_after} KiB after the stalls");
    assert!(
        rss_after < rss_before + 4 * MIB,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        kms.log().contains("timed out") || kms.log().contains("Resource temporarily unavailable"),
        "the log says why the connection ended:\n{}",
        kms.log()
    );
}

/// 50,000 pings written as fast as the socket takes them, without waiting
/// for answers: every one is answered, in order, and memory stays flat.
#[test]
fn ping_flood_is_answered_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("node.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let kms = Kms::init_in(
        dir,
        CHAIN,
        &format!("unix://{}", sock.display()),
        "v0.38",
        &[],
    );
    let mut signer = Guard(kms.spawn());
    let pid = signer.0.id();
    let stream = accept_raw(&listener, &mut signer.0);
    const PINGS: usize = 50_000;
    let ping = encode_frame(&encode_request(Dialect::V0_38, &Request::Ping).unwrap());

    // Warm up (one round trip), then measure.
    let mut reader = stream.try_clone().unwrap();
    let mut rx = FrameBuffer::new(64 * 1024);
    (&stream).write_all(&ping).unwrap();
    read_responses(&mut reader, &mut rx, 1);
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut writer = stream.try_clone().unwrap();
    let flood = {
        let ping = ping.clone();
        std::thread::spawn(move || {
            let burst: Vec<u8> = ping
                .iter()
                .copied()
                .cycle()
                .take(ping.len() * 1000)
                .collect();
            for _ in 0..PINGS / 1000 {
                writer.write_all(&burst).unwrap();
            }
        })
    };
    read_responses(&mut reader, &mut rx, PINGS);
    flood.join().unwrap();
    let took = started.elapsed();
    let rss_after = rss_kib(pid);
    eprintln!(
        "{PINGS} pings answered in {took:?} ({:.0}/s); RSS {rss_before} -> {rss_after} KiB",
        PINGS as f64 / took.as_secs_f64()
    );
    assert!(
        rss_after < rss_before + 4 * MIB,
        "memory grew from {rss_before} to {rss_after} KiB"
    );

    // Still a working connection.
    let mut conn = SignerConn::from_unix_stream(stream, Dialect::V0_38).unwrap();
    sign_ok(&mut conn, &precommit(1, b"p"), &kms.pubkey());
}

fn accept_raw(listener: &UnixListener, child: &mut Child) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                stream
                    .set_write_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "signer did not connect");
                assert!(child.try_wait().unwrap().is_none(), "signer exited");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Read `count` responses and check each is a ping response.
fn read_responses(reader: &mut UnixStream, rx: &mut FrameBuffer, count: usize) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut seen = 0;
    while seen < count {
        while let Some(body) = rx.next_frame().unwrap() {
            match decode_response(Dialect::V0_38, &body).unwrap() {
                Response::Ping => seen += 1,
                other => panic!("expected a ping response, got {}", other.name()),
            }
        }
        if seen >= count {
            break;
        }
        let n = reader.read(&mut chunk).unwrap();
        assert!(n > 0, "signer closed the connection after {seen} pings");
        rx.push(&chunk[..n]);
    }
    assert_eq!(seen, count, "more responses than requests");
}

/// Twelve sentries (twelve connections of one signer, one guard) whose nodes
/// hang up after every request, so the signer redials about a hundred times
/// a second. The nodes race conflicting precommits for the same heights.
/// Checked: at most one block signed per height, the durable state matches
/// the highest signature, no file descriptor or memory growth, and the
/// signer serves a node that comes back afterwards.
#[test]
fn reconnect_storm_with_a_disconnect_after_every_request() {
    const SENTRIES: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let listeners: Vec<NodeListener> = (0..SENTRIES)
        .map(|i| {
            NodeListener::bind_unix(dir.path().join(format!("node{i}.sock")), Dialect::V0_38)
                .unwrap()
        })
        .collect();
    let kms = Kms::init_in(dir, CHAIN, &listeners[0].local_addr(), "v0.38", &[]);
    let mut text = fs::read_to_string(&kms.config).unwrap();
    for l in &listeners[1..] {
        text.push_str(&format!(
            "\n[[validator]]\naddress = \"{}\"\nprotocol_version = \"v0.38\"\n",
            l.local_addr()
        ));
    }
    fs::write(&kms.config, text).unwrap();
    let pubkey = kms.pubkey();
    let mut signer = Guard(kms.spawn());
    let pid = signer.0.id();
    // Let every connection thread come up before taking the baseline.
    let first = accept(&listeners[0], &mut signer.0, Duration::from_secs(10)).unwrap();
    drop(first);
    std::thread::sleep(Duration::from_millis(500));
    let fds_before = fd_count(pid);
    let rss_before = rss_kib(pid);

    let storm = Duration::from_secs(4);
    let started = Instant::now();
    let connections = Arc::new(AtomicU64::new(0));
    // Height → sign bytes signed there (by any sentry).
    let ledger: Arc<Mutex<HashMap<i64, Vec<u8>>>> = Arc::default();
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let connections = Arc::clone(&connections);
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let seed = format!("sentry {i}");
                while started.elapsed() < storm {
                    let Ok(mut conn) = listener.accept(Duration::from_millis(200)) else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::Relaxed);
                    // A new height every 50 ms; the sentries race for it.
                    let h = 1 + started.elapsed().as_millis() as i64 / 50;
                    let vote = precommit(h, seed.as_bytes());
                    match conn.sign_vote(CHAIN, &vote, false) {
                        Ok(Ok(signed)) => {
                            verify_vote(&pubkey, CHAIN, &vote, &signed, Dialect::V0_38, false)
                                .unwrap();
                            let bytes = vote_sign_bytes(CHAIN, &vote).unwrap();
                            let mut ledger = ledger.lock().unwrap();
                            let first = ledger.entry(h).or_insert_with(|| bytes.clone());
                            assert_eq!(
                                *first, bytes,
                                "two different precommits signed at height {h}"
                            );
                        }
                        Ok(Err(e)) => assert_eq!(e.code, codes::DOUBLE_SIGN, "{e:?}"),
                        Err(e) => panic!("sentry {i}: connection failed mid-request: {e}"),
                    }
                    conn.close();
                }
                listener
            })
        })
        .collect();
    let listeners: Vec<NodeListener> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = connections.load(Ordering::Relaxed);
    let rate = total as f64 / storm.as_secs_f64();
    let ledger = ledger.lock().unwrap().clone();
    let highest = *ledger.keys().max().expect("something was signed");
    eprintln!(
        "{total} connections in {storm:?} ({rate:.0}/s), {} heights signed, highest {highest}",
        ledger.len()
    );
    assert!(rate >= 60.0, "only {rate:.0} reconnects per second");
    assert_eq!(
        kms.state().position,
        position(highest as u32, Step::Precommit)
    );

    // Nodes gone: every connection must be closed again.
    drop(listeners);
    std::thread::sleep(Duration::from_millis(1500));
    let fds_after = fd_count(pid);
    let rss_after = rss_kib(pid);
    eprintln!("fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB");
    assert!(
        fds_after <= fds_before,
        "file descriptors leaked: {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after < rss_before + 8 * MIB,
        "memory grew from {rss_before} to {rss_after} KiB"
    );

    // A node coming back is served, and the guard remembers the storm.
    let listener = NodeListener::bind_unix(kms.path("node0.sock"), Dialect::V0_38).unwrap();
    let mut conn =
        accept(&listener, &mut signer.0, Duration::from_secs(10)).expect("signer reconnects");
    assert_eq!(
        refused(&mut conn, &precommit(highest, b"late conflict")),
        codes::DOUBLE_SIGN
    );
    sign_ok(&mut conn, &precommit(highest + 1, b"after"), &pubkey);
}

/// A length prefix of 2^40 bytes: the connection is dropped on the prefix
/// alone, before anything is allocated for it.
#[test]
fn oversize_length_prefix_is_dropped_before_allocating() {
    let (kms, listener) = home();
    let mut signer = Guard(kms.spawn());
    let pid = signer.0.id();
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    conn.ping().unwrap();
    let rss_before = rss_kib(pid);
    let mut prefix = Vec::new();
    let mut v = 1u64 << 40;
    while v >= 0x80 {
        prefix.push((v as u8) | 0x80);
        v >>= 7;
    }
    prefix.push(v as u8);
    prefix.extend_from_slice(&[0x1a; 64]);
    conn.send_raw(&prefix).unwrap();
    assert!(
        conn.is_closed_by_peer(Duration::from_secs(3)),
        "the signer kept a connection that announced a 1 TiB message"
    );
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + MIB,
        "RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(kms.log().contains("exceeds the limit"), "{}", kms.log());
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    assert_eq!(conn.pubkey(CHAIN).unwrap().unwrap(), kms.pubkey());
}

/// A vote extension sized so that the request is exactly `max_frame_bytes`
/// is signed, with a response under the node's 10 KiB cap (the extension is
/// not echoed); one byte more and the connection is dropped unsigned.
#[test]
fn extension_at_the_frame_limit_is_signed_and_one_byte_over_is_dropped() {
    const MAX_FRAME: usize = 1_114_112;
    let (kms, listener) = home();
    let pubkey = kms.pubkey();
    let mut signer = Guard(kms.spawn());
    let pid = signer.0.id();
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    conn.ping().unwrap();
    let rss_before = rss_kib(pid);

    // A precommit whose request body is exactly `body_len` bytes.
    let sized = |h: i64, body_len: usize| {
        let mut ext = body_len.saturating_sub(200);
        loop {
            let vote = precommit(h, b"x").with_extension(vec![0xE5; ext]);
            let request = Request::SignVote {
                vote: vote.to_raw(),
                chain_id: CHAIN.to_owned(),
                skip_extension_signing: false,
            };
            let body = encode_request(Dialect::V0_38, &request).unwrap();
            match body.len().cmp(&body_len) {
                std::cmp::Ordering::Equal => return (vote, body),
                std::cmp::Ordering::Less => ext += body_len - body.len(),
                std::cmp::Ordering::Greater => ext -= body.len() - body_len,
            }
        }
    };

    let (vote, body) = sized(1, MAX_FRAME);
    assert!(vote.extension.len() > 1024 * 1024, "a 1 MiB+ extension");
    let signed = sign_ok(&mut conn, &vote, &pubkey);
    assert!(signed.extension_signature.is_some());
    assert_eq!(signed.echoed_extension_len, 0, "extension not echoed");
    assert!(
        signed.raw_len <= 10 * 1024,
        "response of {} bytes",
        signed.raw_len
    );
    eprintln!(
        "request of {} bytes (extension {}) signed; response {} bytes",
        body.len(),
        vote.extension.len(),
        signed.raw_len
    );

    let (_, body) = sized(2, MAX_FRAME + 1);
    // The signer may hang up while the body is still being written.
    let _ = conn.send_raw(&encode_frame(&body));
    assert!(
        conn.is_closed_by_peer(Duration::from_secs(5)),
        "an over-limit request did not drop the connection"
    );
    assert!(kms.log().contains("exceeds the limit"), "{}", kms.log());
    assert_eq!(
        kms.state().position,
        position(1, Step::Precommit),
        "nothing signed at height 2"
    );

    // Reconnect: the same vote at the limit again works, memory is back.
    let mut conn = accept(&listener, &mut signer.0, Duration::from_secs(10)).unwrap();
    let (vote, _) = sized(2, MAX_FRAME);
    sign_ok(&mut conn, &vote, &pubkey);
    conn.ping().unwrap();
    let rss_after = rss_kib(pid);
    eprintln!("RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after < rss_before + 4 * MIB,
        "RSS {rss_before} -> {rss_after} KiB"
    );
}
