//! What a link sends next: control messages first, then resends, then new data (spec §6.9).

use bytes::Bytes;
use std::time::Duration;

use liag_proto::message::Message;

use super::Connection;
use crate::error::LinkError;
use crate::link::{Goodbye, Link, LinkId};
use crate::scheduler::{LinkView, Offer};
use crate::send::Reliable;
use crate::tier::{Tier, TierView};
use crate::time::{Time, transmission};

/// The longest a link should take to transmit one payload. The receiver waits that long for
/// a payload at the head of the stream, so a slow link gets smaller payloads (sized to the
/// highest rate it showed lately, so one whose path just slowed takes up to four times as
/// long: [`Link::payload_rate`]); and a link keeps
/// at least two of them in flight (its window's floor: one on the wire, one behind it), more
/// as its delay target allows, which a small message written during a bulk transfer waits
/// for: everything written before it is delivered first.
/// Links of 32.8 MB/s (262 Mbit/s) or more take whole
/// [`Config::max_payload`](crate::Config::max_payload)s of 32 KiB.
///
/// Each payload costs 25 bytes beside it (the Data message and two frame headers), so a
/// shorter time trades goodput on slow links for delay. On paths shaped to 40, 20 and
/// 10 Mbit/s, 1 ms rather than 2 ms took the median round trip of a small message through
/// one connection beside a bulk transfer from 11.5 to 9.2-9.8 ms, and that bulk transfer
/// from 65.6 to 65.1-65.3 Mbit/s; the simulator's shares of the links' sum fell by 0.7-0.9
/// point (docs/performance.md, "1 ms payloads").
pub(super) const PAYLOAD_TIME: Duration = Duration::from_millis(1);

/// The smallest payload a slow link is cut down to, and the least a peer's small receive
/// window cuts `max_payload` to.
pub(super) const MIN_PAYLOAD: usize = 1 << 10;

/// What a link delivering `rate` bytes per second transmits in [`PAYLOAD_TIME`]: the largest
/// payload it should take (at least [`MIN_PAYLOAD`]), whatever `max_payload` allows.
pub(super) fn payload_for(rate: f64) -> usize {
    ((rate * PAYLOAD_TIME.as_secs_f64()) as usize).max(MIN_PAYLOAD)
}

/// The payload `link` is given: [`payload_for`] its [payload rate](Link::payload_rate),
/// within `max_payload`.
pub(super) fn link_payload(max_payload: usize, link: &Link) -> usize {
    max_payload.min(payload_for(link.payload_rate()))
}

/// How long `link` takes to transmit the payload it is given ([`link_payload`]) at its rate
/// now; `Duration::MAX` for a rate too small to say.
pub(super) fn payload_time(max_payload: usize, link: &Link) -> Duration {
    transmission(link_payload(max_payload, link), link.rate())
}

/// What a link sends next: a payload owed after a Data header, or a message to encode.
pub(super) enum Next {
    Payload(Bytes),
    Message(Message),
}

impl Connection {
    /// The next packet to send on `link`, if it has one and room for it.
    ///
    /// Call it whenever the link can take a packet, until it returns `None`; packets must be
    /// sent in the order they are returned. A Data message's payload is always the very next
    /// packet for the same link.
    #[must_use = "a packet taken and not sent is lost to the link"]
    pub fn poll_transmit(&mut self, now: Time, link: LinkId) -> Option<Bytes> {
        // Other connections draw on a metered link's allowance too.
        let metered = self
            .link_mut(link)
            .is_some_and(|l| l.config.meter.is_some());
        if metered {
            self.refresh_allowance(link);
        }
        let packet = match self.next_packet(now, link)? {
            Next::Payload(payload) => payload,
            Next::Message(msg) => self.arena.encode(&msg),
        };
        // The link may be gone already: a Goodbye answer is its last packet.
        if let Some(l) = self.link_mut(link) {
            l.sent_bytes += packet.len() as u64;
            l.last_sent = now;
        }
        if metered {
            self.charge_allowance(now, link, packet.len());
        }
        Some(packet)
    }

