//! The `launch-all` core: run the helper's long-lived processes (enclave, vsock proxy,
//! signer host…) as one unit.
//!
//! They are only useful together, so when any one exits the others are stopped and the
//! supervisor reports which one and how it ended, letting systemd (or an operator) restart
//! the whole set. SIGINT/SIGTERM to the supervisor stops everything cleanly. Each child runs
//! in its own process group, so a stop signal also reaches the processes it started itself
//! (a shell script's children, for instance) and a terminal's Ctrl-C reaches only the
//! supervisor, which then stops the children in order: SIGTERM to each group, SIGKILL to
//! what is left after the grace period. If the supervisor itself is killed with SIGKILL the
//! children survive it; that case needs a service manager's cgroup (systemd `KillMode`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;

/// Where forwarded output lines go.
pub type LineSink = Arc<Mutex<dyn Write + Send>>;

/// How often children and the shutdown flag are checked.
const POLL: Duration = Duration::from_millis(20);

/// How long to wait for output forwarders after all children are gone.
const FORWARDER_WAIT: Duration = Duration::from_secs(1);

/// Sets the returned flag on SIGINT or SIGTERM (instead of dying), for [`Supervisor::run`].
pub fn install_signal_handlers() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// How one child ended.
#[derive(Debug)]
pub struct ChildExit {
    /// The name given to [`Supervisor::child`].
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had to be killed with SIGKILL after ignoring SIGTERM for the grace period.
    pub killed: bool,
}

/// A normal end: a shutdown was requested and every child was stopped.
#[derive(Debug)]
pub struct Outcome {
    /// Every child, in the order they were added.
    pub stopped: Vec<ChildExit>,
}

/// Why supervision ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// A child could not be started; the ones already started were stopped.
    #[error("cannot start `{name}`: {source}")]
    Spawn {
        /// The child's name.
        name: String,
        /// The OS error (e.g. program not found).
        source: io::Error,
    },
    /// A child exited on its own; all others were stopped.
    #[error("`{name}` exited ({status}); stopped the other processes")]
    ChildExited {
        /// The child's name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// How each of the others was stopped.
        others: Vec<ChildExit>,
    },
    /// Waiting for a child failed (should not happen); all children were stopped.
    #[error("cannot wait for `{name}`: {source}")]
    Wait {
        /// The child's name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

/// A set of named commands to start and watch together.
pub struct Supervisor {
    grace: Duration,
    children: Vec<(String, Command)>,
    stdout: LineSink,
    stderr: LineSink,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("grace", &self.grace)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// `grace`: how long a child may take to exit after SIGTERM before it gets SIGKILL.
    /// Output is forwarded to this process's stdout/stderr unless [`Supervisor::forward_to`].
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            children: Vec::new(),
            stdout: Arc::new(Mutex::new(io::stdout())),
            stderr: Arc::new(Mutex::new(io::stderr())),
        }
    }

    /// Adds a child. Its stdout/stderr lines are forwarded as `[name] line`; its stdin is
    /// closed; it is put in a process group of its own.
    pub fn child(mut self, name: impl Into<String>, command: Command) -> Self {
        self.children.push((name.into(), command));
        self
    }

    /// Sends the children's prefixed stdout and stderr lines to these writers.
    pub fn forward_to(mut self, stdout: LineSink, stderr: LineSink) -> Self {
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }

    /// Starts every child (stopping those already started if one fails).
    pub fn spawn(self) -> Result<Running, SuperviseError> {
        let (done_tx, done_rx) = mpsc::channel();
        let mut running = Running {
            grace: self.grace,
            children: Vec::new(),
            forwarders: 0,
            done_rx,
        };
        for (name, mut command) in self.children {
            command
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = match command.spawn() {
                Ok(c) => c,
                Err(source) => {
                    running.stop_all();
                    return Err(SuperviseError::Spawn { name, source });
                }
            };
            tracing::info!(%name, pid = child.id(), "started");
            if let Some(out) = child.stdout.take() {
                running.forwarders += forward(&name, out, &self.stdout, &done_tx);
            }
            if let Some(err) = child.stderr.take() {
                running.forwarders += forward(&name, err, &self.stderr, &done_tx);
            }
            running.children.push(Supervised {
                name,
                child,
                status: None,
                killed: false,
            });
        }
        Ok(running)
    }

    /// Starts every child and watches them until one exits (an error naming it) or
    /// `shutdown` becomes true (`Ok`); either way no child is left running.
    pub fn run(self, shutdown: &AtomicBool) -> Result<Outcome, SuperviseError> {
        self.spawn()?.wait(shutdown)
    }
}

