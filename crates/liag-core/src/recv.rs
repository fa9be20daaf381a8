//! The receiving half: deduplication, the bounded reorder buffer, in-order delivery and the
//! consumption count behind Consumed (spec §7.5, §7.8).

use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

use liag_proto::frame::MAX_PAYLOAD_LEN;
use liag_proto::seq::{Position, Seq};

use crate::error::Violation;

/// What a received reliable message asks of the connection right away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// A copy of a message already received: acknowledge it, nothing else.
    Duplicate,
    /// New and stored; deliver in order.
    Stored,
    /// New Data that the shared memory budget has no room for: dropped, not acknowledged.
    OverBudget,
    /// New Consumed: apply it to the send budget now.
    Consumed(u32),
    /// New ReceiveClose: the peer asks us to stop sending.
    ReceiveClose,
    /// New ReceiveFinish: the peer dropped its receiver.
    ReceiveFinish,
}

/// A reliable message as the receiver sees it.
#[derive(Debug)]
pub(crate) enum ReliableMsg {
    Data(Bytes),
    Consumed(u32),
    SendFinish,
    ReceiveClose,
    ReceiveFinish,
}

#[derive(Debug)]
enum Slot {
    Data(Bytes),
    SendFinish,
    /// Applied on arrival; kept only to recognise copies.
    Applied,
}

/// Bytes read and not yet reported at which an emptied receive buffer sends a Consumed while
/// the read direction is open. Small messages read one at a time are then reported every
/// 4 KiB rather than each. A transfer that reads more between drains is reported at each.
///
/// The reports double as traffic on every link, and on a link that slows to a crawl they delay
/// its acknowledgements enough for the sender to call it stalled and send its data again
/// elsewhere: with no report before the end, `sim_performance`'s `failover_degraded_link`
/// waited 2 s for the crawling link (docs/performance.md, "a Consumed per 4 KiB").
const DRAIN_REPORT: u64 = 4096;

/// The least receive buffer (R) whose emptied buffer holds back a report under
/// [`DRAIN_REPORT`]. A sender waits until a payload fits whole in what R has left (aggligator's
/// stream payloads are 8 KiB, and a payload may be up to 8 MiB, spec §7.9): from this size on,
/// the largest fits beside what is held back. A smaller R reports any amount.
const HOLD_FROM: u64 = MAX_PAYLOAD_LEN as u64 + DRAIN_REPORT;

#[derive(Debug)]
pub(crate) struct RecvState {
    /// Index of the next message to deliver.
    next: u64,
    reorder: BTreeMap<u64, Slot>,
    /// Payload bytes received and not yet read (reorder buffer and ready queue).
    pub(crate) buffered: usize,
    recv_buffer: usize,
    window: u32,
    ready: VecDeque<Bytes>,
    /// The peer's SendFinish was delivered: no more data will come.
    pub(crate) finished: bool,
    /// The application closed its receiving side: data is discarded on arrival.
    pub(crate) closed: bool,
    /// Bytes read (or discarded) and not yet reported with Consumed.
    pub(crate) unreported: u64,
}

impl RecvState {
    pub(crate) fn new(recv_buffer: u32, window: u32) -> Self {
        RecvState {
            next: 0,
            reorder: BTreeMap::new(),
            buffered: 0,
            recv_buffer: recv_buffer as usize,
            window,
            ready: VecDeque::new(),
            finished: false,
            closed: false,
            unreported: 0,
        }
    }

