//! `tmkms-node-sim etcd-cluster`: the etcd test cluster of [`crate::etcd`]
//! for scripts (the real-node e2e suite is Python), which cannot link the
//! harness.
//!
//! The cluster starts, its connection details go to a JSON file (written
//! whole, then renamed into place, so a reader never sees half of it), and
//! `ready <file>` is printed. Then stdin takes one command per line and
//! answers each with one line, `ok ...` or `error ...`:
//!
//! ```text
//! kill <i> | restart <i> | pause <i> | resume <i> | leader | pids
//! ```
//!
//! End of stdin stops every member and exits. A script that can only signal
//! should start this in its own process group and signal the group: the
//! members are children in the same group, so a SIGTERM or SIGKILL of the
//! group ends them too (a signal to this process alone would orphan them).

use std::io::{self, BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::etcd::{EtcdCluster, EtcdError};

/// What a client needs to reach the cluster: the JSON file's content.
#[derive(Debug, Serialize)]
pub struct ClusterInfo {
    /// Client URLs, `https://127.0.0.1:<port>`, in member order.
    pub endpoints: Vec<String>,
    /// The CA the members' certificates chain to.
    pub ca_file: PathBuf,
    /// A client certificate the cluster accepts, and its key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// A CA and client certificate the cluster refuses (negative tests).
    pub rogue_ca_file: PathBuf,
    pub rogue_cert_file: PathBuf,
    pub rogue_key_file: PathBuf,
    /// Member process ids (0 when not running) and logs, in member order.
    pub pids: Vec<u32>,
    pub logs: Vec<PathBuf>,
}

/// Why serving the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("encoding the cluster info: {0}")]
    Json(#[from] serde_json::Error),
    #[error("talking on stdin/stdout: {0}")]
    Stdio(#[source] io::Error),
}

impl ClusterInfo {
    /// The details of `cluster` as it is now.
    pub fn of(cluster: &EtcdCluster) -> Result<Self, EtcdError> {
        let logs = (0..cluster.len())
            .map(|i| cluster.log_path(i).map(Path::to_path_buf))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            endpoints: cluster.endpoints(),
            ca_file: cluster.ca_path().to_path_buf(),
            cert_file: cluster.client_cert_path().to_path_buf(),
            key_file: cluster.client_key_path().to_path_buf(),
            rogue_ca_file: cluster.rogue_ca_path().to_path_buf(),
            rogue_cert_file: cluster.rogue_client_cert_path().to_path_buf(),
            rogue_key_file: cluster.rogue_client_key_path().to_path_buf(),
            pids: (0..cluster.len())
                .map(|i| cluster.member_pid(i).unwrap_or(0))
                .collect(),
            logs,
        })
    }
}

fn write_info(path: &Path, info: &ClusterInfo) -> Result<(), ServeError> {
    let text = serde_json::to_string_pretty(info)?;
    let tmp = path.with_extension("json.tmp");
    let write_err = |source| ServeError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, text + "\n").map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

/// One stdin command's answer line.
fn command(cluster: &mut EtcdCluster, line: &str) -> String {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let member: Option<usize> = words.next().and_then(|w| w.parse().ok());
    let done = |r: Result<(), EtcdError>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error {}", e.to_string().replace('\n', " | ")),
    };
    match (verb, member) {
        ("kill", Some(i)) => done(cluster.kill_member(i)),
        ("restart", Some(i)) => done(cluster.restart_member(i)),
        ("pause", Some(i)) => done(cluster.pause_member(i)),
        ("resume", Some(i)) => done(cluster.resume_member(i)),
        ("leader", None) => match cluster.leader() {
            Some(i) => format!("ok {i}"),
            None => "error no responsive member leads".to_owned(),
        },
        ("pids", None) => {
            let pids: Vec<String> = (0..cluster.len())
                .map(|i| cluster.member_pid(i).unwrap_or(0).to_string())
                .collect();
            format!("ok {}", pids.join(" "))
        }
        _ => format!(
            "error unknown command {line:?}; use kill <i>, restart <i>, pause <i>, resume <i>, leader or pids"
        ),
    }
}

/// Starts `members` members under `dir`, writes `info` and serves stdin
/// commands until end of input; the members are killed on return.
pub fn serve(dir: &Path, members: usize, info: &Path) -> Result<(), ServeError> {
    let mut cluster = EtcdCluster::start(dir, members)?;
    write_info(info, &ClusterInfo::of(&cluster)?)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready {}", info.display()).map_err(ServeError::Stdio)?;
    out.flush().map_err(ServeError::Stdio)?;
    for line in io::stdin().lock().lines() {
        let line = line.map_err(ServeError::Stdio)?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = command(&mut cluster, line.trim());
        // Keep the file's pids current for readers that do not talk.
        write_info(info, &ClusterInfo::of(&cluster)?)?;
        writeln!(out, "{answer}").map_err(ServeError::Stdio)?;
        out.flush().map_err(ServeError::Stdio)?;
    }
    Ok(())
}
