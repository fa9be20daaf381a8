//! The sending half: sequence numbers, kept messages, resends, and the byte budgets of §7.4.
//!
//! Messages are numbered internally with a `u64` index that never wraps; the wire carries its
//! low 32 bits as [`Seq`]. The window keeps every live index within 65,536 of the oldest, so
//! the mapping back from a received [`Seq`] is unambiguous.

use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};

use liag_proto::message::Message;
use liag_proto::seq::Seq;

use crate::link::LinkId;
use crate::time::Time;

/// A reliable message's content (spec §7.1).
#[derive(Debug, Clone)]
pub(crate) enum Reliable {
    Data(Bytes),
    Consumed(u32),
    SendFinish,
    ReceiveClose,
    ReceiveFinish,
}

impl Reliable {
    pub(crate) fn message(&self, seq: Seq) -> Message {
        match *self {
            Reliable::Data(_) => Message::Data { seq },
            Reliable::Consumed(consumed) => Message::Consumed { seq, consumed },
            Reliable::SendFinish => Message::SendFinish { seq },
            Reliable::ReceiveClose => Message::ReceiveClose { seq },
            Reliable::ReceiveFinish => Message::ReceiveFinish { seq },
        }
    }

    pub(crate) fn data_len(&self) -> usize {
        match self {
            Reliable::Data(payload) => payload.len(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentState {
    /// Last sent on `link` at `at`; `resent` if it was sent before.
    InFlight {
        link: LinkId,
        at: Time,
        resent: bool,
    },
    /// Waiting in the resend queue.
    Queued,
    Acked,
}

#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) msg: Reliable,
    pub(crate) state: SentState,
}

/// Outcome of an Ack for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acked {
    /// Newly acknowledged: it was in flight on `link` (`None` if it was queued for resend).
    New {
        link: Option<LinkId>,
        data_len: usize,
        sent_at: Option<Time>,
        resent: bool,
    },
    /// Out of range or already acknowledged.
    Stale,
}

#[derive(Debug)]
pub(crate) struct SendState {
    /// Index of `kept[0]`.
    base: u64,
    kept: VecDeque<Sent>,
    pub(crate) resend: BTreeSet<u64>,
    /// Payload bytes sent and not acknowledged.
    pub(crate) unacked: usize,
    /// Payload bytes sent minus what the peer reported consumed.
    pub(crate) unconsumed: u64,
    pub(crate) peer_window: u64,
    /// Application data not yet sent.
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) queued: usize,
    /// The application finished writing; SendFinish follows the last Data.
    pub(crate) finish_requested: bool,
    pub(crate) finish_sent: bool,
    /// The peer dropped its receiver: drop unsent data, send no SendFinish.
    pub(crate) peer_receive_finished: bool,
    pub(crate) peer_receive_closed: bool,
}

impl SendState {
    pub(crate) fn new(peer_window: u32) -> Self {
        SendState {
            base: 0,
            kept: VecDeque::new(),
            resend: BTreeSet::new(),
            unacked: 0,
            unconsumed: 0,
            peer_window: peer_window.into(),
            queue: VecDeque::new(),
            queued: 0,
            finish_requested: false,
            finish_sent: false,
            peer_receive_finished: false,
            peer_receive_closed: false,
        }
    }

    pub(crate) fn next_index(&self) -> u64 {
        self.base + self.kept.len() as u64
    }

    /// Whether this side's write direction is done: its SendFinish sent, or the peer's
    /// ReceiveFinish received (spec §8.3).
    pub(crate) fn write_finished(&self) -> bool {
        self.finish_sent || self.peer_receive_finished
    }

    pub(crate) fn all_acked(&self) -> bool {
        self.kept.is_empty()
    }

    pub(crate) fn get(&self, index: u64) -> Option<&Sent> {
        self.kept
            .get(usize::try_from(index.checked_sub(self.base)?).ok()?)
    }

    fn get_mut(&mut self, index: u64) -> Option<&mut Sent> {
        self.kept
            .get_mut(usize::try_from(index.checked_sub(self.base)?).ok()?)
    }

    /// Whether message `index` needs no more sending: acknowledged, or before every kept one.
    pub(crate) fn settled(&self, index: u64) -> bool {
        self.get(index).is_none_or(|s| s.state == SentState::Acked)
    }

