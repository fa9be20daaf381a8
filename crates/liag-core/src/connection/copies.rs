//! Redundant copies of Data on a second link ([`Config::redundant`](crate::Config::redundant)).

use super::Connection;
use super::transmit::Next;
use crate::link::LinkId;
use crate::scheduler::LinkView;
use crate::send::Reliable;
use crate::tier::Tier;
use crate::time::Time;

impl Connection {
    /// The oldest copy on `link` went unacknowledged for the link's ack timeout: the copies
    /// that old are let go. If nothing at all came back on the link in that time, the link
    /// carries no message of its own (whose ack timer watches it already) and another link
    /// is usable, the link stalls: its link test brings it back.
    pub(super) fn copies_overdue(&mut self, now: Time, link: LinkId) {
        let config = &self.config;
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        let timeout = l.ack_timeout(config);
        if !l.copies.expire(now, timeout) {
            return;
        }
        let silent = now - l.last_received >= timeout && l.inflight.is_empty();
        let others = self.links.iter().any(|o| o.id != link && o.usable());
        if silent && others {
            tracing::debug!(%link, "redundant copies unacknowledged and the link silent");
            self.stall(now, link);
        }
    }

    /// Sends data redundantly from now on, or stops (see [`crate::Config::redundant`]).
    /// Copies already queued still go.
    pub fn set_redundant(&mut self, redundant: bool) {
        self.config.redundant = redundant;
    }

    /// Whether a redundant copy waits to be sent on some link: a driver that went over its
    /// links before the copy was queued goes over them once more.
    pub fn copies_waiting(&self) -> bool {
        self.links.iter().any(|l| l.usable() && l.copies.waiting())
    }

    /// Queues a copy of reliable message `index`, just sent on `carrier`, on the usable link
    /// of the tiers up to `open` where it would arrive first, if one has window room for it.
    pub(super) fn queue_copy(
        &mut self,
        now: Time,
        carrier: LinkId,
        index: u64,
        msg: &Reliable,
        open: Tier,
    ) {
        let len = msg.data_len();
        let mut best: Option<(std::time::Duration, usize)> = None;
        for (i, l) in self.links.iter_mut().enumerate() {
            if l.id == carrier || !l.usable() || l.config.tier > open {
                continue;
            }
            if !l.copies.has_room() || !l.has_window_for(len) || (len > 0 && !l.pace_allows(now)) {
                continue;
            }
            let arrival = LinkView::of(l).arrival_at_rate(len);
            if best.is_none_or(|(b, _)| arrival < b) {
                best = Some((arrival, i));
            }
        }
        if let Some((_, i)) = best {
            self.links[i].pace_take(len);
            self.links[i].copies.push(index, msg.clone());
        }
    }

    /// The next redundant copy for `link` (a Data header leaves its payload as the link's
    /// next packet). Copies of messages acknowledged meanwhile, waiting to be resent (the
    /// resend goes instead) or resent on this very link are dropped.
    pub(super) fn next_copy(&mut self, now: Time, link: LinkId) -> Option<Next> {
        let send = &self.send;
        let l = self.links.iter_mut().find(|l| l.id == link)?;
        let skip = |index| {
            send.settled(index) || send.resend.contains(&index) || send.carrier(index) == Some(link)
        };
        let (seq, msg) = l.copies.next(now, skip)?;
        tracing::trace!(%link, ?seq, len = msg.data_len(), "redundant copy sent");
        let header = msg.message(seq);
        if let Reliable::Data(payload) = msg {
            l.pending_payload = Some(payload);
        }
        Some(Next::Message(header))
    }
}
