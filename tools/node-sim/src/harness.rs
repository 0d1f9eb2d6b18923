//! Process helpers for integration tests that run a real signer binary
//! against the simulated node: a listener in the test's own directory (or on
//! port 0), accepting the signer's connection while watching that its
//! process is still alive, killing the process even when a test fails, and
//! the checked signature a test asks for to see that a signer is up.
//!
//! They live here, next to the node, so that every provider's test suite
//! drives its signer the same way instead of keeping its own copy.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use crate::conn::{NodeListener, SignerConn};
use crate::dialect::Dialect;
use crate::error::SimError;
use crate::spec::{BlockIdSpec, SignedVote, VoteSpec};
use crate::verify::verify_vote;
use crate::RemoteError;

/// How long one accept attempt waits before the child is checked again.
const ACCEPT_POLL: Duration = Duration::from_millis(200);
/// How often [`wait_exit`] looks at the child.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// The instance metadata service address every test gives the signers: a
/// closed loopback port. The Nitro helper falls back to IMDS when it has no
/// credentials, and its default (169.254.169.254) would leave the machine.
pub const LOOPBACK_IMDS_ENDPOINT: &str = "http://127.0.0.1:1";

/// Environment variables through which a signer could reach AWS services
/// outside loopback (the ambient configuration of whoever runs the tests).
const AMBIENT_AWS_VARS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// Keeps `cmd` on loopback whatever the caller's environment holds: the
/// metadata service pinned to [`LOOPBACK_IMDS_ENDPOINT`], ambient AWS
/// endpoint and profile settings removed. Every provider's test harness
/// builds its signer commands through this.
pub fn loopback_only(cmd: &mut Command) -> &mut Command {
    for var in AMBIENT_AWS_VARS {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", LOOPBACK_IMDS_ENDPOINT)
}

/// A listener the signer can dial: a Unix socket `node.sock` in `dir`, or
/// TCP (with SecretConnection) on 127.0.0.1, port 0 — never a shared
/// address, so tests can run in parallel.
pub fn listen(dir: &Path, tcp: bool, dialect: Dialect) -> std::io::Result<NodeListener> {
    if tcp {
        NodeListener::bind_tcp("127.0.0.1:0", dialect)
    } else {
        NodeListener::bind_unix(dir.join("node.sock"), dialect)
    }
}

/// Accepts the signer's connection within `within`, giving up early (with
/// `None`) as soon as `child` — the process expected to connect — has
/// exited, so a signer that dies at start-up costs no full timeout.
///
/// A child whose status cannot be read counts as exited: it can no longer
/// be waited for.
pub fn accept_or_exit(
    listener: &NodeListener,
    child: &mut Child,
    within: Duration,
) -> Option<SignerConn> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match listener.accept(ACCEPT_POLL) {
            Ok(conn) => return Some(conn),
            Err(_) => {
                if !matches!(child.try_wait(), Ok(None)) {
                    return None;
                }
            }
        }
    }
    None
}

/// Kills `child` (SIGKILL) and reaps it; a child that has already exited is
/// only reaped.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILLs the process `pid` with the system's `kill -9`, without waiting
/// for or reaping it — for a killer thread that must not own the `Child`.
///
/// The caller must not have reaped `pid` yet (otherwise the number may name
/// another process by now).
pub fn sigkill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Waits up to `within` for `child` to exit; `None` if it is still running
/// (or its status cannot be read).
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(EXIT_POLL),
            _ => return None,
        }
    }
}

/// Owns a child process and kills it when dropped, so a failing (panicking)
/// test leaves no signer behind holding sockets or files.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill(&mut self.0);
    }
}

/// Whether `pid` is a live process: not a zombie, not dead (from
/// `/proc/<pid>/stat`, so Linux only; a pid without an entry is not alive).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the ")" that ends the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Runs `probe` every `every` until it finds nothing or `within` has
/// passed; returns what it found last (empty when everything is gone) —
/// for "no process of … is left" checks.
pub fn left_after<T>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Vec<T>,
) -> Vec<T> {
    let deadline = Instant::now() + within;
    loop {
        let left = probe();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(every);
    }
}

/// The first line of `output` that reports an error, the way the signers'
/// command lines do (`error: …`).
pub fn error_line(output: &str) -> Option<&str> {
    output.lines().find(|l| l.starts_with("error: "))
}

/// What an argument parser's refusal looks like in a signer's stderr (with
/// exit code 2): clap's usage error.
const USAGE_ERROR_MARKS: [&str; 3] = ["unexpected argument", "unrecognized", "Usage:"];

/// Checks that the signer's argument parser accepted `args` (whatever the
/// command did then), for tests of documented command lines; fails the
/// calling test, with the signer's stderr, on a usage error.
pub fn assert_parsed(args: &[&str], out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{args:?} was refused:\n{stderr}"
    );
    for mark in USAGE_ERROR_MARKS {
        assert!(
            !stderr.contains(mark),
            "{args:?} was refused ({mark}):\n{stderr}"
        );
    }
}