    /// Whether a new message fits the sequence window.
    pub(crate) fn window_open(&self, seq_window: u32) -> bool {
        (self.kept.len() as u64) < u64::from(seq_window)
    }

    /// How many payload bytes a new Data message may carry under the byte budgets (§7.4 S3).
    pub(crate) fn data_budget(&self, send_buffer: usize) -> usize {
        let by_peer = self.peer_window.saturating_sub(self.unconsumed);
        let by_buffer = send_buffer.saturating_sub(self.unacked) as u64;
        usize::try_from(by_peer.min(by_buffer)).unwrap_or(usize::MAX)
    }

    /// Assigns the next sequence number to `msg`, sent now on `link`.
    pub(crate) fn push(&mut self, msg: Reliable, link: LinkId, now: Time) -> Seq {
        let seq = Seq::new(self.next_index() as u32);
        let len = msg.data_len() as u64;
        self.unacked += len as usize;
        self.unconsumed += len;
        self.kept.push_back(Sent {
            msg,
            state: SentState::InFlight {
                link,
                at: now,
                resent: false,
            },
        });
        seq
    }

    /// Queues application data: a piece of the byte stream, or a message kept `whole`.
    pub(crate) fn queue_data(&mut self, data: Bytes, whole: bool) {
        self.queued += data.len();
        self.queue.push_back(Queued { data, whole });
    }

    /// How many bytes the next payload takes from the queue, for a link whose payloads are
    /// at most `link_max`, with `budget` bytes allowed ([`SendState::data_budget`]): a piece
    /// of the byte stream is cut to both; a message kept whole waits until the budget has
    /// room for all of it (0), unless nothing is outstanding that could make more room, where
    /// it is cut to the budget like the byte stream.
    pub(crate) fn next_len(&self, link_max: usize, budget: usize) -> usize {
        match self.queue.front() {
            None => 0,
            Some(q) if q.whole && q.data.len() <= budget => q.data.len(),
            Some(q) if q.whole && (self.unacked > 0 || self.unconsumed > 0) => 0,
            Some(q) if q.whole => q.data.len().min(budget),
            Some(q) => q.data.len().min(link_max).min(budget),
        }
    }

    /// Takes `len` bytes of queued application data, at most the front piece.
    pub(crate) fn take_data(&mut self, len: usize) -> Option<Bytes> {
        let front = self.queue.front_mut()?;
        let chunk = if front.data.len() <= len {
            self.queue.pop_front()?.data
        } else {
            front.data.split_to(len)
        };
        self.queued -= chunk.len();
        Some(chunk)
    }

    /// The index a received Ack or Consumed seq refers to, if it is kept.
    pub(crate) fn index_of(&self, seq: Seq) -> Option<u64> {
        let offset = seq.distance_from(Seq::new(self.base as u32));
        (u64::from(offset) < self.kept.len() as u64).then(|| self.base + u64::from(offset))
    }

    /// Processes an Ack for `seq` (spec §7.6). Unlike protocol 4's reference, an Ack that comes
    /// back on another link than the latest copy's still settles the message: the peer has it.
    pub(crate) fn ack(&mut self, seq: Seq) -> Acked {
        let Some(index) = self.index_of(seq) else {
            return Acked::Stale;
        };
        let Some(sent) = self.get_mut(index) else {
            return Acked::Stale;
        };
        let outcome = match sent.state {
            SentState::Acked => return Acked::Stale,
            SentState::InFlight { link, at, resent } => Acked::New {
                link: Some(link),
                data_len: sent.msg.data_len(),
                sent_at: Some(at),
                resent,
            },
            SentState::Queued => Acked::New {
                link: None,
                data_len: sent.msg.data_len(),
                sent_at: None,
                resent: true,
            },
        };
        sent.state = SentState::Acked;
        // The payload goes now: the entry stays until all before it are acknowledged, and a
        // peer that never acknowledges the oldest message must not keep the window's payloads.
        sent.msg = Reliable::Data(Bytes::new());
        if let Acked::New { data_len, .. } = outcome {
            self.unacked -= data_len;
        }
        self.resend.remove(&index);
        while self
            .kept
            .front()
            .is_some_and(|s| s.state == SentState::Acked)
        {
            self.kept.pop_front();
            self.base += 1;
        }
        outcome
    }

