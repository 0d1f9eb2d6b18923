//! A real etcd cluster on loopback for the high-availability tests.
//!
//! The signers coordinate through etcd's v3 HTTP/JSON gateway, so their
//! tests need a real cluster with the security settings of a production
//! deployment: client certificates required (`--client-cert-auth`), peer
//! traffic under mutual TLS, every listener on `127.0.0.1`. [`EtcdCluster`]
//! generates the PKI (a trusted CA with one server certificate per member and
//! one client certificate, plus a second, untrusted "rogue" CA with its own
//! client certificate for negative tests), starts the members as child
//! processes and waits until each of them answers a health check.
//!
//! For chaos tests it can kill (SIGKILL), restart (same data directory, same
//! ports), pause (SIGSTOP) and resume (SIGCONT) single members, and tell which
//! member leads.
//!
//! The binaries come from `scripts/install-etcd.sh` (a pinned release built
//! into a per-user cache); [`EtcdBinaries::locate`] says where it looks.
//!
//! ```no_run
//! use tmkms_node_sim::etcd::EtcdCluster;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut cluster = EtcdCluster::start(dir.path(), 3)?;
//! println!("endpoints {:?}, CA {}", cluster.endpoints(), cluster.ca_path().display());
//! if let Some(leader) = cluster.leader() {
//!     cluster.kill_member(leader)?;
//!     let next = cluster.wait_for_leader(std::time::Duration::from_secs(10))?;
//!     cluster.restart_member(leader)?;
//!     println!("member {next} took over");
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::Deserialize;

/// The etcd release `scripts/install-etcd.sh` installs.
pub const ETCD_VERSION: &str = "v3.6.16";
/// Environment variable naming a directory that holds `etcd` and `etcdctl`.
pub const BIN_DIR_ENV: &str = "TMKMS_ETCD_BIN_DIR";
/// The only address any member listens on or advertises.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// More members than this is not a test cluster any more.
pub const MAX_MEMBERS: usize = 9;

/// How often waits poll.
const POLL: Duration = Duration::from_millis(50);
/// Upper bound for a single etcdctl call (a paused member never answers).
const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(5);
/// Start attempts when a picked port was taken by someone else meanwhile.
const START_ATTEMPTS: usize = 3;

/// What can go wrong while running the cluster.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// Neither the environment, the install script's cache nor `PATH` has them.
    #[error(
        "etcd binaries (etcd and etcdctl {version}) not found; looked in {looked}. \
         Run scripts/install-etcd.sh, or set {env} to a directory holding both",
        version = ETCD_VERSION,
        env = BIN_DIR_ENV
    )]
    BinariesNotFound { looked: String },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Generating a key or certificate failed.
    #[error("generating the {what}: {source}")]
    Cert {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// The requested cluster size is out of range.
    #[error("a test cluster has 1 to {max} members, not {0}", max = MAX_MEMBERS)]
    BadMemberCount(usize),
    /// A member index beyond the cluster.
    #[error("no member {index}: the cluster has {members}")]
    NoSuchMember { index: usize, members: usize },
    /// The operation needs a running member.
    #[error("member {0} is not running")]
    NotRunning(usize),
    /// The operation needs a stopped member.
    #[error("member {0} is already running")]
    AlreadyRunning(usize),
    /// A member process ended while it was expected to serve.
    #[error("member {index} exited ({status}); last lines of {log}:\n{tail}")]
    Exited {
        index: usize,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// A wait ran out of time.
    #[error("{what} not reached within {waited:?}: {detail}")]
    Timeout {
        what: String,
        waited: Duration,
        detail: String,
    },
    /// etcdctl failed or printed something unexpected.
    #[error("etcdctl {args}: {reason}")]
    Etcdctl { args: String, reason: String },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> EtcdError {
    let context = context.into();
    move |source| EtcdError::Io { context, source }
}

/// Paths of the two binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdBinaries {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
}

impl EtcdBinaries {
    /// Finds `etcd` and `etcdctl`, in this order: the directory in
    /// [`BIN_DIR_ENV`] (if set, only there: a wrong setting is an error, not
    /// a silent fallback), the install script's cache
    /// (`${XDG_CACHE_HOME:-$HOME/.cache}/tmkms-light/etcd-v3.6.16/bin`), then
    /// `PATH`.
    pub fn locate() -> Result<Self, EtcdError> {
        if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return Self::in_dir(&dir).ok_or_else(|| EtcdError::BinariesNotFound {
                looked: format!("{BIN_DIR_ENV}={}", dir.display()),
            });
        }
        let mut looked = Vec::new();
        if let Some(dir) = install_cache_bin_dir() {
            if let Some(found) = Self::in_dir(&dir) {
                return Ok(found);
            }
            looked.push(dir.display().to_string());
        }
        let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if let Some(found) = path_dirs.iter().find_map(|d| Self::in_dir(d)) {
            return Ok(found);
        }
        looked.push("PATH".to_owned());
        Err(EtcdError::BinariesNotFound {
            looked: looked.join(", "),
        })
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let etcd = dir.join("etcd");
        let etcdctl = dir.join("etcdctl");
        (is_executable(&etcd) && is_executable(&etcdctl)).then_some(Self { etcd, etcdctl })
    }
}

