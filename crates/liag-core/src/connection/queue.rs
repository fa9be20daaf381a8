//! The send queue's bound in time ([`Config::send_queue_time`]): how much written data a
//! connection takes beyond what its links carry, and when a writer blocked on it may go on.
//!
//! [`Config::send_queue_time`]: crate::Config::send_queue_time

use std::time::Duration;

use super::{Connection, Event};
use crate::tier::Tier;

/// The links that may carry data, as far as the queue's bound is concerned.
#[derive(Debug, Default)]
struct Carrying {
    /// Whether there is one.
    any: bool,
    /// Their estimated rates together, bytes per second.
    rate: f64,
    /// The shortest and the longest of their minimum round trips.
    nearest: Option<Duration>,
    farthest: Duration,
}

impl Carrying {
    fn add(&mut self, link: &crate::link::Link) -> f64 {
        // An estimate that is not a finite rate counts for nothing.
        let rate = link.rate();
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        let delay = link.rtt.min();
        self.any = true;
        self.rate += rate;
        self.nearest = Some(self.nearest.map_or(delay, |d| d.min(delay)));
        self.farthest = self.farthest.max(delay);
        rate
    }

    /// How much later than on the nearest link data handed to the farthest busy link
    /// arrives, as the scheduler reckons it: behind a round trip's worth in flight, plus the
    /// way there (see [`crate::LinkView::arrival`]).
    fn spread(&self) -> Duration {
        self.farthest
            .saturating_sub(self.nearest.unwrap_or_default())
            * 3
            / 2
    }
}

impl Connection {
    /// The most bytes waiting to be sent that the connection takes:
    ///
    /// - what its usable primary and secondary links (its backup links, when no other is
    ///   usable) carry in [`Config::send_queue_time`](crate::Config::send_queue_time) plus the
    ///   spread of their delays: the scheduler gives a link whose data arrives later only a
    ///   backlog the nearer links could not deliver by then, so without the spread a long
    ///   path would never be used;
    /// - at least two payloads, so a writer woken at half the queue has room for a whole one;
    /// - while a usable secondary link exists, three times the backlog that opens it
    ///   ([`crate::SECONDARY_HORIZON`]), so one can build, and a writer woken at half the
    ///   queue refills it before the secondary links close.
    pub(crate) fn queue_limit(&self) -> usize {
        let time = self.config.send_queue_time;
        if time == Duration::MAX {
            return usize::MAX;
        }
        let (mut upper, mut backup) = (Carrying::default(), Carrying::default());
        let (mut primary, mut secondary) = (0.0, false);
        for l in self.links.iter().filter(|l| l.usable()) {
            match l.config.tier {
                Tier::Primary => primary += upper.add(l),
                Tier::Secondary => {
                    upper.add(l);
                    secondary = true;
                }
                Tier::Backup => {
                    backup.add(l);
                }
            }
        }
        let carrying = if upper.any { upper } else { backup };
        let mut limit = carrying.rate * (time + carrying.spread()).as_secs_f64();
        if secondary {
            limit = limit.max(3.0 * primary * crate::SECONDARY_HORIZON.as_secs_f64());
        }
        // Saturates at usize::MAX.
        (limit as usize).max(2 * self.config.max_payload)
    }

    /// After the links took queued data: a blocked writer is woken once the queue is down
    /// to half its bound. Only data taken from the queue wakes it (a writer waiting on an
    /// empty queue, for the end of the stream say, is not woken for every packet), and once:
    /// it blocks again only after filling the queue. The acknowledgements that free send
    /// buffer room wake it too (`Connection::handle_packet`).
    pub(super) fn wake_writer_on_room(&mut self) {
        if self.write_blocked
            && self.send.queued <= self.queue_limit() / 2
            && self.send_capacity() > 0
        {
            self.write_blocked = false;
            self.events.push_back(Event::Writable);
        }
    }
}
