//! A link's rate cap ([`LinkConfig::max_rate`](crate::LinkConfig::max_rate)): a token bucket
//! on the payload bytes the link takes.
//!
//! The bucket holds 20 ms of the rate (at least 4 KiB) and may go into debt by one payload:
//! a payload is taken whenever the bucket is not empty, so a cap below one payload per burst
//! still lets data through, and the average holds.

use std::time::Duration;

use crate::time::Time;

/// How much of the rate the bucket holds when full.
const BURST: Duration = Duration::from_millis(20);
/// The least it holds.
const MIN_BURST: f64 = 4096.0;

/// The token bucket of one capped link.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// The cap, bytes per second.
    rate: u64,
    /// Bytes that may be taken now; below zero, the debt of the last payload.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Time,
}

impl Pacer {
    /// A full bucket for `rate` bytes per second.
    pub(crate) fn new(rate: u64, now: Time) -> Self {
        let mut pacer = Pacer {
            rate: rate.max(1),
            tokens: 0.0,
            at: now,
        };
        pacer.tokens = pacer.burst();
        pacer
    }

    /// The cap this bucket was made for.
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    fn burst(&self) -> f64 {
        (self.rate as f64 * BURST.as_secs_f64()).max(MIN_BURST)
    }

    /// Adds what the rate gave since the last update.
    pub(crate) fn refill(&mut self, now: Time) {
        if now > self.at {
            let earned = (now - self.at).as_secs_f64() * self.rate as f64;
            self.tokens = (self.tokens + earned).min(self.burst());
            self.at = now;
        }
    }

    /// Whether the link may take a payload now.
    pub(crate) fn allows(&mut self, now: Time) -> bool {
        self.refill(now);
        self.tokens > 0.0
    }

    /// The link took `len` payload bytes.
    pub(crate) fn take(&mut self, len: usize) {
        self.tokens -= len as f64;
    }

    /// When the link may take a payload again, if it may not now.
    pub(crate) fn ready_at(&self) -> Option<Time> {
        (self.tokens <= 0.0).then(|| {
            let wait = (1.0 - self.tokens) / self.rate as f64;
            // At least a nanosecond: a timer due at `at` itself would find nothing refilled.
            let wait = Duration::from_secs_f64(wait.min(3600.0)).max(Duration::from_nanos(1));
            self.at + wait
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn the_bucket_lets_the_rate_through_and_no_more() {
        // 1 MB/s: 20 kB of burst.
        let mut pacer = Pacer::new(1_000_000, ms(0));
        let mut taken = 0;
        for t in 0..=1_000 {
            while pacer.allows(ms(t)) {
                pacer.take(1_000);
                taken += 1_000;
            }
        }
        // The burst, then 1 MB over the second; one payload of debt at most.
        assert!((1_000_000..=1_021_000).contains(&taken), "{taken}");
    }

    #[test]
    fn a_payload_larger_than_the_burst_goes_into_debt_and_waits_it_out() {
        let mut pacer = Pacer::new(10_000, ms(0));
        assert!(pacer.allows(ms(0)));
        pacer.take(14_096);
        assert!(!pacer.allows(ms(0)));
        // 10,000 bytes of debt at 10 kB/s: a second.
        let ready = pacer.ready_at().unwrap_or(ms(0));
        assert!(ready > ms(999) && ready <= ms(1_001), "{ready:?}");
        assert!(!pacer.allows(ms(999)));
        assert!(pacer.allows(ms(1_001)));
        assert_eq!(pacer.ready_at(), None);
    }
}
