//! One link of a connection: its identity, state, control queue and in-flight bookkeeping.

use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use liag_proto::inbound::InboundReader;
use liag_proto::message::UserData;
use liag_proto::seq::Seq;

use crate::meter::Meter;
use crate::pace::Pacer;
use crate::peer_queue::DataPace;
use crate::probe::{LinkTest, PongFor};
use crate::recheck::Recheck;
use crate::redundant::Copies;
use crate::rtt::{Rtt, Window, WindowedMax};
use crate::startup::Startup;
use crate::tier::Tier;
use crate::time::Time;

/// A link's handle inside one connection: opaque, never reused by the connection, never on
/// the wire. It prints as `link N`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(u64);

impl LinkId {
    pub(crate) const fn new(n: u64) -> Self {
        LinkId(n)
    }

    /// The link's number within its connection, for logs and metrics.
    pub const fn number(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link{}", self.0)
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// Which side opened the link's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This endpoint opened it (it sent Connect).
    Outgoing,
    /// The peer opened it (this endpoint sent Welcome).
    Incoming,
}

/// What the driver tells the connection about a new, handshaken link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkInfo {
    /// Who opened the link.
    pub direction: Direction,
    /// The driver's name for the path, such as `"eth0 -> 192.0.2.1:5700"`.
    pub tag: String,
    /// This endpoint's user data for the link.
    pub local_user_data: UserData,
    /// The peer's user data for the link.
    pub remote_user_data: UserData,
    /// The handshake's round trip, the first RTT estimate.
    pub handshake_rtt: Duration,
    /// The link's settings from the start, such as its [`Tier`] (later changes:
    /// [`crate::Connection::set_link_config`]).
    pub config: LinkConfig,
    /// The peer asked in this link's handshake that this end send redundantly (liag's
    /// `Extensions::REDUNDANT` in Connect): attaching the link turns
    /// [`crate::Config::redundant`] on for the connection.
    pub redundant_requested: bool,
}

impl LinkInfo {
    /// Describes a link; user data defaults to empty.
    pub fn new(direction: Direction, tag: impl Into<String>, handshake_rtt: Duration) -> Self {
        LinkInfo {
            direction,
            tag: tag.into(),
            local_user_data: UserData::empty(),
            remote_user_data: UserData::empty(),
            handshake_rtt,
            config: LinkConfig::default(),
            redundant_requested: false,
        }
    }
}

/// Settings of one link that differ from the connection's. Start from the default:
/// `LinkConfig::default().with_tier(Tier::Backup)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Shortest time the link may go without acknowledging before it counts as stalled, and
    /// the least an acknowledgement may come late beyond the link's rate before its data
    /// counts as overdue; overrides [`crate::Config::ack_timeout_min`] (a link with bursty delays, such
    /// as a WebSocket through a proxy, may want more).
    pub ack_timeout_min: Option<Duration>,
    /// Keep-alive interval; overrides [`crate::Config::ping_interval`].
    pub ping_interval: Option<Duration>,
    /// Most payload bytes in flight on the link, whatever its window says (a metered or
    /// shared link may want a cap).
    pub max_inflight: Option<usize>,
    /// When the link carries data: always, only beyond what the primary links take, or only
    /// when no other link is usable. Default [`Tier::Primary`].
    pub tier: Tier,
    /// Most payload bytes per second this end sends on the link (new data, resends and
    /// redundant copies alike), whatever it could carry: room left on a shared uplink.
    /// Framing, acknowledgements and what the peer sends are not counted. A token bucket of
    /// 20 ms of the rate (at least 4 KiB) lets one payload more through, so the cap holds on
    /// average; the scheduler counts the link at no more than this rate, so the other links
    /// take the rest. Default `None`: no cap.
    pub max_rate: Option<u64>,
    /// The data allowance the link draws on, shared with the other links that draw on it:
    /// past it the link carries data only while no other link is usable ([`Meter`]).
    /// Default `None`: unmetered.
    pub meter: Option<Meter>,
}

impl LinkConfig {
    /// These settings with the tier `tier`.
    #[must_use]
    pub fn with_tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// These settings with a cap of `bytes_per_sec` on the link's payload
    /// ([`LinkConfig::max_rate`]; 0 counts as 1). Give them to a link as it joins
    /// (liag-tokio's `Outgoing::add_link_with`, liag-transports' `Connector::link_config`) or
    /// later ([`crate::Connection::set_link_config`]).
    #[must_use]
    pub fn with_max_rate(mut self, bytes_per_sec: u64) -> Self {
        self.max_rate = Some(bytes_per_sec);
        self
    }

    /// These settings with the link drawing on `meter` ([`LinkConfig::meter`]).
    #[must_use]
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }
}

/// Where a link stands, as its statistics show it. Only an active link carries reliable
/// messages; every state still carries Acks, Pings and Pongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Carrying data.
    Active,
    /// Stopped acknowledging within the ack timeout, fell far behind its rate (its link
    /// test's or a measured one: an overdue payload), or went silent through its own test;
    /// its data moved to the other
    /// links at once. A link test measures it (a Ping, 16 KiB of TestData, a Ping; a Ping
    /// alone when no other link is usable), and only the test's last Pong brings it back:
    /// late acknowledgements do not.
    Stalled,
    /// Joined while another link was active, or, after a test following a stall found it
    /// far slower than before, tested again; carries no new data until its link test (a
    /// Ping, 16 KiB of TestData, a Ping) shows what it delivers. That takes about a round trip plus
    /// the time both ends' filler takes to drain. A link from which nothing at all arrives
    /// for a second (or its ack timeout, if longer) while its test's Pong is awaited shows as
    /// [`LinkState::Stalled`]; the ping timeout removes it. A testing link does not count as
    /// working for the no-link timeout.
    Testing,
    /// Blocked by this endpoint's or the peer's application.
    Blocked,
    /// Being removed gracefully (Goodbye).
    Disconnecting,
}

/// A snapshot of one link's figures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkStats {
    /// The link.
    pub id: LinkId,
    /// Its tag.
    pub tag: String,
    /// Who opened it.
    pub direction: Direction,
    /// This endpoint's user data for it.
    pub local_user_data: UserData,
    /// The peer's user data for it.
    pub remote_user_data: UserData,
    /// Its state.
    pub state: LinkState,
    /// Smoothed round trip.
    pub rtt: Duration,
    /// Smallest recent round trip.
    pub min_rtt: Duration,
    /// Payload bytes in flight.
    pub inflight: usize,
    /// The in-flight limit.
    pub window: usize,
    /// Estimated delivery rate in bytes per second: from the link test when there was one,
    /// then from acknowledged data.
    pub rate: f64,
    /// Bytes sent on the link (packets, without framing).
    pub sent_bytes: u64,
    /// Bytes received on the link (packets, without framing).
    pub received_bytes: u64,
    /// Acknowledgements received on the link, valid or not. The peer sends each on the link
    /// its message came in on (spec §7.5 R1), so a growing count says the link delivers this
    /// side's messages, late or not, on the peer's word.
    pub acks_received: u64,
    /// Data payload bytes first sent on this link.
    pub data_bytes: u64,
    /// Data payload bytes sent again on this link after the link that carried them failed,
    /// stalled or was removed.
    pub resent_bytes: u64,
    /// Data payload bytes sent on this link as redundant copies of messages another link
    /// carries ([`crate::Config::redundant`]): the price of redundancy.
    pub copied_bytes: u64,
    /// Its tier.
    pub tier: Tier,
    /// Its rate cap, bytes per second ([`LinkConfig::max_rate`]).
    pub max_rate: Option<u64>,
    /// The allowance it draws on ([`LinkConfig::meter`]): its `used()` and `limit()` are the
    /// count now, across every link that shares it.
    pub meter: Option<Meter>,
    /// Blocked for its allowance: what is left of it fell below the link's reserve while
    /// another link is usable ([`Meter`]; [`LinkState::Blocked`] shows it too).
    pub over_allowance: bool,
}

