//! Redundant sending: a second copy of a reliable message on another link.
//!
//! With [`Config::redundant`](crate::Config::redundant) set, each reliable message also goes
//! on the link with the next earliest arrival. Not only Data: every reliable message holds a
//! sequence number the receiver delivers in order, so a Consumed lost with a silent link would
//! hold back the Data copies behind it until it is resent. The receiver keeps whichever copy
//! comes first and
//! acknowledges both (protocol 4 acknowledges every copy it receives and drops duplicates by
//! sequence number, so no peer needs to know). A copy is not a reliable message of its link:
//! the original's own link, or a resend, still delivers it if the copy is lost. The link
//! carrying copies only counts their bytes against its window, until their acknowledgements
//! come back on it. Acknowledgements come back on a link in the order its messages went, so
//! one for a copy also lets go of every older copy there, and gives the link a round-trip
//! sample. A copy unacknowledged for the link's ack timeout is let go; if nothing at all came
//! back on the link in that time, and another link could carry the data, the link stalls as
//! one whose own messages went unacknowledged would: a link that only carries copies must not
//! go silent unnoticed.

use std::collections::VecDeque;
use std::time::Duration;

use liag_proto::seq::Seq;

use crate::send::Reliable;
use crate::time::Time;

/// Most copies waiting to be sent on one link. Copies of control messages take no window, so
/// a link whose transport takes nothing must not collect one per message sent elsewhere.
const MAX_WAITING: usize = 1024;

/// One link's copies: waiting to be sent, and sent but not acknowledged there.
#[derive(Debug, Default)]
pub(crate) struct Copies {
    /// Copies to send, oldest first: the message's index and content.
    waiting: VecDeque<(u64, Reliable)>,
    /// Copies sent on the link and not acknowledged there, oldest first.
    sent: VecDeque<SentCopy>,
    /// Payload bytes waiting and sent.
    bytes: usize,
    /// Payload bytes ever sent as copies on the link.
    pub(crate) total: u64,
}

#[derive(Debug)]
struct SentCopy {
    seq: Seq,
    len: usize,
    at: Time,
}

impl Copies {
    /// Payload bytes the copies hold on the link's window.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a copy waits to be sent.
    pub(crate) fn waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether another copy may wait to be sent.
    pub(crate) fn has_room(&self) -> bool {
        self.waiting.len() < MAX_WAITING
    }

    /// Queues a copy of message `index`.
    pub(crate) fn push(&mut self, index: u64, msg: Reliable) {
        self.bytes += msg.data_len();
        self.waiting.push_back((index, msg));
    }

    /// The next copy to send, skipping those `skip` names (their message acknowledged
    /// already, or waiting to be resent); records it as sent at `now`.
    pub(crate) fn next(
        &mut self,
        now: Time,
        skip: impl Fn(u64) -> bool,
    ) -> Option<(Seq, Reliable)> {
        while let Some((index, msg)) = self.waiting.pop_front() {
            let len = msg.data_len();
            if skip(index) {
                self.bytes -= len;
                continue;
            }
            // The wire carries an index's low 32 bits (see `send`).
            let seq = Seq::new(index as u32);
            self.sent.push_back(SentCopy { seq, len, at: now });
            self.total += len as u64;
            return Some((seq, msg));
        }
        None
    }

    /// An Ack for `seq` came back on the link: that copy, and every copy sent there before
    /// it, no longer holds the window. Acknowledgements come back on a link in the order its
    /// messages went, so an older copy's will not come any more (a receiver over its budget,
    /// or whose acknowledgement queue was full, skipped it). Scans from the oldest copy, and
    /// the receiver acknowledges the copies among the link's own messages in order, so the
    /// match is near the front.
    ///
    /// Returns when the acknowledged copy was sent, for a round-trip sample.
    pub(crate) fn acked(&mut self, seq: Seq) -> Option<Time> {
        let i = self.sent.iter().position(|c| c.seq == seq)?;
        let at = self.sent[i].at;
        for copy in self.sent.drain(..=i) {
            self.bytes -= copy.len;
        }
        Some(at)
    }