    /// Stores or recognises one reliable message (spec §7.5 R2–R4). `budget` is what a shared
    /// memory budget has left and this connection's floor, if it has one.
    pub(crate) fn receive(
        &mut self,
        seq: Seq,
        msg: ReliableMsg,
        budget: Option<(usize, usize)>,
    ) -> Result<Arrival, Violation> {
        let offset = match seq.position(Seq::new(self.next as u32), self.window) {
            Position::Behind(_) => return Ok(Arrival::Duplicate),
            Position::Ahead(offset) => offset,
            Position::BeyondWindow(offset) => return Err(Violation::BeyondWindow { seq, offset }),
        };
        let index = self.next + u64::from(offset);
        if self.reorder.contains_key(&index) {
            return Ok(Arrival::Duplicate);
        }
        let (slot, arrival) = match msg {
            ReliableMsg::Data(payload) => {
                let buffered = self.buffered + payload.len();
                if buffered > self.recv_buffer {
                    return Err(Violation::ReceiveBufferOverflow {
                        buffered,
                        limit: self.recv_buffer,
                    });
                }
                // The next payload in order, with all before it read, is always taken, and so
                // is anything within the connection's floor: that keeps every connection
                // moving however full the budget.
                let next_to_read = index == self.next
                    && self.ready.is_empty()
                    && payload.len() <= crate::budget::NEXT_TO_READ_MAX;
                let fits =
                    |(room, floor): (usize, usize)| payload.len() <= room || buffered <= floor;
                if budget.is_some_and(|b| !fits(b)) && !next_to_read {
                    return Ok(Arrival::OverBudget);
                }
                self.buffered = buffered;
                (Slot::Data(payload), Arrival::Stored)
            }
            ReliableMsg::SendFinish => (Slot::SendFinish, Arrival::Stored),
            ReliableMsg::Consumed(n) => (Slot::Applied, Arrival::Consumed(n)),
            ReliableMsg::ReceiveClose => (Slot::Applied, Arrival::ReceiveClose),
            ReliableMsg::ReceiveFinish => (Slot::Applied, Arrival::ReceiveFinish),
        };
        if index == self.next {
            // In order: deliver at once, without a trip through the reorder buffer.
            self.take(slot);
        } else {
            self.reorder.insert(index, slot);
        }
        while let Some(slot) = self.reorder.remove(&self.next) {
            self.take(slot);
        }
        Ok(arrival)
    }

    /// Takes the slot of the next message in order.
    fn take(&mut self, slot: Slot) {
        self.next += 1;
        match slot {
            Slot::Data(payload) if self.closed || self.finished => self.discard(payload.len()),
            Slot::Data(payload) if !payload.is_empty() => self.ready.push_back(payload),
            Slot::Data(_) | Slot::Applied => {}
            Slot::SendFinish => self.finished = true,
        }
    }

    fn discard(&mut self, len: usize) {
        self.buffered -= len;
        self.unreported += len as u64;
    }

    /// Whether the application has something to read: data, or the end of the stream.
    pub(crate) fn readable(&self) -> bool {
        self.readable_data() || self.finished
    }