/// Graceful-removal progress (spec §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goodbye {
    None,
    /// This side started; its Goodbye is queued, or was sent at this time. A peer that does
    /// not answer within the ping timeout loses the link
    /// ([`LinkError::GoodbyeTimeout`](crate::LinkError::GoodbyeTimeout)).
    Local {
        sent: Option<Time>,
    },
    /// The peer started; answer once, then close.
    Remote {
        sent: bool,
    },
}

/// Delivery-rate estimate: bytes acknowledged over successive intervals of about one RTT.
///
/// An interval opens at an acknowledgement and counts what the acknowledgements after it
/// acknowledge, and what held them back: what the opening one acknowledges was delivered
/// before the interval began. (k acknowledgements span only k-1 gaps, so counting the opening
/// one too would read k/(k-1) times the rate: 6.0 instead of 5.0 MB/s on a simulated
/// 40 Mbit/s link.) Acknowledgements handled at the same instant (several read from one
/// socket read) are one: those of the opening instant are not counted, and an interval
/// closes only once every acknowledgement of its last instant is in, and the next starts
/// where it closed. An acknowledgement that comes more than an interval after the last,
/// when no data waited to be sent, ends an idle pause: it opens a new interval, and what
/// the open one held is left out, so the pause is not measured. A gap while data waited is
/// the link's own pace (a crawling link given one payload at a time) and is measured.
///
/// An interval measures the link only if the link set its pace: the window held sending
/// back, or the round trips showed a queue on the link. Otherwise it measured the
/// application (or a scheduler that gave the link little), and its sample may raise the
/// estimate but never lower it (as BBR treats app-limited samples), except while the
/// estimate is a link test's (below). Until some interval has measured the link, the first
/// in which data waited to be sent gives the estimate: before it the rate is the window over
/// the round trip ([`Link::rate`]), what the window allows rather than what the link
/// carries, and a link whose window is never full and whose round trips show no queue of
/// liag's would keep it (7.3 MB/s for a simulated 5 MB/s link beside two slower ones, in a
/// simulator trace taken before this rule, not kept in the tree). The
/// interval must also have found the link with a queue of its own at every acknowledgement
/// (two payloads beyond what its path holds): a link the scheduler held back gives no first
/// estimate.
///
/// A link test's rate is provisional: 16 KiB of filler can pass a token bucket's burst at
/// the speed of the wire (16 MB/s through a 10 Mbit/s `tbf`), so the first interval that
/// measures the link replaces it. While it is provisional, an interval that showed less,
/// and in which data waited to be sent, lowers it at once. Without this, a link that
/// delivers 50 kB/s where its test said 200 kB/s keeps its share, and holds the stream behind
/// it, until the window or a queue shows it; neither does on a link whose every round trip is
/// that slow. The sample is what the link delivered with what the scheduler gave it: the
/// default scheduler gives a crawling link with a provisional rate one payload at a time, which on
/// a path whose round trip is long beside that payload's transmission reads low. It errs
/// low on a link that adds under 5 % to the others, and later intervals raise it. Faster
/// acknowledgements prove less (the bucket's burst again) and only raise the estimate as any
/// other interval does.
#[derive(Debug, Clone)]
pub(crate) struct RateEstimator {
    /// When the interval began; `None` until an acknowledgement opens one (at first, and
    /// after a link test).
    interval_start: Option<Time>,
    /// When the latest acknowledgement came, and whether data waited to be sent then.
    last_ack: Time,
    last_backlogged: bool,
    interval_bytes: usize,
    interval_limited: bool,
    /// The connection had data ready to send when one of the interval's acknowledgements
    /// came.
    interval_backlogged: bool,
    /// Every acknowledgement of the interval found the link with a queue of its own.
    interval_own_queue: bool,
    rate: f64,
    /// The rate came from a link test and no interval has measured the link since.
    provisional: bool,
    /// The estimate's highest over the last 10-20 s, in bytes per second, taken each time an
    /// interval closes (see [`Link::payload_rate`]).
    peak: WindowedMax<u64>,
}

impl RateEstimator {
    fn new() -> Self {
        RateEstimator {
            interval_start: None,
            last_ack: Time::ZERO,
            last_backlogged: false,
            interval_bytes: 0,
            interval_limited: false,
            interval_backlogged: false,
            interval_own_queue: true,
            rate: 0.0,
            provisional: false,
            peak: WindowedMax::default(),
        }
    }

    /// Starts again from a rate measured another way (a link test).
    fn seed(&mut self, rate: f64) {
        self.rate = rate;
        self.provisional = true;
        self.peak = WindowedMax::default();
        self.interval_start = None;
        self.empty_interval();
    }

    /// `bytes` acknowledged at `now`; `pace` says what held them back.
    fn on_ack(&mut self, bytes: usize, now: Time, interval: Duration, pace: Pace) {
        let length = interval.max(Duration::from_millis(1));
        let Some(mut start) = self.interval_start else {
            self.open(now, pace);
            return;
        };
        if now > self.last_ack {
            if self.last_ack - start >= length {
                // Every acknowledgement of the interval's last instant is in.
                self.close(self.last_ack - start, self.last_ack);
                start = self.last_ack;
                self.interval_start = Some(start);
            }
            if !self.last_backlogged && now - self.last_ack > length {
                // Nothing waited to be sent, and nothing came for longer than an interval:
                // the link was idle, and what the interval holds so far is left out.
                self.open(now, pace);
                return;
            }
        }
        if now > start {
            self.interval_bytes += bytes;
            self.interval_limited |= pace.limited;
            self.interval_backlogged |= pace.backlogged;
            self.interval_own_queue &= pace.own_queue;
        }
        self.last_ack = now;
        self.last_backlogged = pace.backlogged;
    }

    /// Opens an interval at `now`, the instant of an acknowledgement paced by `pace`: what
    /// is acknowledged at this instant came before it.
    fn open(&mut self, now: Time, pace: Pace) {
        self.interval_start = Some(now);
        self.last_ack = now;
        self.last_backlogged = pace.backlogged;
        self.empty_interval();
    }

    /// Forgets what the interval counted so far.
    fn empty_interval(&mut self) {
        self.interval_bytes = 0;
        self.interval_limited = false;
        self.interval_backlogged = false;
        self.interval_own_queue = true;
    }

