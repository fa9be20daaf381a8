//! Which link carries new data: the [`Scheduler`] trait and liag's default policy.

use std::time::Duration;

use crate::link::LinkId;
use crate::startup::STARTUP_GAIN;
use crate::tier::Tier;

/// What a scheduler sees of one usable link.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LinkView {
    /// The link.
    pub id: LinkId,
    /// Smoothed round trip.
    pub rtt: Duration,
    /// Smallest recent round trip.
    pub min_rtt: Duration,
    /// Estimated delivery rate, bytes per second: from the link test when there was one,
    /// then from acknowledged data.
    pub rate: f64,
    /// Payload bytes in flight, redundant copies included
    /// ([`Config::redundant`](crate::Config::redundant)).
    pub inflight: usize,
    /// In-flight limit.
    pub window: usize,
    /// The rate comes from the link's test: no interval of acknowledged data has measured
    /// the link since (faster intervals may have raised it). A test's 16 KiB can pass a
    /// token bucket's burst at the speed of the wire, and the round trips so far (the
    /// handshake's, the test's Pings, a first payload) may include a queue the path had then,
    /// or that payload's own transmission. So neither `rate` nor `rate × min_rtt`, the bytes
    /// in transit on the path, is to be trusted yet: [`EarliestArrival`] gives such a link,
    /// when it is slow beside the others, one payload at a time. False for a link never
    /// tested (the first one, whose rate is its window over its round trip until measured).
    ///
    /// While it is set, the first interval that shows the link delivering less than `rate`,
    /// with data waiting to be sent, sets `rate` to what it showed: a scheduler that holds
    /// such a link back gets the rate of what it gave the link.
    pub provisional: bool,
    /// The link's tier. The connection asks the scheduler only about links of the tiers open
    /// now, so a scheduler may ignore it, or use it to rank the links it sees.
    pub tier: Tier,
    /// The link is in its startup ([`LinkView::arrival`]): it joined the connection beside
    /// links that had measured rates, and has not yet gone three round trips with data
    /// waiting and its rate estimate short of a quarter above the highest that grew (from
    /// its first acknowledged data on; before that it is in its startup too). Its `rate` is
    /// then what it was given rather than what its path carries (a link whose intervals
    /// deliver more than its test's rate may stay `provisional` meanwhile, so both may be
    /// set). Never set where twice the rate would pass the link's cap
    /// ([`LinkConfig::max_rate`](crate::LinkConfig::max_rate)). `rate` itself is not scaled:
    /// a scheduler of its own that reads it takes the link as twice as fast while this is
    /// set, if it wants the same.
    pub startup: bool,
}

impl LinkView {
    /// What a scheduler sees of `l`. Its bytes in flight include the redundant copies it
    /// carries: they queue ahead of what it takes next.
    pub(crate) fn of(l: &crate::link::Link) -> LinkView {
        LinkView {
            id: l.id,
            rtt: l.rtt.smoothed(),
            min_rtt: l.rtt.min(),
            rate: l.rate(),
            inflight: l.queued_bytes(),
            window: l.window.get(),
            provisional: l.rate_provisional(),
            tier: l.config.tier,
            startup: l.starting_up(),
        }
    }

    /// The rate at which [`LinkView::arrival`] and [`LinkView::queue_time`] take the link to
    /// transmit: its estimate, twice that in its startup.
    fn rate_taken(&self) -> f64 {
        let gain = if self.startup { STARTUP_GAIN } else { 1.0 };
        self.rate.max(1.0) * gain
    }

    /// When `len` bytes of new data handed to this link now would have arrived, from now:
    /// the queue ahead of them and their own transmission at the link's rate, plus half the
    /// minimum round trip. A link in its [startup](LinkView::startup) is taken to transmit at
    /// twice its rate, so a scheduler that gives links data by their arrivals gives it twice
    /// what it delivered, and a path with room shows a faster rate a round trip later (as
    /// TCP's slow start grows its window). [`LinkView::arrival_at_rate`] leaves that out.
    pub fn arrival(&self, len: usize) -> Duration {
        self.arrival_with(len, self.rate_taken())
    }

