//! The send queue's bound in time ([`Config::send_queue_time`]): how much written data a
//! connection takes beyond what its links carry, and when a writer blocked on it may go on.
//!
//! [`Config::send_queue_time`]: crate::Config::send_queue_time

use std::time::Duration;

use super::transmit::{PAYLOAD_TIME, link_payload, payload_for, payload_time};
use super::{Connection, Event};
use crate::tier::Tier;

/// The most the spread of the links' round trips adds to the queue's bound: a link whose data
/// arrives later still than this (a path of seconds, or a peer that delays its
/// acknowledgements on one link) does not make the connection queue more.
const SPREAD_MAX: Duration = Duration::from_millis(500);

/// The links that may carry data, as far as the queue's bound is concerned.
#[derive(Debug, Default)]
struct Carrying {
    /// Whether there is one.
    any: bool,
    /// Their estimated rates together, bytes per second.
    rate: f64,
    /// The shortest and the longest of their paths' delays: minimum round trips less a
    /// payload's transmission.
    nearest: Option<Duration>,
    farthest: Duration,
    /// The largest payload one of them takes.
    largest: usize,
}

impl Carrying {
    /// Counts `link`, whose payloads are at most `max_payload`, for a queue bounded to `time`
    /// of the links' rates.
    fn add(&mut self, link: &crate::link::Link, max_payload: usize, time: Duration) {
        let rate = if link.has_rate() {
            link.rate()
        } else {
            // With no estimate yet, at most its window per the longer of its round trip and
            // the queue's time, within its cap: its window over its round trip is what it may
            // take, not what it carries, and over a round trip shorter than the queue's time
            // it reads far too fast (256 KiB over a veth path's 0.1 ms, 2.6 GB/s). A writer
            // allowed to queue 4 MB on a 1 Mbit/s path then waited half a minute for it.
            let window = link.inflight_limit() as f64;
            link.rate()
                .min(window / link.rtt.smoothed().max(time).as_secs_f64())
        };
        // An estimate that is not a finite rate counts for nothing.
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        // A busy link's round trips include its payload's transmission, [`PAYLOAD_TIME`] on
        // any link but a fast one's (whose payloads are whole and shorter): no longer path.
        // The path is what is left. At most [`PAYLOAD_TIME`]: a crawling link's 1 KiB takes
        // longer, so does a payload sized to a rate the link showed before it slowed, and its
        // minimum may come from a Ping, which carries no payload.
        // Of the rate as counted: a rate that is not finite gives the least payload.
        let (transmission, payload) = if rate > 0.0 {
            let time = payload_time(max_payload, link).min(PAYLOAD_TIME);
            (time, link_payload(max_payload, link))
        } else {
            (Duration::ZERO, max_payload.min(payload_for(0.0)))
        };
        let delay = link.rtt.min().saturating_sub(transmission);
        self.any = true;
        self.rate += rate;
        self.nearest = Some(self.nearest.map_or(delay, |d| d.min(delay)));
        self.farthest = self.farthest.max(delay);
        self.largest = self.largest.max(payload);
    }

    /// How much later than on the nearest link data handed to the farthest full link
    /// arrives, as the scheduler reckons it: behind a round trip's worth in flight, plus the
    /// way there (see [`crate::LinkView::arrival`]).
    fn spread(&self) -> Duration {
        let spread = self
            .farthest
            .saturating_sub(self.nearest.unwrap_or_default());
        spread.saturating_mul(3) / 2
    }
}

impl Connection {
    /// The most bytes waiting to be sent that the connection takes:
    ///
    /// - what its usable primary and secondary links (its backup links, when no other is
    ///   usable) carry in [`Config::send_queue_time`](crate::Config::send_queue_time) plus
    ///   1.5 times the spread of their paths' delays (their minimum round trips less a
    ///   payload's transmission; of the primary links alone, when one is usable), at most
    ///   [`SPREAD_MAX`]: the scheduler gives a link whose data
    ///   arrives later only a backlog the nearer links could not deliver by then, and a full
    ///   link's data arrives behind a round trip's worth in flight and the way there
    ///   ([`crate::LinkView::arrival`]), so without the spread a long path would stay idle;
    /// - at least two of the largest payloads a usable link takes (two of `max_payload`
    ///   while no link is usable), so a woken writer (see [`Connection::queue_bounds`]) has
    ///   room for a whole one;
    /// - while a usable secondary link exists, three times the backlog that opens it
    ///   ([`crate::SECONDARY_HORIZON`]), so one can build, and a writer woken at half the
    ///   queue refills it before the secondary links close.
    pub(crate) fn queue_limit(&self) -> usize {
        self.queue_bounds().0
    }

