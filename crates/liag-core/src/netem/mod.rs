//! A link emulator free of I/O: one direction of a link, with rate, delay, order-keeping
//! jitter, a bounded queue and faults.
//!
//! [`Netem`] is driven like [`crate::Connection`]: the caller passes the time with every input
//! and asks when to come back. Segments go in with [`Netem::handle_input`] while
//! [`Netem::writable`] holds, serialize onto the line at the link's rate one after another,
//! travel for the one-way delay (plus jitter that never reorders) and come out of
//! [`Netem::poll_output`]; [`Netem::poll_timeout`] names the next moment anything moves.
//!
//! The simulator (`liag_core::sim`, virtual time) and liag-transports' in-memory links (tokio's
//! clock) both drive it, so a link behaves the same in a test and in the demo.
//!
//! ```
//! use bytes::Bytes;
//! use liag_core::netem::{LinkSpec, Netem, Segment};
//! use liag_core::Time;
//! use std::time::Duration;
//!
//! // 8 Mbit/s, 5 ms one way: 990 bytes (plus a 10-byte frame header) take 1 ms to send.
//! let mut line = Netem::new(LinkSpec::mbit(8.0, 5), 1);
//! line.handle_input(Time::ZERO, Segment::Packet(Bytes::from(vec![0; 990])));
//! let arrival = Time::from(Duration::from_millis(6));
//! line.handle_timeout(line.poll_timeout().unwrap());
//! assert_eq!(line.poll_timeout(), Some(arrival));
//! assert!(line.poll_output(arrival).is_some());
//! ```

mod spec;

pub use spec::{LinkSpec, ParseLinkSpecError};

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Time;

/// What travels: a packet, or the end of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A packet of the link.
    Packet(Bytes),
    /// The sender closed its end; nothing follows.
    Fin,
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Packet(p) => p.len(),
            Segment::Fin => 0,
        }
    }
}

/// Something that happens to a link. One vocabulary for the simulator and the in-memory
/// links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// This direction is reset: everything queued or in flight is lost, and nothing goes in
    /// or comes out any more ([`Netem::failure`] says so). One `Netem` is one direction: the
    /// simulator and liag-transports' in-memory links apply a reset to both directions of a
    /// link, so that both ends fail.
    Reset,
    /// Nothing moves until [`Fault::Heal`]; nothing is lost (a dead route, a silent radio).
    BlackHole,
    /// Ends a black hole, and gives back the link's own rate after [`Fault::Rate`].
    Heal,
    /// The link's rate becomes this many bits per second: a degraded path that still
    /// delivers. What is queued drains at the new rate.
    Rate(u64),
    /// The link corrupts what it carries. `Netem` itself carries no bytes to corrupt: it drops
    /// everything queued or in flight, takes and delivers nothing more, and records the
    /// failure ([`Netem::failure`]). Its driver turns that into a frame checksum error at the
    /// receiver (liag-transports' in-memory links fail the receiving end with a checksum
    /// mismatch; the simulator gives the receiver a `FrameError::ChecksumMismatch`). A
    /// direct user of `Netem` must poll [`Netem::failure`]: [`Netem::poll_output`] only
    /// returns `None` from then on.
    Corrupt,
}

/// One direction of an emulated link.
#[derive(Debug)]
pub struct Netem {
    spec: LinkSpec,
    /// The rate now: the spec's, or a degraded one.
    rate: u64,
    queue: VecDeque<Segment>,
    queued_bytes: usize,
    /// When the head of the queue is on the line; `None` while held.
    head_done: Option<Time>,
    transit: VecDeque<(Time, Segment)>,
    last_arrival: Time,
    /// A Fin went in: the sender takes nothing more.
    closed: bool,
    held: bool,
    failed: Option<Fault>,
    rng: fastrand::Rng,
}