    /// [`LinkView::arrival`] at the link's estimated rate, startup or not: for a resend or a
    /// redundant copy, which the stream or the peer waits for, not for what a new link can
    /// show.
    pub fn arrival_at_rate(&self, len: usize) -> Duration {
        self.arrival_with(len, self.rate.max(1.0))
    }

    fn arrival_with(&self, len: usize, rate: f64) -> Duration {
        let transmit = (self.inflight + len) as f64 / rate;
        Duration::from_secs_f64(transmit.min(3600.0)) + self.min_rtt / 2
    }

    /// How long `len` more bytes would wait in this link's queue and take to transmit: the
    /// bytes in flight beyond what the path itself holds (rate × minimum round trip), at the
    /// link's rate. A long path full of data in transit is not a queue. In its
    /// [startup](LinkView::startup) the link is taken to be twice as fast here too: what
    /// its path holds is twice what it delivered in a round trip, and a link slow beside the
    /// others (whose queue alone bounds what it takes) is given enough to show more. So
    /// for the few round trips the startup outlasts its path's room, the link may queue up
    /// to twice what the lateness bound allows at its rate.
    pub fn queue_time(&self, len: usize) -> Duration {
        let rate = self.rate_taken();
        let in_path = rate * self.min_rtt.as_secs_f64();
        let queued = ((self.inflight + len) as f64 - in_path).max(0.0);
        Duration::from_secs_f64((queued / rate).min(3600.0))
    }
}

/// The question put to a scheduler: may `link` take `len` more bytes of new data, or a
/// resend ([`Offer::resending`]), now?
#[derive(Debug)]
#[non_exhaustive]
pub struct Offer<'a> {
    /// The link asking; it has window room for `len`.
    pub link: LinkId,
    /// The payload size on offer: the front of the queue, at most the configured
    /// `max_payload`, and cut for a slow link to what it transmits in 1 ms at the highest
    /// rate it showed over the last 10-20 s, at most 4 ms at its rate now (at least 1 KiB).
    /// A resend keeps the size it had on the link it first went on, and a message written
    /// whole ([`crate::Connection::write_message`]) is not cut: either may be longer.
    pub len: usize,
    /// Bytes waiting to be sent that the receiver waits for no sooner than this payload: for
    /// new data, the application's queue and the resends; for a resend, the resends alone
    /// (the new data behind it in the stream is no reason to place it on a slower link).
    pub backlog: usize,
    /// Resends wait to be sent: the payload is one of them, or new data behind them. The
    /// receiver waits for the resends before anything else.
    pub resending: bool,
    /// Every usable link, the asking one included: active links only (testing, stalled,
    /// blocked and disconnecting links carry no data and are left out).
    pub links: &'a [LinkView],
}

