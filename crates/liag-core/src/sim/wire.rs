//! A simulated link: two directions, each a rate-limited queue followed by a delay line.

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Time;

/// The frame header a stream transport adds to every packet; counted in serialization time.
const FRAMING: usize = liag_proto::frame::HEADER_LEN;

/// A link's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LinkSpec {
    /// Bits per second.
    pub rate: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`; order is kept, as on a stream.
    pub jitter: Duration,
    /// Bytes a sender may queue in the link before it stops taking more (its socket buffer
    /// and bottleneck queue).
    pub queue: usize,
}

impl LinkSpec {
    /// A link of `mbit` Mbit/s and `delay_ms` one-way delay, no jitter, with a queue of about
    /// 20 ms at its rate (at least 64 KiB).
    pub fn mbit(mbit: f64, delay_ms: u64) -> Self {
        let rate = (mbit * 1e6) as u64;
        LinkSpec {
            rate,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::ZERO,
            queue: ((rate / 8 / 50) as usize).max(64 << 10),
        }
    }

    /// The same link with jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same link with another queue size.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// Payload bytes per second the link carries.
    pub fn bytes_per_sec(&self) -> f64 {
        self.rate as f64 / 8.0
    }

    fn serialization(&self, len: usize) -> Duration {
        Duration::from_nanos(((len + FRAMING) as u64 * 8 * 1_000_000_000) / self.rate.max(1))
    }
}

/// What travels: a packet, or the end of the stream.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Packet(Bytes),
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

/// One direction of a link.
#[derive(Debug)]
pub(crate) struct Dir {
    queue: VecDeque<Segment>,
    queued_bytes: usize,
    /// When the head of the queue finishes serializing.
    head_done: Option<Time>,
    transit: VecDeque<(Time, Segment)>,
    last_arrival: Time,
    /// A Fin was queued: the sender takes nothing more.
    closed: bool,
}

impl Dir {
    pub(crate) fn new() -> Self {
        Dir {
            queue: VecDeque::new(),
            queued_bytes: 0,
            head_done: None,
            transit: VecDeque::new(),
            last_arrival: Time::ZERO,
            closed: false,
        }
    }

    pub(crate) fn writable(&self, spec: &LinkSpec) -> bool {
        !self.closed && self.queued_bytes < spec.queue
    }

    pub(crate) fn push(&mut self, now: Time, spec: &LinkSpec, segment: Segment, held: bool) {
        if matches!(segment, Segment::Fin) {
            self.closed = true;
        }
        self.queued_bytes += segment.len();
        if self.queue.is_empty() && !held {
            self.head_done = Some(now + spec.serialization(segment.len()));
        }
        self.queue.push_back(segment);
    }

    /// The next time something happens in this direction, unless it is held.
    pub(crate) fn next_event(&self, held: bool) -> Option<Time> {
        if held {
            return None;
        }
        let done = self.head_done.filter(|_| !self.queue.is_empty());
        let arrival = self.transit.front().map(|&(t, _)| t);
        match (done, arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves serialized segments into the delay line and returns those that arrived by `now`.
    pub(crate) fn advance(
        &mut self,
        now: Time,
        spec: &LinkSpec,
        rng: &mut fastrand::Rng,
        arrived: &mut Vec<Segment>,
    ) {
        while let Some(done) = self
            .head_done
            .filter(|&d| d <= now && !self.queue.is_empty())
        {
            let Some(segment) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= segment.len();
            let jitter = if spec.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(rng.u64(0..=spec.jitter.as_nanos() as u64))
            };
            let arrival = (done + spec.delay + jitter).max(self.last_arrival);
            self.last_arrival = arrival;
            self.transit.push_back((arrival, segment));
            self.head_done = self
                .queue
                .front()
                .map(|next| done + spec.serialization(next.len()));
        }
        while self.transit.front().is_some_and(|&(t, _)| t <= now) {
            if let Some((_, segment)) = self.transit.pop_front() {
                arrived.push(segment);
            }
        }
    }

    /// Resumes after a black hole: serialization restarts now, held segments arrive after the
    /// one-way delay.
    pub(crate) fn heal(&mut self, now: Time, spec: &LinkSpec) {
        if let Some(head) = self.queue.front() {
            self.head_done = Some(now + spec.serialization(head.len()));
        }
        for (arrival, _) in &mut self.transit {
            *arrival = (*arrival).max(now + spec.delay);
        }
        self.last_arrival = self.last_arrival.max(now + spec.delay);
    }

    /// Drops everything: the link was reset.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
        self.transit.clear();
        self.head_done = None;
        self.closed = true;
    }
}