    fn next_packet(&mut self, now: Time, link: LinkId) -> Option<Next> {
        let closed = self.closed.is_some();
        let clean_end = matches!(self.closed, Some(Ok(())));
        let max_payload = self.config.max_payload;
        let l = self.link_mut(link)?;
        if let Some(payload) = l.pending_payload.take() {
            return Some(Next::Payload(payload));
        }
        if l.terminate_pending {
            l.terminate_pending = false;
            return Some(Next::Message(Message::Terminate));
        }
        if closed {
            // A clean end still owes the peer its last acknowledgements: without them a peer
            // that waits for every ack would wait for its timeouts (spec §8.3, W8).
            if clean_end {
                if let Some(received) = l.acks.pop_front() {
                    return Some(Next::Message(Message::Ack { received }));
                }
            }
            return None;
        }
        if l.pongs_owed > 0 {
            l.pongs_owed -= 1;
            return Some(Next::Message(Message::Pong));
        }
        match l.goodbye {
            Goodbye::None => {}
            Goodbye::Local { sent: None } => {
                l.goodbye = Goodbye::Local { sent: Some(now) };
                return Some(Next::Message(Message::Goodbye));
            }
            Goodbye::Remote { sent: false } => {
                l.goodbye = Goodbye::Remote { sent: true };
                // Our answer is the last packet; the driver closes the link after sending it.
                self.fail_link(now, link, LinkError::Goodbye);
                return Some(Next::Message(Message::Goodbye));
            }
            Goodbye::Local { sent: Some(_) } | Goodbye::Remote { sent: true } => return None,
        }
        // A link test leads with a Ping of its own, once no other Ping is outstanding (nor a
        // stray Pong expected), and closes with the link's usual Ping after its filler; a
        // fresh Ping of its own asks again for a closing Pong that did not come.
        let outstanding = l.ping_sent.is_some() || l.stray_pong_expected(now);
        if let Some(test) = l.test.as_mut() {
            if test.wants_lead(outstanding) {
                test.lead_sent(now);
                return Some(Next::Message(Message::Ping));
            }
            if test.wants_fresh() {
                test.fresh_sent(now);
                return Some(Next::Message(Message::Ping));
            }
        }
        // A test's closing Ping waits out a stray Pong too, or the stray would end the test.
        let test_ready = l
            .test
            .as_ref()
            .is_none_or(|t| t.ready_to_close() && !l.stray_pong_expected(now));
        if l.ping_wanted.is_some() && l.ping_sent.is_none() && test_ready {
            l.ping_wanted = None;
            l.ping_sent = Some(now);
            if let Some(test) = &mut l.test {
                test.close_sent();
            }
            return Some(Next::Message(Message::Ping));
        }
        if l.peer_told_blocked != l.blocked_here() {
            l.peer_told_blocked = l.blocked_here();
            let blocked = l.peer_told_blocked;
            return Some(Next::Message(Message::SetBlock { blocked }));
        }
        if let Some(received) = l.acks.pop_front() {
            return Some(Next::Message(Message::Ack { received }));
        }
        if let Some(len) = l.test.as_mut().and_then(|t| t.next_filler(max_payload)) {
            return Some(Next::Message(Message::TestData { len }));
        }
        if !l.usable() {
            // Blocked, stalled or under test: its copies would only hold their payloads.
            l.copies.clear();
            return None;
        }
        if !self.peer_window_known {
            return None;
        }
        self.next_reliable(now, link)
    }