/// A policy for placing new data on links.
///
/// liag-core asks the scheduler each time a link with window room could take data or a
/// resend. Control messages do not ask: they go on the first usable link with room.
pub trait Scheduler: Send + std::fmt::Debug {
    /// Whether the offered link should take the data now. Saying no leaves it for another
    /// link, or for this one later.
    fn admit(&mut self, offer: &Offer<'_>) -> bool;
}

/// liag's default: earliest arrival first, and slower links only for data that still arrives
/// in time.
///
/// A link is used when data sent on it arrives no later than on any other link, or when the
/// backlog is so large that the faster links could not deliver it all before this link would:
/// then the slower link adds bandwidth without holding back the stream. A small write therefore
/// goes at once on the fastest link, while a bulk transfer fills every link. Even then a
/// slower link's queue is kept short (within 100 ms of the earliest arrival, as its rate
/// tells; a link in its startup is taken at twice its rate, [`LinkView::startup`]): a path whose
/// delay is long may be used, one that has slowed to a crawl gets only what it can deliver
/// in that time. A link that would add less than 5 % to the rate of the links that deliver
/// earlier gets no queue at all: only what its path holds in transit (its rate times its
/// minimum round trip) and one payload more. It adds next to nothing, and a crawling path's
/// delivery is the least predictable (its TCP connection losing packets at the bottleneck and
/// waiting out retransmission timeouts), while each of its payloads holds the whole stream.
/// The payload beyond the path keeps it measured: if it speeds up, its acknowledgements show
/// more than its rate, and it takes its share again. It takes that payload during a bulk
/// transfer (no resends waiting, and a backlog the faster links take at least 1 ms to
/// deliver) without the backlog rule, which the send queue's bound keeps from being met:
/// held to it, a link whose estimate erred low would never carry data again, and never be
/// measured again. A resend, new data behind one, or a lone small write goes by the rules
/// above.
///
/// While its rate is [provisional](LinkView::provisional) such a link takes one payload at a
/// time: what its path holds is not known yet.
#[derive(Debug, Clone, Default)]
pub struct EarliestArrival {
    _private: (),
}

impl EarliestArrival {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }
}

/// How much later than the best link a link may deliver and still count as "as early".
const SLACK: Duration = Duration::from_millis(1);

/// A link slower than this share of the links that deliver earlier gets no queue.
const TRICKLE_SHARE: f64 = 0.05;

/// A crawling link takes its one payload beyond its path, whatever the backlog rule says,
/// only while the faster links have at least this much backlog to deliver: a bulk
/// transfer, not a lone small write.
const PROBE_BACKLOG: Duration = Duration::from_millis(1);

/// How far a slower link's own queue may reach past the earliest arrival. Data a link takes
/// is the next of the stream, so the receiver waits for it: a link whose queue grew longer
/// would hold the whole stream back by the difference, however large the backlog.
const LATE: Duration = Duration::from_millis(100);