    /// When the oldest copy sent and not acknowledged left.
    pub(crate) fn oldest_sent(&self) -> Option<Time> {
        self.sent.front().map(|c| c.at)
    }

    /// Lets go of copies sent `timeout` or longer before `now`; whether there were any. Their
    /// acknowledgement is not coming, and they must not hold the link's window for ever.
    pub(crate) fn expire(&mut self, now: Time, timeout: Duration) -> bool {
        let mut expired = false;
        while let Some(copy) = self.sent.front() {
            if copy.at + timeout > now {
                break;
            }
            self.bytes -= copy.len;
            self.sent.pop_front();
            expired = true;
        }
        expired
    }

    /// Forgets every copy: the link stalled, failed or left. The originals are safe with
    /// their own links or the resend queue.
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
        self.sent.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn data(len: usize) -> Reliable {
        Reliable::Data(Bytes::from(vec![0; len]))
    }

    fn ms(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn a_copy_holds_the_window_until_its_ack_or_its_timeout() {
        let mut copies = Copies::default();
        copies.push(7, data(100));
        copies.push(8, data(50));
        assert_eq!(copies.bytes(), 150);
        let Some((seq, msg)) = copies.next(ms(0), |_| false) else {
            panic!("a copy waits");
        };
        assert_eq!((seq, msg.data_len()), (Seq::new(7), 100));
        assert!(copies.next(ms(10), |_| false).is_some());
        assert!(!copies.waiting());
        assert_eq!(
            copies.acked(Seq::new(3)),
            None,
            "no copy of 3 was sent here"
        );
        assert_eq!(copies.bytes(), 150);
        assert_eq!(copies.oldest_sent(), Some(ms(0)));
        assert_eq!(copies.acked(Seq::new(7)), Some(ms(0)));
        assert_eq!(copies.bytes(), 50);
        assert_eq!(copies.oldest_sent(), Some(ms(10)));
        assert!(!copies.expire(ms(109), Duration::from_millis(100)));
        assert_eq!(copies.bytes(), 50);
        assert!(copies.expire(ms(110), Duration::from_millis(100)));
        assert_eq!(copies.bytes(), 0, "an ack that never comes");
        assert_eq!(copies.total, 150);
    }

    #[test]
    fn an_ack_lets_go_of_the_older_copies_whose_acks_will_not_come() {
        let mut copies = Copies::default();
        for index in 1..=3 {
            copies.push(index, data(10));
            assert!(copies.next(ms(0), |_| false).is_some());
        }
        // The receiver skipped the acks of 1 and 2.
        copies.acked(Seq::new(3));
        assert_eq!(copies.bytes(), 0);
        assert!(!copies.expire(ms(10_000), Duration::from_millis(100)));
    }

    #[test]
    fn waiting_copies_are_bounded() {
        let mut copies = Copies::default();
        while copies.has_room() {
            copies.push(0, Reliable::Consumed(1));
        }
        assert_eq!(copies.waiting.len(), MAX_WAITING);
    }

    #[test]
    fn a_copy_of_a_settled_message_is_not_sent() {
        let mut copies = Copies::default();
        copies.push(1, data(10));
        copies.push(2, Reliable::Consumed(5));
        copies.push(3, data(20));
        let Some((seq, msg)) = copies.next(ms(0), |index| index == 1) else {
            panic!("copy 2 waits");
        };
        assert_eq!(seq, Seq::new(2));
        assert!(
            matches!(msg, Reliable::Consumed(5)),
            "control messages are copied too"
        );
        assert_eq!(copies.bytes(), 20);
        copies.clear();
        assert_eq!(copies.bytes(), 0);
        assert_eq!(copies.total, 0, "copy 3 was never sent");
    }
}