    /// Whether received data waits to be read.
    pub(crate) fn readable_data(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next payload in order, counted as consumed.
    pub(crate) fn read(&mut self) -> Option<Bytes> {
        let payload = self.ready.pop_front()?;
        self.discard(payload.len());
        Some(payload)
    }

    /// Up to `max` bytes of the next payload, counted as consumed.
    pub(crate) fn read_max(&mut self, max: usize) -> Option<Bytes> {
        let front = self.ready.front_mut()?;
        if front.len() <= max {
            return self.read();
        }
        let part = front.split_to(max);
        self.discard(part.len());
        Some(part)
    }

    /// The application stopped reading: drop what is buffered and everything that comes.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        while let Some(payload) = self.ready.pop_front() {
            self.discard(payload.len());
        }
    }

    /// Whether a Consumed report is due (spec §7.8): more than a tenth of the receive buffer
    /// (R) read since the last report; or the buffer emptied with at least [`DRAIN_REPORT`]
    /// unreported (any amount if R is under [`HOLD_FROM`]); or the buffer emptied with no
    /// more data to come (the peer's SendFinish was delivered, or the application closed its
    /// receiving side), so that the peer's graceful end (spec §8.3) sees all its data
    /// consumed.
    ///
    /// An emptied buffer holds back less than [`DRAIN_REPORT`]: the peer can still send all
    /// of R but that. Reporting every emptied buffer drew a Consumed back for each small
    /// message two ends exchanged, an Ack of it, and a wake-up of both ends
    /// (docs/performance.md, "a Consumed per 4 KiB").
    pub(crate) fn consumed_due(&self) -> bool {
        let done = self.finished || self.closed;
        let least = if self.recv_buffer as u64 >= HOLD_FROM {
            DRAIN_REPORT
        } else {
            1
        };
        self.unreported > 0
            && (self.unreported > (self.recv_buffer / 10) as u64
                || (self.buffered == 0 && (done || self.unreported >= least)))
    }

    /// Takes the count for a Consumed message (at most `u32::MAX` at a time).
    pub(crate) fn take_unreported(&mut self) -> u32 {
        let n = u32::try_from(self.unreported).unwrap_or(u32::MAX);
        self.unreported -= u64::from(n);
        n
    }

    /// Messages held out of order; bounded by the window.
    pub(crate) fn held(&self) -> usize {
        self.reorder.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(bytes: &'static [u8]) -> ReliableMsg {
        ReliableMsg::Data(Bytes::from_static(bytes))
    }

    /// Everything ready to read, one payload after another.
    fn read_all(recv: &mut RecvState) -> Vec<u8> {
        std::iter::from_fn(|| recv.read()).flatten().collect()
    }

    #[test]
    fn out_of_order_data_is_held_and_delivered_in_order() {
        let mut recv = RecvState::new(1 << 20, 16);
        assert_eq!(
            recv.receive(Seq::new(2), data(b"c"), None),
            Ok(Arrival::Stored)
        );
        assert_eq!(
            recv.receive(Seq::new(1), data(b"b"), None),
            Ok(Arrival::Stored)
        );
        assert!(!recv.readable() && recv.held() == 2);
        assert_eq!(
            recv.receive(Seq::new(2), data(b"c"), None),
            Ok(Arrival::Duplicate)
        );
        assert_eq!(
            recv.receive(Seq::new(0), data(b"a"), None),
            Ok(Arrival::Stored)
        );
        assert_eq!(recv.held(), 0);
        assert_eq!(read_all(&mut recv), b"abc");
        assert_eq!(
            recv.receive(Seq::new(1), data(b"b"), None),
            Ok(Arrival::Duplicate)
        );
        assert_eq!((recv.buffered, recv.unreported), (0, 3));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut recv = RecvState::new(1 << 20, 16);
        recv.next = u64::from(u32::MAX);
        assert_eq!(
            recv.receive(Seq::new(0), data(b"y"), None),
            Ok(Arrival::Stored)
        );
        assert_eq!(
            recv.receive(Seq::new(u32::MAX), data(b"x"), None),
            Ok(Arrival::Stored)
        );
        assert_eq!(read_all(&mut recv), b"xy");
        assert_eq!(recv.next, u64::from(u32::MAX) + 2);
        let behind = recv.receive(Seq::new(u32::MAX), data(b"x"), None);
        assert_eq!(behind, Ok(Arrival::Duplicate));
    }

    #[test]
    fn a_message_past_the_window_or_the_buffer_is_a_violation() {
        let mut recv = RecvState::new(4, 16);
        // The window reaches 16 past the next expected.
        let beyond = recv.receive(Seq::new(17), data(b"x"), None);
        assert!(matches!(
            beyond,
            Err(Violation::BeyondWindow { offset: 17, .. })
        ));
        assert_eq!(
            recv.receive(Seq::new(16), data(b"abc"), None),
            Ok(Arrival::Stored)
        );
        let over = recv.receive(Seq::new(15), data(b"de"), None);
        let expected = Violation::ReceiveBufferOverflow {
            buffered: 5,
            limit: 4,
        };
        assert_eq!(over, Err(expected));
        assert_eq!(recv.buffered, 3, "the refused payload is not counted");
    }

    #[test]
    fn a_full_budget_drops_data_but_never_the_next_payload_to_read() {
        let mut recv = RecvState::new(1 << 20, 16);
        let full = Some((0, 0));
        assert_eq!(
            recv.receive(Seq::new(1), data(b"b"), full),
            Ok(Arrival::OverBudget)
        );
        assert_eq!(recv.held(), 0, "dropped, to come again");
        assert_eq!(
            recv.receive(Seq::new(0), data(b"a"), full),
            Ok(Arrival::Stored)
        );
        // Within the connection's floor, data is taken however full the budget.
        assert_eq!(
            recv.receive(Seq::new(1), data(b"b"), Some((0, 2))),
            Ok(Arrival::Stored)
        );
        assert_eq!(read_all(&mut recv), b"ab");
    }

    #[test]
    fn control_messages_are_applied_on_arrival_and_recognised_when_copied() {
        let mut recv = RecvState::new(1 << 20, 16);
        let consumed = recv.receive(Seq::new(1), ReliableMsg::Consumed(7), None);
        assert_eq!(
            consumed,
            Ok(Arrival::Consumed(7)),
            "applied before the gap fills"
        );
        let again = recv.receive(Seq::new(1), ReliableMsg::Consumed(7), None);
        assert_eq!(again, Ok(Arrival::Duplicate), "and only once");
        assert_eq!(
            recv.receive(Seq::new(0), data(b"a"), None),
            Ok(Arrival::Stored)
        );
        assert_eq!(
            recv.receive(Seq::new(2), ReliableMsg::SendFinish, None),
            Ok(Arrival::Stored)
        );
        assert!(recv.finished && recv.readable());
        assert_eq!(read_all(&mut recv), b"a");
    }

    #[test]
    fn a_drained_buffer_is_reported_from_4_kib_on_or_once_no_more_data_comes() {
        static PIECE: [u8; 4032] = [7; 4032];
        let mut recv = RecvState::new(64 << 20, 16);
        recv.receive(Seq::new(0), data(&[1; 64]), None).unwrap();
        assert_eq!(read_all(&mut recv).len(), 64);
        assert_eq!((recv.buffered, recv.unreported), (0, 64));
        assert!(
            !recv.consumed_due(),
            "64 bytes of 64 MiB read, the buffer drained"
        );
        recv.receive(Seq::new(1), data(&PIECE), None).unwrap();
        assert_eq!(read_all(&mut recv).len(), 4032);
        assert!(recv.consumed_due(), "4 KiB read, the buffer drained");
        assert_eq!(recv.take_unreported(), 4096);
        recv.receive(Seq::new(2), data(b"ab"), None).unwrap();
        recv.receive(Seq::new(3), ReliableMsg::SendFinish, None)
            .unwrap();
        assert!(!recv.consumed_due(), "nothing read yet");
        assert_eq!(read_all(&mut recv), b"ab");
        assert!(
            recv.consumed_due(),
            "no more data comes: the last 2 bytes are reported"
        );
        assert_eq!(recv.take_unreported(), 2);
        assert!(!recv.consumed_due());
    }

    #[test]
    fn a_receive_buffer_short_of_the_largest_message_and_4_kib_reports_every_drain() {
        let window = (MAX_PAYLOAD_LEN as u64 + DRAIN_REPORT) as u32;
        let mut recv = RecvState::new(window - 1, 16);
        recv.receive(Seq::new(0), data(&[1; 64]), None).unwrap();
        assert_eq!(read_all(&mut recv).len(), 64);
        assert!(
            recv.consumed_due(),
            "held back, these 64 bytes could keep a payload near 8 MiB from fitting"
        );
        let mut recv = RecvState::new(window, 16);
        recv.receive(Seq::new(0), data(&[1; 64]), None).unwrap();
        assert_eq!(read_all(&mut recv).len(), 64);
        assert!(!recv.consumed_due(), "8 MiB fit beside 4 KiB held back");
    }

    #[test]
    fn a_receiver_closed_after_a_small_read_reports_it() {
        let mut recv = RecvState::new(64 << 20, 16);
        recv.receive(Seq::new(0), data(b"ab"), None).unwrap();
        assert_eq!(read_all(&mut recv), b"ab");
        assert!(!recv.consumed_due(), "2 bytes read, the buffer emptied");
        recv.close();
        assert!(
            recv.consumed_due(),
            "no more data is taken: the 2 bytes are reported"
        );
        assert_eq!(recv.take_unreported(), 2);
    }

    #[test]
    fn a_tenth_of_the_receive_buffer_read_is_reported_with_data_still_buffered() {
        let mut recv = RecvState::new(100, 16);
        recv.receive(Seq::new(0), data(b"abcdefghijklmnopqrst"), None)
            .unwrap();
        assert_eq!(recv.read_max(10).as_deref(), Some(&b"abcdefghij"[..]));
        assert!(!recv.consumed_due(), "10 of 100 read: a tenth, not more");
        assert_eq!(recv.read_max(1).as_deref(), Some(&b"k"[..]));
        assert!(recv.consumed_due(), "11 of 100 read, 9 still buffered");
    }

    #[test]
    fn closing_discards_what_is_buffered_and_what_comes_and_reports_it_consumed() {
        let mut recv = RecvState::new(100, 16);
        recv.receive(Seq::new(0), data(b"abcd"), None).unwrap();
        assert_eq!(recv.read_max(1).as_deref(), Some(&b"a"[..]));
        assert!(!recv.consumed_due(), "1 of 100 read, 3 still buffered");
        recv.close();
        recv.receive(Seq::new(1), data(b"efghijklmnop"), None)
            .unwrap();
        assert!(!recv.readable());
        assert_eq!((recv.buffered, recv.unreported), (0, 16));
        assert!(recv.consumed_due());
        assert_eq!(recv.take_unreported(), 16);
        assert!(!recv.consumed_due());
    }
}
