//! The etcd harness against a real 3-member TLS cluster: key-value writes
//! and compare-and-swap transactions through the v3 HTTP/JSON gateway (the
//! interface the signers use), a leader kill with failover, a restart, paused
//! members (follower and leader), and the refusal of a client certificate from a CA the cluster does not trust.
//!
//! Needs `etcd` and `etcdctl` (scripts/install-etcd.sh) and `curl`. Without
//! the binaries it skips, unless `TMKMS_REQUIRE_ETCD` is set (CI sets it),
//! in which case their absence fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use tmkms_node_sim::etcd::EtcdCluster;

fn etcd_available() -> bool {
    tmkms_node_sim::etcd::etcd_available("etcd_cluster")
}

/// The TLS material one client presents.
struct Identity {
    ca: PathBuf,
    cert: Option<(PathBuf, PathBuf)>,
}

impl Identity {
    fn new(ca: &Path, cert: Option<(&Path, &Path)>) -> Self {
        Self {
            ca: ca.to_owned(),
            cert: cert.map(|(c, k)| (c.to_owned(), k.to_owned())),
        }
    }

    fn trusted(c: &EtcdCluster) -> Self {
        Self::new(
            c.ca_path(),
            Some((c.client_cert_path(), c.client_key_path())),
        )
    }
}

/// POSTs JSON to the gateway at `endpoint` with curl; the parsed answer,
/// or why there is none (transport failure, HTTP error, gRPC error body).
fn post(endpoint: &str, path: &str, body: &Value, id: &Identity) -> Result<Value, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "3", "-X", "POST"])
        .args(["-H", "Content-Type: application/json"])
        .arg("--cacert")
        .arg(&id.ca);
    if let Some((cert, key)) = &id.cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd
        .arg("--data-binary")
        .arg(body.to_string())
        .arg("-w")
        .arg("\n%{http_code}")
        .arg(format!("{endpoint}{path}"))
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (json_text, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let v: Value = serde_json::from_str(json_text)
        .map_err(|e| format!("HTTP {code}, not JSON ({e}): {text}"))?;
    if code != "200" || v.get("error").is_some() {
        return Err(format!("HTTP {code}: {v}"));
    }
    Ok(v)
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

fn unb64(v: &Value) -> String {
    String::from_utf8(B64.decode(v.as_str().unwrap()).unwrap()).unwrap()
}

/// int64 fields come back as JSON strings.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().unwrap(),
        Value::Null => 0,
        other => panic!("not an integer: {other}"),
    }
}

/// The value and mod_revision of `key` (a linearizable read).
fn range(endpoint: &str, key: &str, id: &Identity) -> Result<Option<(String, i64)>, String> {
    let v = post(endpoint, "/v3/kv/range", &json!({ "key": b64(key) }), id)?;
    Ok(v.get("kvs")
        .and_then(|kvs| kvs.get(0))
        .map(|kv| (unb64(&kv["value"]), int(&kv["mod_revision"]))))
}

/// Writes `value` only if `key` is still at `mod_revision`; whether it did.
fn cas(
    endpoint: &str,
    key: &str,
    mod_revision: i64,
    value: &str,
    id: &Identity,
) -> Result<bool, String> {
    let body = json!({
        "compare": [{
            "key": b64(key),
            "target": "MOD",
            "result": "EQUAL",
            "mod_revision": mod_revision.to_string(),
        }],
        "success": [{ "request_put": { "key": b64(key), "value": b64(value) } }],
        "failure": [{ "request_range": { "key": b64(key) } }],
    });
    let v = post(endpoint, "/v3/kv/txn", &body, id)?;
    // proto3 JSON leaves out a false bool.
    Ok(v.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
}

/// Retries `f` until it returns `Ok` or `timeout` passes.
fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() < timeout => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("not within {timeout:?}: {e}"),
        }
    }
}