    /// Takes the sample of an interval `elapsed` long that ended at `end`, and empties it
    /// for the next.
    fn close(&mut self, elapsed: Duration, end: Time) {
        let sample = self.interval_bytes as f64 / elapsed.as_secs_f64();
        // Data waiting and slower acknowledgements: the link's pace. Faster ones prove
        // less: a token bucket's burst passes the first payloads at the wire's speed.
        let slower = self.provisional && self.interval_backlogged && sample < self.rate;
        // The link had no estimate of its own yet, and through the interval data waited and
        // the link had a queue of its own: what it delivered is its own pace, the first.
        let first = self.rate == 0.0 && self.interval_backlogged && self.interval_own_queue;
        let measured = self.interval_limited || slower || first;
        if measured && (self.provisional || self.rate == 0.0) {
            self.rate = sample;
            self.provisional = false;
        } else if self.interval_limited || (self.rate > 0.0 && sample > self.rate) {
            self.rate = if sample > self.rate {
                // Up quickly: a link just tested or back from a stall starts from an
                // estimate that errs low, and is held to it until the estimate grows.
                0.5 * self.rate + 0.5 * sample
            } else {
                0.75 * self.rate + 0.25 * sample
            };
        }
        if !self.provisional && self.rate.is_finite() {
            self.peak.update(self.rate as u64, end);
        }
        self.empty_interval();
    }

    /// The estimate's highest, as intervals closed, over the 10-20 s before the latest
    /// acknowledgement; 0 if none measured the link since its estimate started.
    fn peak(&self) -> f64 {
        self.peak.get(self.last_ack) as f64
    }
}

/// What an acknowledgement says about why its data went at the pace it did, for
/// [`RateEstimator`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pace {
    /// The link set the pace: its window was full, or its round trips showed liag's queue.
    pub(crate) limited: bool,
    /// When it came the connection had data ready to send (resends, or new data within the
    /// budgets and the sequence window), whichever link it was meant for.
    pub(crate) backlogged: bool,
    /// The link had a queue of liag's own data when its message was acknowledged: two
    /// payloads beyond what its path holds in transit. The scheduler did not starve it.
    pub(crate) own_queue: bool,
}

/// At most how many times a link's rate now its payloads are sized to
/// ([`Link::payload_rate`]): 4, so they take at most 4 ms to transmit where 1 ms is the aim.
const PEAK_OVER_RATE: f64 = 4.0;

/// How many times slower than its rate (its test's, or one measured on data) a link may
/// deliver before its data is overdue ([`Link::sent_entry`]).
const OVERDUE_FACTOR: f64 = 4.0;

/// A due time allows for a link's round trip up to this many times the longest of the other
/// usable links' ([`Link::sent_entry`])...
const DUE_RTT_SPREAD: u32 = 4;
/// ... and up to this much however short theirs are.
const DUE_RTT_FLOOR: Duration = Duration::from_millis(100);

/// The most round trip a due time allows for on a link whose peers' minimum round trips are
/// `others`: [`DUE_RTT_SPREAD`] times the longest, at least [`DUE_RTT_FLOOR`]; no bound
/// without another link.
pub(crate) fn due_rtt_cap(others: impl Iterator<Item = Duration>) -> Duration {
    others.max().map_or(Duration::MAX, |longest| {
        longest.saturating_mul(DUE_RTT_SPREAD).max(DUE_RTT_FLOOR)
    })
}

/// A reliable message sent on a link and not yet known to be settled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    /// Its send index.
    pub(crate) index: u64,
    /// When it went out.
    pub(crate) at: Time,
    /// For a message with payload sent at a measured rate, or at a test's rate unless the
    /// link is `overdue_once`: when its acknowledgement is overdue against that rate (see
    /// [`Link::sent_entry`]).
    pub(crate) due: Option<Time>,
    /// For a due time set at a test's rate, the only kind that is pulled in: the message's
    /// own transmission time at that rate / [`OVERDUE_FACTOR`], by which the acknowledgement
    /// of the one before pulls its due time in ([`Link::pull_in_next_due`]). `None` for a due
    /// time that stays as set.
    pub(crate) slow_transmit: Option<Duration>,
}

/// The connection's view of one link.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: LinkId,
    pub(crate) info: LinkInfo,
    pub(crate) config: LinkConfig,
    pub(crate) reader: InboundReader,
    /// The payload packet that must follow the Data header just sent.
    pub(crate) pending_payload: Option<Bytes>,
    /// Pongs owed; bounded so a Ping flood cannot grow memory.
    pub(crate) pongs_owed: u8,
    pub(crate) ping_sent: Option<Time>,
    /// Since when a Ping waits to go out. A link whose transport takes nothing for the ping
    /// timeout from then fails: its writes make no progress.
    pub(crate) ping_wanted: Option<Time>,
    pub(crate) local_blocked: bool,
    /// Blocked for its [`Meter`]: what is left fell below the link's reserve while another
    /// link is usable. The peer is told as for a block of the application's.
    pub(crate) over_allowance: bool,
    /// The reserve the link was last blocked at for its allowance.
    pub(crate) allowance_reserve: u64,
    pub(crate) remote_blocked: bool,
    /// What the peer was last told with SetBlock: a SetBlock goes when
    /// [`Link::blocked_here`] differs.
    pub(crate) peer_told_blocked: bool,
    pub(crate) goodbye: Goodbye,
    pub(crate) stalled: bool,
    /// The link stalled for an overdue payload, and no interval has measured it since: its
    /// next test's rate sets no due times.
    pub(crate) overdue_once: bool,
    /// The link test under way, if any: no reliable messages go on the link until it ends.
    pub(crate) test: Option<LinkTest>,
    /// Further tests of a link whose test after a stall found it far slower than before.
    pub(crate) recheck: Option<Recheck>,
    /// Whether the link is still in its startup ([`Startup`]).
    pub(crate) startup: Startup,
    /// Until when a Pong for an ended test's fresh Ping may still come: a Pong by then gives
    /// no round-trip sample, and no new test leads before then (its lead would take that
    /// Pong for its own).
    pub(crate) stray_pong_until: Option<Time>,
    pub(crate) terminate_pending: bool,
    /// The state last published with [`crate::Event::LinkState`].
    pub(crate) reported: LinkState,
    /// Acks owed for reliable messages received on this link, in arrival order.
    pub(crate) acks: VecDeque<Seq>,
    /// Reliable messages sent on this link, oldest first. Entries acknowledged or moved
    /// elsewhere are dropped lazily.
    pub(crate) inflight: VecDeque<InFlight>,
    pub(crate) inflight_bytes: usize,
    pub(crate) rtt: Rtt,
    pub(crate) window: Window,
    pub(crate) rate: RateEstimator,
    /// Whether the window was nearly full when the last acknowledgement came.
    pub(crate) window_limited: bool,
    /// The burst of acknowledgements under way.
    pub(crate) ack_burst: AckBurst,
    pub(crate) last_sent: Time,
    pub(crate) last_received: Time,
    pub(crate) sent_bytes: u64,
    pub(crate) received_bytes: u64,
    /// What the peer's data on the link shows per round trip ([`DataPace`]).
    pub(crate) peer_pace: DataPace,
    /// What this end's data on the link shows per round trip.
    pub(crate) own_pace: DataPace,
    pub(crate) acks_received: u64,
    pub(crate) data_bytes: u64,
    /// Data payload bytes resent on this link.
    pub(crate) resent_bytes: u64,
    /// Redundant copies of Data sent on other links ([`crate::Config::redundant`]).
    pub(crate) copies: Copies,
    /// The token bucket of [`LinkConfig::max_rate`], made when a payload first asks.
    pub(crate) pacer: Option<Pacer>,
    /// What arrives on the link per round trip, kept for metered links only.
    pub(crate) inbound_pace: InboundPace,
}

