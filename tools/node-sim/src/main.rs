//! `tmkms-node-sim`: plays a CometBFT node against a remote signer.
//!
//! ```text
//! tmkms-node-sim run --listen tcp://127.0.0.1:26658 --chain-id test-chain \
//!     --protocol v0.38 --heights 300 [--start-height 1] [--expect-pubkey <base64>]
//! tmkms-node-sim bench --listen unix:///tmp/node.sock --chain-id test-chain \
//!     --protocol v1 -n 2000 [--json]
//! tmkms-node-sim scenarios --listen tcp://127.0.0.1:26658 --chain-id test-chain \
//!     --protocol v0.34 [--max-height H] [--json]
//! tmkms-node-sim etcd-cluster --dir /tmp/etcd --members 3 --info /tmp/etcd/cluster.json
//! ```
//!
//! `etcd-cluster` starts the TLS test cluster of `tmkms_node_sim::etcd` for
//! scripts, writes its endpoints and certificate paths to `--info`, prints
//! `ready <info>` and then takes commands on stdin until its end (see
//! `tmkms_node_sim::etcd_serve`).
//!
//! Every command first prints `listening on <addr>` (with the node id for
//! tcp) and flushes, so scripts can start the signer after reading it. Exit
//! status: 0 when every signature verified / every case passed, 1 otherwise,
//! 2 for usage errors.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tmkms_node_sim::scenario::{self, SuiteConfig};
use tmkms_node_sim::stats::Summary;
use tmkms_node_sim::{Dialect, NodeListener, SignerConn, SimError};