#[test]
fn three_member_tls_cluster_survives_a_leader_kill_and_refuses_rogue_clients() {
    if !etcd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut cluster = EtcdCluster::start(dir.path(), 3).unwrap();
    eprintln!("3-member cluster healthy after {:?}", started.elapsed());
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints
        .iter()
        .all(|e| e.starts_with("https://127.0.0.1:")));
    let id = Identity::trusted(&cluster);
    let key = "tmkms/ha/test-chain/last-signed";

    // Put, then read back through another member.
    let put = post(
        &endpoints[0],
        "/v3/kv/put",
        &json!({ "key": b64(key), "value": b64("h1") }),
        &id,
    )
    .unwrap();
    let put_rev = int(&put["header"]["revision"]);
    let (value, rev) = range(&endpoints[1], key, &id).unwrap().unwrap();
    assert_eq!((value.as_str(), rev), ("h1", put_rev));

    // Compare-and-swap on mod_revision: the current revision wins once, the
    // stale one loses.
    assert!(cas(&endpoints[2], key, rev, "h2", &id).unwrap());
    assert!(!cas(&endpoints[0], key, rev, "h3", &id).unwrap());
    let (value, rev) = range(&endpoints[0], key, &id).unwrap().unwrap();
    assert_eq!(value, "h2");

    // Kill the leader: another member takes over and a CAS goes through.
    let old = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let old_pid = cluster.member_pid(old).unwrap();
    cluster.kill_member(old).unwrap();
    assert!(!cluster.is_running(old));
    let killed = Instant::now();
    let new = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    assert_ne!(new, old);
    let elected = killed.elapsed();
    let survivor = &endpoints[new];
    eventually(Duration::from_secs(10), || {
        cas(survivor, key, rev, "h4", &id)?
            .then_some(())
            .ok_or_else(|| "CAS lost".to_owned())
    });
    eprintln!(
        "leader {old} killed: member {new} led after {elected:?}, a CAS committed after {:?}",
        killed.elapsed()
    );
    assert!(killed.elapsed() < Duration::from_secs(10));

    // The old leader restarts with its data and ports and catches up.
    cluster.restart_member(old).unwrap();
    assert_ne!(cluster.member_pid(old), Some(old_pid));
    let (value, _) = range(&endpoints[old], key, &id).unwrap().unwrap();
    assert_eq!(value, "h4");
    cluster.wait_healthy(Duration::from_secs(10)).unwrap();

    // Pause a follower: the rest still commit; it catches up on resume.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let follower = (leader + 1) % 3;
    cluster.pause_member(follower).unwrap();
    let other = 3 - leader - follower;
    let (_, rev) = range(&endpoints[leader], key, &id).unwrap().unwrap();
    assert!(cas(&endpoints[other], key, rev, "h5", &id).unwrap());
    assert!(post(
        &endpoints[follower],
        "/v3/kv/range",
        &json!({ "key": b64(key) }),
        &id
    )
    .is_err());
    cluster.resume_member(follower).unwrap();
    let (value, _) = eventually(Duration::from_secs(10), || {
        range(&endpoints[follower], key, &id)?.ok_or_else(|| "no key".to_owned())
    });
    assert_eq!(value, "h5");

    // A client certificate from the rogue CA is refused, and so is no
    // certificate at all, while the trusted one still works.
    let rogue = Identity::new(
        cluster.ca_path(),
        Some((
            cluster.rogue_client_cert_path(),
            cluster.rogue_client_key_path(),
        )),
    );
    let no_cert = Identity::new(cluster.ca_path(), None);
    // The rogue CA does not vouch for the servers either.
    let rogue_ca = Identity::new(
        cluster.rogue_ca_path(),
        Some((cluster.client_cert_path(), cluster.client_key_path())),
    );
    for e in &endpoints {
        let put = json!({ "key": b64(key), "value": b64("rogue") });
        let err = post(e, "/v3/kv/put", &put, &rogue).unwrap_err();
        eprintln!("rogue client at {e}: {err}");
        post(e, "/v3/kv/put", &put, &no_cert).unwrap_err();
        post(e, "/v3/kv/put", &put, &rogue_ca).unwrap_err();
    }
    let (value, _) = range(&endpoints[0], key, &id).unwrap().unwrap();
    assert_eq!(value, "h5");
}

#[test]
fn a_paused_leader_is_replaced_and_rejoins_on_resume() {
    if !etcd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(dir.path(), 3).unwrap();
    let endpoints = cluster.endpoints();
    let id = Identity::trusted(&cluster);
    let key = "tmkms/ha/paused";

    let old = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    cluster.pause_member(old).unwrap();
    assert!(cluster.is_paused(old) && cluster.is_running(old));
    // A paused leader cannot answer, so it never counts as the leader.
    let new = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    assert_ne!(new, old);
    eventually(Duration::from_secs(10), || {
        post(
            &endpoints[new],
            "/v3/kv/put",
            &json!({ "key": b64(key), "value": b64("after-pause") }),
            &id,
        )
    });

    // Back from SIGSTOP it steps down and serves the value written meanwhile.
    cluster.resume_member(old).unwrap();
    let (value, _) = eventually(Duration::from_secs(10), || {
        range(&endpoints[old], key, &id)?.ok_or_else(|| "no key".to_owned())
    });
    assert_eq!(value, "after-pause");
    cluster.wait_healthy(Duration::from_secs(10)).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
}
