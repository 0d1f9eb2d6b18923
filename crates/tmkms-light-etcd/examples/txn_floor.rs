//! The floor of a high-availability signature: one etcd compare-and-swap
//! through this crate's client, as the signer makes it for every new
//! position (TLS kept alive, the revision of the previous answer).
//!
//! ```text
//! cargo run --release -p tmkms-light-etcd --example txn_floor -- <cluster.json> [N]
//! ```
//!
//! `cluster.json` is what `tmkms-node-sim etcd-cluster` writes. Prints one
//! JSON line: `{"etcd_txn": {"p50_us": …, "p99_us": …, "n": …}}`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tmkms_light::config::{HaConfig, HaEndpoint, HaTls};
use tmkms_light::ha::{Outcome, Watermark};
use tmkms_light::types::{ChainId, Height, Position, Round, SignState, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let info_path = PathBuf::from(args.next().ok_or("usage: txn_floor <cluster.json> [N]")?);
    let n: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&info_path)?)?;
    let text = |field: &str| -> Result<PathBuf, String> {
        info.get(field)
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .ok_or(format!("{field} missing in {}", info_path.display()))
    };
    let endpoints = info
        .get("endpoints")
        .and_then(|e| e.as_array())
        .ok_or("endpoints missing")?
        .iter()
        .map(|e| {
            e.as_str()
                .ok_or_else(|| "an endpoint is not a string".to_owned())?
                .parse::<HaEndpoint>()
        })
        .collect::<Result<_, _>>()?;
    let config = HaConfig {
        endpoints,
        tls: Some(HaTls {
            ca_file: text("ca_file")?,
            cert_file: text("cert_file")?,
            key_file: text("key_file")?,
        }),
        key_prefix: "/tmkms-light-floor".into(),
        signer_id: "floor".into(),
        timeout: Duration::from_secs(5),
    };
    let chain = ChainId::try_from(format!("floor-{}", std::process::id()))?;
    let mut store = tmkms_light_etcd::open(&config, &chain, &[0; 32])?;
    let mut revision = store.read()?.revision;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let state = SignState {
            position: Position {
                height: Height::try_from(u64::try_from(i)? + 1)?,
                round: Round::from(0u16),
                step: Step::Prevote,
            },
            sign_bytes: vec![0x5a; 120],
            signature: None,
        };
        let started = Instant::now();
        let outcome = store.reserve(revision, &state)?;
        let took = started.elapsed();
        match outcome {
            Outcome::Reserved(now) => revision = now.revision,
            Outcome::Superseded(_) => return Err("someone else wrote the floor key".into()),
        }
        // The first requests set up TLS and warm the members.
        if i >= 50 {
            samples.push(took);
        }
    }
    samples.sort();
    let pick = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{}",
        serde_json::json!({"etcd_txn": {"p50_us": pick(0.50), "p99_us": pick(0.99), "n": samples.len()}})
    );
    Ok(())
}
