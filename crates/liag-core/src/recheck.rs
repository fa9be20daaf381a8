//! Tests again a link whose test, after a stall, found it far slower than it was.
//!
//! A link that stalls is tested before it carries data again, and the test's rate is all the
//! scheduler knows of it. When the path is still crawling that rate is right, and the link
//! gets almost nothing: one small payload beyond what its path holds, so that its
//! acknowledgements show it if it speeds up. But the test may have straddled the path's
//! recovery (its filler queued behind the crawl, and the rate of the whole test mixes the two),
//! or the path may heal soon after. Then those acknowledgements are the only way back, and
//! they are slow to show anything: a peer that holds its acknowledgements (aggligator 0.10
//! flushes them every 50 ms) answers one small payload per flush, which reads as a crawl
//! however fast the path is. In a traced run sending aggligator 0.10 a stream over real
//! paths, a path at 1 % for four seconds was tested as it healed, the test read 4,250 B/s
//! for the whole of it, and the restored 40 Mbit/s path stayed unused for 3.5 s, until
//! another stall tested it again (docs/performance.md, "A healed path that a test
//! misjudged", which also says what the repeated tests did not mend).
//!
//! So a link whose test found it at under an eighth of the rate it had measured when it
//! stalled is tested again: a quarter second after the test ended, then after twice as long
//! each time (at most 4 s apart), for as long as tests keep finding it that slow and its rate
//! estimate does not come back by itself, and for no more than 20 s after the stall. A
//! test's filler carries no data, so it never holds the stream back, and it measures the
//! path by what the path delivers at once, not by what a scheduler gave the link. An eighth,
//! not the quarter that makes a payload overdue (`OVERDUE_FACTOR` in link.rs): a test reads
//! a path shared with the other end's traffic low at times, and each test holds new data
//! off the link. 250 ms is about what a heal costs elsewhere (back to 80 % of the paths'
//! sum 200-280 ms after it against a liag peer); the gaps grow and stop so that a path
//! that stays slow costs some eight tests of 16 KiB each in the 20 s, and none after.

use std::time::Duration;

use crate::time::Time;

/// A test that finds the link under this share of its rate before the stall calls for
/// another.
const FAR_SLOWER: f64 = 1.0 / 8.0;

/// How long after such a test the next one starts, at first...
const FIRST_GAP: Duration = Duration::from_millis(250);

/// ... doubling each time, up to this.
const LONGEST_GAP: Duration = Duration::from_secs(4);

/// How long after the stall tests are repeated at all: a path slow for longer is taken to be
/// slow, and left to the rate estimate.
const RECHECK_WINDOW: Duration = Duration::from_secs(20);

/// The state of a stalled link's repeated tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Recheck {
    /// The link's measured rate when it stalled, in bytes per second.
    before: f64,
    /// When it stalled.
    since: Time,
    /// How long after the next test that reads slow the one after starts; doubles each time,
    /// up to [`LONGEST_GAP`].
    gap: Duration,
    /// When the next test starts, if one is to.
    at: Option<Time>,
}

impl Recheck {
    /// The link stalled at `now` with its measured rate at `rate` (0 if not measured: no
    /// rechecks). A stall during the rechecks of an earlier one keeps that one's rate: the
    /// link's rate now is the crawl's.
    pub(crate) fn on_stall(slot: &mut Option<Recheck>, rate: f64, now: Time) {
        if slot.is_some_and(|r| now.saturating_since(r.since) <= RECHECK_WINDOW) {
            return;
        }
        *slot = (rate > 0.0).then_some(Recheck {
            before: rate,
            since: now,
            gap: FIRST_GAP,
            at: None,
        });
    }

    /// The link's test ended at `now` with `rate` (`None` for a test by Ping alone, which
    /// measures no rate): another test is due if this one found the link far slower than
    /// before the stall.
    pub(crate) fn on_test_done(slot: &mut Option<Recheck>, rate: Option<f64>, now: Time) {
        let Some(r) = slot else {
            return;
        };
        match rate {
            Some(rate)
                if rate < r.before * FAR_SLOWER
                    && now.saturating_since(r.since) < RECHECK_WINDOW =>
            {
                r.at = Some(now + r.gap);
                r.gap = (r.gap * 2).min(LONGEST_GAP);
            }
            _ => *slot = None,
        }
    }

    /// The next test cannot start at `now` (no other link is usable to take the data while
    /// it runs): it starts one gap later instead, the gap not doubled.
    pub(crate) fn postpone(slot: &mut Option<Recheck>, now: Time) {
        if let Some(r) = slot.as_mut().filter(|r| r.at.is_some()) {
            r.at = Some(now + r.gap);
        }
    }