/// Forwards one pipe line by line; returns the number of threads started (0 or 1).
fn forward(
    name: &str,
    pipe: impl Read + Send + 'static,
    sink: &LineSink,
    done: &mpsc::Sender<()>,
) -> usize {
    let prefix = format!("[{name}] ");
    let sink = Arc::clone(sink);
    let done = done.clone();
    let spawned = thread::Builder::new()
        .name(format!("fwd-{name}"))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() != Some(&b'\n') {
                            line.push(b'\n');
                        }
                        let mut w = sink.lock().unwrap_or_else(PoisonError::into_inner);
                        let _ = w.write_all(prefix.as_bytes());
                        let _ = w.write_all(&line);
                        let _ = w.flush();
                    }
                }
            }
            let _ = done.send(());
        });
    usize::from(spawned.is_ok())
}

#[derive(Debug)]
struct Supervised {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    killed: bool,
}

impl Supervised {
    fn group(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    fn signal_group(&self, signal: Signal) {
        // ESRCH: the whole group is already gone.
        let _ = killpg(self.group(), signal);
    }

    fn exit(&self) -> Option<ChildExit> {
        self.status.map(|status| ChildExit {
            name: self.name.clone(),
            pid: self.child.id(),
            status,
            killed: self.killed,
        })
    }
}

/// Started children being watched; dropping it without [`Running::wait`] kills them all.
#[derive(Debug)]
pub struct Running {
    grace: Duration,
    children: Vec<Supervised>,
    forwarders: usize,
    done_rx: mpsc::Receiver<()>,
}

impl Running {
    /// Names and process ids of the children, in the order they were added.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|c| (c.name.clone(), c.child.id()))
            .collect()
    }

