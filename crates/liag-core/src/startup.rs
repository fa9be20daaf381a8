//! A link's startup: the round trips after it joins a connection whose other links already
//! carry data (a path back after an outage, a new interface), while its rate estimate still
//! grows as fast as it is given data.
//!
//! The scheduler gives each link data by its estimated rate ([`LinkView::arrival`]), and the
//! estimate measures what the link delivered, so a link given what it delivered shows the
//! same rate again. Beside links that already carry the stream, a new link on a long path
//! starts from what its link test and its TCP connection's first flights carried; without a
//! startup its estimate grew by about an eighth per 50 ms round trip, a second to reach
//! 40 Mbit/s (docs/performance.md, "A healed path's first second"). While a link starts up,
//! the scheduler takes it to be [`STARTUP_GAIN`] times faster for new data, so it carries
//! enough for its path (and the TCP connection beneath it, whose own startup measures only
//! what it is given) to deliver more: the estimate, half the old and half each new sample,
//! then grows by up to half per round trip. The startup ends once the estimate has stayed
//! under a quarter above the highest that grew for three round trips in a row with
//! data waiting: the path is full (the rule BBR uses to leave its own startup; a round trip
//! with nothing waiting says nothing of the path, as in BBR). A connection's first links
//! start together, each given data by the same estimates, and have no startup.
//!
//! [`LinkView::arrival`]: crate::LinkView::arrival

use std::time::Duration;

use crate::time::Time;

/// How much faster than its estimated rate a link in its startup is taken to be: given twice
/// what it delivered in a round trip, a path with room delivers twice as much in the next.
pub(crate) const STARTUP_GAIN: f64 = 2.0;

/// The growth per round trip that shows the path has room.
const GROWTH: f64 = 1.25;

/// Round trips in a row with less growth that end the startup.
const FLAT_ROUNDS: u8 = 3;

/// Whether a link is in its startup, and what it needs to tell when the startup ends.
#[derive(Debug, Clone)]
pub(crate) struct Startup {
    on: bool,
    /// The highest rate that grew by [`GROWTH`] over the one before it.
    full: f64,
    /// Round trips since the rate last grew by [`GROWTH`].
    flat: u8,
    /// When the round trip under way ends.
    round_end: Option<Time>,
}

impl Startup {
    /// A link in its startup.
    pub(crate) fn begin() -> Self {
        Startup {
            on: true,
            full: 0.0,
            flat: 0,
            round_end: None,
        }
    }

    /// A link with no startup.
    pub(crate) fn none() -> Self {
        Startup {
            on: false,
            ..Startup::begin()
        }
    }

    /// Whether the link is in its startup.
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// An acknowledgement came at `now`, the link's rate estimate being `rate` (bytes per
    /// second; its test's until intervals measure it, and 0 counts no round trip) and its
    /// round trip `rtt`; `backlogged` says whether data waited to be sent. Once per round
    /// trip the rate is compared with the highest that grew.
    pub(crate) fn on_ack(&mut self, rate: f64, backlogged: bool, now: Time, rtt: Duration) {
        if !self.on || rate <= 0.0 {
            return;
        }
        match self.round_end {
            Some(end) if now < end => return,
            _ => self.round_end = Some(now + rtt),
        }
        if rate >= self.full * GROWTH {
            self.full = rate;
            self.flat = 0;
        } else if backlogged {
            self.flat += 1;
            self.on = self.flat < FLAT_ROUNDS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn the_startup_lasts_while_the_rate_grows_a_quarter_per_round_trip() {
        let rtt = Duration::from_millis(50);
        let mut s = Startup::begin();
        let mut rate = 300e3;
        // Doubling each round trip; acknowledgements between the round trips' ends change
        // nothing.
        for round in 0..5 {
            s.on_ack(rate, true, at(round * 50), rtt);
            s.on_ack(rate * 10.0, true, at(round * 50 + 10), rtt);
            assert!(s.on());
            rate *= 2.0;
        }
        // The path is full: a tenth more than the last doubling's rate, three round trips
        // in a row, ends the startup.
        let full = rate / 2.0 * 1.1;
        for round in 5..7 {
            s.on_ack(full, true, at(round * 50), rtt);
            assert!(s.on(), "round {round}");
        }
        s.on_ack(full, true, at(7 * 50), rtt);
        assert!(!s.on());
        // It stays over, whatever the rate does.
        s.on_ack(rate * 4.0, true, at(8 * 50), rtt);
        assert!(!s.on());
    }

    #[test]
    fn growth_restarts_the_count() {
        let rtt = Duration::from_millis(10);
        assert!(!Startup::none().on());
        let mut s = Startup::begin();
        s.on_ack(1e6, true, at(0), rtt);
        s.on_ack(1e6, true, at(10), rtt);
        s.on_ack(1e6, true, at(20), rtt);
        s.on_ack(2e6, true, at(30), rtt);
        s.on_ack(2e6, true, at(40), rtt);
        s.on_ack(2e6, true, at(50), rtt);
        assert!(s.on(), "two flat round trips, growth, two more");
        s.on_ack(2e6, true, at(60), rtt);
        assert!(!s.on());
    }

    #[test]
    fn a_round_trip_with_nothing_waiting_is_not_flat() {
        let rtt = Duration::from_millis(10);
        let mut s = Startup::begin();
        s.on_ack(1e6, true, at(0), rtt);
        // The application paused: the rate says nothing of the path.
        for t in 1..10 {
            s.on_ack(1e6, false, at(t * 10), rtt);
        }
        assert!(s.on());
        for t in 10..13 {
            s.on_ack(1e6, true, at(t * 10), rtt);
        }
        assert!(!s.on());
    }

    #[test]
    fn no_measured_rate_counts_no_round_trip() {
        let mut s = Startup::begin();
        for t in 0..10 {
            s.on_ack(0.0, true, at(t * 100), Duration::from_millis(10));
        }
        assert!(s.on());
    }
}