    /// The next reliable message for a usable link: Consumed, a resend, the finish messages,
    /// new data, SendFinish.
    fn next_reliable(&mut self, now: Time, link: LinkId) -> Option<Next> {
        // A link of a tier not open now carries no reliable message at all; the scheduler is
        // asked only about links of the open tiers.
        let open = self.open_tier();
        let tier_open = self.link_tier(link) <= open;
        let window_open = self.send.window_open(self.config.seq_window);
        if tier_open && window_open && self.recv.consumed_due() {
            let n = self.recv.take_unreported();
            return Some(self.send_new(now, link, Reliable::Consumed(n)));
        }
        if let Some(packet) = self.resend(now, link, open) {
            return Some(packet);
        }
        if self.resend_waits_for_room(link) {
            return None;
        }
        // Redundant copies after the resends, before new data.
        if let Some(copy) = self.next_copy(now, link) {
            return Some(copy);
        }
        if !window_open {
            return None;
        }
        if tier_open && self.receive_close_pending {
            self.receive_close_pending = false;
            return Some(self.send_new(now, link, Reliable::ReceiveClose));
        }
        if tier_open && self.receive_finish_pending {
            self.receive_finish_pending = false;
            return Some(self.send_new(now, link, Reliable::ReceiveFinish));
        }
        if let Some(packet) = self.new_data(now, link, open) {
            return Some(packet);
        }
        let send = &self.send;
        if tier_open
            && send.finish_requested
            && !send.finish_sent
            && send.queue.is_empty()
            && !send.peer_receive_finished
        {
            self.send.finish_sent = true;
            return Some(self.send_new(now, link, Reliable::SendFinish));
        }
        None
    }

    /// Sends the oldest queued resend that fits the link's window.
    fn resend(&mut self, now: Time, link: LinkId, open: Tier) -> Option<Next> {
        let &index = self.send.resend.first()?;
        let len = self.send.get(index).map_or(0, |s| s.msg.data_len());
        let l = self.link_mut(link)?;
        if !l.has_window_for(len) || (len > 0 && !l.pace_allows(now)) {
            return None;
        }
        // A resend is what the receiver waits for most: it goes where the scheduler would put
        // new data, never on a link just back and still slow. Only the other resends come
        // before it in the stream: the new data queued behind them is no reason to send it
        // on a slower link, where the receiver would wait for it with everything after.
        if !self.admit(link, len, self.resend_bytes(), true, open) {
            return None;
        }
        let (seq, msg) = self.send.resend_on(index, link, now)?;
        if let Some(l) = self.link_mut(link) {
            l.resent_bytes += msg.data_len() as u64;
        }
        Some(self.transmit_reliable(now, link, index, seq, msg))
    }

    /// Whether the oldest resend is too large for what `link`'s window has left while the
    /// link has data of its own in flight, whose acknowledgements (or ack timeout) will make
    /// room. The link then takes nothing newer (no copy, no new data) until they do: new
    /// data, cut to the link's payload, would fit sooner and pass the resend again and again
    /// (a resend keeps the size it had on the link it first went on), while the receiver
    /// waits for the resend before anything sent after it. It holds even when the scheduler
    /// will place the resend on another link: the link waits a payload or two, no longer.
    fn resend_waits_for_room(&self, link: LinkId) -> bool {
        let Some(&index) = self.send.resend.first() else {
            return false;
        };
        let len = self.send.get(index).map_or(0, |s| s.msg.data_len());
        (self.links.iter()).any(|l| l.id == link && l.inflight_bytes > 0 && !l.has_window_for(len))
    }

    /// Takes new application data for the link, if the budgets, the window and the scheduler
    /// agree.
    fn new_data(&mut self, now: Time, link: LinkId, open: Tier) -> Option<Next> {
        if self.send.queued == 0 {
            return None;
        }
        let budget = self.send.data_budget(self.config.send_buffer);
        let payload = link_payload(self.config.max_payload, self.link_mut(link)?);
        let len = (self.send).next_len(payload, budget);
        if len == 0 {
            return None;
        }
        let l = self.link_mut(link)?;
        if !l.has_window_for(len) || !l.pace_allows(now) {
            return None;
        }
        let backlog = self.send.queued + self.resend_bytes();
        let resending = !self.send.resend.is_empty();
        if !self.admit(link, len, backlog, resending, open) {
            return None;
        }
        let payload = self.send.take_data(len)?;
        let next = self.send_new(now, link, Reliable::Data(payload));
        // Only now is the payload counted as in flight: before, the room looked larger.
        self.wake_writer_on_room();
        Some(next)
    }

    /// The bytes waiting to be sent again, each resend counted as a whole payload.
    fn resend_bytes(&self) -> usize {
        self.send.resend.len() * self.config.max_payload
    }