    /// [`Connection::queue_limit`], and the queue at which a blocked writer is woken: half
    /// the bound, or the part of it the paths' spread adds if that is more, less room for the
    /// largest payload a link takes. The spread's part is the backlog a farther link needs to
    /// be used at all ([`crate::EarliestArrival`]): a writer woken only at half the bound
    /// left it that short half the time, and the far link idle meanwhile.
    fn queue_bounds(&self) -> (usize, usize) {
        let time = self.config.send_queue_time;
        if time == Duration::MAX {
            return (usize::MAX, usize::MAX / 2);
        }
        let mut primaries = Carrying::default();
        let mut secondaries = Carrying::default();
        let mut backups = Carrying::default();
        let max_payload = self.config.max_payload;
        for l in self.links.iter().filter(|l| l.usable()) {
            match l.config.tier {
                Tier::Primary => primaries.add(l, max_payload, time),
                Tier::Secondary => secondaries.add(l, max_payload, time),
                Tier::Backup => backups.add(l, max_payload, time),
            }
        }
        let (rate, spread) = if primaries.any {
            (primaries.rate + secondaries.rate, primaries.spread())
        } else if secondaries.any {
            (secondaries.rate, secondaries.spread())
        } else {
            (backups.rate, backups.spread())
        };
        let spread = spread.min(SPREAD_MAX);
        let mut limit = rate * time.saturating_add(spread).as_secs_f64();
        if secondaries.any {
            limit = limit.max(3.0 * primaries.rate * crate::SECONDARY_HORIZON.as_secs_f64());
        }
        // The largest payload a usable link takes (at least 1 byte); `max_payload` while no
        // link is usable.
        let largest = match primaries
            .largest
            .max(secondaries.largest)
            .max(backups.largest)
        {
            0 => max_payload,
            largest => largest,
        };
        // Saturates at usize::MAX.
        let limit = (limit as usize).max(2 * largest);
        let for_spread = (rate * spread.as_secs_f64()) as usize;
        // The floor keeps room for a payload above the wake point.
        let wake_at = (limit / 2).max(for_spread).min(limit - largest);
        (limit, wake_at)
    }

    /// After the links took queued data, or acknowledgements freed send buffer room: a
    /// blocked writer is woken once the queue is down to half its bound (or to the backlog the
    /// paths' spread needs: see [`Connection::queue_bounds`]) and there is room.
    /// Once: it blocks again only after filling the queue, so it is not woken for every
    /// payload or acknowledgement while the queue drains. A writer held back by the send
    /// buffer rather than the queue (the queue at or below that point) is woken by each
    /// acknowledgement that frees room, as a socket's writer is.
    pub(super) fn wake_writer_on_room(&mut self) {
        if !self.write_blocked {
            return;
        }
        // The links' bound once, for both tests.
        let (limit, wake_at) = self.queue_bounds();
        if self.send.queued <= wake_at && self.send_capacity_within(limit) > 0 {
            self.write_blocked = false;
            self.events.push_back(Event::Writable);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Connection, Direction, LinkInfo, Time};
    use std::time::Duration;

    #[test]
    fn a_link_with_no_estimate_on_a_short_path_queues_no_more_than_its_window() {
        let now = Time::ZERO;
        let config = Config::default();
        let mut conn = Connection::new(config, now);
        // A veth path's handshake: 0.1 ms. The window over it reads 2.6 GB/s, 5 MB in the
        // queue's 2 ms, where the path may carry 1 Mbit/s.
        let rtt = Duration::from_micros(100);
        let link = conn.attach_link(
            now,
            LinkInfo::new(Direction::Outgoing, "veth", rtt),
            64 << 20,
        );
        let window = conn.link_stats()[0].window;
        assert_eq!(conn.link_stats()[0].id, link);
        assert!(
            conn.link_stats()[0].rate > 1e9,
            "the window over the round trip"
        );
        assert_eq!(conn.queue_limit(), window);
        // Over a round trip longer than the queue's time, the window over the round trip:
        // with a queue of 10 ms on a 20 ms path, half the window.
        let config = Config {
            send_queue_time: Duration::from_millis(10),
            ..Config::default()
        };
        let mut far = Connection::new(config, now);
        let rtt = Duration::from_millis(20);
        far.attach_link(
            now,
            LinkInfo::new(Direction::Outgoing, "far", rtt),
            64 << 20,
        );
        assert_eq!(far.queue_limit(), window / 2);
    }
}
