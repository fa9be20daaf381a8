//! Per-link round-trip estimation and the in-flight window that keeps a link's queue short.

use std::time::Duration;

use crate::time::Time;

/// Smallest window: enough for a few payloads however slow the link.
pub(crate) const MIN_WINDOW: usize = 64 << 10;
/// Largest window: far above any bandwidth-delay product liag expects.
pub(crate) const MAX_WINDOW: usize = 256 << 20;
/// How long a minimum RTT sample is trusted before the estimate may rise again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

/// Round-trip estimate in the style of RFC 6298, plus a windowed minimum.
#[derive(Debug, Clone)]
pub(crate) struct Rtt {
    srtt: Duration,
    rttvar: Duration,
    latest: Duration,
    samples: u64,
    /// Minimum over the current and previous window, see [`MIN_RTT_WINDOW`].
    min: Duration,
    min_current: Duration,
    min_window_start: Time,
}

impl Rtt {
    /// An estimate seeded with the handshake's round trip.
    pub(crate) fn new(initial: Duration, now: Time) -> Self {
        let initial = initial.max(Duration::from_micros(10));
        Rtt {
            srtt: initial,
            rttvar: initial / 2,
            latest: initial,
            samples: 0,
            min: initial,
            min_current: initial,
            min_window_start: now,
        }
    }

    pub(crate) fn update(&mut self, sample: Duration, now: Time) {
        let sample = sample.max(Duration::from_micros(1));
        self.latest = sample;
        if self.samples == 0 {
            // The handshake's round trip carried tiny packets; data samples also carry a
            // payload's serialization, so the minimum starts from them.
            self.srtt = sample;
            self.rttvar = sample / 2;
            self.min = sample;
            self.min_current = sample;
            self.min_window_start = now;
        } else {
            let delta = self.srtt.abs_diff(sample);
            self.rttvar = (self.rttvar * 3 + delta) / 4;
            self.srtt = (self.srtt * 7 + sample) / 8;
        }
        self.samples += 1;
        if now - self.min_window_start > MIN_RTT_WINDOW {
            self.min = self.min_current.min(sample);
            self.min_current = sample;
            self.min_window_start = now;
        } else {
            self.min_current = self.min_current.min(sample);
            self.min = self.min.min(sample);
        }
    }

    pub(crate) fn smoothed(&self) -> Duration {
        self.srtt
    }

    pub(crate) fn latest(&self) -> Duration {
        self.latest
    }

    pub(crate) fn min(&self) -> Duration {
        self.min
    }

    /// How long to wait for an acknowledgement before calling the link stalled.
    pub(crate) fn ack_timeout(&self, floor: Duration, ceiling: Duration) -> Duration {
        (self.srtt * 2 + self.rttvar * 4).clamp(floor, ceiling)
    }
}

/// The most payload bytes liag keeps in flight on a link.
///
/// liag's links are usually reliable streams with their own congestion control and deep
/// buffers; what liag must avoid is piling data into a link faster than it drains, where it
/// would wait behind a queue while other links sit idle. The window therefore grows while the
/// measured round trip stays near the link's minimum and shrinks when a queue builds up
/// (delay-based, in the spirit of TCP Vegas and LEDBAT).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    cwnd: usize,
    /// Bytes acknowledged since the last growth step, for additive increase.
    acked_since_step: usize,
}

impl Window {
    pub(crate) fn new() -> Self {
        Window {
            cwnd: MIN_WINDOW * 4,
            acked_since_step: 0,
        }
    }

    pub(crate) fn get(&self) -> usize {
        self.cwnd
    }

    /// The queueing delay the window tolerates on a link with this round trip, where one
    /// payload takes `serialization` to send: half the round trip, at least 5 ms, plus two
    /// payloads, so that even a slow link can keep a packet queued behind the one on the wire.
    fn target(rtt: &Rtt, serialization: Duration) -> Duration {
        (rtt.min() / 2).max(Duration::from_millis(5)) + serialization * 2
    }

    /// Adjusts the window for `acked` bytes acknowledged with the given RTT state.
    /// `limited` says whether the window, not the application, held sending back.
    pub(crate) fn on_ack(
        &mut self,
        acked: usize,
        rtt: &Rtt,
        limited: bool,
        serialization: Duration,
    ) {
        let queueing = rtt.latest().saturating_sub(rtt.min());
        let target = Self::target(rtt, serialization);
        if queueing > target {
            // A queue is building: give back half of what was acknowledged.
            self.cwnd = self.cwnd.saturating_sub(acked / 2).max(MIN_WINDOW);
            self.acked_since_step = 0;
        } else if limited {
            if queueing < target / 2 {
                // Far from the target: grow by what was acknowledged (doubling per round trip).
                self.cwnd += acked;
            } else {
                // Close to it: grow by one payload per window's worth acknowledged.
                self.acked_since_step += acked;
                if self.acked_since_step >= self.cwnd {
                    self.acked_since_step = 0;
                    self.cwnd += MIN_WINDOW / 2;
                }
            }
            self.cwnd = self.cwnd.min(MAX_WINDOW);
        }
    }

    /// After a stall, start again from a small window.
    pub(crate) fn reset(&mut self) {
        self.cwnd = MIN_WINDOW * 4;
        self.acked_since_step = 0;
    }
}
