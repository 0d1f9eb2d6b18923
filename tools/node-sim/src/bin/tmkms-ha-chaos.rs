//! `tmkms-ha-chaos`: the high-availability chaos suite's driver (see
//! `tmkms_node_sim::chaos`). Exit status: 0 clean, 1 conflicting or invalid
//! signatures, 2 setup failure, 3 fewer faults than `--min-faults`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tmkms_node_sim::chaos::{self, Config};

#[derive(Parser, Debug)]
#[command(
    name = "tmkms-ha-chaos",
    about = "Chaos suite for HA signers: faults at random moments, a ledger of every returned signature as the judge"
)]
struct Args {
    /// The signer binary (tmkms-softsign).
    #[arg(long)]
    signer_bin: PathBuf,
    /// Number of signers (2 or 3).
    #[arg(long, default_value_t = 2)]
    signers: usize,
    /// Simulated nodes each signer serves (1, or 2 for two sentries).
    #[arg(long, default_value_t = 1)]
    sentries: usize,
    /// Seconds of faults.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Stop after this many faults (whichever of this and --seconds comes first).
    #[arg(long, default_value_t = u64::MAX)]
    max_faults: u64,
    /// Fail (exit 3) if fewer faults were injected.
    #[arg(long, default_value_t = 0)]
    min_faults: u64,
    /// Seed of the fault schedule and of the node's choices (random if absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Where homes, etcd data, logs and summary.json go.
    #[arg(long)]
    out: PathBuf,
    /// The signers' [ha] timeout_ms.
    #[arg(long, default_value_t = 500)]
    ha_timeout_ms: u64,
    /// How long the node waits for one answer, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    request_timeout_ms: u64,
    /// Do not jump clocks (otherwise done when libfaketime is installed).
    #[arg(long)]
    no_clock_jumps: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
            .unwrap_or(1)
    });
    println!("tmkms-ha-chaos: seed {seed} (rerun with --seed {seed})");
    let cfg = Config {
        signer_bin: args.signer_bin,
        signers: args.signers,
        sentries: args.sentries,
        duration: Duration::from_secs(args.seconds),
        max_faults: args.max_faults,
        seed,
        out_dir: args.out,
        ha_timeout_ms: args.ha_timeout_ms,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        clock_jumps: !args.no_clock_jumps,
    };
    let report = match chaos::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tmkms-ha-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let text = report.text();
    println!("{text}");
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(e) = std::fs::write(chaos::out_file(&cfg, "summary.json"), json) {
        eprintln!("tmkms-ha-chaos: writing summary.json: {e}");
    }
    let _ = std::fs::write(chaos::out_file(&cfg, "summary.txt"), &text);
    let _ = std::fs::write(
        chaos::out_file(&cfg, "faults.log"),
        report.fault_log.join("\n"),
    );
    if !report.clean() {
        eprintln!("tmkms-ha-chaos: FAILED: conflicting or invalid signatures (seed {seed})");
        return ExitCode::from(1);
    }
    if report.faults_total < args.min_faults {
        eprintln!(
            "tmkms-ha-chaos: FAILED: {} faults injected, fewer than --min-faults {}",
            report.faults_total, args.min_faults
        );
        return ExitCode::from(3);
    }
    println!("tmkms-ha-chaos: PASSED (seed {seed})");
    ExitCode::SUCCESS
}
