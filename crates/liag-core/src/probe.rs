//! The link test (spec §6.2): filler bytes followed by a Ping, to learn what a link delivers
//! *now* before it carries data the stream would wait for.
//!
//! A link is tested when it joins a connection whose other links already carry data, and
//! after it stalls. Its Pong comes back once the filler (and whatever was queued ahead of it)
//! has drained, so the round trip beyond the link's base delay gives its current delivery
//! rate. Until then the link carries no reliable messages: data handed to a link of unknown
//! rate could sit behind a queue the other links have long delivered past, and the whole
//! stream would wait for it.
//!
//! TestData is part of protocol 4; every peer discards it.

use std::time::Duration;

/// Filler bytes in a test. Both ends test a new link at once, and each Pong comes back behind
/// the other end's filler, so the filler is kept small: 16 KiB shows a slow link for what it
/// is (a third of a second at 400 kbit/s) and costs a fast one about a millisecond. The rate
/// it gives is a first estimate that acknowledged data refines.
pub(crate) const TEST_BYTES: usize = 16 << 10;

/// Filler bytes per TestData message (aggligator's write size).
const CHUNK: usize = 8 << 10;

/// One link test under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkTest {
    /// Filler bytes still to send.
    left: usize,
    /// Filler bytes in the whole test.
    size: usize,
    /// The test's Ping went out: the next Pong answers it.
    pinged: bool,
}

impl LinkTest {
    /// A test of `size` filler bytes; 0 tests with the Ping alone.
    pub(crate) fn new(size: usize) -> Self {
        LinkTest {
            left: size,
            size,
            pinged: false,
        }
    }

    /// The length of the next TestData message, while filler remains.
    pub(crate) fn next_filler(&mut self) -> Option<u32> {
        if self.left == 0 {
            return None;
        }
        let len = self.left.min(CHUNK);
        self.left -= len;
        u32::try_from(len).ok()
    }

    /// Filler bytes in the whole test.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the test's Ping may go out: all its filler is sent.
    pub(crate) fn ready_to_ping(&self) -> bool {
        self.left == 0
    }

    /// Records that the test's Ping went out.
    pub(crate) fn pinged(&mut self) {
        self.pinged = true;
    }

    /// Whether a Pong arriving now answers this test.
    pub(crate) fn answered(&self) -> bool {
        self.pinged
    }

    /// The delivery rate, bytes per second, that a Pong after `sample` shows on a link whose
    /// round trip without a queue is `base`: the filler over the time it took beyond the base
    /// delay. `None` for a test without filler.
    pub(crate) fn rate(&self, sample: Duration, base: Duration) -> Option<f64> {
        if self.size == 0 {
            return None;
        }
        let drain = sample.saturating_sub(base).max(Duration::from_millis(1));
        Some(self.size as f64 / drain.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_comes_in_chunks_then_the_ping() {
        let mut test = LinkTest::new(TEST_BYTES + 100);
        let mut sent = 0;
        while let Some(len) = test.next_filler() {
            assert!(len as usize <= CHUNK);
            sent += len as usize;
        }
        assert_eq!(sent, TEST_BYTES + 100);
        assert!(test.ready_to_ping());
        assert!(!test.answered());
        test.pinged();
        assert!(test.answered());
    }

    #[test]
    fn rate_is_the_filler_over_the_drain_time() {
        let test = LinkTest::new(TEST_BYTES);
        let rate = test
            .rate(Duration::from_millis(120), Duration::from_millis(20))
            .unwrap();
        assert!((rate - TEST_BYTES as f64 * 10.0).abs() < 1.0);
        // A round trip no longer than the base says little: the rate is bounded, not infinite.
        let fast = test.rate(Duration::from_millis(5), Duration::from_millis(20));
        assert_eq!(fast, Some(TEST_BYTES as f64 * 1000.0));
        assert_eq!(
            LinkTest::new(0).rate(Duration::from_secs(1), Duration::ZERO),
            None
        );
    }

    #[test]
    fn a_ping_only_test_is_ready_at_once() {
        let mut test = LinkTest::new(0);
        assert_eq!(test.next_filler(), None);
        assert!(test.ready_to_ping());
    }
}