    /// When the next test starts, if one is to.
    pub(crate) fn next_at(slot: &Option<Recheck>) -> Option<Time> {
        slot.and_then(|r| r.at)
    }

    /// The time [`Recheck::next_at`] gave has come (the caller sees to that), and the link's
    /// rate estimate is `rate`: whether to test it now. Not if the estimate has come back by
    /// itself, or the stall is too long ago; either ends the rechecks.
    pub(crate) fn start_if_due(slot: &mut Option<Recheck>, rate: f64, now: Time) -> bool {
        let Some(r) = slot else {
            return false;
        };
        if r.at.is_none() {
            return false;
        }
        if rate >= r.before * FAR_SLOWER || now.saturating_since(r.since) >= RECHECK_WINDOW {
            *slot = None;
            return false;
        }
        r.at = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_test_far_below_the_rate_before_the_stall_is_repeated_ever_later() {
        let mut slot = None;
        Recheck::on_stall(&mut slot, 5e6, at(0));
        Recheck::on_test_done(&mut slot, Some(4e3), at(4_000));
        assert_eq!(Recheck::next_at(&slot), Some(at(4_250)));
        assert!(Recheck::start_if_due(&mut slot, 4e3, at(4_250)));
        assert_eq!(Recheck::next_at(&slot), None, "under way");
        Recheck::on_test_done(&mut slot, Some(50e3), at(4_600));
        assert_eq!(Recheck::next_at(&slot), Some(at(5_100)));
        assert!(Recheck::start_if_due(&mut slot, 50e3, at(5_100)));
        // A stall of the crawling link keeps the rate it had before the first.
        Recheck::on_stall(&mut slot, 50e3, at(5_200));
        // 600 kB/s is still under an eighth of the 5 MB/s before the first stall.
        Recheck::on_test_done(&mut slot, Some(600e3), at(5_500));
        assert_eq!(Recheck::next_at(&slot), Some(at(6_500)));
        // The gap stops growing at 4 s.
        let mut last = at(0);
        for _ in 0..3 {
            last = Recheck::next_at(&slot).unwrap();
            assert!(Recheck::start_if_due(&mut slot, 50e3, last));
            Recheck::on_test_done(&mut slot, Some(50e3), last);
        }
        assert_eq!(Recheck::next_at(&slot), Some(last + LONGEST_GAP));
    }

    #[test]
    fn a_recheck_that_cannot_run_is_put_off_by_a_gap() {
        let mut slot = None;
        Recheck::postpone(&mut slot, at(0));
        assert_eq!(slot, None);
        Recheck::on_stall(&mut slot, 5e6, at(0));
        Recheck::postpone(&mut slot, at(100));
        assert_eq!(Recheck::next_at(&slot), None, "nothing scheduled yet");
        Recheck::on_test_done(&mut slot, Some(4e3), at(4_000));
        Recheck::postpone(&mut slot, at(4_500));
        assert_eq!(Recheck::next_at(&slot), Some(at(5_000)));
    }

    #[test]
    fn a_test_near_the_rate_before_ends_the_rechecks() {
        let mut slot = None;
        Recheck::on_stall(&mut slot, 5e6, at(0));
        Recheck::on_test_done(&mut slot, Some(1e6), at(300));
        assert_eq!(slot, None);
        // So does a test by Ping alone (no other link: nothing to protect the stream from).
        Recheck::on_stall(&mut slot, 5e6, at(1_000));
        Recheck::on_test_done(&mut slot, None, at(1_100));
        assert_eq!(slot, None);
    }

    #[test]
    fn an_estimate_back_by_itself_or_an_old_stall_needs_no_test() {
        let mut slot = None;
        Recheck::on_stall(&mut slot, 5e6, at(0));
        Recheck::on_test_done(&mut slot, Some(4e3), at(4_000));
        assert!(
            !Recheck::start_if_due(&mut slot, 1e6, at(4_250)),
            "no test once the estimate (1 MB/s) is above an eighth of 5 MB/s"
        );
        assert_eq!(slot, None);
        Recheck::on_stall(&mut slot, 5e6, at(10_000));
        Recheck::on_test_done(&mut slot, Some(4e3), at(29_900));
        assert!(
            !Recheck::start_if_due(&mut slot, 4e3, at(30_150)),
            "no test 20 s after the stall"
        );
        assert_eq!(slot, None);
        // A test ending 20 s on schedules nothing; nor does a link with no rate yet.
        Recheck::on_stall(&mut slot, 5e6, at(40_000));
        Recheck::on_test_done(&mut slot, Some(4e3), at(60_000));
        assert_eq!(slot, None);
        Recheck::on_stall(&mut slot, 0.0, at(70_000));
        assert_eq!(slot, None);
    }
}