/// The bytes a link received per round trip or so, recently: about what the peer keeps under
/// way on it. A quieter interval lowers the figure by a quarter at most, so a pause does not
/// hide what the peer sends once it resumes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InboundPace {
    since: Time,
    at: u64,
    per_rtt: u64,
}

impl InboundPace {
    /// Counting from `received` bytes at `now`.
    pub(crate) fn new(now: Time, received: u64) -> Self {
        InboundPace {
            since: now,
            at: received,
            per_rtt: 0,
        }
    }

    /// `received` bytes have arrived in all at `now`: an interval of at least `rtt` ends.
    pub(crate) fn note(&mut self, now: Time, received: u64, rtt: Duration) {
        if now - self.since >= rtt {
            let sample = received.saturating_sub(self.at);
            self.per_rtt = sample.max(self.per_rtt - self.per_rtt / 4);
            (self.since, self.at) = (now, received);
        }
    }

    /// The bytes the last whole interval brought.
    pub(crate) fn per_rtt(&self) -> usize {
        usize::try_from(self.per_rtt).unwrap_or(usize::MAX)
    }
}

/// Acknowledgements this close together count as one burst.
const ACK_BURST: Duration = Duration::from_millis(1);

/// Acknowledgements that came together: when the first did, and the link's bytes in flight
/// and window then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckBurst {
    at: Time,
    inflight: usize,
    window: usize,
}

impl AckBurst {
    fn new(now: Time) -> Self {
        AckBurst {
            at: now,
            inflight: 0,
            window: 0,
        }
    }

    /// Whether the window was what held the link back when the burst of acknowledgements
    /// that one at `now` belongs to began (`inflight` and `window` as they are before it is
    /// counted). A peer that holds its acks and sends them in bursts frees much of the window
    /// at once: the burst's later acks find it open, and grown by the earlier ones, yet the
    /// window was full when the burst came.
    pub(crate) fn window_limited(
        &mut self,
        now: Time,
        inflight: usize,
        window: usize,
        max_payload: usize,
    ) -> bool {
        if now - self.at > ACK_BURST {
            *self = AckBurst {
                at: now,
                inflight,
                window,
            };
        }
        self.inflight + max_payload > self.window
    }
}

/// Most Pongs owed at once; further Pings in a row are answered once.
const MAX_PONGS_OWED: u8 = 4;

impl Link {
    pub(crate) fn new(id: LinkId, info: LinkInfo, now: Time) -> Self {
        let rtt = Rtt::new(info.handshake_rtt, now);
        Link {
            id,
            config: info.config.clone(),
            info,
            reader: InboundReader::new(),
            pending_payload: None,
            pongs_owed: 0,
            ping_sent: None,
            // A first Ping measures the link and answers the peer's link test promptly.
            ping_wanted: Some(now),
            local_blocked: false,
            over_allowance: false,
            allowance_reserve: 0,
            remote_blocked: false,
            peer_told_blocked: false,
            goodbye: Goodbye::None,
            stalled: false,
            overdue_once: false,
            test: None,
            recheck: None,
            startup: Startup::none(),
            stray_pong_until: None,
            terminate_pending: false,
            reported: LinkState::Active,
            acks: VecDeque::new(),
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            rtt,
            window: Window::new(),
            rate: RateEstimator::new(),
            window_limited: false,
            ack_burst: AckBurst::new(now),
            last_sent: now,
            last_received: now,
            sent_bytes: 0,
            received_bytes: 0,
            peer_pace: DataPace::default(),
            own_pace: DataPace::default(),
            acks_received: 0,
            data_bytes: 0,
            resent_bytes: 0,
            copies: Copies::default(),
            pacer: None,
            inbound_pace: InboundPace::new(now, 0),
        }
    }

    /// Whether reliable messages may go on this link.
    pub(crate) fn usable(&self) -> bool {
        !self.stalled
            && self.test.is_none()
            && !self.blocked_here()
            && !self.remote_blocked
            && self.goodbye == Goodbye::None
            && !self.terminate_pending
    }

    /// Whether this end blocks the link: the application did, or its allowance is used up.
    pub(crate) fn blocked_here(&self) -> bool {
        self.local_blocked || self.over_allowance
    }

    pub(crate) fn queue_pong(&mut self) {
        self.pongs_owed = (self.pongs_owed + 1).min(MAX_PONGS_OWED);
    }

    /// The most payload bytes the link may have in flight: its window, under the configured
    /// cap.
    pub(crate) fn inflight_limit(&self) -> usize {
        let window = self.window.get();
        self.config
            .max_inflight
            .map_or(window, |cap| cap.min(window))
    }

    pub(crate) fn has_window_for(&self, len: usize) -> bool {
        let queued = self.queued_bytes();
        queued == 0 || queued + len <= self.inflight_limit()
    }

