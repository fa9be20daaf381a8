//! The link test (spec §6.2): a Ping, filler bytes, and a second Ping, to learn what a link
//! delivers *now* before it carries data the stream would wait for.
//!
//! A link is tested when it joins a connection that already has an active link, and after it
//! stalls. The two Pongs come back in order: the first once whatever was queued ahead of the
//! test has drained, the second once the filler has drained too. The time between them is the
//! filler's transmission at the link's current rate, whatever the path's delay and whatever
//! waited ahead (a socket buffer full through an outage, say); Pongs that come back together
//! say nothing of it, and the whole test's time gives the rate. Until the second Pong the link
//! carries no reliable messages: data handed to a link of unknown rate could sit behind a
//! queue the other links have long delivered past, and the whole stream would wait for it.
//!
//! TestData is part of protocol 4; every peer discards it and answers Pings, though a peer may
//! answer both of the test's Pings with one Pong. When the closing Pong does not follow the
//! lead's in time, a fresh Ping asks for it (see [`LinkTest::reping_at`]), rather than the
//! link waiting a second and showing as Stalled.

use std::time::Duration;

use crate::time::Time;

/// Filler bytes in a test. Both ends test a new link at once, and each Pong may come back
/// behind the other end's filler, so the filler is kept small: 16 KiB shows a slow link for
/// what it is (a third of a second at 400 kbit/s) and costs a fast one about a millisecond.
pub(crate) const TEST_BYTES: usize = 16 << 10;

/// How long after the lead's round trip (again) the closing Pong may follow the lead's before
/// a fresh Ping asks for it (see [`LinkTest::reping_at`]).
const REPING_SLACK: Duration = Duration::from_millis(10);
/// Pongs this close together came back together.
const TOGETHER: Duration = Duration::from_millis(2);

/// Filler bytes per TestData message (aggligator's write size), unless the configured
/// payload size is smaller.
const CHUNK: usize = 8 << 10;

/// Where a test's leading Ping stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    /// Not sent yet.
    Unsent,
    /// Sent at this time; its Pong is the next to arrive.
    Sent(Time),
    /// Sent at `sent`; its Pong arrived at `at`.
    Answered { sent: Time, at: Time },
}

/// The fresh Ping that asks again for a closing Pong that did not follow the lead's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// Not asked for.
    Unasked,
    /// Asked for at this time, not sent yet.
    Due(Time),
    /// Sent at this time.
    Sent(Time),
}

/// One link test under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkTest {
    lead: Lead,
    /// The link's round trip as known before the test (the handshake's, for a new link).
    known_rtt: Duration,
    /// Filler bytes still to send.
    left: usize,
    /// Filler bytes in the whole test.
    size: usize,
    /// The closing Ping went out: the Pong after the lead's answers it.
    closed: bool,
    /// The fresh Ping, once the closing Pong did not follow the lead's in time: the next
    /// Pong ends the test.
    fresh: Fresh,
}

/// What a Pong meant to a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PongFor {
    /// The leading Ping's: a clean round-trip sample.
    Lead(Duration),
    /// The closing Ping's: the test is over, with the rate it showed (none for a test
    /// without filler).
    Close(Option<f64>),
    /// Neither: a Ping from before the test.
    Other,
}

impl LinkTest {
    /// A test of `size` filler bytes; 0 tests with one Ping alone. `known_rtt` is the link's
    /// round trip as known before (see [`LinkTest::on_pong`]).
    pub(crate) fn new(size: usize, known_rtt: Duration) -> Self {
        LinkTest {
            lead: Lead::Unsent,
            known_rtt,
            left: size,
            size,
            closed: false,
            fresh: Fresh::Unasked,
        }
    }

    /// Whether the leading Ping should go out now (no other Ping is outstanding, so its Pong
    /// is the next to come).
    pub(crate) fn wants_lead(&self, other_ping_outstanding: bool) -> bool {
        self.size > 0 && self.lead == Lead::Unsent && !other_ping_outstanding
    }

    /// Records that the leading Ping went out at `now`.
    pub(crate) fn lead_sent(&mut self, now: Time) {
        self.lead = Lead::Sent(now);
    }

    /// Since when the test waits for a Pong: the leading Ping's send time while its Pong is
    /// awaited, then that of the closing Ping (`closing`, the link's outstanding Ping), or
    /// since the fresh Ping was asked for.
    pub(crate) fn waiting_since(&self, closing: Option<Time>) -> Option<Time> {
        match (self.lead, self.fresh) {
            (Lead::Sent(at), _) => Some(at),
            (_, Fresh::Due(at) | Fresh::Sent(at)) => Some(at),
            _ if self.closed => closing,
            _ => None,
        }
    }