impl Netem {
    /// One direction shaped by `spec`; `seed` seeds its jitter.
    pub fn new(spec: LinkSpec, seed: u64) -> Self {
        Netem {
            spec,
            rate: spec.rate,
            queue: VecDeque::new(),
            queued_bytes: 0,
            head_done: None,
            transit: VecDeque::new(),
            last_arrival: Time::ZERO,
            closed: false,
            held: false,
            failed: None,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The shape it was made with.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// Whether the sender may hand in another segment: the queue has room (an empty queue
    /// always takes one, whatever its size), and the link neither failed nor was closed.
    pub fn writable(&self) -> bool {
        !self.closed
            && self.failed.is_none()
            && (self.queued_bytes == 0 || self.queued_bytes < self.spec.queue)
    }

    /// How the link failed ([`Fault::Reset`] or [`Fault::Corrupt`]), if it did.
    pub fn failure(&self) -> Option<Fault> {
        self.failed
    }

    /// Whether the link is black-holed.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Takes a segment from the sender at `now`. The queue bound is the sender's to respect
    /// through [`Netem::writable`]; what comes after a Fin or a failure is dropped.
    pub fn handle_input(&mut self, now: Time, segment: Segment) {
        if self.closed || self.failed.is_some() {
            return;
        }
        self.closed = segment == Segment::Fin;
        self.queued_bytes += segment.len();
        if self.queue.is_empty() && !self.held {
            self.head_done = Some(now + LinkSpec::serialization(segment.len(), self.rate));
        }
        self.queue.push_back(segment);
    }

    /// Moves what finished serializing by `now` onto the line.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.held {
            return;
        }
        while let Some(done) = self
            .head_done
            .filter(|&d| d <= now && !self.queue.is_empty())
        {
            let Some(segment) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= segment.len();
            let arrival = (done + self.spec.delay + self.jitter()).max(self.last_arrival);
            self.last_arrival = arrival;
            self.transit.push_back((arrival, segment));
            self.head_done = self
                .queue
                .front()
                .map(|next| done + LinkSpec::serialization(next.len(), self.rate));
        }
    }

    fn jitter(&mut self) -> Duration {
        match self.spec.jitter.as_nanos() as u64 {
            0 => Duration::ZERO,
            max => Duration::from_nanos(self.rng.u64(0..=max)),
        }
    }

    /// The next segment that arrived by `now`, in the order it was sent.
    #[must_use = "a segment taken is gone from the line"]
    pub fn poll_output(&mut self, now: Time) -> Option<Segment> {
        self.handle_timeout(now);
        if self.held || self.transit.front().is_none_or(|&(at, _)| at > now) {
            return None;
        }
        self.transit.pop_front().map(|(_, segment)| segment)
    }

    /// When the next segment finishes serializing or arrives; `None` while nothing moves.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.held {
            return None;
        }
        let done = self.head_done.filter(|_| !self.queue.is_empty());
        let arrival = self.transit.front().map(|&(t, _)| t);
        match (done, arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the head of the queue finishes serializing, making room for the sender; `None`
    /// while nothing is queued or the line is held. Unlike [`Netem::poll_timeout`] it leaves
    /// out arrivals, which wait for the receiver to take them.
    #[must_use]
    pub fn next_room(&self) -> Option<Time> {
        self.head_done
            .filter(|_| !self.held && !self.queue.is_empty())
    }

    /// Applies `fault` at `now`.
    pub fn apply(&mut self, now: Time, fault: Fault) {
        match fault {
            Fault::Reset | Fault::Corrupt => {
                self.queue.clear();
                self.queued_bytes = 0;
                self.transit.clear();
                self.head_done = None;
                self.failed.get_or_insert(fault);
            }
            Fault::BlackHole => self.held = true,
            Fault::Rate(rate) => self.rate = rate.max(1),
            Fault::Heal => {
                self.rate = self.spec.rate;
                if self.held {
                    self.held = false;
                    self.resume(now);
                }
            }
        }
    }

    /// After a black hole: serialization restarts now, and what was in transit arrives a
    /// one-way delay from now at the earliest.
    fn resume(&mut self, now: Time) {
        if let Some(head) = self.queue.front() {
            self.head_done = Some(now + LinkSpec::serialization(head.len(), self.rate));
        }
        for (arrival, _) in &mut self.transit {
            *arrival = (*arrival).max(now + self.spec.delay);
        }
        self.last_arrival = self.last_arrival.max(now + self.spec.delay);
    }
}

#[cfg(test)]
mod tests;
