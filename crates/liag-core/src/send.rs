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
    pub(crate) queue: VecDeque<Bytes>,
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

    /// Takes up to `max` bytes of queued application data.
    pub(crate) fn take_data(&mut self, max: usize) -> Option<Bytes> {
        let front = self.queue.front_mut()?;
        let chunk = if front.len() <= max {
            self.queue.pop_front()?
        } else {
            front.split_to(max)
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