    /// The length of the next TestData message, while filler remains and after the leading
    /// Ping; no message is longer than `max_payload` (a packet transport's packet size, say)
    /// plus its type byte.
    pub(crate) fn next_filler(&mut self, max_payload: usize) -> Option<u32> {
        if self.left == 0 || self.lead == Lead::Unsent {
            return None;
        }
        let len = self.left.min(CHUNK).min(max_payload.max(1));
        self.left -= len;
        u32::try_from(len).ok()
    }

    /// Whether the closing Ping may go out: the lead and all the filler are sent.
    pub(crate) fn ready_to_close(&self) -> bool {
        self.left == 0 && (self.size == 0 || self.lead != Lead::Unsent)
    }

    /// Records that the closing Ping went out.
    pub(crate) fn close_sent(&mut self) {
        self.closed = true;
    }

    /// When a fresh Ping should ask for the closing Pong; `closing` is when the closing Ping
    /// went out (the link's outstanding Ping). `None` unless the lead's Pong came after
    /// `closing`, so that one Pong may have answered both, and `None` once asked for.
    ///
    /// The wait after the lead's Pong is the lead's round trip (at least the known one) and
    /// [`REPING_SLACK`]. It does not wait for the filler to drain, which is what the test
    /// measures: on a link slower than about 16 KiB per round trip a peer that answers every
    /// Ping gets the fresh Ping too. Its closing Pong then ends the test, at the gap's rate if
    /// it comes sooner than any answer to the fresh Ping could, at the whole test's rate if
    /// not (see [`LinkTest::on_pong`]), and the fresh Ping's own Pong follows as a stray.
    pub(crate) fn reping_at(&self, closing: Option<Time>) -> Option<Time> {
        match (self.lead, closing) {
            (Lead::Answered { sent, at }, Some(closing))
                if self.closed && self.fresh == Fresh::Unasked && closing <= at =>
            {
                Some(at + (at - sent).max(self.known_rtt) + REPING_SLACK)
            }
            _ => None,
        }
    }

    /// Asks for the fresh Ping at `now`.
    pub(crate) fn reping(&mut self, now: Time) {
        self.fresh = Fresh::Due(now);
    }

    /// Whether the fresh Ping should go out now.
    pub(crate) fn wants_fresh(&self) -> bool {
        matches!(self.fresh, Fresh::Due(_))
    }

    /// Records that the fresh Ping went out at `now`.
    pub(crate) fn fresh_sent(&mut self, now: Time) {
        self.fresh = Fresh::Sent(now);
    }

    /// Whether a Pong may still come once the test has ended: the fresh Ping went out, and
    /// a peer that answers every Ping owes a Pong for it after the closing one.
    pub(crate) fn pong_may_follow(&self) -> bool {
        matches!(self.fresh, Fresh::Sent(_))
    }

    /// A Pong arrived at `now`; `generic` is the send time of the link's outstanding
    /// (closing or keep-alive) Ping, if any, which it answers unless the lead's comes first.
    /// Once the fresh Ping was asked for, the next Pong ends the test. A lead whose round
    /// trip exceeded `rtt_cap` waited on its way, and the gap after it proves nothing (see
    /// [`crate::link::Link::on_pong`]).
    pub(crate) fn on_pong(
        &mut self,
        now: Time,
        generic: Option<Time>,
        rtt_cap: Duration,
    ) -> PongFor {
        if let Lead::Sent(at) = self.lead {
            self.lead = Lead::Answered { sent: at, at: now };
            return PongFor::Lead(now - at);
        }
        if !self.closed {
            return PongFor::Other;
        }
        match self.fresh {
            Fresh::Sent(at) if now >= at + self.known_rtt / 2 => {
                // The late closing Pong or the fresh Ping's: which one is not known, only
                // that the filler has drained by now. The whole test's time bounds the rate
                // from below: low by the lead's round trip on a slow link whose filler took
                // long, by about three round trips where one Pong answered both Pings. The
                // first acknowledged interval replaces it.
                return PongFor::Close(self.whole_rate(now));
            }
            // Sooner than any answer to the fresh Ping could come: the closing Pong.
            Fresh::Sent(_) | Fresh::Due(_) => {}
            Fresh::Unasked if generic.is_none() => return PongFor::Other,
            Fresh::Unasked => {}
        }
        let rate = match self.lead {
            Lead::Answered { sent, at: first } if self.size > 0 => {
                let gap = now - first;
                let drain = gap.max(Duration::from_millis(1));
                let mut rate = self.size as f64 / drain.as_secs_f64();
                if gap < TOGETHER || first - sent > rtt_cap {
                    // Together, the Pongs say nothing of how long the filler took: they were
                    // held on their way (a queue on the return path, the peer's own filler, a
                    // peer that sends its Pongs in bursts), or the link is very fast. Nor do
                    // they after a lead held that long: a lost segment's retransmission
                    // brings lead, filler and closing Ping to the peer together. What is
                    // sure is that the whole test took its time. A rate that errs low grows
                    // with the first acknowledgements; one that errs high loads the link with
                    // data the stream then waits for.
                    rate = rate.min(self.whole_rate(now).unwrap_or(rate));
                }
                Some(rate)
            }
            _ => None,
        };
        PongFor::Close(rate)
    }