    /// Moves a message in flight on `link` to the resend queue; returns its payload length.
    pub(crate) fn requeue(&mut self, index: u64, link: LinkId) -> Option<usize> {
        let sent = self.get_mut(index)?;
        match sent.state {
            SentState::InFlight { link: l, .. } if l == link => {
                sent.state = SentState::Queued;
                let len = sent.msg.data_len();
                self.resend.insert(index);
                Some(len)
            }
            _ => None,
        }
    }

    /// The link message `index` is in flight on, if it is.
    pub(crate) fn carrier(&self, index: u64) -> Option<LinkId> {
        match self.get(index)?.state {
            SentState::InFlight { link, .. } => Some(link),
            _ => None,
        }
    }

    /// Whether `index` is still in flight on `link` (sent there at `at`).
    pub(crate) fn in_flight_on(&self, index: u64, link: LinkId, at: Time) -> bool {
        matches!(
            self.get(index).map(|s| s.state),
            Some(SentState::InFlight { link: l, at: t, .. }) if l == link && t == at
        )
    }

    /// Marks a queued message as resent on `link`; returns its seq and content.
    pub(crate) fn resend_on(
        &mut self,
        index: u64,
        link: LinkId,
        now: Time,
    ) -> Option<(Seq, Reliable)> {
        self.resend.remove(&index);
        let sent = self.get_mut(index)?;
        if sent.state != SentState::Queued {
            return None;
        }
        sent.state = SentState::InFlight {
            link,
            at: now,
            resent: true,
        };
        Some((Seq::new(index as u32), sent.msg.clone()))
    }

    /// Applies the peer's Consumed; `false` if it reports more than was sent.
    pub(crate) fn consumed(&mut self, n: u32) -> bool {
        match self.unconsumed.checked_sub(n.into()) {
            Some(left) => {
                self.unconsumed = left;
                true
            }
            None => false,
        }
    }

    /// The peer dropped its receiver: unsent data will never be read (§8.2).
    pub(crate) fn drop_unsent(&mut self) {
        self.queue.clear();
        self.queued = 0;
    }
}

/// Application data waiting for a link.
#[derive(Debug)]
pub(crate) struct Queued {
    data: Bytes,
    /// A message of at most `max_payload` ([`crate::Connection::write_message`]): it goes in
    /// one payload, however short the links' payloads are cut.
    whole: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: LinkId = LinkId::new(1);
    const B: LinkId = LinkId::new(2);

    fn data(len: usize) -> Reliable {
        Reliable::Data(Bytes::from(vec![0; len]))
    }

    /// A sender whose next message gets index `base`, with `n` messages of 10 bytes sent on A.
    fn sent(base: u64, n: usize) -> SendState {
        let mut send = SendState::new(1 << 20);
        send.base = base;
        for _ in 0..n {
            send.push(data(10), A, Time::ZERO);
        }
        send
    }

    #[test]
    fn an_acked_payload_is_let_go_while_an_older_message_is_still_out() {
        let mut send = sent(0, 3);
        let Some(Sent {
            msg: Reliable::Data(payload),
            ..
        }) = send.get(2)
        else {
            panic!("message 2 is data");
        };
        let shared = payload.clone();
        assert!(
            !shared.is_unique(),
            "the sender keeps it while unacknowledged"
        );
        assert!(matches!(
            send.ack(Seq::new(2)),
            Acked::New { data_len: 10, .. }
        ));
        assert_eq!(send.base, 0, "message 0 still holds the entry in place");
        assert!(shared.is_unique(), "the sender's copy is gone");
        assert_eq!(send.get(2).map(|s| s.msg.data_len()), Some(0));
    }

    #[test]
    fn acks_slide_the_base_only_over_a_settled_prefix() {
        let mut send = sent(0, 3);
        assert_eq!(send.unacked, 30);
        assert!(matches!(
            send.ack(Seq::new(1)),
            Acked::New { data_len: 10, .. }
        ));
        assert_eq!(
            (send.base, send.next_index()),
            (0, 3),
            "the first is still out"
        );
        assert_eq!(
            send.ack(Seq::new(1)),
            Acked::Stale,
            "a duplicate settles nothing"
        );
        assert!(matches!(send.ack(Seq::new(0)), Acked::New { .. }));
        assert_eq!((send.base, send.unacked), (2, 10));
        assert!(matches!(send.ack(Seq::new(2)), Acked::New { .. }));
        assert!(send.all_acked());
        assert_eq!(send.ack(Seq::new(3)), Acked::Stale, "never sent");
    }