impl Scheduler for EarliestArrival {
    fn admit(&mut self, offer: &Offer<'_>) -> bool {
        let Some(me) = offer.links.iter().find(|l| l.id == offer.link) else {
            return false;
        };
        // A resend goes by the links' rates: the stream waits for it.
        let arrival = |l: &LinkView| {
            if offer.resending {
                l.arrival_at_rate(offer.len)
            } else {
                l.arrival(offer.len)
            }
        };
        let mine = arrival(me);
        // The links that would deliver this payload earlier: their combined rate and the
        // earliest arrival among them.
        let mut rate = 0.0;
        let mut first: Option<Duration> = None;
        for l in offer.links.iter().filter(|l| l.id != me.id) {
            let arrival = arrival(l);
            if arrival + SLACK < mine {
                rate += l.rate.max(1.0);
                first = Some(first.map_or(arrival, |f| f.min(arrival)));
            }
        }
        // The link with the earliest arrival always takes the data, so some link always can.
        let Some(first) = first else {
            return true;
        };
        if me.rate.max(1.0) < rate * TRICKLE_SHARE {
            // Until the link is measured not even its path is known: one payload.
            let full = if me.provisional {
                me.inflight > 0
            } else {
                me.queue_time(0) > Duration::ZERO
            };
            if full {
                return false;
            }
            // Not full, during a bulk transfer it takes its one payload however short the
            // backlog: that payload keeps it measured. Held to the backlog's drain below, a
            // link whose rate erred low would wait for a backlog the send queue's bound never
            // lets build, and stay unmeasured. A resend, new data behind one, or a lone small
            // write goes by the rules below.
            let bulk = offer.backlog as f64 / rate >= PROBE_BACKLOG.as_secs_f64();
            if bulk && !offer.resending {
                return true;
            }
        }
        // Time for the faster links together to deliver the whole backlog.
        let drain = first + Duration::from_secs_f64((offer.backlog as f64 / rate).min(3600.0));
        drain >= mine && me.queue_time(offer.len) <= first + LATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;
    const PAYLOAD: usize = 16 << 10;

    fn link(id: u64, rate: f64, min_rtt_ms: u64, inflight: usize) -> LinkView {
        let min_rtt = Duration::from_millis(min_rtt_ms);
        LinkView {
            id: LinkId::new(id),
            rtt: min_rtt,
            min_rtt,
            rate,
            inflight,
            window: usize::MAX,
            provisional: false,
            tier: Tier::Primary,
            startup: false,
        }
    }

    fn admits(links: &[LinkView], asking: u64, backlog: usize) -> bool {
        let offer = Offer {
            link: LinkId::new(asking),
            len: PAYLOAD,
            backlog,
            resending: false,
            links,
        };
        EarliestArrival::new().admit(&offer)
    }

    #[test]
    fn the_earliest_arrival_always_takes_the_data() {
        let links = [link(1, 10.0 * MB, 10, 0), link(2, 1.0 * MB, 50, 0)];
        assert!(admits(&links, 1, 0));
        assert!(
            admits(&links[1..], 2, 0),
            "alone, the slowest link is the earliest"
        );
        assert!(!admits(&links, 3, 0), "a link not among the usable ones");
    }

    #[test]
    fn a_small_write_waits_for_the_fast_link_and_a_backlog_fills_the_slow_one() {
        let links = [link(1, 10.0 * MB, 10, 0), link(2, 1.0 * MB, 50, 0)];
        assert!(
            !admits(&links, 2, PAYLOAD),
            "the fast link delivers it sooner"
        );
        // 10 MB take the fast link a second: the slow one delivers its payload well before.
        assert!(admits(&links, 2, 10_000_000));
    }

    #[test]
    fn links_as_early_as_the_best_share_the_data() {
        let links = [link(1, 10.0 * MB, 10, 0), link(2, 10.0 * MB, 10, 0)];
        assert!(admits(&links, 1, 0) && admits(&links, 2, 0));
    }

    #[test]
    fn a_crawling_link_gets_its_path_and_one_payload_more() {
        // 200 kB/s beside 12.5 MB/s: 1.6 % of the faster links' rate.
        let fast = [link(1, 10.0 * MB, 1, 100_000), link(2, 2.5 * MB, 1, 50_000)];
        let idle = [fast[0], fast[1], link(3, 200e3, 1, 0)];
        assert!(admits(&idle, 3, 1 << 30), "one payload keeps it measured");
        let busy = [fast[0], fast[1], link(3, 200e3, 1, 2_000)];
        assert!(
            !admits(&busy, 3, 1 << 30),
            "2 kB is a queue on a 200 B path"
        );
        // A longer path holds more in transit: 10 kB on a 200 kB/s, 100 ms path is no queue.
        let long = [fast[0], fast[1], link(3, 200e3, 100, 10_000)];
        assert!(admits(&long, 3, 1 << 30));
        // At 700 kB/s it adds 5.6 %: it may queue again, within the lateness bound.
        let faster = [fast[0], fast[1], link(3, 700e3, 1, 2_000)];
        assert!(admits(&faster, 3, 1 << 30));
    }

    #[test]
    fn a_crawling_link_with_a_provisional_rate_carries_one_payload_at_a_time() {
        // Its round trip, measured through a queue, says the path holds 45 kB: that is not
        // known yet. The 4,500 bytes in flight stand for one payload.
        let fast = [link(1, 10.0 * MB, 1, 100_000), link(2, 2.5 * MB, 1, 50_000)];
        let crawling = |inflight| LinkView {
            provisional: true,
            ..link(3, 90e3, 500, inflight)
        };
        assert!(admits(&[fast[0], fast[1], crawling(0)], 3, 1 << 30));
        assert!(!admits(&[fast[0], fast[1], crawling(4_500)], 3, 1 << 30));
        // Once measured on data, its path holds what its round trip says.
        let measured = link(3, 90e3, 500, 4_500);
        assert!(admits(&[fast[0], fast[1], measured], 3, 1 << 30));
    }

    #[test]
    fn a_crawling_link_takes_its_payload_however_short_the_backlog() {
        // A link whose estimate erred low (4 kB/s, from the few small messages it carried)
        // beside 7.5 MB/s: one payload would take seconds there, and the others drain a
        // short backlog in milliseconds. Held to the backlog, it would never carry data
        // again, and never be measured again; it takes its one payload.
        let fast = [link(1, 5.0 * MB, 1, 40_000), link(2, 2.5 * MB, 1, 20_000)];
        let crawling = [fast[0], fast[1], link(3, 4e3, 1, 0)];
        assert!(admits(&crawling, 3, 64 << 10));
        // With that payload in flight beyond its path, it takes no more.
        assert!(!admits(
            &[fast[0], fast[1], link(3, 4e3, 1, 1_000)],
            3,
            64 << 10
        ));
        // A lone small write is no bulk transfer: it goes on the faster links.
        assert!(!admits(&crawling, 3, 1_000));
        // Nor does a resend, or new data behind one: the receiver waits for the resends.
        let resend = Offer {
            link: LinkId::new(3),
            len: PAYLOAD,
            backlog: 64 << 10,
            resending: true,
            links: &crawling,
        };
        assert!(!EarliestArrival::new().admit(&resend));
    }

    #[test]
    fn a_link_in_its_startup_is_given_twice_what_its_rate_says() {
        // Two links of 50 ms round trip carry a stream at 5 MB/s, their paths full: a payload
        // given to them arrives in 78 ms. A third joined, has 50 kB on its way and measured
        // 1 MB/s so far: at that rate its payload would arrive in 91 ms, after the others
        // have drained a backlog of 20 kB (80 ms), so it waits.
        let busy = link(1, 5.0 * MB, 50, 250_000);
        let joined = link(3, 1.0 * MB, 50, 50_000);
        let links = [busy, link(2, 5.0 * MB, 50, 250_000), joined];
        assert!(!admits(&links, 3, 20_000));
        // In its startup it is taken to deliver 2 MB/s (58 ms), and takes the payload.
        let starting = LinkView {
            startup: true,
            ..joined
        };
        let with_startup = [busy, links[1], starting];
        assert!(admits(&with_startup, 3, 20_000));
        assert!(starting.arrival(PAYLOAD) < joined.arrival(PAYLOAD));
        assert_eq!(starting.arrival_at_rate(PAYLOAD), joined.arrival(PAYLOAD));
        // What its path holds is taken at twice its rate too: 100 kB, so 66 kB is no queue.
        assert_eq!(starting.queue_time(PAYLOAD), Duration::ZERO);
        assert!(joined.queue_time(PAYLOAD) > Duration::ZERO);
        // A resend, which the stream waits for, goes by its rate: it waits.
        let resend = Offer {
            link: LinkId::new(3),
            len: PAYLOAD,
            backlog: 20_000,
            resending: true,
            links: &with_startup,
        };
        assert!(!EarliestArrival::new().admit(&resend));
    }

    #[test]
    fn a_slow_links_queue_stays_within_the_lateness_bound_however_large_the_backlog() {
        // 200 kB queued at 1 MB/s: 200 ms behind, past the 100 ms bound.
        let queued = link(2, 1.0 * MB, 10, 200_000);
        let links = [link(1, 10.0 * MB, 10, 0), queued];
        assert!(!admits(&links, 2, 1 << 30));
        // A long path full of data in transit is not a queue: 200 kB on a 1 MB/s, 200 ms path.
        let long = link(2, 1.0 * MB, 200, 200_000);
        assert!(long.queue_time(PAYLOAD) < Duration::from_millis(20));
        assert!(admits(&[link(1, 10.0 * MB, 10, 0), long], 2, 1 << 30));
    }
}
