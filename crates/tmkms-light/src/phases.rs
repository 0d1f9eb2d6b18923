//! Where one request's time goes inside the signer: a stopwatch the
//! session and the chain signer lap as the request moves through its
//! phases. The figures go into the request's log line (after the response
//! is written), for the benchmark's breakdown and for operators chasing a
//! slow signer.
//!
//! Without a clock (enclaves have no trustworthy one) every lap is a no-op,
//! so the signing path does not depend on time in any way.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::session::Clock;

/// A request's phases, in the order it passes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// From the first transport bytes of the message to the whole message
    /// (SecretConnection decryption included).
    Read,
    /// Protobuf decoding and request validation.
    Decode,
    /// Chain-id and height policy, sign bytes, the double-sign guard.
    Guard,
    /// The durable state write (the part not overlapped with signing).
    Write,
    /// Signatures (the vote's and its extension's).
    Sign,
    /// Encoding, encryption and the socket write of the response.
    Respond,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Read,
        Phase::Decode,
        Phase::Guard,
        Phase::Write,
        Phase::Sign,
        Phase::Respond,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Time per phase of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases([Duration; 6]);

impl Phases {
    pub fn get(&self, phase: Phase) -> Duration {
        self.0.get(phase.index()).copied().unwrap_or_default()
    }

    /// A phase in whole microseconds, for log fields.
    pub fn micros(&self, phase: Phase) -> u64 {
        whole_micros(self.get(phase))
    }
}

/// `duration` in whole microseconds as a log field: u64, because log
/// shippers read JSON numbers and u128 would be written as text.
pub fn whole_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A stopwatch over one request. Each [`Laps::lap`] charges the time since
/// the previous lap to a phase.
#[derive(Debug)]
pub struct Laps {
    clock: Option<Clock>,
    last: Option<Instant>,
    phases: Phases,
}

impl Laps {
    /// A stopwatch that records nothing.
    pub fn off() -> Self {
        Self {
            clock: None,
            last: None,
            phases: Phases::default(),
        }
    }

    /// A stopwatch started now (if there is a clock).
    pub fn start(clock: Option<Clock>) -> Self {
        Self {
            clock,
            last: clock.map(|now| now()),
            phases: Phases::default(),
        }
    }

    /// Charge the time since the previous lap (or since `at`, for the first
    /// lap of a request whose bytes arrived before the stopwatch started).
    pub fn start_at(clock: Option<Clock>, at: Option<Instant>) -> Self {
        let mut laps = Self::start(clock);
        if laps.last.is_some() {
            laps.last = at.or(laps.last);
        }
        laps
    }

    /// Charge the time since the previous lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        let (Some(now), Some(last)) = (self.clock.map(|now| now()), self.last) else {
            return;
        };
        if let Some(slot) = self.phases.0.get_mut(phase.index()) {
            *slot += now.saturating_duration_since(last);
        }
        self.last = Some(now);
    }

    pub fn phases(&self) -> Phases {
        self.phases
    }
}

thread_local! {
    /// When the current thread's transport last received bytes (see
    /// [`ArrivalStamped`]). Thread-local because a connection is read by the
    /// thread that serves it, and the stamp is only ever a log figure.
    static LAST_ARRIVAL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The instant the serving thread's transport last received bytes, taken
/// (cleared) so that a message assembled from buffered bytes is not charged
/// to an older arrival.
pub fn take_last_arrival() -> Option<Instant> {
    LAST_ARRIVAL.with(Cell::take)
}

/// A raw socket that stamps the arrival of bytes, so that the session can
/// tell reading and decrypting a message apart from waiting for it. Only
/// the first read that returns bytes after a [`take_last_arrival`] stamps:
/// that is when the message began to arrive.
#[derive(Debug)]
pub struct ArrivalStamped<S>(pub S);

impl<S: std::io::Read> std::io::Read for ArrivalStamped<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        if n > 0 {
            LAST_ARRIVAL.with(|last| {
                if last.get().is_none() {
                    last.set(Some(Instant::now()));
                }
            });
        }
        Ok(n)
    }
}

impl<S: std::io::Write> std::io::Write for ArrivalStamped<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn laps_charge_elapsed_time_to_their_phase() {
        let mut laps = Laps::start(Some(now));
        std::thread::sleep(Duration::from_millis(3));
        laps.lap(Phase::Write);
        laps.lap(Phase::Sign);
        let phases = laps.phases();
        assert!(phases.get(Phase::Write) >= Duration::from_millis(3));
        assert!(phases.get(Phase::Sign) < Duration::from_millis(3));
        assert_eq!(phases.get(Phase::Read), Duration::ZERO);
    }

    #[test]
    fn without_a_clock_nothing_is_recorded() {
        let mut laps = Laps::start(None);
        std::thread::sleep(Duration::from_millis(1));
        laps.lap(Phase::Write);
        assert_eq!(laps.phases(), Phases::default());
    }

    #[test]
    fn arrival_is_stamped_once_per_take() {
        let _ = take_last_arrival();
        let mut stream = ArrivalStamped(&b"abcdef"[..]);
        let mut buf = [0; 3];
        std::io::Read::read(&mut stream, &mut buf).unwrap();
        let first = LAST_ARRIVAL.with(Cell::get).unwrap();
        std::io::Read::read(&mut stream, &mut buf).unwrap();
        assert_eq!(take_last_arrival(), Some(first));
        assert_eq!(take_last_arrival(), None);
    }
}
