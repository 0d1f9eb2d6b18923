//! Round-trip latency samples and their summary.

use std::time::Duration;

use serde::Serialize;

/// Latency samples of a run, in arrival order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one round trip.
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples in arrival order.
    pub fn samples(&self) -> &[Duration] {
        &self.samples
    }

    /// Nearest-rank percentile (`p` in 0..=100) of the samples; zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        nearest_rank(&sorted, p)
    }

    /// The summary of all samples over a run that took `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let secs = elapsed.as_secs_f64();
        Summary {
            requests: sorted.len(),
            p50_us: micros(nearest_rank(&sorted, 50.0)),
            p90_us: micros(nearest_rank(&sorted, 90.0)),
            p99_us: micros(nearest_rank(&sorted, 99.0)),
            max_us: micros(sorted.last().copied().unwrap_or_default()),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            throughput_rps: if secs > 0.0 {
                sorted.len() as f64 / secs
            } else {
                0.0
            },
        }
    }
}

fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let p = p.clamp(0.0, 100.0);
    // Rank ceil(p/100 * n), 1-based, at least 1.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

/// Latency percentiles (µs) and throughput of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub elapsed_ms: u64,
    pub throughput_rps: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::new();
        for us in (1..=100).rev() {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.percentile(50.0), Duration::from_micros(50));
        assert_eq!(l.percentile(99.0), Duration::from_micros(99));
        assert_eq!(l.percentile(100.0), Duration::from_micros(100));
        assert_eq!(l.percentile(0.0), Duration::from_micros(1));
        let s = l.summary(Duration::from_secs(2));
        assert_eq!((s.requests, s.p90_us, s.max_us), (100, 90, 100));
        assert!((s.throughput_rps - 50.0).abs() < 1e-9);
        assert_eq!(Latencies::new().percentile(50.0), Duration::ZERO);
    }
}