    /// The filler over the whole test, from the lead's sending to `now` (at least 1 ms); none
    /// for a test without filler.
    fn whole_rate(&self, now: Time) -> Option<f64> {
        match self.lead {
            Lead::Answered { sent, .. } if self.size > 0 => {
                let whole = (now - sent).max(Duration::from_millis(1));
                Some(self.size as f64 / whole.as_secs_f64())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from(Duration::from_millis(ms))
    }

    /// A test whose lead, filler and closing Ping all went out at 0 ms.
    fn sent_whole(size: usize, known_rtt: Duration) -> LinkTest {
        let mut test = LinkTest::new(size, known_rtt);
        test.lead_sent(at(0));
        while test.next_filler(32 << 10).is_some() {}
        test.close_sent();
        test
    }

    #[test]
    fn lead_then_filler_then_close() {
        let mut test = LinkTest::new(TEST_BYTES + 100, Duration::from_millis(50));
        assert_eq!(
            test.next_filler(32 << 10),
            None,
            "filler waits for the lead"
        );
        assert!(!test.wants_lead(true), "another Ping is outstanding");
        assert!(test.wants_lead(false));
        test.lead_sent(at(0));
        let mut sent = 0;
        while let Some(len) = test.next_filler(32 << 10) {
            assert!(len as usize <= CHUNK);
            sent += len as usize;
        }
        assert_eq!(sent, TEST_BYTES + 100);
        assert!(test.ready_to_close());
        test.close_sent();
        assert_eq!(
            test.on_pong(at(50), Some(at(0)), Duration::MAX),
            PongFor::Lead(at(50) - at(0))
        );
        // The second Pong, 100 ms after the first: the filler took 100 ms.
        let PongFor::Close(Some(rate)) = test.on_pong(at(150), Some(at(0)), Duration::MAX) else {
            panic!("the closing Pong ends the test");
        };
        assert!((rate - (TEST_BYTES + 100) as f64 * 10.0).abs() < 1.0);
    }

    #[test]
    fn filler_fits_a_small_packet_size() {
        let mut test = LinkTest::new(TEST_BYTES, Duration::from_millis(1));
        test.lead_sent(at(0));
        let lens: Vec<u32> = std::iter::from_fn(|| test.next_filler(1200)).collect();
        assert!(lens.iter().all(|&len| len <= 1200));
        assert_eq!(lens.iter().sum::<u32>() as usize, TEST_BYTES);
    }

    #[test]
    fn pongs_at_once_give_a_bounded_rate() {
        let mut test = sent_whole(TEST_BYTES, Duration::from_millis(1));
        test.on_pong(at(1), Some(at(0)), Duration::MAX);
        let close = test.on_pong(at(1), Some(at(0)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 * 1000.0)));
    }

    #[test]
    fn pongs_held_back_together_give_the_whole_tests_rate() {
        // A 2 ms link whose Pongs both came back 1.6 s later, together: the gap between them
        // says nothing; 16 KiB in the 1.6 s the test took is what is sure.
        let mut test = sent_whole(TEST_BYTES, Duration::from_millis(2));
        test.on_pong(at(1_600), Some(at(0)), Duration::MAX);
        let close = test.on_pong(at(1_600), Some(at(0)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 1.6)));
    }

