//! Per-link round-trip estimation and the in-flight window that keeps a link's queue short.

use std::time::Duration;

use crate::peer_queue::BusyPace;
use crate::time::{Time, transmission};

/// The floor of a fast link's window: two default payloads (see [`Window::set_floor`]).
pub(crate) const MIN_WINDOW: usize = 64 << 10;

/// The least any link's window shrinks to, however slow the link.
const MIN_FLOOR: usize = 8 << 10;
/// Largest window: far above any bandwidth-delay product liag expects.
pub(crate) const MAX_WINDOW: usize = 256 << 20;
/// How many recent samples make up the current delay.
const RECENT: usize = 8;

/// How long a minimum RTT sample is trusted before the estimate may rise again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

/// The least queueing delay the window tolerates on a path of no delay, beside its payloads'
/// transmission ([`Window::target`]); less on a link faster than about 2.1 Gbit/s whose
/// window holds more than [`MAX_QUEUE`].
const MIN_TARGET: Duration = Duration::from_millis(2);

/// The most bytes [`MIN_TARGET`] lets queue on one link: on a link measured faster than
/// 262 MB/s (about 2.1 Gbit/s: loopback, a fast LAN) whose window holds more than this, the
/// least target is what the link transmits this in, but never under [`MIN_FAST_TARGET`].
/// There the queue is mostly in the hosts' socket buffers rather than in the network, and on
/// loopback more of it cost throughput (docs/performance.md, "Fast links' queues in bytes").
/// A window that holds less cannot queue more, and is left its 2 ms: held to the shorter
/// target too, a hundred busy connections on two cores lost throughput. So the rule never
/// takes a window below 512 KiB, and stops once the measured rate falls to 262 MB/s: a delay
/// of under 2 ms that is no queue (a loaded host's scheduling) holds a fast link to about
/// 512 KiB in flight, not lower.
const MAX_QUEUE: usize = 512 << 10;

/// The least target [`MAX_QUEUE`] may set: below it, a delay measures the hosts' scheduling
/// more than any queue.
const MIN_FAST_TARGET: Duration = Duration::from_micros(100);

/// The longest a peer may be taken to hold its acknowledgements: a gap beyond it is a stall
/// or a queue, never a peer's batching.
const MAX_HOLD: Duration = Duration::from_millis(100);

/// The least delay target of a window that holds more than [`MAX_QUEUE`] on a link of `rate`
/// bytes per second: [`MIN_TARGET`], or what the link transmits `MAX_QUEUE` in if that is
/// shorter, but not under [`MIN_FAST_TARGET`].
fn fast_least_target(rate: f64) -> Duration {
    MIN_TARGET.min(transmission(MAX_QUEUE, rate).max(MIN_FAST_TARGET))
}

/// A window's floor for a link whose payloads are `payload` bytes: two of them, from
/// [`MIN_FLOOR`] to [`MIN_WINDOW`].
fn floor_of(payload: usize) -> usize {
    payload.saturating_mul(2).clamp(MIN_FLOOR, MIN_WINDOW)
}

/// The most queue the window takes to be the peer's ([`Window::set_peer_sending`]).
const MAX_PEER_QUEUE: Duration = Duration::from_millis(100);

/// A queueing delay this many times the delay target, while both ends' data keep the link
/// busy ([`Window::set_peer_sending`]), cuts the
/// window at once to [`DRAIN_GAIN`] times what the link carries in its base round trip and
/// target (see [`Window::on_ack`]).
const DRAIN_AT: u32 = 8;

/// See [`DRAIN_AT`].
const DRAIN_GAIN: f64 = 3.0;

/// The shortest silence between acknowledgements that may be taken for a peer holding them.
/// Shorter silences come without any holding: a token bucket that refilled while the link
/// waited for an acknowledgement releases several payloads at once, and TCP's segments and
/// the peer's reads come in batches.
const MIN_HOLD: Duration = Duration::from_millis(20);

/// How many silences in a row must look like a peer holding its acknowledgements before the
/// window takes them for that (see [`Window::note_gap`]).
const HOLD_RUN: usize = 3;