    /// Asks the scheduler whether `link` should take `len` bytes (resends waiting if `resending`),
    /// `backlog` bytes waiting to be sent up to and behind them. Only links of the tiers up
    /// to `open` take part: the asking link must be one of them, and the scheduler sees no
    /// other.
    fn admit(
        &mut self,
        link: LinkId,
        len: usize,
        backlog: usize,
        resending: bool,
        open: Tier,
    ) -> bool {
        if self.link_tier(link) > open {
            return false;
        }
        self.views.clear();
        let taking_part = |l: &&Link| l.usable() && l.config.tier <= open;
        self.views
            .extend(self.links.iter().filter(taking_part).map(LinkView::of));
        let offer = Offer {
            link,
            len,
            backlog,
            resending,
            links: &self.views,
        };
        self.scheduler.admit(&offer)
    }

    /// The last tier whose links may carry data now ([`crate::tier::open_tier`]). The backlog
    /// is what could be sent now: the queue as far as the peer's window and the send buffer
    /// allow (a peer that reads slowly opens no secondary link), and the resends.
    fn open_tier(&self) -> Tier {
        if self.links.iter().all(|l| l.config.tier == Tier::Primary) {
            return Tier::Primary;
        }
        let sendable = (self.send.queued).min(self.send.data_budget(self.config.send_buffer));
        let links = self.links.iter().map(|l| TierView {
            tier: l.config.tier,
            usable: l.usable(),
            rate: l.rate(),
        });
        crate::tier::open_tier(links, sendable + self.resend_bytes())
    }

    /// `link`'s tier; a link that is gone counts as primary.
    fn link_tier(&self, link: LinkId) -> Tier {
        self.links
            .iter()
            .find(|l| l.id == link)
            .map_or(Tier::Primary, |l| l.config.tier)
    }

    /// Numbers a new reliable message and sends it on `link`.
    fn send_new(&mut self, now: Time, link: LinkId, msg: Reliable) -> Next {
        let index = self.send.next_index();
        let seq = self.send.push(msg.clone(), link, now);
        if let Some(l) = self.link_mut(link) {
            l.data_bytes += msg.data_len() as u64;
        }
        self.transmit_reliable(now, link, index, seq, msg)
    }

    /// Records `msg` in flight on `link` and returns its packet (a Data header leaves its
    /// payload as the link's next packet).
    fn transmit_reliable(
        &mut self,
        now: Time,
        link: LinkId,
        index: u64,
        seq: liag_proto::seq::Seq,
        msg: Reliable,
    ) -> Next {
        let header = Next::Message(msg.message(seq));
        let Some(i) = self.links.iter().position(|l| l.id == link) else {
            return header;
        };
        // Only a due time at a test's rate takes the cap (`Link::sent_entry`).
        let rtt_cap = if self.links[i].rate_provisional() {
            self.due_rtt_cap(link)
        } else {
            Duration::MAX
        };
        let l = &mut self.links[i];
        let sent = l.sent_entry(index, msg.data_len(), now, &self.config, rtt_cap);
        tracing::trace!(
            %link, ?seq, len = msg.data_len(), rate = l.rate(), inflight = l.inflight_bytes,
            window = l.window.get(), min_rtt = ?l.rtt.min(), srtt = ?l.rtt.smoothed(),
            due = ?sent.due.map(|due| due - now), "reliable message sent"
        );
        l.inflight.push_back(sent);
        l.inflight_bytes += msg.data_len();
        l.own_pace.on_data(msg.data_len(), now, l.rtt.smoothed());
        l.pace_take(msg.data_len());
        if let Reliable::Data(payload) = &msg {
            l.pending_payload = Some(payload.clone());
        }
        if self.config.redundant {
            // A copy is not data the primaries cannot carry but a second chance for it: a
            // secondary link takes copies whenever it is usable, a backup link only while its
            // tier is open.
            let open = self.open_tier().max(Tier::Secondary);
            self.queue_copy(now, link, index, &msg, open);
        }
        header
    }
}