    /// Watches the children until one exits or `shutdown` becomes true, then stops all.
    pub fn wait(mut self, shutdown: &AtomicBool) -> Result<Outcome, SuperviseError> {
        let result = loop {
            if shutdown.load(Ordering::SeqCst) {
                tracing::info!("shutdown requested; stopping all processes");
                break Ok(None);
            }
            let mut exited = None;
            for (i, c) in self.children.iter_mut().enumerate() {
                match c.child.try_wait() {
                    Ok(Some(status)) => {
                        c.status = Some(status);
                        exited = Some(Ok(i));
                        break;
                    }
                    Ok(None) => {}
                    Err(source) => {
                        exited = Some(Err(SuperviseError::Wait {
                            name: c.name.clone(),
                            source,
                        }));
                        break;
                    }
                }
            }
            match exited {
                Some(Ok(i)) => break Ok(Some(i)),
                Some(Err(e)) => break Err(e),
                None => thread::sleep(POLL),
            }
        };
        if let Ok(Some(i)) = &result {
            if let Some(c) = self.children.get(*i) {
                tracing::error!(name = %c.name, status = ?c.status, "process exited; stopping the others");
            }
        }
        self.stop_all();
        self.join_forwarders();
        let exits = self
            .children
            .iter()
            .enumerate()
            .filter_map(|(j, c)| c.exit().map(|e| (j, e)));
        match result {
            Ok(None) => Ok(Outcome {
                stopped: exits.map(|(_, e)| e).collect(),
            }),
            Ok(Some(i)) => {
                let (mut failed, others): (Vec<_>, Vec<_>) = exits.partition(|(j, _)| *j == i);
                let others = others.into_iter().map(|(_, e)| e).collect();
                match failed.pop() {
                    Some((_, e)) => Err(SuperviseError::ChildExited {
                        name: e.name,
                        status: e.status,
                        others,
                    }),
                    None => Ok(Outcome { stopped: others }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// SIGTERM to every group, SIGKILL after the grace period, reap every child, and a
    /// final SIGKILL to every group for descendants that outlived their parent.
    fn stop_all(&mut self) {
        for c in self.children.iter().filter(|c| c.status.is_none()) {
            c.signal_group(Signal::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        loop {
            for c in self.children.iter_mut().filter(|c| c.status.is_none()) {
                if let Ok(Some(status)) = c.child.try_wait() {
                    c.status = Some(status);
                }
            }
            if self.children.iter().all(|c| c.status.is_some()) || Instant::now() >= deadline {
                break;
            }
            thread::sleep(POLL);
        }
        for c in self.children.iter_mut().filter(|c| c.status.is_none()) {
            tracing::warn!(name = %c.name, grace = ?self.grace, "still running after SIGTERM; sending SIGKILL");
            c.signal_group(Signal::SIGKILL);
            c.killed = true;
            c.status = c.child.wait().ok();
        }
        for c in &self.children {
            c.signal_group(Signal::SIGKILL);
        }
    }

    fn join_forwarders(&mut self) {
        let deadline = Instant::now() + FORWARDER_WAIT;
        while self.forwarders > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done_rx.recv_timeout(left).is_err() {
                // A descendant that left the process group still holds a pipe; do not hang on it.
                tracing::warn!("output of a stopped process is still open; not waiting for it");
                break;
            }
            self.forwarders -= 1;
        }
        self.forwarders = 0;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter(|c| c.status.is_none()) {
            c.signal_group(Signal::SIGKILL);
            c.status = c.child.wait().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    use crate::test_output::Captured;

    impl Captured {
        fn sink(&self) -> LineSink {
            Arc::new(Mutex::new(self.clone()))
        }
        fn wait_for(&self, needle: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.text().contains(needle) {
                assert!(
                    Instant::now() < deadline,
                    "never saw {needle:?} in {:?}",
                    self.text()
                );
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    fn sleep_long() -> Command {
        let mut c = Command::new("sleep");
        c.arg("300");
        c
    }

    /// Gone, or a zombie waiting for a reaper that is not us: either way not running.
    fn is_gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
                matches!(state, Some(Some('Z' | 'X')))
            }
        }
    }

    fn wait_gone(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_gone(pid) {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn one_exit_stops_the_rest_and_names_it() {
        let out = Captured::default();
        let err = Captured::default();
        let running = Supervisor::new(Duration::from_secs(3))
            .child("proxy", sleep_long())
            .child("signer", sh("echo hello; echo oops >&2; sleep 0.5; exit 3"))
            .child("host", sh("sleep 300 & echo grandchild=$!; wait"))
            .forward_to(out.sink(), err.sink())
            .spawn()
            .unwrap();
        let pids = running.pids();
        assert_eq!(
            pids.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["proxy", "signer", "host"]
        );
        out.wait_for("[host] grandchild=");
        let t = Instant::now();
        let e = running.wait(&AtomicBool::new(false)).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "stopping took {:?}",
            t.elapsed()
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`signer` exited") && msg.contains("exit status: 3"),
            "{msg}"
        );
        let SuperviseError::ChildExited {
            name,
            status,
            others,
        } = e
        else {
            panic!()
        };
        assert_eq!((name.as_str(), status.code()), ("signer", Some(3)));
        assert_eq!(others.len(), 2);
        for o in &others {
            assert_eq!(o.status.signal(), Some(15), "{o:?}");
            assert!(!o.killed);
        }
        assert!(out.text().contains("[signer] hello\n"), "{}", out.text());
        assert!(err.text().contains("[signer] oops\n"), "{}", err.text());
        let grandchild: u32 = out
            .text()
            .split("grandchild=")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for (name, pid) in &pids {
            assert!(wait_gone(*pid), "{name} ({pid}) still running");
        }
        assert!(wait_gone(grandchild), "grandchild {grandchild} survived");
    }

    #[test]
    fn shutdown_flag_stops_all_and_returns_ok() {
        let running = Supervisor::new(Duration::from_secs(3))
            .child("a", sleep_long())
            .child("b", sleep_long())
            .forward_to(Captured::default().sink(), Captured::default().sink())
            .spawn()
            .unwrap();
        let pids = running.pids();
        let flag = Arc::new(AtomicBool::new(false));
        let setter = Arc::clone(&flag);
        let t = Instant::now();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            setter.store(true, Ordering::SeqCst);
        });
        let outcome = running.wait(&flag).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        assert_eq!(outcome.stopped.len(), 2);
        assert!(outcome
            .stopped
            .iter()
            .all(|c| c.status.signal() == Some(15) && !c.killed));
        for (_, pid) in pids {
            assert!(wait_gone(pid));
        }
    }

    #[test]
    fn child_ignoring_sigterm_is_killed_after_grace() {
        let out = Captured::default();
        let grace = Duration::from_millis(400);
        let running = Supervisor::new(grace)
            .child(
                "stubborn",
                sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"),
            )
            .child("polite", sleep_long())
            .forward_to(out.sink(), Captured::default().sink())
            .spawn()
            .unwrap();
        let pids = running.pids();
        out.wait_for("[stubborn] ready");
        let t = Instant::now();
        let outcome = running.wait(&AtomicBool::new(true)).unwrap();
        let took = t.elapsed();
        assert!(
            took >= grace && took < grace + Duration::from_secs(2),
            "took {took:?}"
        );
        let stubborn = &outcome.stopped[0];
        assert_eq!(
            (
                stubborn.name.as_str(),
                stubborn.status.signal(),
                stubborn.killed
            ),
            ("stubborn", Some(9), true)
        );
        let polite = &outcome.stopped[1];
        assert_eq!((polite.status.signal(), polite.killed), (Some(15), false));
        for (_, pid) in pids {
            assert!(wait_gone(pid));
        }
    }

    #[test]
    fn failed_spawn_stops_those_already_started() {
        let started = Captured::default();
        let result = Supervisor::new(Duration::from_secs(1))
            .child("first", sh("echo pid=$$; exec sleep 300"))
            .child(
                "missing",
                Command::new("/nonexistent/tmkms-no-such-program"),
            )
            .forward_to(started.sink(), Captured::default().sink())
            .run(&AtomicBool::new(false));
        let err = result.unwrap_err().to_string();
        assert!(err.contains("cannot start `missing`"), "{err}");
        // The first child may have been stopped before it printed; if it printed, it is gone.
        if let Some(pid) = started.text().split("pid=").nth(1) {
            let pid: u32 = pid.lines().next().unwrap().parse().unwrap();
            assert!(wait_gone(pid));
        }
    }

    #[test]
    fn dropping_running_kills_children() {
        let running = Supervisor::new(Duration::from_secs(1))
            .child("a", sleep_long())
            .forward_to(Captured::default().sink(), Captured::default().sink())
            .spawn()
            .unwrap();
        let pids = running.pids();
        drop(running);
        for (_, pid) in pids {
            assert!(wait_gone(pid));
        }
    }

    #[test]
    fn signal_handlers_set_the_flag() {
        let flag = install_signal_handlers().unwrap();
        assert!(!flag.load(Ordering::SeqCst));
        nix::sys::signal::raise(Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !flag.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(5));
        }
    }
}