/// The bin directory `scripts/install-etcd.sh` installs into.
pub fn install_cache_bin_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(
        cache
            .join("tmkms-light")
            .join(format!("etcd-{ETCD_VERSION}"))
            .join("bin"),
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Set by CI: a test that needs etcd fails instead of skipping when the
/// binaries are missing.
pub const REQUIRE_ETCD_ENV: &str = "TMKMS_REQUIRE_ETCD";

/// Whether the etcd binaries are there for `test`; `false` means skip,
/// which is allowed only while [`REQUIRE_ETCD_ENV`] is unset.
// Test support: failing the calling test is the point when etcd is required.
#[allow(clippy::panic)]
pub fn etcd_available(test: &str) -> bool {
    match EtcdBinaries::locate() {
        Ok(_) => true,
        Err(e) if std::env::var_os(REQUIRE_ETCD_ENV).is_none() => {
            eprintln!("SKIPPED {test}: {e} (set {REQUIRE_ETCD_ENV}=1 to make this a failure)");
            false
        }
        Err(e) => panic!("{REQUIRE_ETCD_ENV} is set but etcd is missing: {e}"),
    }
}

/// Timing knobs of a cluster. The defaults are etcd's own raft timings
/// (heartbeat 100 ms, election 1 s), which keep a loaded 2-core CI machine
/// from flapping leaders while a failover still takes only a second or two.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Number of members (1 to [`MAX_MEMBERS`]).
    pub members: usize,
    /// Raft heartbeat interval.
    pub heartbeat: Duration,
    /// Raft election timeout.
    pub election_timeout: Duration,
    /// Bound for a (re)start until the member(s) answer health checks.
    pub start_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            members: 3,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// The PEM files of one certificate and its key.
#[derive(Debug, Clone)]
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// Everything under `<dir>/tls` (0700, files 0600).
#[derive(Debug, Clone)]
struct Pki {
    ca: PathBuf,
    client: CertFiles,
    members: Vec<CertFiles>,
    rogue_ca: PathBuf,
    rogue_client: CertFiles,
}

/// One member's fixed identity and its current process.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Member {
    fn client_url(&self) -> String {
        format!("https://{LOOPBACK}:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("https://{LOOPBACK}:{}", self.peer_port)
    }
}

/// What a member says about itself (`etcdctl endpoint status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's raft id.
    pub member_id: u64,
    /// The raft id of the leader this member knows of (0: none).
    pub leader_id: u64,
    /// Raft term.
    pub raft_term: u64,
    /// Store revision.
    pub revision: u64,
}

impl MemberStatus {
    /// Whether the member believes it leads.
    pub fn is_leader(&self) -> bool {
        self.member_id != 0 && self.member_id == self.leader_id
    }
}

