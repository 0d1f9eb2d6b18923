//! What metrics add to one signature, measured in process: the events a
//! released precommit produces (its state write, its release, its answer)
//! recorded into the real families, with and without a scraper encoding
//! `/metrics` every 10 ms on another thread. Prints the median and p99 of
//! 200 batches of 10,000 signatures each, in nanoseconds per signature.
//!
//!   cargo run --release -p tmkms-light-metrics --example observe_cost

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmkms_light::observe::{Event, Observer, SignedKind};
use tmkms_light_metrics::Metrics;

const BATCH: u32 = 10_000;
const BATCHES: usize = 200;

fn per_signature_ns(chain: &dyn Observer) -> Vec<f64> {
    let written = Event::StateWritten {
        duration: Duration::from_micros(120),
    };
    let answered = Event::Answered {
        latency: Duration::from_micros(250),
    };
    let mut samples = Vec::with_capacity(BATCHES);
    for batch in 0..BATCHES {
        let started = Instant::now();
        for i in 0..BATCH {
            let height = u64::try_from(batch).unwrap_or(0) * u64::from(BATCH) + u64::from(i);
            chain.observe(&written);
            chain.observe(&Event::Signed {
                kind: SignedKind::Precommit,
                height,
                round: 0,
                extension: true,
                replayed: false,
            });
            chain.observe(&answered);
        }
        samples.push(started.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    samples.sort_by(f64::total_cmp);
    samples
}

fn report(what: &str, samples: &[f64]) {
    let at = |q: f64| {
        let index = (samples.len() as f64 * q) as usize;
        samples
            .get(index.min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{what}: p50 {:.0} ns, p99 {:.0} ns per signature",
        at(0.5),
        at(0.99)
    );
}

fn main() {
    let metrics = Metrics::new("softsign");
    let chain = metrics.chain("bench-chain");
    report("metrics, nobody scraping", &per_signature_ns(&chain));

    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let metrics = Arc::clone(&metrics);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut scrapes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(metrics.encode());
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            scrapes
        })
    };
    report("metrics, scraped every 10 ms", &per_signature_ns(&chain));
    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap_or(0);
    println!("({scrapes} scrapes during the second run)");
    report(
        "no metrics (the Unobserved observer)",
        &per_signature_ns(&tmkms_light::observe::Unobserved),
    );
}