    #[test]
    fn sequence_numbers_wrap_while_indices_do_not() {
        let base = u64::from(u32::MAX) - 1;
        let mut send = sent(base, 4);
        let seqs: Vec<u32> = (0..4).map(|i| (base + i) as u32).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
        assert_eq!(send.index_of(Seq::new(0)), Some(base + 2));
        assert_eq!(send.index_of(Seq::new(1)), Some(base + 3));
        assert_eq!(send.index_of(Seq::new(2)), None, "past the last sent");
        assert_eq!(
            send.index_of(Seq::new(u32::MAX - 2)),
            None,
            "before the base"
        );
        for seq in [u32::MAX - 1, u32::MAX, 0] {
            assert!(matches!(send.ack(Seq::new(seq)), Acked::New { .. }));
        }
        assert_eq!(send.base, base + 3);
        assert_eq!(send.index_of(Seq::new(1)), Some(base + 3));
    }

    #[test]
    fn a_requeued_message_is_resent_on_another_link_and_acked_from_there() {
        let mut send = sent(0, 2);
        assert_eq!(send.requeue(0, B), None, "it is in flight on A, not B");
        assert_eq!(send.requeue(0, A), Some(10));
        assert!(!send.in_flight_on(0, A, Time::ZERO));
        assert!(send.resend.contains(&0));
        let now = Time::from_duration(std::time::Duration::from_millis(5));
        let (seq, msg) = send.resend_on(0, B, now).expect("queued for resend");
        assert_eq!((seq, msg.data_len()), (Seq::new(0), 10));
        assert!(send.in_flight_on(0, B, now));
        assert_eq!(
            send.resend_on(0, B, now).map(|(s, _)| s),
            None,
            "sent already"
        );
        let acked = send.ack(Seq::new(0));
        let expected = Acked::New {
            link: Some(B),
            data_len: 10,
            sent_at: Some(now),
            resent: true,
        };
        assert_eq!(acked, expected);
    }

    #[test]
    fn an_ack_for_a_message_waiting_to_be_resent_settles_it() {
        let mut send = sent(0, 1);
        send.requeue(0, A);
        let acked = send.ack(Seq::new(0));
        assert!(matches!(
            acked,
            Acked::New {
                link: None,
                sent_at: None,
                resent: true,
                ..
            }
        ));
        assert!(send.resend.is_empty() && send.all_acked());
        assert_eq!(send.unacked, 0);
    }

    #[test]
    fn the_budget_is_the_smaller_of_the_peers_window_and_the_send_buffer() {
        let mut send = SendState::new(100);
        send.push(data(30), A, Time::ZERO);
        assert_eq!(send.data_budget(1000), 70, "the peer's window");
        assert_eq!(send.data_budget(50), 20, "the send buffer");
        send.ack(Seq::new(0));
        assert_eq!(send.data_budget(50), 50, "acked: the buffer is free");
        assert_eq!(
            send.data_budget(1000),
            70,
            "not consumed: the window is not"
        );
        assert!(send.consumed(30));
        assert_eq!(send.data_budget(1000), 100);
        assert!(!send.consumed(1), "more than was sent");
    }

    #[test]
    fn queued_data_is_taken_in_pieces_of_the_budget() {
        let mut send = SendState::new(100);
        send.queue_data(Bytes::from_static(b"abcdef"), false);
        assert_eq!(send.next_len(4, 100), 4);
        assert_eq!(send.take_data(4).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(send.next_len(4, 1), 1, "cut to the budget");
        assert_eq!(send.take_data(4).as_deref(), Some(&b"ef"[..]));
        assert_eq!((send.take_data(4), send.queued), (None, 0));
    }

    #[test]
    fn a_message_goes_whole_or_waits_for_the_budget() {
        let mut send = SendState::new(100);
        send.queue_data(Bytes::from_static(b"message"), true);
        assert_eq!(send.next_len(2, 100), 7, "not cut to the link's payload");
        assert_eq!(
            send.next_len(2, 5),
            5,
            "nothing outstanding: cut to the budget"
        );
        send.unacked = 1;
        assert_eq!(send.next_len(2, 5), 0, "waits for room for all of it");
        assert_eq!(send.take_data(7).as_deref(), Some(&b"message"[..]));
        assert_eq!(send.queued, 0);
    }
}