/// A running etcd cluster of child processes; dropping it SIGKILLs them.
/// Files under the caller's directory (data, logs, PKI) are left in place.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    bins: EtcdBinaries,
    opts: EtcdOptions,
    pki: Pki,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `members` members with the default [`EtcdOptions`] in `dir`
    /// (created if missing) and waits until every member is healthy.
    pub fn start(dir: &Path, members: usize) -> Result<Self, EtcdError> {
        Self::start_with(
            dir,
            EtcdOptions {
                members,
                ..EtcdOptions::default()
            },
        )
    }

    /// Like [`start`](Self::start) with explicit options.
    pub fn start_with(dir: &Path, opts: EtcdOptions) -> Result<Self, EtcdError> {
        if opts.members == 0 || opts.members > MAX_MEMBERS {
            return Err(EtcdError::BadMemberCount(opts.members));
        }
        let bins = EtcdBinaries::locate()?;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let pki = Pki::generate(&dir.join("tls"), opts.members)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut cluster = Self {
                dir: dir.to_owned(),
                bins: bins.clone(),
                opts: opts.clone(),
                pki: pki.clone(),
                members: Vec::new(),
            };
            match cluster.boot() {
                Ok(()) => return Ok(cluster),
                // Another process may have taken a picked port between the
                // pick and etcd's bind: retry with fresh ports and data.
                Err(e) if attempt < START_ATTEMPTS && cluster.lost_a_port_race() => {
                    drop(e);
                    cluster.kill_all();
                    for m in &cluster.members {
                        let _ = fs::remove_dir_all(&m.data_dir);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn boot(&mut self) -> Result<(), EtcdError> {
        let ports = free_ports(2 * self.opts.members)?;
        let mut ports = ports.into_iter();
        for i in 0..self.opts.members {
            let (Some(client_port), Some(peer_port)) = (ports.next(), ports.next()) else {
                return Err(EtcdError::Timeout {
                    what: "free loopback ports".to_owned(),
                    waited: Duration::ZERO,
                    detail: "fewer ports than requested".to_owned(),
                });
            };
            let name = format!("m{i}");
            self.members.push(Member {
                data_dir: self.dir.join(format!("{name}.data")),
                log: self.dir.join(format!("{name}.log")),
                name,
                client_port,
                peer_port,
                child: None,
                paused: false,
            });
        }
        for i in 0..self.members.len() {
            self.spawn_member(i)?;
        }
        self.wait_healthy(self.opts.start_timeout)
    }

    fn lost_a_port_race(&self) -> bool {
        self.members.iter().any(|m| {
            fs::read_to_string(&m.log).is_ok_and(|log| log.contains("address already in use"))
        })
    }

    /// Number of members (running or not).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The client URLs (`https://127.0.0.1:P`), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> Result<String, EtcdError> {
        Ok(self.member(i)?.client_url())
    }

    /// The CA every member trusts, for clients to verify the servers.
    pub fn ca_path(&self) -> &Path {
        &self.pki.ca
    }

    /// A client certificate the cluster accepts.
    pub fn client_cert_path(&self) -> &Path {
        &self.pki.client.cert
    }

    /// The key of [`client_cert_path`](Self::client_cert_path).
    pub fn client_key_path(&self) -> &Path {
        &self.pki.client.key
    }

    /// A CA the cluster does not trust.
    pub fn rogue_ca_path(&self) -> &Path {
        &self.pki.rogue_ca
    }

    /// A client certificate issued by the rogue CA: the cluster refuses it.
    pub fn rogue_client_cert_path(&self) -> &Path {
        &self.pki.rogue_client.cert
    }

    /// The key of [`rogue_client_cert_path`](Self::rogue_client_cert_path).
    pub fn rogue_client_key_path(&self) -> &Path {
        &self.pki.rogue_client.key
    }

    /// Member `i`'s log file (stdout and stderr, appended across restarts).
    pub fn log_path(&self, i: usize) -> Result<&Path, EtcdError> {
        Ok(&self.member(i)?.log)
    }

    /// Member `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> Result<&Path, EtcdError> {
        Ok(&self.member(i)?.data_dir)
    }

    /// The binaries in use.
    pub fn binaries(&self) -> &EtcdBinaries {
        &self.bins
    }

    /// The process id of member `i`, if it runs (paused counts as running).
    pub fn member_pid(&self, i: usize) -> Option<u32> {
        self.members
            .get(i)
            .and_then(|m| m.child.as_ref())
            .map(Child::id)
    }

    /// Whether member `i` has a live process.
    pub fn is_running(&self, i: usize) -> bool {
        self.member_pid(i).is_some()
    }

    /// Whether member `i` is stopped with SIGSTOP.
    pub fn is_paused(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.paused)
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill_member(&mut self, i: usize) -> Result<(), EtcdError> {
        let m = self.member_mut(i)?;
        let mut child = m.child.take().ok_or(EtcdError::NotRunning(i))?;
        m.paused = false;
        // SIGKILL also ends a stopped process.
        child
            .kill()
            .map_err(io_err(format!("killing member {i}")))?;
        child
            .wait()
            .map_err(io_err(format!("reaping member {i}")))?;
        Ok(())
    }

    /// Starts a stopped member again with its data directory and ports and
    /// waits until it is healthy (which needs a quorum: after a quorum loss
    /// use [`spawn_member`](Self::spawn_member) for each, then
    /// [`wait_healthy`](Self::wait_healthy)).
    pub fn restart_member(&mut self, i: usize) -> Result<(), EtcdError> {
        self.spawn_member(i)?;
        self.wait_members_healthy(&[i], self.opts.start_timeout)
    }

    /// Starts a stopped member's process without waiting for it.
    pub fn spawn_member(&mut self, i: usize) -> Result<(), EtcdError> {
        let args = self.member_args(i)?;
        let etcd = self.bins.etcd.clone();
        let m = self.member_mut(i)?;
        if m.child.is_some() {
            return Err(EtcdError::AlreadyRunning(i));
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(io_err(format!("opening {}", m.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io_err(format!("opening {}", m.log.display())))?;
        let mut cmd = Command::new(&etcd);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // An inherited ETCD_* variable would silently override a flag.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd.spawn().map_err(io_err(format!(
            "starting {} for member {i}",
            etcd.display()
        )))?;
        m.child = Some(child);
        m.paused = false;
        Ok(())
    }

    /// SIGSTOPs member `i`: it keeps its sockets but answers nothing.
    pub fn pause_member(&mut self, i: usize) -> Result<(), EtcdError> {
        let pid = self.member_pid(i).ok_or(EtcdError::NotRunning(i))?;
        signal(pid, "STOP")?;
        self.member_mut(i)?.paused = true;
        Ok(())
    }

    /// SIGCONTs a paused member `i`.
    pub fn resume_member(&mut self, i: usize) -> Result<(), EtcdError> {
        let pid = self.member_pid(i).ok_or(EtcdError::NotRunning(i))?;
        signal(pid, "CONT")?;
        self.member_mut(i)?.paused = false;
        Ok(())
    }

    /// What member `i` says about itself.
    pub fn member_status(&self, i: usize) -> Result<MemberStatus, EtcdError> {
        let out = run_bounded(self.etcdctl_for(&[i], &["endpoint", "status", "-w", "json"])?)?;
        parse_status(&out)
    }

    /// The running, responsive member that leads, if any. A member counts as
    /// leader when it says so itself; a leader that cannot answer (paused)
    /// does not count. Should two claim it (an old leader not yet told), the
    /// higher raft term wins.
    pub fn leader(&self) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.len())
            .filter(|&i| self.is_running(i) && !self.is_paused(i))
            .collect();
        let cmds: Vec<Command> = candidates
            .iter()
            .filter_map(|&i| {
                self.etcdctl_for(&[i], &["endpoint", "status", "-w", "json"])
                    .ok()
            })
            .collect();
        candidates
            .iter()
            .zip(run_all_bounded(cmds))
            .filter_map(|(&i, out)| Some((i, parse_status(&out.ok()?).ok()?)))
            .filter(|(_, s)| s.is_leader())
            .max_by_key(|(_, s)| s.raft_term)
            .map(|(i, _)| i)
    }

    /// Waits until some member leads (see [`leader`](Self::leader)).
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<usize, EtcdError> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.leader() {
                return Ok(i);
            }
            if start.elapsed() >= timeout {
                return Err(EtcdError::Timeout {
                    what: "a leader".to_owned(),
                    waited: start.elapsed(),
                    detail: "no responsive member says it leads".to_owned(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until every running, unpaused member passes `endpoint health`
    /// (a quorum read through that member).
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), EtcdError> {
        let live: Vec<usize> = (0..self.len())
            .filter(|&i| self.is_running(i) && !self.is_paused(i))
            .collect();
        self.wait_members_healthy(&live, timeout)
    }

    fn wait_members_healthy(&self, members: &[usize], timeout: Duration) -> Result<(), EtcdError> {
        let start = Instant::now();
        let mut pending: BTreeSet<usize> = members.iter().copied().collect();
        let mut last_error = String::from("no health check finished yet");
        while !pending.is_empty() {
            self.check_alive(&pending)?;
            let order: Vec<usize> = pending.iter().copied().collect();
            let cmds = order
                .iter()
                .map(|&i| self.etcdctl_for(&[i], &["endpoint", "health", "-w", "json"]))
                .collect::<Result<Vec<_>, _>>()?;
            for (i, out) in order.iter().zip(run_all_bounded(cmds)) {
                match out {
                    Ok(_) => {
                        pending.remove(i);
                    }
                    Err(e) => last_error = format!("member {i}: {e}"),
                }
            }
            if pending.is_empty() {
                break;
            }
            if start.elapsed() >= timeout {
                return Err(EtcdError::Timeout {
                    what: format!("health of members {pending:?}"),
                    waited: start.elapsed(),
                    detail: last_error,
                });
            }
            thread::sleep(POLL);
        }
        Ok(())
    }

    /// An `etcdctl` command with the trusted client certificate, aimed at
    /// the given members (all when empty), for tests that need more than the
    /// accessors here. Arguments go after the connection flags.
    pub fn etcdctl(&self, members: &[usize], args: &[&str]) -> Result<Command, EtcdError> {
        if members.is_empty() {
            let all: Vec<usize> = (0..self.len()).collect();
            self.etcdctl_for(&all, args)
        } else {
            self.etcdctl_for(members, args)
        }
    }

    fn etcdctl_for(&self, members: &[usize], args: &[&str]) -> Result<Command, EtcdError> {
        let endpoints = members
            .iter()
            .map(|&i| self.endpoint(i))
            .collect::<Result<Vec<_>, _>>()?
            .join(",");
        let mut cmd = Command::new(&self.bins.etcdctl);
        cmd.arg(format!("--endpoints={endpoints}"))
            .arg(path_flag("--cacert", &self.pki.ca))
            .arg(path_flag("--cert", &self.pki.client.cert))
            .arg(path_flag("--key", &self.pki.client.key))
            .args(["--dial-timeout=1s", "--command-timeout=2s"])
            .args(args)
            .stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCDCTL_") {
                cmd.env_remove(key);
            }
        }
        Ok(cmd)
    }

    fn member_args(&self, i: usize) -> Result<Vec<String>, EtcdError> {
        let m = self.member(i)?;
        let certs = self.pki.members.get(i).ok_or(EtcdError::NoSuchMember {
            index: i,
            members: self.len(),
        })?;
        let initial_cluster = self
            .members
            .iter()
            .map(|o| format!("{}={}", o.name, o.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let ca = self.pki.ca.display().to_string();
        let cert = certs.cert.display().to_string();
        let key = certs.key.display().to_string();
        Ok(vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", m.data_dir.display()),
            format!("--listen-client-urls={}", m.client_url()),
            format!("--advertise-client-urls={}", m.client_url()),
            format!("--listen-peer-urls={}", m.peer_url()),
            format!("--initial-advertise-peer-urls={}", m.peer_url()),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=new".to_owned(),
            "--initial-cluster-token=tmkms-ha-test".to_owned(),
            "--client-cert-auth".to_owned(),
            format!("--trusted-ca-file={ca}"),
            format!("--cert-file={cert}"),
            format!("--key-file={key}"),
            "--peer-client-cert-auth".to_owned(),
            format!("--peer-trusted-ca-file={ca}"),
            format!("--peer-cert-file={cert}"),
            format!("--peer-key-file={key}"),
            format!("--heartbeat-interval={}", self.opts.heartbeat.as_millis()),
            format!(
                "--election-timeout={}",
                self.opts.election_timeout.as_millis()
            ),
            "--logger=zap".to_owned(),
            "--log-outputs=stderr".to_owned(),
        ])
    }

    /// Fails with the log's tail when a member that should run has exited.
    fn check_alive(&self, members: &BTreeSet<usize>) -> Result<(), EtcdError> {
        for &i in members {
            let m = self.member(i)?;
            // `try_wait` needs `&mut`; peek through the pid instead: a
            // zombie's /proc entry says state Z.
            let Some(child) = m.child.as_ref() else {
                return Err(EtcdError::NotRunning(i));
            };
            if let Some(state) = proc_state(child.id()) {
                if state == 'Z' || state == 'X' {
                    return Err(EtcdError::Exited {
                        index: i,
                        status: "process ended".to_owned(),
                        log: m.log.clone(),
                        tail: log_tail(&m.log, 20),
                    });
                }
            }
        }
        Ok(())
    }

    fn member(&self, i: usize) -> Result<&Member, EtcdError> {
        let members = self.members.len();
        self.members
            .get(i)
            .ok_or(EtcdError::NoSuchMember { index: i, members })
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Member, EtcdError> {
        let members = self.members.len();
        self.members
            .get_mut(i)
            .ok_or(EtcdError::NoSuchMember { index: i, members })
    }

    fn kill_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            m.paused = false;
        }
    }

    /// The directory the cluster keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn path_flag(flag: &str, path: &Path) -> String {
    format!("{flag}={}", path.display())
}