/// Round-trip estimate in the style of RFC 6298, plus a windowed minimum.
#[derive(Debug, Clone)]
pub(crate) struct Rtt {
    srtt: Duration,
    rttvar: Duration,
    latest: Duration,
    /// The last few samples, for the current delay (see [`Rtt::recent_min`]).
    recent: [Duration; RECENT],
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
            recent: [initial; RECENT],
            samples: 0,
            min: initial,
            min_current: initial,
            min_window_start: now,
        }
    }

    pub(crate) fn update(&mut self, sample: Duration, now: Time) {
        let sample = sample.max(Duration::from_micros(1));
        self.latest = sample;
        self.recent[(self.samples % RECENT as u64) as usize] = sample;
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

    /// The current delay: the smallest of the last few samples. A peer that acknowledges in
    /// batches (every 50 ms, say) makes the early messages of a batch look slow; the latest in
    /// each batch shows the path's real delay, so a queue is only what even that one saw.
    pub(crate) fn recent_min(&self) -> Duration {
        let filled = (self.samples as usize).clamp(1, RECENT);
        self.recent[..filled]
            .iter()
            .copied()
            .min()
            .unwrap_or(self.latest)
    }

    pub(crate) fn min(&self) -> Duration {
        self.min
    }

    /// How long to wait for an acknowledgement before calling the link stalled.
    pub(crate) fn ack_timeout(&self, floor: Duration, ceiling: Duration) -> Duration {
        let timeout = (self.srtt.saturating_mul(2)).saturating_add(self.rttvar.saturating_mul(4));
        timeout.clamp(floor, ceiling)
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
    /// The smallest round trip of acknowledged data lately: the link's delay with no queue.
    /// Measured on data, not pings, so a peer that holds its acks (aggligator 0.10 sends them
    /// every 50 ms) does not look like a queue.
    base: WindowedMin,
    /// When the latest acknowledgement came.
    last_ack: Option<Time>,
    /// How long the peer held its acknowledgements lately (see [`Window::note_gap`]).
    hold: WindowedMax<Duration>,
    /// How many silences a burst confirmed in a row (see [`Window::note_gap`]), up to
    /// [`HOLD_RUN`].
    run: usize,
    /// The lengths of the latest confirmed silences, newest first.
    run_gaps: [Duration; HOLD_RUN],
    /// The latest silence that looked like the peer holding its acknowledgements, until an
    /// acknowledgement comes after its burst.
    silence: Silence,
    /// The least the window shrinks to: two of the link's payloads, from [`MIN_FLOOR`] to
    /// [`MIN_WINDOW`] (see [`Window::set_floor`]).
    floor: usize,
    /// Since when the window has been at its floor, if it is.
    at_floor: Option<Time>,
    /// Whether the window raised its base because even its floor saw a delay, and the base
    /// measured on data has not come down to its bound since (see [`Window::base_delay`]).
    raised: bool,
    /// How long the link takes to transmit `floor` bytes, at its rate as of the latest
    /// [`Window::set_floor`] (`Duration::MAX` before the first).
    floor_time: Duration,
    /// The link's measured rate as of the latest [`Window::set_measured_rate`], bytes per
    /// second (0 while none was measured).
    rate: f64,
    /// Whether the window may still double per round trip: until it first meets a queue
    /// after the link came up or stalled. After that it grows by a quarter per round trip at
    /// most: the delay that shows a queue comes a round trip late, and a window doubling
    /// meanwhile would fill the bottleneck's queue again each time it drained.
    doubling: bool,
    /// What the peer sends on the link, while both ends' data keep it busy
    /// ([`DataPace`](crate::peer_queue::DataPace)).
    peer: Option<BusyPace>,
}

/// The latest silence between acknowledgements that looked like the peer holding them (see
/// [`Window::note_gap`]).
#[derive(Debug, Clone, Copy)]
enum Silence {
    /// None: at the start, after a silence of a queue's, and after an acknowledgement that
    /// came after a burst.
    None,
    /// One that ended at `at`, `gap` long, waiting for the burst that confirms it.
    Ended { at: Time, gap: Duration },
    /// One that a burst confirmed: acknowledgements within an eighth of `gap` after `at`
    /// belong to that burst.
    Confirmed { at: Time, gap: Duration },
}

impl Silence {
    /// The silence, if an acknowledgement at `now` belongs to the burst that ended it: one
    /// within an eighth of the silence after the acknowledgement that ended it.
    fn burst_of(self, now: Time) -> Option<Duration> {
        match self {
            Silence::Ended { at, gap } | Silence::Confirmed { at, gap } => {
                (now - at <= gap / 8).then_some(gap)
            }
            Silence::None => None,
        }
    }

    /// Whether an acknowledgement at `now` belongs to the burst that ended the silence.
    fn in_burst(self, now: Time) -> bool {
        self.burst_of(now).is_some()
    }
}

/// The maximum of samples over the last [`MIN_RTT_WINDOW`] or so (two buckets).
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowedMax<T> {
    max: T,
    current: T,
    start: Time,
}

impl<T: Ord + Copy + Default> WindowedMax<T> {
    pub(crate) fn update(&mut self, sample: T, now: Time) {
        if now - self.start > MIN_RTT_WINDOW {
            self.max = self.current.max(sample);
            self.current = sample;
            self.start = now;
        } else {
            self.current = self.current.max(sample);
            self.max = self.max.max(sample);
        }
    }

    /// The maximum, forgotten (`T::default()`) once a window has passed without a sample.
    pub(crate) fn get(&self, now: Time) -> T {
        if now - self.start > MIN_RTT_WINDOW * 2 {
            T::default()
        } else {
            self.max
        }
    }
}

/// The minimum of samples over the last `MIN_RTT_WINDOW` or so (two buckets).
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowedMin {
    min: Option<Duration>,
    current: Option<Duration>,
    start: Time,
}

impl WindowedMin {
    pub(crate) fn update(&mut self, sample: Duration, now: Time) {
        let low = |a: Option<Duration>| Some(a.map_or(sample, |a| a.min(sample)));
        if now - self.start > MIN_RTT_WINDOW {
            self.min = low(self.current);
            self.current = Some(sample);
            self.start = now;
        } else {
            self.current = low(self.current);
            self.min = low(self.min);
        }
    }

    pub(crate) fn get(&self) -> Option<Duration> {
        self.min
    }

    /// Starts again from `sample`.
    pub(crate) fn reset(&mut self, sample: Duration, now: Time) {
        self.min = Some(sample);
        self.current = Some(sample);
        self.start = now;
    }
}

impl Window {
    pub(crate) fn new() -> Self {
        Window {
            cwnd: MIN_WINDOW * 4,
            acked_since_step: 0,
            base: WindowedMin::default(),
            last_ack: None,
            hold: WindowedMax::default(),
            run: 0,
            run_gaps: [Duration::ZERO; HOLD_RUN],
            silence: Silence::None,
            floor: MIN_WINDOW,
            at_floor: None,
            raised: false,
            floor_time: Duration::MAX,
            rate: 0.0,
            doubling: true,
            peer: None,
        }
    }

    /// Sets what the peer sends on the link while both ends' data keep it busy, `None`
    /// otherwise. The acknowledgements of this end's data wait behind that data, so the
    /// delay target takes in the queue the peer keeps ([`Window::peer_queue`]).
    pub(crate) fn set_peer_sending(&mut self, sending: Option<BusyPace>) {
        self.peer = sending;
    }

    /// The queue a peer that sends on the link keeps on the path back, if its window is like
    /// this one: its delay target on a link of the same base round trip, and no less than
    /// its floor's transmission, at most [`MAX_PEER_QUEUE`]. Nothing unless both ends' data
    /// keep the link busy ([`Window::set_peer_sending`]).
    fn peer_queue(&self, base: Duration) -> Duration {
        self.peer.map_or(Duration::ZERO, |peer| {
            // A fast peer's least target, as this end's own.
            let target = (base / 2)
                .max(fast_least_target(peer.rate))
                .saturating_add(peer.transmission(peer.payload));
            let floor = peer.transmission(floor_of(peer.payload));
            target.max(floor).min(MAX_PEER_QUEUE)
        })
    }

    /// Sets the floor the window shrinks to from what the link transmits in one payload's
    /// time: two of those, so one waits behind the one on the wire, from [`MIN_FLOOR`] to
    /// [`MIN_WINDOW`]. A slow link gets small payloads, and a floor in bytes would let its
    /// queue last long in time. The floor follows a rising rate at once and a falling one
    /// only once it fell by a quarter, so an estimate's jitter does not keep moving it (and
    /// with it the time the window has been at its floor). `rate` is the link's rate now, in
    /// bytes per second, at which the floor's transmission is timed.
    pub(crate) fn set_floor(&mut self, payload: usize, rate: f64) {
        let floor = floor_of(payload);
        let jitter = floor <= self.floor && floor >= self.floor - self.floor / 4;
        if !jitter {
            self.floor = floor;
            self.cwnd = self.cwnd.max(floor);
            // The time the window spent at the old floor says nothing of the new one.
            self.at_floor = None;
        }
        self.floor_time = transmission(self.floor, rate);
    }

    /// Sets the link's measured rate, in bytes per second (0 while none was measured), which
    /// bounds the least target in bytes ([`MAX_QUEUE`]). Not a guess from the window (a
    /// link's first window over a round trip of 100 µs would look like 2.6 GB/s), nor a link
    /// test's rate.
    pub(crate) fn set_measured_rate(&mut self, rate: f64) {
        self.rate = rate;
    }

    pub(crate) fn get(&self) -> usize {
        self.cwnd
    }

    /// The queueing delay the window tolerates on a link with this round trip, where one
    /// payload takes `serialization` to send: half the round trip, at least [`MIN_TARGET`]
    /// (while the window holds more than [`MAX_QUEUE`], at least the lesser of that and the
    /// link's measured transmission of `MAX_QUEUE`, but not under [`MIN_FAST_TARGET`]), plus
    /// one payload, so that even a slow link can keep a payload queued behind the one on the
    /// wire (whose transmission the round trip already holds). Each payload more the target
    /// allows is one more that data written behind a bulk transfer waits for. While the peer
    /// keeps the link busy with data of its own, the queue it keeps on the path back comes on
    /// top ([`Window::peer_queue`]): this end's acknowledgements wait behind it.
    fn target(&self, base: Duration, serialization: Duration) -> Duration {
        let least = if self.cwnd > MAX_QUEUE {
            fast_least_target(self.rate)
        } else {
            MIN_TARGET
        };
        ((base / 2).max(least) + serialization).saturating_add(self.peer_queue(base))
    }

    /// How long the peer held its acknowledgements lately, as far as liag could tell.
    #[cfg(test)]
    fn hold(&self, now: Time) -> Duration {
        self.hold.get(now)
    }

    /// Notes a peer that holds its acknowledgements and sends them in bursts (aggligator
    /// 0.10 sends them every 50 ms, sooner only along with data or a Pong of its own). A
    /// queue at a bottleneck returns acknowledgements steadily, one payload's serialization
    /// apart, and a path returns them one round trip after sending. A silence longer than
    /// both, ended by the acknowledgement of a message that went out promptly after the
    /// previous acknowledgement, looks like the peer holding them: the round trips of the
    /// burst that ends it include up to that long, which is no queue of liag's. A message
    /// sent well before the previous acknowledgement waited in a queue, and a silence before
    /// its acknowledgement (a burst of the queue's bottleneck, say) says nothing of the peer.
    ///
    /// One such silence proves little, so three more conditions hold a silence to what a
    /// holding peer does at every flush:
    ///
    /// - it lasts [`MIN_HOLD`] at least;
    /// - a burst ends it: another acknowledgement comes within an eighth of the silence;
    /// - [`HOLD_RUN`] such silences come in a row, with no acknowledgement between them
    ///   but their bursts.
    ///
    /// Then the shortest of the latest [`HOLD_RUN`] is the hold. Each condition keeps out
    /// silences a liag peer behind token buckets showed many times a second, which a single
    /// silence had been taken for a hold on (docs/performance.md, "A liag peer taken to hold
    /// its acknowledgements"):
    ///
    /// - a few milliseconds long, ended by the burst a refilled bucket lets through;
    /// - each ended by one acknowledgement: a link's one payload in flight, acknowledged a
    ///   round trip after the last;
    /// - a socket's stall now and then, with steady acknowledgements between.
    fn note_gap(&mut self, sample: Option<Duration>, now: Time, serialization: Duration) {
        let gap = self.last_ack.replace(now).map(|last| now - last);
        let slack = serialization * 2 + Duration::from_millis(1);
        match (gap, self.base.get()) {
            (Some(gap), Some(base)) if gap > (base + slack).max(MIN_HOLD) && gap <= MAX_HOLD => {
                // Sent about when the previous acknowledgement came: within `slack`, the
                // path's own delay and a quarter of the silence for jitter. A queued message
                // was sent far earlier (a round trip of several silences).
                let sent_then = sample.is_some_and(|sample| {
                    sample + slack >= gap && sample <= gap + gap / 4 + base + slack
                });
                // A silence that no burst ended, or one of a queue's (or a resend's, whose
                // round trip says nothing), breaks the run.
                if !sent_then || matches!(self.silence, Silence::Ended { .. }) {
                    self.run = 0;
                }
                self.silence = if sent_then {
                    Silence::Ended { at: now, gap }
                } else {
                    Silence::None
                };
            }
            _ => match (self.silence, self.silence.in_burst(now)) {
                (Silence::None, _) => {}
                (_, false) => {
                    // An acknowledgement after the burst and before the next silence, or
                    // after a stall longer than any hold: no peer holding them.
                    self.run = 0;
                    self.silence = Silence::None;
                }
                (Silence::Ended { at, gap }, true) => {
                    // Another acknowledgement right after the one that ended the silence:
                    // the burst that confirms it.
                    self.confirm_silence(gap, now);
                    self.silence = Silence::Confirmed { at, gap };
                }
                (Silence::Confirmed { .. }, true) => {}
            },
        }
    }

    /// Counts a silence a burst confirmed; after [`HOLD_RUN`] in a row, the shortest of the
    /// latest [`HOLD_RUN`] is the hold.
    fn confirm_silence(&mut self, gap: Duration, now: Time) {
        self.run = (self.run + 1).min(HOLD_RUN);
        self.run_gaps.rotate_right(1);
        self.run_gaps[0] = gap;
        if self.run == HOLD_RUN {
            // `run_gaps` is never empty: `min` always has one.
            let shortest = self.run_gaps.iter().min().copied().unwrap_or_default();
            self.hold.update(shortest, now);
        }
    }

    /// Adjusts the window for `acked` bytes acknowledged with the given RTT state and, if
    /// the acknowledged message was sent once, its round-trip `sample`. `limited` says whether
    /// the window, not the application, held sending back. Returns whether the delay shows a
    /// queue on the link: then the link, not the application, set the pace of these
    /// acknowledgements.
    ///
    /// `payload` is how long the link takes to transmit one of the payloads it is given, at
    /// its rate as estimated now (`Duration::MAX` for a rate too small to say). The delay
    /// target and the silences take it capped by the link's least round trip;
    /// [`Window::base_delay`] takes it as it is.
    pub(crate) fn on_ack(
        &mut self,
        acked: usize,
        rtt: &Rtt,
        sample: Option<Duration>,
        now: Time,
        limited: bool,
        payload: Duration,
    ) -> bool {
        if let Some(sample) = sample {
            self.base.update(sample, now);
        }
        // One payload's transmission for the delay target and the silences, capped by the
        // least round trip so that a rate estimated too low does not make it seconds. On a
        // short path whose least round trip came from a Ping, that is the path's round trip.
        let serialization = payload.min(rtt.min());
        self.note_gap(sample, now, serialization);
        let base = self.base_delay(rtt, payload);
        // What the peer's holding adds is no queue: take it off the delay. The burst that ends
        // a silence like the peer's holding is judged as if it were, before the holding is
        // known (from the [`HOLD_RUN`]th such silence in a row): its delay neither shrinks
        // the window nor ends its doubling.
        let held = (self.hold.get(now)).max(self.silence.burst_of(now).unwrap_or_default());
        let queueing = rtt.recent_min().saturating_sub(base).saturating_sub(held);
        let target = self.target(base, serialization);
        let queued = queueing > target;
        if queued && self.sent_at_floor(sample, rtt, now) {
            // Even the smallest window sees this delay, so it is not a queue of ours: the peer
            // holds its acknowledgements, or the path got longer. Take it as the new base.
            // The queue that stopped the doubling was no queue either.
            self.base.reset(rtt.recent_min(), now);
            self.raised = true;
            self.doubling = true;
            return false;
        } else if queued {
            // A queue is building: give back a quarter of what was acknowledged. The delay
            // that shows the queue comes a round trip after the window that built it, and
            // it goes on showing while the queue drains: cut faster, the window falls below
            // what the link carries, whose queue is only a payload or two deep.
            self.cwnd = self.cwnd.saturating_sub(acked / 4).max(self.floor);
            let deep = queueing > target.saturating_mul(DRAIN_AT);
            if self.peer.is_some() && deep && self.rate > 0.0 {
                // A queue many times the target, with the peer's data on the path back: a
                // quarter per acknowledgement drains it at the link's pace, seconds on a
                // slow uplink, while the peer's acknowledgements wait behind it. Cut to what
                // the link carries, with room for an estimate that errs low.
                let enough = DRAIN_GAIN * self.rate * (base + target).as_secs_f64();
                self.cwnd = self.cwnd.min((enough as usize).max(self.floor));
            }
            self.acked_since_step = 0;
            self.doubling = false;
            if self.cwnd <= self.floor {
                self.at_floor.get_or_insert(now);
            }
        } else if limited {
            if queueing < target / 2 {
                // Far from the target: grow by what was acknowledged, doubling per round
                // trip, or by a quarter of it once a queue was met.
                self.cwnd += if self.doubling { acked } else { acked / 4 };
            } else {
                // Close to it: grow by half the floor (what the link transmits in one
                // payload's time) per window's worth acknowledged.
                self.acked_since_step += acked;
                if self.acked_since_step >= self.cwnd {
                    self.acked_since_step = 0;
                    self.cwnd += self.floor / 2;
                }
            }
            self.cwnd = self.cwnd.min(MAX_WINDOW);
        }
        if self.cwnd > self.floor {
            self.at_floor = None;
        }
        queued
    }

    /// The link's round trip with no queue, the base its delay is judged against: the least
    /// round trip of acknowledged data lately (`base`), bounded by the link's least round
    /// trip of any kind over the last 10-20 s (Pings' included) plus the transmission of
    /// what its window keeps in flight at its floor (at least two payloads: the sampled
    /// payload's own, and one as a margin for an error in the rate estimate). A base below
    /// the floor's own round trip would take the floor for a queue.
    ///
    /// Payloads are sized to the link's rate only once it is known: until then they are
    /// [`Config::max_payload`](crate::Config::max_payload)s, whose round trips on a slow
    /// link hold milliseconds of transmission that its later payloads do not. Taken for the
    /// base, such a round trip would let the window keep that much queued, and a window that
    /// never drains below its base never sees a shorter round trip to correct it. The bound
    /// binds only while a Ping's round trip is among the last 10-20 s of samples: Pings go
    /// out when a link comes up, for its tests, and after 15 s with nothing sent, so under
    /// a long transfer the least round trip is data's and the bound is above the base.
    ///
    /// Once the window has raised its base because even its floor saw the delay (a peer
    /// that holds its acknowledgements but answers Pings at once, a longer path), the bound
    /// is lifted until the base measured on data comes down to it, that is for as long as
    /// the delay lasts: it would put the base back under that delay at the next
    /// acknowledgement.
    fn base_delay(&mut self, rtt: &Rtt, payload: Duration) -> Duration {
        let measured = self.base.get().unwrap_or(rtt.min());
        let bound = rtt
            .min()
            .saturating_add(self.floor_time.max(payload.saturating_mul(2)));
        if measured <= bound {
            self.raised = false;
        }
        if self.raised {
            measured
        } else {
            measured.min(bound)
        }
    }

    /// Whether the acknowledged message went out once the window was already at its floor:
    /// data sent before, while the window was larger, still drains through the queue it
    /// built, and its delay says nothing of what the smallest window sees. Without a sample
    /// (a resend), a whole round trip at the current delay since reaching the floor will do.
    fn sent_at_floor(&self, sample: Option<Duration>, rtt: &Rtt, now: Time) -> bool {
        let Some(since) = self.at_floor else {
            return false;
        };
        match sample {
            Some(sample) => now - since >= sample,
            None => now - since > rtt.recent_min(),
        }
    }

    /// After a stall, start again from a small window.
    pub(crate) fn reset(&mut self) {
        self.cwnd = MIN_WINDOW * 4;
        self.acked_since_step = 0;
        self.at_floor = None;
        self.doubling = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(n: u64) -> Time {
        Time::from_duration(ms(n))
    }

    #[test]
    fn the_delay_target_is_half_the_base_at_least_2_ms_and_one_payload() {
        let mut window = Window::new();
        assert_eq!(window.target(ms(10), ms(2)), ms(7));
        assert_eq!(
            window.target(ms(1), ms(2)),
            ms(4),
            "at least 2 ms beside the payload"
        );
        // Up to 262 MB/s: 2 ms, however much that queues.
        window.cwnd = 4 << 20;
        window.set_measured_rate(262e6);
        assert_eq!(window.target(ms(1), ms(0)), ms(2));
    }

    #[test]
    fn a_fast_links_least_target_queues_at_most_512_kib() {
        let mut window = Window::new();
        window.set_measured_rate(1e9);
        // A window of 256 KiB queues less than 512 KiB whatever its target.
        assert_eq!(window.target(ms(0), ms(0)), ms(2));
        window.cwnd = 1 << 20;
        // 512 KiB at 1 GB/s: 524 µs, where 2 ms would queue 2 MB.
        let least = Duration::from_nanos(524_288);
        assert_eq!(window.target(Duration::from_micros(100), ms(0)), least);
        window.set_measured_rate(263e6);
        assert!(window.target(ms(0), ms(0)) < ms(2));
        // A path with delay of its own keeps half its round trip.
        assert_eq!(window.target(ms(10), ms(0)), ms(5));
        // Never below 100 µs, however fast the link looks.
        window.set_measured_rate(f64::INFINITY);
        assert_eq!(window.target(ms(0), ms(0)), Duration::from_micros(100));
        // A rate that was not measured leaves 2 ms: a floor's rate is only a guess.
        let mut guessed = Window::new();
        guessed.cwnd = 1 << 20;
        guessed.set_floor(32 << 10, 2.6e9);
        assert_eq!(guessed.target(ms(0), ms(0)), ms(2));
    }

    #[test]
    fn a_millisecond_of_queue_shrinks_a_fast_links_window_only() {
        let rtt = steady(Duration::from_micros(1_100));
        let run = |rate: f64| {
            let mut window = Window::new();
            window.cwnd = 4 << 20;
            window.set_measured_rate(rate);
            // The base: a round trip of 100 µs measured on data, then 1.1 ms for a while.
            window.on_ack(
                1 << 10,
                &steady(Duration::from_micros(100)),
                Some(Duration::from_micros(100)),
                at(0),
                true,
                ms(0),
            );
            let before = window.get();
            for i in 1..=8 {
                window.on_ack(
                    32 << 10,
                    &rtt,
                    Some(Duration::from_micros(1_100)),
                    at(i),
                    true,
                    ms(0),
                );
            }
            (before, window.get())
        };
        let (before, after) = run(1e9);
        assert!(
            after < before,
            "1 ms over a 1 GB/s link's base is a queue: {before} -> {after}"
        );
        let (before, after) = run(100e6);
        assert!(
            after >= before,
            "1 ms at 100 MB/s is within 2 ms: {before} -> {after}"
        );
    }

    #[test]
    fn the_first_data_sample_replaces_the_handshakes_estimate() {
        let mut rtt = Rtt::new(ms(50), at(0));
        rtt.update(ms(10), at(100));
        assert_eq!(
            (rtt.smoothed(), rtt.min(), rtt.recent_min()),
            (ms(10), ms(10), ms(10))
        );
    }

    #[test]
    fn smoothing_follows_rfc_6298() {
        let mut rtt = Rtt::new(ms(1), at(0));
        rtt.update(ms(100), at(0));
        rtt.update(ms(200), at(1));
        // srtt = 7/8 * 100 + 1/8 * 200; rttvar = 3/4 * 50 + 1/4 * |100 - 200|.
        assert_eq!(rtt.smoothed(), Duration::from_micros(112_500));
        let timeout = rtt.ack_timeout(ms(0), ms(10_000));
        assert_eq!(timeout, Duration::from_micros(2 * 112_500 + 4 * 62_500));
        assert_eq!(rtt.ack_timeout(ms(1_000), ms(10_000)), ms(1_000));
        assert_eq!(rtt.ack_timeout(ms(0), ms(300)), ms(300));
    }

    #[test]
    fn the_minimum_holds_for_a_window_then_rises() {
        let mut rtt = Rtt::new(ms(1), at(0));
        rtt.update(ms(10), at(0));
        rtt.update(ms(50), at(5_000));
        assert_eq!(rtt.min(), ms(10));
        // The first window ends: its minimum is still remembered for one more.
        rtt.update(ms(50), at(10_500));
        assert_eq!(rtt.min(), ms(10));
        rtt.update(ms(50), at(21_000));
        assert_eq!(rtt.min(), ms(50));
    }

    #[test]
    fn the_recent_minimum_forgets_after_eight_samples() {
        let mut rtt = Rtt::new(ms(1), at(0));
        rtt.update(ms(10), at(0));
        for i in 0..RECENT as u64 - 1 {
            rtt.update(ms(100), at(i + 1));
            assert_eq!(rtt.recent_min(), ms(10));
        }
        rtt.update(ms(100), at(100));
        assert_eq!(rtt.recent_min(), ms(100));
        assert_eq!(rtt.min(), ms(10));
    }

    /// An estimate whose every sample is `delay`.
    fn steady(delay: Duration) -> Rtt {
        let mut rtt = Rtt::new(delay, at(0));
        for i in 0..RECENT as u64 {
            rtt.update(delay, at(i));
        }
        rtt
    }

    #[test]
    fn the_window_grows_without_a_queue_only_when_it_held_sending_back() {
        let (rtt, serialization) = (steady(ms(20)), Duration::from_micros(100));
        let mut window = Window::new();
        let start = window.get();
        window.on_ack(10_000, &rtt, Some(ms(20)), at(10), false, serialization);
        assert_eq!(window.get(), start, "the application held sending back");
        window.on_ack(10_000, &rtt, Some(ms(20)), at(20), true, serialization);
        assert_eq!(
            window.get(),
            start + 10_000,
            "far from the target: grows by what was acked"
        );
        for i in 0..3 {
            window.on_ack(
                MAX_WINDOW,
                &rtt,
                Some(ms(20)),
                at(30 + i),
                true,
                serialization,
            );
        }
        assert_eq!(window.get(), MAX_WINDOW);
    }

    #[test]
    fn a_queue_shrinks_the_window_but_not_below_its_floor() {
        let serialization = Duration::from_micros(100);
        let mut window = Window::new();
        // The link's delay with no queue: 10 ms.
        window.on_ack(0, &steady(ms(10)), Some(ms(10)), at(0), true, serialization);
        let start = window.get();
        // Now every sample sees 100 ms: a queue of 90 ms, past the 5 ms target. The window
        // gives back a quarter of what is acknowledged.
        let queued = steady(ms(100));
        window.on_ack(64 << 10, &queued, None, at(10), true, serialization);
        assert_eq!(window.get(), start - (16 << 10));
        window.on_ack(400 << 10, &queued, None, at(20), true, serialization);
        assert_eq!(window.get(), start - (116 << 10));
        window.on_ack(400 << 10, &queued, None, at(30), true, serialization);
        assert_eq!(window.get(), MIN_WINDOW);
    }

    /// A 10 Mbit/s link (1.25 MB/s) with 1 ms payloads, 1,250 bytes: its floor is
    /// `MIN_FLOOR`, 6.55 ms of transmission.
    fn ten_mbit_window() -> (Window, Duration, Duration) {
        let mut window = Window::new();
        window.set_floor(1_250, 1.25e6);
        let floor = Duration::from_secs_f64(MIN_FLOOR as f64 / 1.25e6);
        (window, ms(1), floor)
    }

    #[test]
    fn a_base_measured_on_the_first_long_payloads_is_bounded_by_a_ping_and_the_floor() {
        // The link's first payload is 32 KiB, sent before its rate was known: 26 ms of
        // transmission on a path a Ping crosses in 1 ms. Its payloads are 1 ms long now, and
        // each waits behind 26 ms of queue: 28 ms in all, longer than that first round trip,
        // so the least round trip of data stays 27 ms.
        let (mut window, payload, floor) = ten_mbit_window();
        let mut rtt = Rtt::new(ms(1), at(0));
        rtt.update(ms(1), at(0));
        rtt.update(ms(27), at(30));
        window.on_ack(32 << 10, &rtt, Some(ms(27)), at(30), true, payload);
        for i in 0..RECENT as u64 {
            rtt.update(ms(28), at(40 + i));
        }
        // Judged against 27 ms, the queue would be 1 ms, within the target (half the base
        // and a payload). Against the Ping's 1 ms and the floor's 6.55 ms it is 20.4 ms,
        // beyond the target (3.8 ms and a payload), and the window gives back a quarter of
        // what was acknowledged.
        let before = window.get();
        assert!(window.on_ack(1_250, &rtt, Some(ms(28)), at(50), true, payload));
        assert_eq!(window.base.get(), Some(ms(27)));
        assert_eq!(window.base_delay(&rtt, payload), ms(1) + floor);
        assert_eq!(window.get(), before - 1_250 / 4);
    }

    #[test]
    fn a_base_raised_at_the_floor_stands_above_the_bound_while_its_delay_lasts() {
        // A peer that holds its acknowledgements 30 ms, though it answers Pings at once.
        let (mut window, payload, floor) = ten_mbit_window();
        let mut rtt = Rtt::new(ms(1), at(0));
        rtt.update(ms(1), at(0));
        for i in 0..RECENT as u64 {
            rtt.update(ms(30), at(i));
        }
        // Acknowledgements without a sample (resends, say) cut the window to its floor.
        for i in 1..=3 {
            window.on_ack(400 << 10, &rtt, None, at(10 * i), true, payload);
        }
        assert_eq!(window.get(), MIN_FLOOR);
        // Data sent at the floor sees the same delay: no queue of liag's. The window raises
        // its base to it, and goes on growing from the floor. Were the bound not lifted, the
        // next acknowledgement would put the base back at 7.55 ms, and the window would stay
        // at its floor.
        assert!(!window.on_ack(1_250, &rtt, Some(ms(30)), at(70), true, payload));
        assert!(!window.on_ack(1_250, &rtt, Some(ms(30)), at(80), true, payload));
        assert_eq!(window.base_delay(&rtt, payload), ms(30));
        assert!(window.get() > MIN_FLOOR, "{}", window.get());
        // However long the peer goes on holding them, the base stands.
        assert!(!window.on_ack(1_250, &rtt, Some(ms(30)), at(15_000), true, payload));
        assert!(!window.on_ack(1_250, &rtt, Some(ms(30)), at(60_000), true, payload));
        assert_eq!(window.base_delay(&rtt, payload), ms(30));
        // Once data comes back within the bound, the base is bound again.
        rtt.update(ms(5), at(60_010));
        window.on_ack(1_250, &rtt, Some(ms(5)), at(60_010), true, payload);
        assert!(!window.raised);
        assert_eq!(window.base_delay(&rtt, payload), ms(5).min(ms(1) + floor));
    }

    #[test]
    fn a_slow_links_window_shrinks_to_two_of_its_payloads() {
        // A 50 Mbit/s link given payloads of 2 ms sends 12.5 kB in each: its floor is two of
        // those, not 64 KiB, which would keep 10 ms queued on it.
        let serialization = ms(2);
        let mut window = Window::new();
        window.set_floor(12_500, 6.25e6);
        window.on_ack(0, &steady(ms(10)), Some(ms(10)), at(0), true, serialization);
        let queued = steady(ms(200));
        for i in 1..=4 {
            window.on_ack(400 << 10, &queued, None, at(10 * i), true, serialization);
        }
        assert_eq!(window.get(), 25_000);
        // Near its target (5 ms and one payload's 2 ms: 7 ms of queue) it grows by one
        // payload per window acknowledged.
        let near = steady(ms(16));
        window.on_ack(25_000, &near, None, at(50), true, serialization);
        assert_eq!(window.get(), 25_000 + 12_500);
        // A rate a little lower leaves the floor where it is (an estimate's jitter); one a
        // quarter lower moves it.
        window.set_floor(11_000, 6.25e6);
        assert_eq!(window.floor, 25_000);
        window.set_floor(9_000, 6.25e6);
        assert_eq!(window.floor, 18_000);
        // However slow the link, the floor keeps 8 KiB.
        window.set_floor(100, 6.25e6);
        for i in 6..=9 {
            window.on_ack(400 << 10, &queued, None, at(10 * i), true, serialization);
        }
        assert_eq!(window.get(), MIN_FLOOR);
        assert!(window.at_floor.is_some());
        // A link that speeds up raises its floor, and the window with it; what that window
        // queues is no longer what the floor saw.
        window.set_floor(1 << 20, 1e9);
        assert_eq!(window.get(), MIN_WINDOW);
        assert!(window.at_floor.is_none());
    }

    #[test]
    fn after_a_queue_the_window_grows_by_a_quarter_until_a_stall() {
        let serialization = Duration::from_micros(100);
        let mut window = Window::new();
        let clear = steady(ms(10));
        window.on_ack(0, &clear, Some(ms(10)), at(0), true, serialization);
        // A queue of 90 ms: the window gives back a quarter of what was acknowledged.
        assert!(window.on_ack(
            64 << 10,
            &steady(ms(100)),
            None,
            at(10),
            true,
            serialization
        ));
        let after = window.get();
        assert_eq!(after, MIN_WINDOW * 4 - (16 << 10));
        // The queue drained and the delay is far below the target again, yet the window no
        // longer doubles: it grows by a quarter of what was acknowledged.
        window.on_ack(40_000, &clear, Some(ms(10)), at(20), true, serialization);
        assert_eq!(window.get(), after + 10_000);
        // After a stall it doubles again.
        window.reset();
        let start = window.get();
        window.on_ack(10_000, &clear, Some(ms(10)), at(40), true, serialization);
        assert_eq!(window.get(), start + 10_000);
    }

    #[test]
    fn a_delay_even_the_smallest_window_sees_becomes_the_new_base() {
        let serialization = Duration::from_micros(100);
        let mut window = Window::new();
        window.on_ack(0, &steady(ms(10)), Some(ms(10)), at(0), true, serialization);
        let queued = steady(ms(100));
        window.on_ack(MAX_WINDOW, &queued, None, at(10), true, serialization);
        assert_eq!(window.get(), MIN_WINDOW);
        // At the floor the 100 ms is taken as the path's delay (a peer holding its
        // acknowledgements, a longer path), and the window grows again.
        window.on_ack(64 << 10, &queued, None, at(200), true, serialization);
        window.on_ack(64 << 10, &queued, None, at(210), true, serialization);
        assert_eq!(window.get(), MIN_WINDOW + (64 << 10));
    }

    #[test]
    fn the_queue_that_shrank_the_window_is_not_taken_for_the_base() {
        let serialization = Duration::from_micros(100);
        let mut window = Window::new();
        window.on_ack(0, &steady(ms(10)), Some(ms(10)), at(0), true, serialization);
        let queued = steady(ms(300));
        assert!(window.on_ack(
            MAX_WINDOW,
            &queued,
            Some(ms(300)),
            at(10),
            true,
            serialization
        ));
        assert_eq!(window.get(), MIN_WINDOW);
        // Messages sent before the window reached its floor (at 10 ms) still drain through
        // the queue the larger window built: their delay is no new base, and still a queue.
        assert!(window.on_ack(
            64 << 10,
            &queued,
            Some(ms(300)),
            at(300),
            true,
            serialization
        ));
        assert_eq!(window.get(), MIN_WINDOW);
        // One sent at the floor sees it too: now it is the path's delay.
        assert!(!window.on_ack(
            64 << 10,
            &queued,
            Some(ms(280)),
            at(300),
            true,
            serialization
        ));
        window.on_ack(
            64 << 10,
            &queued,
            Some(ms(280)),
            at(310),
            true,
            serialization,
        );
        assert_eq!(window.get(), MIN_WINDOW + (64 << 10));
    }

    #[test]
    fn a_peer_holding_its_acknowledgements_is_no_queue() {
        // The path's own delay is 1 ms; the peer sends its acks in a burst every 50 ms, so a
        // window-limited sender sees 50 ms round trips. The window must grow to cover them,
        // from the first burst on, though the hold is known only from the `HOLD_RUN`th.
        let serialization = Duration::from_micros(50);
        let mut window = Window::new();
        let mut rtt = Rtt::new(ms(1), at(0));
        window.on_ack(0, &rtt, Some(ms(1)), at(0), true, serialization);
        let mut before = window.get();
        for burst in 1..=4u64 {
            let flush = at(burst * 50);
            for i in 0..RECENT as u64 {
                // Sent right after the previous burst, all acknowledged at the flush.
                let sample = ms(49) - Duration::from_micros(i * 10);
                rtt.update(sample, flush);
                window.on_ack(16 << 10, &rtt, Some(sample), flush, true, serialization);
            }
            let hold = if burst < HOLD_RUN as u64 {
                ms(0)
            } else {
                ms(50)
            };
            assert_eq!(window.hold(flush), hold, "after burst {burst}");
            assert!(
                window.get() > before,
                "burst {burst}: held acknowledgements shrank the window: {before} -> {}",
                window.get()
            );
            before = window.get();
        }
    }

    #[test]
    fn the_hold_is_the_shortest_of_the_latest_silences() {
        // Bursts of two acknowledgements after silences of 50, 30, 50 and 60 ms, each for a
        // message sent at the burst before.
        let mut t = 0;
        let acks = [50, 30, 50, 60].into_iter().flat_map(|gap| {
            t += gap;
            [(t, gap), (t, gap - 1)]
        });
        assert_eq!(hold_after(1, acks), ms(30));
    }

    /// Acknowledgements at the given times (ms from 0) with their round-trip samples (ms),
    /// 8 KiB each, to a window whose link's path is `base` ms; the hold the window noted.
    fn hold_after(base: u64, acks: impl IntoIterator<Item = (u64, u64)>) -> Duration {
        let serialization = Duration::from_micros(400);
        let mut window = Window::new();
        let mut rtt = Rtt::new(ms(base), at(0));
        window.on_ack(0, &rtt, Some(ms(base)), at(0), true, serialization);
        let mut end = 0;
        for (t, sample) in acks {
            rtt.update(ms(sample), at(t));
            window.on_ack(8 << 10, &rtt, Some(ms(sample)), at(t), true, serialization);
            end = t;
        }
        window.hold(at(end))
    }

    #[test]
    fn a_flusher_that_now_and_then_acknowledges_early_is_still_recognised() {
        // A peer that flushes its acknowledgements every 50 ms, two at a time, but every fifth
        // time sends one alone 10 ms early (with data or a Pong of its own): that breaks the
        // run, and the next `HOLD_RUN` flushes read the hold again.
        let acks = (1..=20u64).flat_map(|flush| {
            let t = 50 * flush;
            let early = (flush % 5 == 0).then_some((t - 10, 39));
            early.into_iter().chain([(t, 49), (t, 48)])
        });
        assert_eq!(hold_after(1, acks), ms(50));
    }

    #[test]
    fn short_silences_ended_by_bursts_are_no_holding() {
        // A token bucket behind a link that waits for its acknowledgements: every 5 ms the
        // bucket, refilled, lets two payloads through at once, each sent at the burst
        // before. Every silence looks like a hold ended by a burst, but is too short.
        let acks = (1..=200u64).flat_map(|i| [(5 * i, 5), (5 * i, 5)]);
        assert_eq!(hold_after(1, acks), Duration::ZERO);
    }

    #[test]
    fn silences_each_ended_by_one_acknowledgement_are_no_holding() {
        // Behind a bottleneck, one or two payloads in flight: an acknowledgement every 28 ms,
        // each 44-56 ms after its message was sent, on a link whose base is 20 ms (a queue
        // can raise it that far). Every silence looks like a hold, but ends with one
        // acknowledgement.
        let acks = (1..=100u64).map(|i| (28 * i, 44 + 4 * (i % 4)));
        assert_eq!(hold_after(20, acks), Duration::ZERO);
    }

    #[test]
    fn a_socket_stalling_now_and_then_is_no_holding() {
        // Acknowledgements every 2 ms; every 100 ms the socket stalls for 30 ms, and a burst
        // ends the stall, its first for a message sent as the stall began.
        let acks = (0..20u64).flat_map(|stall| {
            let start = 100 * stall;
            let steady = (1..=35).map(move |i| (start + 2 * i, 4));
            let resumed = start + 70 + 30;
            steady.chain([(resumed, 31), (resumed, 30), (resumed, 29)])
        });
        assert_eq!(hold_after(1, acks), Duration::ZERO);
    }

    #[test]
    fn silences_between_acknowledgements_of_queued_messages_are_no_holding() {
        // A 1 ms path behind a queue that delivers in bursts 30 ms apart: every message
        // acknowledged was sent long before the acknowledgement ahead of it.
        let serialization = Duration::from_micros(100);
        let mut window = Window::new();
        let mut rtt = Rtt::new(ms(1), at(0));
        window.on_ack(0, &rtt, Some(ms(1)), at(0), true, serialization);
        for i in 1..=20u64 {
            let sample = ms(60);
            rtt.update(sample, at(30 * i));
            window.on_ack(
                16 << 10,
                &rtt,
                Some(sample),
                at(30 * i),
                true,
                serialization,
            );
        }
        assert_eq!(window.hold(at(600)), Duration::ZERO);
    }

    #[test]
    fn a_queue_returning_steady_acknowledgements_still_shrinks_the_window() {
        // Acks one every millisecond, each round trip longer: a queue, not a peer's holding.
        let serialization = Duration::from_micros(500);
        let mut window = Window::new();
        let mut rtt = Rtt::new(ms(10), at(0));
        window.on_ack(0, &rtt, Some(ms(10)), at(0), true, serialization);
        let start = window.get();
        for i in 1..=60u64 {
            let sample = ms(10 + 2 * i);
            rtt.update(sample, at(i));
            window.on_ack(16 << 10, &rtt, Some(sample), at(i), true, serialization);
        }
        assert_eq!(window.hold(at(60)), Duration::ZERO);
        assert!(window.get() < start, "{} -> {}", start, window.get());
    }

    /// A window on a 20 ms path at `rate` that met a queue (its doubling over), its base
    /// measured, then acknowledgements whose round trips hold `extra` beyond the base, one
    /// every millisecond for `acks` ms; returns the window before and after.
    fn behind(extra: Duration, peer: Option<BusyPace>, rate: f64, acks: u64) -> (usize, usize) {
        let serialization = Duration::from_micros(200);
        let mut window = Window::new();
        window.set_measured_rate(rate);
        window.set_peer_sending(peer);
        let mut rtt = steady(ms(20));
        window.on_ack(0, &rtt, Some(ms(20)), at(0), true, serialization);
        window.doubling = false;
        let start = window.get();
        for i in 1..=acks {
            let sample = ms(20) + extra;
            rtt.update(sample, at(i));
            window.on_ack(4 << 10, &rtt, Some(sample), at(i), true, serialization);
        }
        (start, window.get())
    }

    #[test]
    fn the_queue_a_busy_peer_keeps_on_the_path_back_is_not_taken_for_our_own() {
        // This end sends at 5 MB/s (a 40 Mbit/s download); the peer sends 1 KiB payloads at
        // 5 Mbit/s (the uplink) on the same link: at its floor of
        // 8 KiB it keeps 13 ms queued there, and its target on a 20 ms path is 10 ms and a
        // payload's 1.6 ms.
        let uplink = BusyPace {
            payload: 1 << 10,
            rate: 625e3,
        };
        let mut window = Window::new();
        window.set_peer_sending(Some(uplink));
        assert_eq!(window.peer_queue(ms(20)), transmission(8 << 10, 625e3));
        assert_eq!(
            window.peer_queue(ms(40)),
            ms(20) + transmission(1 << 10, 625e3),
            "the target where it is larger than the floor"
        );
        // Round trips 20 ms over the base: beyond this end's own target (10 ms and a payload),
        // within that and the peer's queue.
        let (start, after) = behind(ms(20), Some(uplink), 5e6, 100);
        assert!(after >= start, "{start} -> {after}");
        let (start, after) = behind(ms(20), None, 5e6, 100);
        assert!(
            after < start,
            "{start} -> {after}: without the peer's data it is our queue"
        );
        // A slow peer is taken to queue 100 ms at most.
        window.set_peer_sending(Some(BusyPace {
            payload: 1 << 10,
            rate: 10e3,
        }));
        assert_eq!(window.peer_queue(ms(20)), MAX_PEER_QUEUE);
    }

    #[test]
    fn a_deep_queue_beside_the_peers_data_is_cut_to_what_the_link_carries() {
        let uplink = BusyPace {
            payload: 1 << 10,
            rate: 625e3,
        };
        // 400 ms of queue on a link measured at 625 kB/s (5 Mbit/s) with the peer sending on
        // it: the window is cut, once the recent round trips all show it, to three times what
        // the link carries in its base round trip and target.
        let (start, after) = behind(ms(400), Some(uplink), 625e3, RECENT as u64);
        let target = ms(10) + Duration::from_micros(200) + transmission(8 << 10, 625e3);
        let enough = (DRAIN_GAIN * 625e3 * (ms(20) + target).as_secs_f64()) as usize;
        assert!(start > enough);
        assert_eq!(after, enough);
        // With no data of the peer's, the window ends (RECENT - 2) KiB above its start: it
        // grew by a quarter of each acknowledgement while the recent round trips still held
        // the base, and only the last, which shows the queue, shrank it by as much.
        let (start, after) = behind(ms(400), None, 625e3, RECENT as u64);
        assert_eq!(after, start + (RECENT - 2) * (1 << 10));
    }
}