#[derive(Parser, Debug)]
#[command(
    name = "tmkms-node-sim",
    version,
    about = "Plays a CometBFT node against a remote signer: listens, accepts the signer, sends sign requests and verifies every answer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign `--heights` heights like a validator node (proposal, prevote,
    /// precommit with extension) and verify every signature.
    Run {
        #[command(flatten)]
        common: Common,
        /// Number of heights to sign.
        #[arg(long, default_value_t = 300)]
        heights: i64,
        /// Print progress every this many heights.
        #[arg(long, default_value_t = 50)]
        progress_every: i64,
    },
    /// Send N sequential sign requests and report latency and throughput.
    Bench {
        #[command(flatten)]
        common: Common,
        /// Number of sign requests (cycling proposal, prevote, precommit at
        /// increasing heights).
        #[arg(short = 'n', long = "requests", default_value_t = 2000)]
        requests: u64,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run every scripted scenario (replays, regressions, conflicts, wrong
    /// chain id, extension rules, invalid and malformed requests) and print
    /// PASS/FAIL per case.
    Scenarios {
        #[command(flatten)]
        common: Common,
        /// The signer's configured max_height, to also test refusals above it.
        #[arg(long)]
        max_height: Option<i64>,
        /// Milliseconds to wait for the signer's reaction to malformed input.
        #[arg(long, default_value_t = 2000)]
        reaction_wait_ms: u64,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a TLS etcd test cluster on loopback for scripts: write its
    /// endpoints and certificate paths to `--info`, print `ready <info>`,
    /// then take `kill|restart|pause|resume <i>`, `leader` and `pids` on
    /// stdin; end of stdin stops every member.
    EtcdCluster {
        /// Directory for the members' data, logs and certificates.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Number of members.
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// Where to write the JSON connection details (default <dir>/cluster.json).
        #[arg(long)]
        info: Option<std::path::PathBuf>,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// Where to listen: tcp://host:port (SecretConnection) or unix:///path.
    #[arg(long)]
    listen: String,
    /// The chain id the node runs.
    #[arg(long)]
    chain_id: String,
    /// Wire dialect: v0.34, v0.37, v0.38 (also v0.39, v0.40) or v1 (also v2).
    #[arg(long, default_value = "v0.38")]
    protocol: Dialect,
    /// First height to sign (must be above the signer's last signed height).
    #[arg(long, default_value_t = 1)]
    start_height: i64,
    /// The consensus public key the signer must report (base64).
    #[arg(long)]
    expect_pubkey: Option<String>,
    /// Seconds to wait for the signer to connect.
    #[arg(long, default_value_t = 60)]
    accept_timeout: u64,
}

/// A failure that ends the program, with the message shown to the user.
#[derive(Debug)]
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Failure(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn listen(common: &Common) -> Result<NodeListener, Failure> {
    let listener = NodeListener::bind(&common.listen, common.protocol)
        .map_err(|e| Failure(format!("cannot listen on {}: {e}", common.listen)))?;
    println!("listening on {}", listener.local_addr());
    std::io::stdout().flush()?;
    Ok(listener)
}

fn accept(listener: &NodeListener, common: &Common) -> Result<SignerConn, Failure> {
    let conn = listener.accept(Duration::from_secs(common.accept_timeout))?;
    match conn.remote_peer_id() {
        Some(id) => eprintln!("signer connected (peer id {})", hex::encode(id)),
        None => eprintln!("signer connected"),
    }
    Ok(conn)
}

/// Asks for the public key, checks it against `--expect-pubkey`, then pings.
fn handshake(conn: &mut SignerConn, common: &Common) -> Result<[u8; 32], Failure> {
    let pubkey = conn
        .pubkey(&common.chain_id)?
        .map_err(|e| Failure(format!("the signer refused its public key: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pubkey);
    eprintln!("consensus public key {b64}");
    check_pubkey(&b64, common)?;
    conn.ping()?;
    Ok(pubkey)
}

/// Checks the signer's key (`b64`, in base64) against `--expect-pubkey`.
fn check_pubkey(b64: &str, common: &Common) -> Result<(), Failure> {
    match &common.expect_pubkey {
        Some(expected) if expected.trim() != b64 => Err(Failure(format!(
            "public key mismatch: the signer reports {b64}, expected {}",
            expected.trim()
        ))),
        _ => Ok(()),
    }
}

/// Listens, accepts the signer, checks its key and sends it `requests`
/// requests of the normal sequence from `--start-height`. A signer that
/// fails them is reported here and gives `None`.
fn drive_signer(
    common: &Common,
    requests: u64,
    progress: &mut dyn FnMut(u64, &scenario::Stats),
) -> Result<Option<scenario::Stats>, Failure> {
    let listener = listen(common)?;
    let mut conn = accept(&listener, common)?;
    let pubkey = handshake(&mut conn, common)?;
    let start = common.start_height;
    match scenario::drive(
        &mut conn,
        &common.chain_id,
        start,
        requests,
        &pubkey,
        progress,
    ) {
        Ok(stats) => Ok(Some(stats)),
        Err(e) => {
            report_failure(&e);
            Ok(None)
        }
    }
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}

fn print_summary(label: &str, s: &Summary) {
    println!(
        "{label}: {} requests, p50 {} us, p90 {} us, p99 {} us, max {} us, {:.0} req/s",
        s.requests, s.p50_us, s.p90_us, s.p99_us, s.max_us, s.throughput_rps
    );
}

fn run(cli: Cli) -> Result<bool, Failure> {
    match cli.command {
        Command::EtcdCluster { dir, members, info } => {
            let info = info.unwrap_or_else(|| dir.join("cluster.json"));
            tmkms_node_sim::etcd_serve::serve(&dir, members, &info)?;
            Ok(true)
        }
        Command::Run {
            common,
            heights,
            progress_every,
        } => {
            let per_report = u64::try_from(progress_every.max(1))
                .unwrap_or(1)
                .saturating_mul(3);
            let requests = u64::try_from(heights.max(0)).unwrap_or(0).saturating_mul(3);
            let mut progress = |i: u64, stats: &scenario::Stats| {
                if (i + 1).is_multiple_of(per_report) {
                    println!(
                        "height {} ({}/{} heights): p50 {} us, p99 {} us",
                        stats.last_height,
                        (i + 1) / 3,
                        heights,
                        micros(stats.latencies.percentile(50.0)),
                        micros(stats.latencies.percentile(99.0)),
                    );
                    let _ = std::io::stdout().flush();
                }
            };
            let Some(stats) = drive_signer(&common, requests, &mut progress)? else {
                return Ok(false);
            };
            print_summary(
                &format!(
                    "done: {heights} heights {}..={}",
                    stats.first_height, stats.last_height
                ),
                &stats.summary(),
            );
            if stats.timestamps_changed > 0 {
                println!(
                    "note: the signer changed the timestamp of {} fresh votes",
                    stats.timestamps_changed
                );
            }
            println!("max response size: {} bytes", stats.max_response_len);
            Ok(true)
        }
        Command::Bench {
            common,
            requests,
            json,
        } => {
            let Some(stats) = drive_signer(&common, requests, &mut |_, _| {})? else {
                return Ok(false);
            };
            let summary = stats.summary();
            if json {
                let out = BenchJson {
                    protocol: common.protocol.to_string(),
                    transport: transport_name(&common.listen),
                    chain_id: common.chain_id.clone(),
                    first_height: stats.first_height,
                    last_height: stats.last_height,
                    max_response_len: stats.max_response_len,
                    summary,
                };
                println!("{}", serde_json::to_string(&out)?);
            } else {
                print_summary(
                    &format!(
                        "bench {} over {}",
                        common.protocol,
                        transport_name(&common.listen)
                    ),
                    &summary,
                );
            }
            Ok(true)
        }
        Command::Scenarios {
            common,
            max_height,
            reaction_wait_ms,
            json,
        } => {
            let listener = listen(&common)?;
            let mut cfg = SuiteConfig::new(&common.chain_id);
            cfg.start_height = common.start_height;
            cfg.accept_timeout = Duration::from_secs(common.accept_timeout);
            cfg.reaction_wait = Duration::from_millis(reaction_wait_ms);
            cfg.max_height = max_height;
            let suite = scenario::run_all(&listener, &cfg)?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(suite.pubkey);
            check_pubkey(&b64, &common)?;
            let total: usize = suite.reports.iter().map(|r| r.cases.len()).sum();
            let failed: usize = suite.reports.iter().map(|r| r.failures().len()).sum();
            if json {
                println!("{}", serde_json::to_string(&suite_json(&suite))?);
            } else {
                for report in &suite.reports {
                    let verdict = if report.passed() { "PASS" } else { "FAIL" };
                    println!("{verdict} {}", report.scenario);
                    for case in &report.cases {
                        println!("  {case}");
                    }
                }
                println!(
                    "result: {} ({} of {total} cases failed, {} reconnects, next free height {})",
                    if failed == 0 { "PASS" } else { "FAIL" },
                    failed,
                    suite.reconnects,
                    suite.next_height
                );
            }
            Ok(failed == 0)
        }
    }
}

fn report_failure(e: &SimError) {
    println!("FAIL: {e}");
    eprintln!("error: {e}");
}

fn transport_name(listen: &str) -> String {
    if listen.starts_with("unix://") {
        "unix".into()
    } else {
        "tcp".into()
    }
}

#[derive(Serialize)]
struct BenchJson {
    protocol: String,
    transport: String,
    chain_id: String,
    first_height: i64,
    last_height: i64,
    max_response_len: usize,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Serialize)]
struct CaseJson {
    name: String,
    passed: bool,
    expected: String,
    outcome: String,
}

#[derive(Serialize)]
struct ReportJson {
    scenario: String,
    passed: bool,
    cases: Vec<CaseJson>,
}

#[derive(Serialize)]
struct SuiteJson {
    protocol: String,
    passed: bool,
    reconnects: usize,
    next_height: i64,
    scenarios: Vec<ReportJson>,
}

fn suite_json(suite: &scenario::SuiteReport) -> SuiteJson {
    SuiteJson {
        protocol: suite.dialect.to_string(),
        passed: suite.passed(),
        reconnects: suite.reconnects,
        next_height: suite.next_height,
        scenarios: suite
            .reports
            .iter()
            .map(|r| ReportJson {
                scenario: r.scenario.clone(),
                passed: r.passed(),
                cases: r
                    .cases
                    .iter()
                    .map(|c| CaseJson {
                        name: c.name.clone(),
                        passed: c.passed(),
                        expected: c.expect.to_string(),
                        outcome: c.outcome.to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