/// `kill -s SIG pid`, without unsafe code in this crate.
fn signal(pid: u32, sig: &str) -> Result<(), EtcdError> {
    let status: ExitStatus = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .map_err(io_err(format!("running kill -s {sig} {pid}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(EtcdError::Io {
            context: format!("kill -s {sig} {pid}"),
            source: io::Error::other(status.to_string()),
        })
    }
}

/// The state letter of `/proc/<pid>/stat` (R, S, T, Z, ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all.get(all.len().saturating_sub(lines)..)
        .unwrap_or_default()
        .join("\n")
}

/// Distinct free loopback ports, all bound at once so none repeats.
fn free_ports(n: usize) -> Result<Vec<u16>, EtcdError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((LOOPBACK, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("binding a free loopback port"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("reading a bound port"))
}

/// Runs one command with [`ETCDCTL_TIMEOUT`].
fn run_bounded(cmd: Command) -> Result<Output, EtcdError> {
    run_all_bounded(vec![cmd])
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            Err(EtcdError::Etcdctl {
                args: String::new(),
                reason: "nothing ran".to_owned(),
            })
        })
}

/// Runs the commands side by side, each within [`ETCDCTL_TIMEOUT`]; a
/// command that fails or exits non-zero is an error carrying its stderr.
fn run_all_bounded(cmds: Vec<Command>) -> Vec<Result<Output, EtcdError>> {
    let started: Vec<(String, Result<Child, EtcdError>)> = cmds
        .into_iter()
        .map(|mut cmd| {
            let args = describe(&cmd);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| EtcdError::Etcdctl {
                    args: args.clone(),
                    reason: format!("cannot start: {e}"),
                });
            (args, child)
        })
        .collect();
    let deadline = Instant::now() + ETCDCTL_TIMEOUT;
    started
        .into_iter()
        .map(|(args, child)| finish(args, child?, deadline))
        .collect()
}