/// `out` of `args`, parsed and successful: its stdout.
pub fn parsed_ok(args: &[&str], out: &Output) -> String {
    assert_parsed(args, out);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `out` of `args`, parsed and failed: its stderr.
pub fn parsed_failure(args: &[&str], out: &Output) -> String {
    assert_parsed(args, out);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asks the signer for the prevote at `height` (round 0, for the block of
/// [`BlockIdSpec::for_height`]) and checks its signature against `pubkey`;
/// returns the signed vote. Fails the calling test when the signer does not
/// answer, refuses, or signs wrongly.
// A test's assertion: failing the calling test is this function's job.
#[allow(clippy::panic)]
pub fn sign_checked_prevote(
    conn: &mut SignerConn,
    chain: &str,
    pubkey: &[u8; 32],
    dialect: Dialect,
    height: i64,
) -> SignedVote {
    let vote = VoteSpec::prevote(height, 0, Some(BlockIdSpec::for_height(height)));
    let signed = match conn.sign_vote(chain, &vote, false) {
        Ok(Ok(signed)) => signed,
        Ok(Err(refused)) => panic!("the prevote at height {height} was refused: {refused}"),
        Err(e) => panic!("no answer to the prevote at height {height}: {e}"),
    };
    if let Err(e) = verify_vote(pubkey, chain, &vote, &signed, dialect, false) {
        panic!("the prevote signed at height {height} does not verify: {e}");
    }
    signed
}

/// Signs every height of `heights` like a validator would: a proposal
/// (when `proposals`), a prevote and a precommit for one block, in that
/// order; fails the test on any refusal or missing answer.
#[allow(clippy::panic)] // a test helper: failing the test is its job
pub fn sign_heights(
    conn: &mut SignerConn,
    chain: &str,
    heights: std::ops::RangeInclusive<i64>,
    proposals: bool,
) {
    fn answered<T>(what: &str, height: i64, reply: Result<Result<T, RemoteError>, SimError>) {
        match reply {
            Ok(Ok(_)) => {}
            Ok(Err(refused)) => panic!("the {what} at height {height} was refused: {refused}"),
            Err(e) => panic!("no answer to the {what} at height {height}: {e}"),
        }
    }
    for height in heights {
        let block = Some(BlockIdSpec::for_height(height));
        if proposals {
            let proposal = crate::ProposalSpec::new(height, 0, block);
            answered("proposal", height, conn.sign_proposal(chain, &proposal));
        }
        for vote in [
            VoteSpec::prevote(height, 0, block),
            VoteSpec::precommit(height, 0, block),
        ] {
            answered("vote", height, conn.sign_vote(chain, &vote, false));
        }
    }
}

fn text_of(value: Option<&serde_json::Value>) -> Option<&str> {
    value.and_then(serde_json::Value::as_str)
}

/// A signer's stderr in `--log-format json`: checks that every line is one
/// JSON object with a timestamp and a level, and returns the `signed` lines
/// as (height, round, step, latency_us), in order.
#[allow(clippy::panic)] // a test helper: failing the test is its job
pub fn signed_json_lines(text: &str) -> Vec<(u64, u64, String, u64)> {
    let mut signed = Vec::new();
    for line in text.lines() {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(text_of(object.get("timestamp")).is_some(), "{line}");
        assert!(text_of(object.get("level")).is_some(), "{line}");
        let field = |name: &str| object.get("fields").and_then(|f| f.get(name));
        if text_of(field("message")) == Some("signed") {
            let number = |name: &str| {
                field(name)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or_else(|| panic!("{name} is not a number: {line}"))
            };
            signed.push((
                number("height"),
                number("round"),
                text_of(field("step")).unwrap_or_default().to_owned(),
                number("latency_us"),
            ));
        }
    }
    signed
}

/// The helpers under the short names every provider's test harness gives
/// them (`accept` gives up early when the child exits; `Guard` kills its
/// child when dropped), for a `pub use …::prelude::*` in its common module.
pub mod prelude {
    pub use super::{
        accept_or_exit as accept, error_line, is_alive, kill, left_after, listen, sigkill,
        sign_checked_prevote, wait_exit, ChildGuard as Guard,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_gives_up_when_the_child_exits() {
        let dir = tempfile::tempdir().unwrap();
        let listener = listen(dir.path(), false, Dialect::V0_38).unwrap();
        let mut child = Command::new("true").spawn().unwrap();
        let started = Instant::now();
        let conn = accept_or_exit(&listener, &mut child, Duration::from_secs(30));
        assert!(conn.is_none());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited {:?} for a dead child",
            started.elapsed()
        );
    }

    #[test]
    fn left_after_stops_once_nothing_is_left_and_else_reports_what_stayed() {
        let mut remaining = 3;
        let left = left_after(Duration::from_secs(5), Duration::ZERO, || {
            remaining -= 1;
            vec![(); remaining]
        });
        assert!(left.is_empty());
        assert_eq!(remaining, 0);

        let started = Instant::now();
        let within = Duration::from_millis(30);
        let left = left_after(within, Duration::from_millis(5), || vec![7]);
        assert_eq!(left, vec![7]);
        assert!(started.elapsed() >= within);
    }

    #[test]
    fn error_line_is_the_first_line_starting_with_error() {
        let output = "note: starting\nerror: no space left\nerror: again\n";
        assert_eq!(error_line(output), Some("error: no space left"));
        assert_eq!(error_line("  error: indented\nfine"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_a_reaped_one_is_not() {
        assert!(is_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn guard_kills_its_child_and_wait_exit_sees_it() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        drop(ChildGuard(child));
        // Reaped by the guard: no such process any more (or a zombie of
        // nobody): /proc has no live entry for it.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty(), "pid {pid} still there: {stat}");

        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(wait_exit(&mut sleeper, Duration::from_millis(50)).is_none());
        sigkill(sleeper.id());
        let status = wait_exit(&mut sleeper, Duration::from_secs(5)).expect("exited");
        assert!(!status.success());
    }
}
