//! The queue a peer's own data keeps on a link, which this end's acknowledgements wait behind.
//!
//! Every Data message is acknowledged on the link it came in on, behind whatever the peer
//! sends there: when both ends carry bulk over one path, each end's round trips hold the
//! other's queue beside its own. A window that takes all of it for its own queue shrinks to
//! its floor while the other direction keeps its queue, and on an asymmetric path (a fast
//! download beside a slow upload) the download falls to a fraction of the path. By Little's
//! law the bytes in flight are the rate times the round trip, whoever's queue it holds, so no
//! end can tell the two queues apart from its round trips. What it can tell is whether the
//! peer keeps the link busy with data of its own and at what pace that data comes: a peer
//! running liag's window keeps as much queue on the path back as its own delay target allows,
//! and never less than its floor (docs/performance.md, "Both ways at once").

use crate::time::{Time, transmission};
use std::time::Duration;

/// The smallest payload that counts: a link's payloads are never smaller (`MIN_PAYLOAD`) when
/// data waits, and small messages are no bulk transfer.
const BUSY_PAYLOAD: usize = 1 << 10;

/// How many payloads of [`BUSY_PAYLOAD`] or more a round trip must bring to show the end
/// busy. Two a round trip (a fast link held at its floor of two payloads) do not.
const BUSY_COUNT: u32 = 3;

/// What one end sent on a link in the latest round trip that showed it busy there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BusyPace {
    /// The largest payload, in bytes.
    pub(crate) payload: usize,
    /// The pace the data went at, in bytes per second.
    pub(crate) rate: f64,
}

impl BusyPace {
    /// How long `bytes` take to transmit at that pace.
    pub(crate) fn transmission(&self, bytes: usize) -> Duration {
        transmission(bytes, self.rate)
    }
}

/// What one end sends on one link, counted per round trip: the peer's data as it comes in,
/// or this end's as it goes out.
#[derive(Debug, Clone, Default)]
pub(crate) struct DataPace {
    /// When the round trip being counted began.
    start: Option<Time>,
    /// When its latest payload came or went.
    last: Time,
    /// The bytes of its payloads of [`BUSY_PAYLOAD`] or more.
    bytes: usize,
    /// Its largest payload.
    largest: usize,
    /// How many payloads of [`BUSY_PAYLOAD`] or more it had.
    count: u32,
    /// What the latest busy round trip showed.
    sending: Option<BusyPace>,
    /// Until when that holds: two round trips after the busy one ended.
    until: Time,
}

impl DataPace {
    /// A Data payload of `len` bytes came in or went out at `now`, the link's round trip
    /// being `rtt`. Smaller payloads than [`BUSY_PAYLOAD`] count for nothing.
    pub(crate) fn on_data(&mut self, len: usize, now: Time, rtt: Duration) {
        if len < BUSY_PAYLOAD {
            return;
        }
        let start = *self.start.get_or_insert(now);
        let elapsed = now - start;
        if elapsed >= rtt && !elapsed.is_zero() {
            // A round trip with a silence longer than itself shows no pace: its payloads
            // came in bursts.
            let steady = now - self.last <= rtt;
            if steady && self.count >= BUSY_COUNT {
                self.sending = Some(BusyPace {
                    payload: self.largest,
                    rate: self.bytes as f64 / elapsed.as_secs_f64(),
                });
                self.until = now + rtt.saturating_mul(2);
            }
            self.start = Some(now);
            self.bytes = 0;
            self.largest = 0;
            self.count = 0;
        }
        self.last = now;
        self.bytes = self.bytes.saturating_add(len);
        self.largest = self.largest.max(len);
        self.count = self.count.saturating_add(1);
    }

    /// What the end sends on the link, if its data kept the link busy lately (at `now`).
    pub(crate) fn busy(&self, now: Time) -> Option<BusyPace> {
        self.sending.filter(|_| now <= self.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    const RTT: Duration = Duration::from_millis(20);

    #[test]
    fn a_peer_sending_payloads_back_to_back_is_busy_at_their_pace() {
        let mut peer = DataPace::default();
        // 2 KiB every 4 ms: 512 KB/s, for two round trips.
        for i in 0..=10 {
            peer.on_data(2048, at(4 * i), RTT);
        }
        let sending = peer.busy(at(40)).expect("busy");
        assert_eq!(sending.payload, 2048);
        // Each round trip: five payloads in 20 ms.
        assert!((sending.rate - 512_000.0).abs() < 1.0, "{}", sending.rate);
        assert_eq!(sending.transmission(2048), Duration::from_millis(4));
        // Two round trips after the last busy one ended, it is forgotten.
        assert!(peer.busy(at(80)).is_some());
        assert!(peer.busy(at(81)).is_none());
    }

    #[test]
    fn small_messages_and_a_trickle_are_no_bulk_transfer() {
        let mut small = DataPace::default();
        // 64-byte messages, many a round trip: a call, a game, an SSH session.
        for i in 0..100 {
            small.on_data(64, at(i), RTT);
        }
        assert_eq!(small.busy(at(100)), None);
        let mut trickle = DataPace::default();
        // Full payloads, two a round trip.
        for i in 0..10 {
            trickle.on_data(4096, at(10 * i), RTT);
        }
        assert_eq!(trickle.busy(at(100)), None);
    }

    #[test]
    fn a_round_trip_with_a_pause_in_it_shows_no_pace() {
        let mut peer = DataPace::default();
        // Three payloads, ten seconds of nothing, then one more: no crawl of 600 B/s.
        for i in 0..3 {
            peer.on_data(2048, at(i), RTT);
        }
        peer.on_data(2048, at(10_000), RTT);
        assert_eq!(peer.busy(at(10_000)), None);
        // Empty payloads and ones under 1 KiB count for nothing, beside one that does.
        let mut empty = DataPace::default();
        for i in 0..30 {
            empty.on_data(if i % 10 == 0 { 1024 } else { 0 }, at(i), RTT);
        }
        assert_eq!(empty.busy(at(30)), None);
    }
}