fn finish(args: String, mut child: Child, deadline: Instant) -> Result<Output, EtcdError> {
    let fail = |reason: String| EtcdError::Etcdctl {
        args: args.clone(),
        reason,
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {ETCDCTL_TIMEOUT:?}")));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("waiting: {e}"))),
        }
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let text = if text.trim().is_empty() {
            String::from_utf8_lossy(&stdout)
        } else {
            text
        };
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn describe(cmd: &Command) -> String {
    cmd.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| !a.starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Deserialize)]
struct StatusLine {
    #[serde(rename = "Status")]
    status: StatusBody,
}

#[derive(Deserialize)]
struct StatusBody {
    #[serde(default)]
    header: StatusHeader,
    #[serde(default)]
    leader: u64,
}

#[derive(Deserialize, Default)]
struct StatusHeader {
    #[serde(default)]
    member_id: u64,
    #[serde(default)]
    raft_term: u64,
    #[serde(default)]
    revision: u64,
}

fn parse_status(out: &Output) -> Result<MemberStatus, EtcdError> {
    let fail = |reason: String| EtcdError::Etcdctl {
        args: "endpoint status".to_owned(),
        reason,
    };
    let lines: Vec<StatusLine> = serde_json::from_slice(&out.stdout).map_err(|e| {
        fail(format!(
            "unexpected JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    })?;
    let line = lines
        .into_iter()
        .next()
        .ok_or_else(|| fail("empty status list".to_owned()))?;
    Ok(MemberStatus {
        member_id: line.status.header.member_id,
        leader_id: line.status.leader,
        raft_term: line.status.header.raft_term,
        revision: line.status.header.revision,
    })
}

impl Pki {
    /// Writes the trusted CA, one server/peer certificate per member, the
    /// client certificate, and the rogue CA with its client certificate.
    fn generate(tls_dir: &Path, members: usize) -> Result<Self, EtcdError> {
        create_private_dir(tls_dir)?;
        let (ca_pem, ca) = new_ca("tmkms-ha test etcd CA")?;
        let ca_path = write_private(tls_dir, "ca.pem", &ca_pem)?;
        let member_files = (0..members)
            .map(|i| {
                let name = format!("m{i}");
                // Peers dial each other with this same certificate: it must
                // serve as client too.
                leaf(
                    tls_dir,
                    &name,
                    &ca,
                    vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                    &[
                        ExtendedKeyUsagePurpose::ServerAuth,
                        ExtendedKeyUsagePurpose::ClientAuth,
                    ],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = leaf(
            tls_dir,
            "client",
            &ca,
            Vec::new(),
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        let (rogue_pem, rogue) = new_ca("tmkms-ha rogue CA")?;
        let rogue_ca = write_private(tls_dir, "rogue-ca.pem", &rogue_pem)?;
        let rogue_client = leaf(
            tls_dir,
            "rogue-client",
            &rogue,
            Vec::new(),
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        Ok(Self {
            ca: ca_path,
            client,
            members: member_files,
            rogue_ca,
            rogue_client,
        })
    }
}

fn new_ca(common_name: &str) -> Result<(String, Issuer<'static, KeyPair>), EtcdError> {
    let cert_err = |source| EtcdError::Cert { what: "CA", source };
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().map_err(cert_err)?;
    let cert = params.self_signed(&key).map_err(cert_err)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'static, KeyPair>,
    sans: Vec<String>,
    ekus: &[ExtendedKeyUsagePurpose],
) -> Result<CertFiles, EtcdError> {
    let cert_err = |source| EtcdError::Cert {
        what: "leaf certificate",
        source,
    };
    let mut params = CertificateParams::new(sans).map_err(cert_err)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = ekus.to_vec();
    let key = KeyPair::generate().map_err(cert_err)?;
    let cert = params.signed_by(&key, issuer).map_err(cert_err)?;
    Ok(CertFiles {
        cert: write_private(dir, &format!("{name}.pem"), &cert.pem())?,
        key: write_private(dir, &format!("{name}-key.pem"), &key.serialize_pem())?,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), EtcdError> {
    use std::os::unix::fs::PermissionsExt as _;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))?;
    // An existing directory keeps its mode through `create`: tighten it.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("restricting {}", dir.display())))
}

fn write_private(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, EtcdError> {
    let path = dir.join(name);
    // A leftover from an earlier run may have looser permissions than
    // `mode` would give a new file; start afresh.
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("replacing {}", path.display()))(e)),
    }
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn pki_files_are_private_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let pki = Pki::generate(&tls, 2).unwrap();
        assert_eq!(
            fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let mut files = vec![
            pki.ca.clone(),
            pki.rogue_ca.clone(),
            pki.client.cert.clone(),
            pki.client.key.clone(),
            pki.rogue_client.cert.clone(),
            pki.rogue_client.key.clone(),
        ];
        for m in &pki.members {
            files.push(m.cert.clone());
            files.push(m.key.clone());
        }
        for f in files {
            let meta = fs::metadata(&f).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
            let text = fs::read_to_string(&f).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", f.display());
        }
        // The rogue CA is another key, not a copy.
        assert_ne!(
            fs::read_to_string(&pki.ca).unwrap(),
            fs::read_to_string(&pki.rogue_ca).unwrap()
        );
    }

    #[test]
    fn status_json_of_etcdctl_parses() {
        let json = br#"[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":42,"revision":7,"raft_term":3},"version":"3.6.16","leader":42}}]"#;
        let out = Output {
            status: Command::new("true").status().unwrap(),
            stdout: json.to_vec(),
            stderr: Vec::new(),
        };
        let s = parse_status(&out).unwrap();
        assert_eq!(
            s,
            MemberStatus {
                member_id: 42,
                leader_id: 42,
                raft_term: 3,
                revision: 7
            }
        );
        assert!(s.is_leader());
    }

    #[test]
    fn free_ports_are_distinct_loopback_ports() {
        let ports = free_ports(6).unwrap();
        let set: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(set.len(), 6);
        assert!(ports.iter().all(|&p| p != 0));
    }

    #[test]
    fn a_missing_bin_dir_names_the_install_script() {
        let err = EtcdError::BinariesNotFound {
            looked: "x".to_owned(),
        };
        assert!(err.to_string().contains("scripts/install-etcd.sh"));
    }
}