    /// Payload bytes the link has taken and not delivered as far as this end knows: its own
    /// messages in flight and the redundant copies it carries.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.inflight_bytes + self.copies.bytes()
    }

    /// The ack timeout under `config`, with this link's override.
    pub(crate) fn ack_timeout(&self, config: &crate::Config) -> Duration {
        let floor = self.ack_timeout_floor(config.ack_timeout_min);
        self.rtt
            .ack_timeout(floor, config.ack_timeout_max.max(floor))
    }

    /// The in-flight entry for `len` bytes handed to the link at `now` as message `index`.
    ///
    /// Once the link has a rate, its test's or one measured on data, an entry with payload
    /// says when its acknowledgement is overdue against that rate:
    ///
    /// `due = now + (queued + len) / (rate / OVERDUE_FACTOR) + wait`
    ///
    /// where the rate is at most the link's configured cap (`LinkConfig::max_rate`) and what
    /// is queued is the link's messages in flight and the redundant copies it carries. An overdue
    /// payload stalls the link (`Connection::overdue`): its data moves to the other links,
    /// and a link test measures it.
    ///
    /// **A test's rate.** The wait is the least round trip, the smaller of the minimum the
    /// link has measured and its handshake's, at most `rtt_cap` ([`due_rtt_cap`]), plus a
    /// slack, the ack timeout's floor (100 ms unless configured). Each acknowledgement then
    /// pulls the next entry's due time in ([`Link::pull_in_next_due`]).
    ///
    /// A test's 16 KiB can pass a token bucket's burst at the speed of the wire, and its
    /// Pongs may have waited in a queue the path had then, or for a lost segment's
    /// retransmission on a crawling path: neither the rate nor the ack timeout (from the smoothed round trip) can be
    /// trusted to tell a link that has slowed to a crawl. A scheduler trusting the test may
    /// have given such a link a queue it takes seconds to deliver, acknowledged one payload at
    /// a time: each late acknowledgement is a round-trip sample that pushes the ack timeout
    /// further out, so it never fires while the whole stream waits on the link. Measured
    /// against what the test promised, a payload is overdue a slow transmission and the slack
    /// after the one before it was acknowledged, and the link stalls: its data moves to the
    /// others, and a new test, through the drained bucket, measures it. A link delivering
    /// more than a quarter of its test's rate is left to the rate estimate to correct, and so
    /// is a link stalled this way once, until an interval has measured it: a path whose round
    /// trip has grown since the handshake by more than the slack would otherwise stall after
    /// every test.
    ///
    /// The round trip is capped because a new link's round trips so far, its handshake's and
    /// its test's lead Ping's, may both have waited in a queue: the handshake behind the
    /// losses of the old link it replaces on the same path, the Ping for a retransmission
    /// through the same losses (half a second in the traces). A link that has to wait
    /// that out before its first payload is overdue holds the stream for as long. One whose
    /// round trip is far beyond every other link's is taken to be queueing rather than far;
    /// if it is far after all, it stalls once, and its next test sets no due time.
    ///
    /// **A measured rate.** A link whose delivery falls to a fraction of its measured rate
    /// while it still acknowledges (an uplink down to 1 %, its downlink as it was) gets no
    /// ack timeout either: each late acknowledgement is a round-trip sample that pushes the
    /// timeout further out. The rate estimate takes seconds to follow it down, and meanwhile
    /// what the link holds comes out at the crawl while the stream waits for it (in the
    /// simulator, the stream at 2 % of the other links' capacity over its worst half second:
    /// `sim_performance`'s `failover_degraded_one_way`). Where the link is degraded both ways,
    /// the receiver's own messages on it delay those acknowledgements until the ack timeout
    /// fires; one way, nothing does. Held to its measured rate, the link stalls once a payload
    /// is overdue. The wait here is the link's ack timeout (`ack_timeout`) as it stood when
    /// the payload went out, so a payload's due time is never earlier than the ack timeout
    /// then: it fires only once the ack timeout has grown since, as each late acknowledgement
    /// makes it, and once what was queued ahead of the payload has had four times its
    /// transmission at the rate. A link with little in flight is judged as the ack timeout
    /// judges it, however long or jittery its round trip, and a peer that holds its
    /// acknowledgements has that in its round trips already. Due times are not pulled in:
    /// each payload answers only for what was queued ahead of it when it went out. A link
    /// that delivers a quarter of its rate or more is left to the rate estimate.
    pub(crate) fn sent_entry(
        &self,
        index: u64,
        len: usize,
        now: Time,
        config: &crate::Config,
        rtt_cap: Duration,
    ) -> InFlight {
        let mut sent = InFlight {
            index,
            at: now,
            due: None,
            slow_transmit: None,
        };
        // A message without payload promises nothing about the rate: a receiver's Consumed
        // is acknowledged behind whatever the peer sends it, a bulk transfer's queue.
        let tested = self.rate.provisional && !self.overdue_once;
        let measured = !self.rate.provisional && self.rate.rate > 0.0;
        if (tested || measured) && len > 0 {
            let rate = self.capped(self.rate.rate).max(1.0) / OVERDUE_FACTOR;
            let transmit =
                |bytes: usize| Duration::from_secs_f64((bytes as f64 / rate).min(3600.0));
            let wait = if tested {
                // The first sample replaces the handshake's round trip in the minimum, and
                // either may have waited in the path's queue or for a retransmission: the
                // smaller counts, and at most the cap.
                sent.slow_transmit = Some(transmit(len));
                let rtt = self.rtt.min().min(self.info.handshake_rtt).min(rtt_cap);
                rtt + self.ack_timeout_floor(config.ack_timeout_min)
            } else {
                self.ack_timeout(config)
            };
            sent.due = Some(now + transmit(self.queued_bytes() + len) + wait);
        }
        sent
    }

    /// An acknowledgement came at `now` for this link's message sent at `sent_at`: the oldest
    /// one still in flight, if it has a due time, is due no later than however much later it
    /// was sent than the acknowledged one, plus its slow transmission and the slack. Only a
    /// due time set at a test's rate is pulled in ([`Link::sent_entry`]).
    pub(crate) fn pull_in_next_due(&mut self, sent_at: Time, now: Time, default_floor: Duration) {
        let slack = self.ack_timeout_floor(default_floor);
        if let Some(next) = self.inflight.front_mut() {
            if let (Some(due), Some(slow_transmit)) = (next.due.as_mut(), next.slow_transmit) {
                let behind = next.at.saturating_since(sent_at);
                *due = (*due).min(now + behind + slow_transmit + slack);
            }
        }
    }

    /// The ack timeout's floor: this link's override, or the connection's `default`. It is
    /// also how late beyond what is expected a due time lets an acknowledgement be.
    fn ack_timeout_floor(&self, default: Duration) -> Duration {
        self.config.ack_timeout_min.unwrap_or(default)
    }

    /// Delivery rate in bytes per second as data measured it: 0 until the first interval
    /// does, and while the rate is a link test's (provisional).
    pub(crate) fn measured_rate(&self) -> f64 {
        if self.rate.rate > 0.0 && !self.rate.provisional {
            self.capped(self.rate.rate)
        } else {
            0.0
        }
    }

    /// Whether the link has a rate estimate: a link test's, or one measured on data. Until
    /// then [`Link::rate`] is the window over the round trip.
    pub(crate) fn has_rate(&self) -> bool {
        self.rate.rate > 0.0
    }

    /// Delivery rate in bytes per second: measured, or the window over the RTT until then.
    pub(crate) fn rate(&self) -> f64 {
        let rate = if self.rate.rate > 0.0 {
            self.rate.rate
        } else {
            self.window.get() as f64 / self.rtt.smoothed().as_secs_f64()
        };
        self.capped(rate)
    }

    /// The rate the link's payloads are sized to: its rate estimate's highest over the last
    /// 10-20 s, but at most [`PEAK_OVER_RATE`] times its rate now.
    ///
    /// A path does not carry less for being given smaller payloads, but a sender short of
    /// CPU does: each payload costs it the same work (a Data message, its frames, an
    /// acknowledgement) whatever its length. Sized to the rate of the moment, a link of such
    /// a sender would get smaller payloads, deliver less for it, and get smaller ones still:
    /// a hundred busy connections of one loopback link each on two cores fell to payloads of
    /// 1.5-17.6 kB, most under 6 kB, and moved a third of what they moved with 2 ms payloads
    /// (docs/performance.md, "Payloads sized to the peak rate"). The bound keeps a path that
    /// slowed from holding its old payloads: they take at most 4 ms at its rate now.
    pub(crate) fn payload_rate(&self) -> f64 {
        let rate = self.rate();
        self.capped(rate.max(self.rate.peak().min(rate * PEAK_OVER_RATE)))
    }

    /// Whether the scheduler takes the link as in its startup ([`Startup`]): not where twice
    /// its rate would pass its cap, which no startup can show it past.
    pub(crate) fn starting_up(&self) -> bool {
        self.startup.on()
            && self
                .config
                .max_rate
                .is_none_or(|cap| self.rate() * crate::startup::STARTUP_GAIN <= cap as f64)
    }

    /// A capped link delivers no more than its cap, whatever its path could.
    fn capped(&self, rate: f64) -> f64 {
        self.config
            .max_rate
            .map_or(rate, |cap| rate.min(cap.max(1) as f64))
    }

    /// Whether the link's rate cap lets it take a payload now (always, without a cap).
    pub(crate) fn pace_allows(&mut self, now: Time) -> bool {
        let Some(cap) = self.config.max_rate else {
            self.pacer = None;
            return true;
        };
        let pacer = match &mut self.pacer {
            Some(p) if p.rate() == cap.max(1) => p,
            slot => slot.insert(Pacer::new(cap, now)),
        };
        pacer.allows(now)
    }

    /// The link took `len` payload bytes: they count against its rate cap.
    pub(crate) fn pace_take(&mut self, len: usize) {
        if let Some(pacer) = &mut self.pacer {
            pacer.take(len);
        }
    }

    /// Whether the rate still comes from a link test alone, no interval of acknowledged data
    /// having measured the link since.
    pub(crate) fn rate_provisional(&self) -> bool {
        self.rate.provisional
    }

    /// The link stalled at `now`: its measured rate is what the tests after the stall are
    /// compared with ([`Recheck`]). A rate that is still a test's is no reference (a test's
    /// filler can pass a token bucket's burst at the speed of the wire).
    pub(crate) fn note_stall(&mut self, now: Time) {
        let rate = self.measured_rate();
        Recheck::on_stall(&mut self.recheck, rate, now);
    }

    /// Whether to start a recheck, whose time has come: not if the rate estimate has come
    /// back by itself ([`Recheck::start_if_due`]).
    pub(crate) fn start_recheck(&mut self, now: Time) -> bool {
        Recheck::start_if_due(&mut self.recheck, self.rate.rate, now)
    }

    /// A recheck whose time has come cannot run now: it runs a gap later.
    pub(crate) fn postpone_recheck(&mut self, now: Time) {
        Recheck::postpone(&mut self.recheck, now);
    }

    /// Starts a link test of `size` filler bytes; its closing Ping is wanted from now.
    pub(crate) fn start_test(&mut self, size: usize, now: Time) {
        self.test = Some(LinkTest::new(size, self.rtt.min()));
        self.ping_wanted.get_or_insert(now);
    }

    /// The link test's closing Pong has not followed the lead's: a fresh Ping asks for it,
    /// and the next Pong ends the test. The closing Ping stays the outstanding one for the
    /// ping timeout.
    pub(crate) fn reping_test(&mut self, now: Time) {
        let Some(test) = &mut self.test else {
            return;
        };
        tracing::debug!(link = %self.id, "link test's closing Pong missing: a fresh Ping asks for it");
        test.reping(now);
    }

    /// Whether a Pong for an ended test's fresh Ping may still come at `now`.
    pub(crate) fn stray_pong_expected(&self, now: Time) -> bool {
        self.stray_pong_until.is_some_and(|until| now <= until)
    }

    /// A Pong arrived. Returns whether it ended a link test, which then sets the link's rate
    /// and lets it carry data again.
    ///
    /// `rtt_cap` is the [`due_rtt_cap`] of the other links. On a link that has carried no
    /// data of its own yet (`data_bytes`, new data sent on it), a test's lead Ping whose round
    /// trip went beyond it waited on its way (a crawling path's losses, recovered a
    /// retransmission timeout later, or its queue), and the test's rate is then the whole
    /// test's: the Pongs that follow such a lead closely say nothing of the filler. A link
    /// that has carried data is exempt: it is tested again only after a stall, with data
    /// unacknowledged, and what it queued before (a socket buffer filled through an outage)
    /// delays the lead whatever the path delivers now. A new link whose path is that long
    /// after all (a satellite beside fibre) starts at the whole test's rate; if its first
    /// payload is overdue it stalls once, and its next test, exempt, sets its rate with no
    /// due times ([`Link::sent_entry`]).
    pub(crate) fn on_pong(&mut self, now: Time, rtt_cap: Duration) -> bool {
        // A Pong that may be an ended test's stray still answers the outstanding Ping (if it
        // is the stray, that Ping's own Pong is then ignored), but its time says nothing of
        // the round trip.
        let stray = self
            .stray_pong_until
            .take()
            .is_some_and(|until| now <= until);
        let Some(test) = &mut self.test else {
            self.ping_answered(now, stray);
            return false;
        };
        let rtt_cap = if self.data_bytes == 0 {
            rtt_cap
        } else {
            Duration::MAX
        };
        match test.on_pong(now, self.ping_sent, rtt_cap) {
            PongFor::Lead(sample) => {
                self.rtt.update(sample, now);
                false
            }
            PongFor::Other => {
                self.ping_answered(now, stray);
                false
            }
            PongFor::Close(rate) => {
                if test.pong_may_follow() {
                    self.stray_pong_until = Some(now + self.rtt.smoothed().saturating_mul(2));
                }
                let sent = self.ping_sent.take();
                match rate {
                    Some(rate) => self.rate.seed(rate),
                    // A test by Ping alone: its round trip is a clean sample. With filler it
                    // is not (the filler went first).
                    None => {
                        if let Some(sent) = sent.filter(|_| !stray) {
                            self.rtt.update(now - sent, now);
                        }
                    }
                }
                tracing::debug!(
                    link = %self.id, ?rate, min_rtt = ?self.rtt.min(),
                    handshake_rtt = ?self.info.handshake_rtt, "link test done"
                );
                self.test = None;
                self.stalled = false;
                Recheck::on_test_done(&mut self.recheck, rate, now);
                true
            }
        }
    }

    /// The outstanding Ping, if any, was answered at `now`: a round-trip sample unless the
    /// Pong may be a stray.
    fn ping_answered(&mut self, now: Time, stray: bool) {
        if let Some(sent) = self.ping_sent.take().filter(|_| !stray) {
            self.rtt.update(now - sent, now);
        }
    }

    /// `bytes` of data acknowledged at `now`; `queued` says whether the round trips showed
    /// liag's own queue on the link, `own_queue` whether the link had one (two payloads
    /// beyond its path) whatever the round trips showed, `backlogged` whether data waited to
    /// be sent.
    pub(crate) fn on_data_acked(
        &mut self,
        bytes: usize,
        now: Time,
        queued: bool,
        own_queue: bool,
        backlogged: bool,
    ) {
        let interval = self.rtt.smoothed();
        let pace = Pace {
            limited: self.window_limited || queued,
            backlogged,
            own_queue,
        };
        self.rate.on_ack(bytes, now, interval, pace);
        self.startup.on_ack(self.rate(), backlogged, now, interval);
        if !self.rate.provisional {
            self.overdue_once = false;
        }
    }

    pub(crate) fn state(&self) -> LinkState {
        if self.goodbye != Goodbye::None {
            LinkState::Disconnecting
        } else if self.blocked_here() || self.remote_blocked {
            LinkState::Blocked
        } else if self.stalled {
            LinkState::Stalled
        } else if self.test.is_some() {
            LinkState::Testing
        } else {
            LinkState::Active
        }
    }

    pub(crate) fn stats(&self) -> LinkStats {
        LinkStats {
            id: self.id,
            tag: self.info.tag.clone(),
            direction: self.info.direction,
            local_user_data: self.info.local_user_data.clone(),
            remote_user_data: self.info.remote_user_data.clone(),
            state: self.state(),
            rtt: self.rtt.smoothed(),
            min_rtt: self.rtt.min(),
            inflight: self.inflight_bytes,
            window: self.window.get(),
            rate: self.rate(),
            sent_bytes: self.sent_bytes,
            received_bytes: self.received_bytes,
            acks_received: self.acks_received,
            data_bytes: self.data_bytes,
            resent_bytes: self.resent_bytes,
            copied_bytes: self.copies.total,
            tier: self.config.tier,
            max_rate: self.config.max_rate,
            meter: self.config.meter.clone(),
            over_allowance: self.over_allowance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    const RTT: Duration = Duration::from_millis(100);

    /// An acknowledgement's pace: whether the link set it, and whether data waited.
    fn pace(limited: bool, backlogged: bool) -> Pace {
        Pace {
            limited,
            backlogged,
            own_queue: false,
        }
    }

    /// An interval whose sample is `bytes` per 100 ms, ending at `end` ms: an acknowledgement
    /// that opens it 100 ms before (after a pause), `bytes` acknowledged at `end`, and one
    /// 150 ms later that closes it (and, after that pause, opens the next). Intervals are
    /// therefore at least 350 ms apart.
    fn interval(rate: &mut RateEstimator, end: u64, bytes: usize, limited: bool) {
        paced_interval(rate, end, bytes, pace(limited, false));
    }

    fn paced_interval(rate: &mut RateEstimator, end: u64, bytes: usize, pace: Pace) {
        rate.on_ack(1_000, at(end - 100), RTT, pace);
        rate.on_ack(bytes, at(end), RTT, pace);
        rate.on_ack(1_000, at(end + 150), RTT, pace);
    }

    fn assert_rate(rate: &RateEstimator, expected: f64) {
        assert!(
            (rate.rate - expected).abs() < 1.0,
            "{} != {expected}",
            rate.rate
        );
    }

    #[test]
    fn a_payload_sent_at_a_tests_rate_gets_a_due_time_and_none_before_a_rate() {
        let info = LinkInfo::new(Direction::Outgoing, "tested", Duration::from_millis(10));
        let mut link = Link::new(LinkId::new(1), info, at(0));
        let config = crate::Config::default();
        let no_cap = Duration::MAX;
        assert_eq!(link.sent_entry(0, 1000, at(0), &config, no_cap).due, None);
        link.rate.seed(1e6);
        let data = link.sent_entry(1, 32 << 10, at(0), &config, no_cap);
        // 32 KiB at a quarter of 1 MB/s, the 10 ms round trip and the 100 ms floor.
        let transmit = Duration::from_secs_f64(32768.0 / 250e3);
        assert_eq!(data.due, Some(at(110) + transmit));
        // A Consumed promises nothing about the rate.
        assert_eq!(link.sent_entry(2, 0, at(0), &config, no_cap).due, None);
    }

    #[test]
    fn a_payload_sent_at_a_measured_rate_is_due_by_it_and_not_pulled_in() {
        let ms = Duration::from_millis;
        let info = LinkInfo::new(Direction::Outgoing, "measured", ms(10));
        let mut link = Link::new(LinkId::new(1), info, at(0));
        link.rate.rate = 1e6;
        link.rate.provisional = false;
        link.overdue_once = true; // that exempts a test's rate, not a measured one
        let config = crate::Config::default();
        let floor = config.ack_timeout_min;
        // The ack timeout when each payload went out; the 1 ms cap would bind a test's round
        // trip, and a measured rate's due time ignores it.
        let ack_timeout = link.ack_timeout(&config);
        let first = link.sent_entry(0, 32 << 10, at(0), &config, ms(1));
        link.inflight.push_back(first);
        link.inflight_bytes = 32 << 10;
        let second = link.sent_entry(1, 32 << 10, at(5), &config, ms(1));
        // Both payloads at a quarter of 1 MB/s, and the ack timeout as it stood.
        let transmit = Duration::from_secs_f64(65536.0 / 250e3);
        let due = at(5) + transmit + ack_timeout;
        assert_eq!(second.due, Some(due));
        assert_eq!(second.slow_transmit, None);
        // The first one's acknowledgement does not pull the second's due time in.
        link.inflight.pop_front();
        link.inflight.push_back(second);
        link.pull_in_next_due(at(0), at(20), floor);
        assert_eq!(link.inflight[0].due, Some(due));
        // A Consumed promises nothing about the rate here either.
        let consumed = link.sent_entry(2, 0, at(5), &config, ms(1));
        assert_eq!(consumed.due, None);
    }

    #[test]
    fn a_due_time_allows_for_a_round_trip_up_to_four_times_the_other_links() {
        let ms = Duration::from_millis;
        assert_eq!(due_rtt_cap(std::iter::empty()), Duration::MAX);
        assert_eq!(due_rtt_cap([ms(1), ms(10)].into_iter()), ms(100));
        assert_eq!(due_rtt_cap([ms(10), ms(80)].into_iter()), ms(320));
        // Handshaken and tested through a queue: 440 ms, where the others take 1-10 ms.
        let info = LinkInfo::new(Direction::Outgoing, "queued", ms(440));
        let mut link = Link::new(LinkId::new(1), info, at(0));
        link.rate.seed(1e6);
        let data = link.sent_entry(0, 32 << 10, at(0), &crate::Config::default(), ms(100));
        let transmit = Duration::from_secs_f64(32768.0 / 250e3);
        assert_eq!(data.due, Some(at(200) + transmit));
    }

    #[test]
    fn the_rate_is_measured_over_window_limited_intervals() {
        let mut rate = RateEstimator::new();
        interval(&mut rate, 1_000, 200_000, false);
        assert_rate(&rate, 0.0); // what the application sent says nothing of the link
        interval(&mut rate, 2_000, 200_000, true);
        assert_rate(&rate, 2e6);
        // Down slowly, and only when the link held sending back.
        interval(&mut rate, 3_000, 100_000, false);
        assert_rate(&rate, 2e6);
        interval(&mut rate, 4_000, 100_000, true);
        assert_rate(&rate, 0.75 * 2e6 + 0.25 * 1e6);
        // Up quickly, whoever held sending back.
        interval(&mut rate, 5_000, 400_000, false);
        assert_rate(&rate, 0.5 * 1.75e6 + 0.5 * 4e6);
    }

    #[test]
    fn payloads_follow_the_highest_rate_of_the_last_10_to_20_s() {
        let mut rate = RateEstimator::new();
        assert_eq!(rate.peak(), 0.0);
        interval(&mut rate, 1_000, 400_000, true);
        assert_rate(&rate, 4e6);
        // The link delivers a quarter of that for a while (a sender short of CPU, given
        // smaller payloads): the estimate follows, the peak stands.
        for s in 2..=9 {
            interval(&mut rate, s * 1_000, 100_000, true);
        }
        assert!(rate.rate < 1.5e6, "{}", rate.rate);
        assert!((rate.peak() - 4e6).abs() < 1.0, "{}", rate.peak());
        // Twenty seconds on, the old peak is forgotten: what is left is the estimate's own
        // highest of the last 10-20 s, on its way down to 1 MB/s.
        for s in 10..=31 {
            interval(&mut rate, s * 1_000, 100_000, true);
        }
        assert!(rate.peak() < 1.2e6, "{}", rate.peak());
        assert!(rate.peak() >= rate.rate);
        // A link test starts the estimate again, and the peak with it.
        rate.seed(2e6);
        assert_eq!(rate.peak(), 0.0);
    }

    #[test]
    fn a_link_that_slowed_gets_payloads_of_at_most_four_times_its_rate_now() {
        let info = LinkInfo::new(Direction::Outgoing, "slowed", Duration::from_millis(10));
        let mut link = Link::new(LinkId::new(1), info, at(0));
        interval(&mut link.rate, 1_000, 400_000, true);
        assert!((link.payload_rate() - 4e6).abs() < 1.0);
        // Its path falls to a fortieth: the estimate follows a quarter of the way each
        // interval, and the payloads follow four times the estimate, not the peak.
        for s in 2..=10 {
            interval(&mut link.rate, s * 1_000, 10_000, true);
        }
        let rate = link.rate();
        assert!(rate < 0.5e6, "{rate}");
        assert!((link.rate.peak() - 4e6).abs() < 1.0);
        assert!((link.payload_rate() - 4.0 * rate).abs() < 1.0);
    }

    #[test]
    fn a_link_never_limited_takes_its_first_estimate_when_it_had_a_queue_of_its_own() {
        // Acknowledgements every 10 ms while data waits, the window never full.
        let paced = |rate: &mut RateEstimator, from: u64, bytes: usize, own_queue: bool| {
            let pace = Pace {
                own_queue,
                ..pace(false, true)
            };
            for i in from..from + 100 {
                rate.on_ack(bytes, at(10 * i), RTT, pace);
            }
        };
        let mut rate = RateEstimator::new();
        // The scheduler gave the link little: no estimate.
        paced(&mut rate, 0, 10_000, false);
        assert_rate(&rate, 0.0);
        // The link had its own queue throughout: its pace, the first estimate.
        paced(&mut rate, 100, 10_000, true);
        assert_rate(&rate, 1e6);
        // From then on such intervals only raise it.
        paced(&mut rate, 200, 5_000, true);
        assert_rate(&rate, 1e6);
    }

    #[test]
    fn steady_acknowledgements_read_the_links_rate() {
        // 10 kB acknowledged every 10 ms, the window full: 1 MB/s. The acknowledgement that
        // opens the first interval is not counted, and each interval starts where the last
        // closed, so every one reads 1 MB/s, not 11/10 of it.
        let limited = pace(true, true);
        let mut rate = RateEstimator::new();
        for i in 0..100 {
            rate.on_ack(10_000, at(10 * i), RTT, limited);
        }
        assert_rate(&rate, 1e6);
        // The same rate acknowledged in pairs handled at the same instant, 20 kB every 20 ms:
        // neither the opening pair nor a closing one is split.
        let mut rate = RateEstimator::new();
        for i in 0..50 {
            rate.on_ack(10_000, at(20 * i), RTT, limited);
            rate.on_ack(10_000, at(20 * i), RTT, limited);
        }
        assert_rate(&rate, 1e6);
    }

    #[test]
    fn an_idle_gap_is_not_measured_and_a_link_test_seeds_the_rate() {
        let limited = pace(true, false);
        let mut rate = RateEstimator::new();
        rate.seed(5e6);
        // An interval opens, takes 50 kB, then nothing waits and nothing comes for 10 s.
        rate.on_ack(1_000, at(0), RTT, limited);
        rate.on_ack(50_000, at(50), RTT, limited);
        // Acknowledgements resume: the pause and what came before it are left out.
        interval(&mut rate, 10_100, 400_000, true);
        assert_rate(&rate, 4e6);
        assert!(!rate.provisional);
    }

    #[test]
    fn a_crawling_link_with_data_waiting_is_measured_across_its_gaps() {
        // A test said 200 kB/s; the link delivers one 5 kB payload every 201 ms, a little
        // more than its smoothed round trip, while data waits: every gap is the link's pace.
        let backlogged = pace(false, true);
        let mut rate = RateEstimator::new();
        rate.seed(200e3);
        for i in 0..4 {
            rate.on_ack(5_000, at(201 * i), Duration::from_millis(200), backlogged);
        }
        assert!(!rate.provisional);
        assert_rate(&rate, 5_000.0 / 0.201);
    }

    #[test]
    fn a_test_rate_holds_until_an_interval_measures_the_link() {
        let mut rate = RateEstimator::new();
        // A test through a token bucket's burst: 16 MB/s on a 1.25 MB/s path.
        rate.seed(16e6);
        interval(&mut rate, 1_000, 50_000, false);
        assert_rate(&rate, 16e6); // the scheduler gave it little: nothing learnt
        interval(&mut rate, 2_000, 125_000, true);
        assert_rate(&rate, 1.25e6); // the first measured interval replaces the test's rate
        interval(&mut rate, 3_000, 100_000, true);
        assert_rate(&rate, 0.75 * 1.25e6 + 0.25 * 1e6); // and from then on it is smoothed
    }

    #[test]
    fn a_test_rate_gives_way_to_a_slower_first_interval_with_data_waiting() {
        let backlogged = pace(false, true);
        let mut rate = RateEstimator::new();
        // A test through a token bucket's burst said 200 kB/s; the path gives 50 kB/s. The
        // scheduler keeps only what 200 kB/s would deliver in time on the link, so its window
        // never fills, but data waits: the acknowledgements are the link's pace.
        rate.seed(200e3);
        paced_interval(&mut rate, 100, 5_000, backlogged);
        assert_rate(&rate, 50e3);
        assert!(!rate.provisional);
        // Measured now: an interval with data waiting but neither the window nor a queue
        // limiting no longer lowers it (the scheduler may have given the link little).
        paced_interval(&mut rate, 1_000, 2_000, backlogged);
        assert_rate(&rate, 50e3);
        // A faster interval does not replace a provisional rate: it is averaged in.
        rate.seed(20e3);
        paced_interval(&mut rate, 2_000, 5_000, backlogged);
        assert_rate(&rate, 0.5 * 20e3 + 0.5 * 50e3);
        assert!(rate.provisional);
    }

    #[test]
    fn a_burst_of_acks_is_judged_by_the_window_when_it_began() {
        let payload = 32 << 10;
        let mut burst = AckBurst::new(at(0));
        // The window (1 MiB) was full when the burst came: every ack of it says so, though
        // each frees room and the window grows as they come.
        let (mut inflight, mut window) = (1 << 20, 1 << 20);
        for _ in 0..20 {
            assert!(burst.window_limited(at(50), inflight, window, payload));
            inflight -= payload;
            window += payload;
        }
        // The next burst finds room the sender did not use: the application held it back.
        assert!(!burst.window_limited(at(100), inflight / 2, window, payload));
        // Steady acks, each more than a millisecond apart, are judged one by one.
        assert!(burst.window_limited(at(102), window - payload / 2, window, payload));
        assert!(!burst.window_limited(at(104), window / 2, window, payload));
    }
}