    #[test]
    fn pongs_together_give_the_whole_tests_rate_whatever_the_known_round_trip() {
        // A link whose handshake waited 1 s in a queue: Pongs back together 1.2 s after the
        // lead, no later than that round trip allows, say nothing of the filler either.
        let mut test = sent_whole(TEST_BYTES, Duration::from_secs(1));
        test.on_pong(at(1_200), Some(at(0)), Duration::MAX);
        let close = test.on_pong(at(1_201), Some(at(0)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 1.201)));
    }

    #[test]
    fn pongs_after_a_lead_beyond_the_cap_give_the_whole_tests_rate() {
        // 500 ms for the lead where 100 ms is the most allowed: the Pongs 4 ms apart (4 MB/s)
        // prove nothing, and the whole test's 504 ms gives the rate.
        let cap = Duration::from_millis(100);
        let mut test = sent_whole(TEST_BYTES, Duration::from_millis(10));
        test.on_pong(at(500), Some(at(0)), cap);
        let close = test.on_pong(at(504), Some(at(0)), cap);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 0.504)));
        // At the cap exactly (the rule is "beyond" it), the gap's rate stands.
        let mut test = sent_whole(TEST_BYTES, Duration::from_millis(10));
        test.on_pong(at(100), Some(at(0)), cap);
        let close = test.on_pong(at(104), Some(at(0)), cap);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 0.004)));
    }

    /// A test of a 10 ms link whose lead Pong came at 12 ms, after the closing Ping (sent at
    /// 1 ms); no closing Pong followed, and the fresh Ping is asked for.
    fn asked_again() -> LinkTest {
        let mut test = sent_whole(TEST_BYTES, Duration::from_millis(10));
        assert_eq!(test.reping_at(Some(at(1))), None, "no Pong yet");
        assert_eq!(
            test.on_pong(at(12), Some(at(1)), Duration::MAX),
            PongFor::Lead(at(12) - at(0))
        );
        // The lead's round trip (12 ms) and the slack (10 ms) after its Pong.
        let due = test.reping_at(Some(at(1))).unwrap();
        assert_eq!(due, at(12 + 12 + 10));
        test.reping(due);
        assert_eq!(test.reping_at(Some(at(1))), None, "asked once");
        assert!(test.wants_fresh());
        test
    }

    #[test]
    fn one_pong_for_both_pings_is_asked_again() {
        let mut test = asked_again();
        test.fresh_sent(at(34));
        assert!(!test.wants_fresh());
        assert_eq!(test.waiting_since(Some(at(1))), Some(at(34)));
        // A Pong a round trip after the fresh Ping: its answer, or a closing Pong that late;
        // the whole test's rate either way, and a Pong may still follow.
        let close = test.on_pong(at(44), Some(at(1)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 0.044)));
        assert!(test.pong_may_follow());
    }

    #[test]
    fn a_closing_pong_sooner_than_the_fresh_pings_answer_gives_its_gap() {
        // The closing Pong comes 1 ms after the fresh Ping left: it cannot answer it.
        let mut test = asked_again();
        test.fresh_sent(at(34));
        let close = test.on_pong(at(35), Some(at(1)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 0.023)));
        assert!(
            test.pong_may_follow(),
            "the fresh Ping's Pong is still to come"
        );
        // Before the fresh Ping went out, nothing follows.
        let mut test = asked_again();
        let close = test.on_pong(at(35), Some(at(1)), Duration::MAX);
        assert_eq!(close, PongFor::Close(Some(TEST_BYTES as f64 / 0.023)));
        assert!(!test.pong_may_follow());
    }

    #[test]
    fn a_closing_ping_sent_after_the_leads_pong_is_not_asked_again() {
        let mut test = LinkTest::new(TEST_BYTES, Duration::from_millis(10));
        test.lead_sent(at(0));
        assert_eq!(
            test.on_pong(at(10), None, Duration::MAX),
            PongFor::Lead(at(10) - at(0))
        );
        while test.next_filler(32 << 10).is_some() {}
        test.close_sent();
        // Its own Pong is still to come: nothing was merged.
        assert_eq!(test.reping_at(Some(at(11))), None);
    }

    #[test]
    fn a_ping_only_test_has_no_lead_and_no_rate() {
        let mut test = LinkTest::new(0, Duration::from_millis(1));
        assert!(!test.wants_lead(false));
        assert_eq!(test.next_filler(32 << 10), None);
        assert!(test.ready_to_close());
        assert_eq!(
            test.on_pong(at(5), Some(at(0)), Duration::MAX),
            PongFor::Other
        );
        test.close_sent();
        assert_eq!(
            test.on_pong(at(9), Some(at(1)), Duration::MAX),
            PongFor::Close(None)
        );
    }
}
