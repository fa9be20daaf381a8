//! Packets arriving on a link: messages, acknowledgements and reliable messages.

use bytes::Bytes;
use std::time::Duration;

use liag_proto::inbound::Inbound;
use liag_proto::message::Message;
use liag_proto::seq::Seq;

use super::transmit::{link_payload, payload_for, payload_time};
use super::{Connection, Event};
use crate::error::{ConnectionError, LinkError, Violation};
use crate::link::{Goodbye, LinkId};
use crate::recv::{Arrival, ReliableMsg};
use crate::send::Acked;
use crate::time::Time;

impl Connection {
    /// Handles one packet received on `link` (a whole frame payload, or a transport packet).
    ///
    /// Anything wrong with it fails that link only; the connection goes on over the others.
    pub fn handle_packet(&mut self, now: Time, link: LinkId, packet: Bytes) {
        let Some(l) = self.link_mut(link) else {
            return;
        };
        let len = packet.len();
        l.received_bytes += len as u64;
        l.last_received = now;
        let metered = l.config.meter.is_some();
        let read = l.reader.read(packet);
        if metered {
            self.charge_allowance(now, link, len);
        }
        let inbound = match read {
            Ok(Some(inbound)) => inbound,
            Ok(None) => return, // A Data header; its payload is the next packet.
            Err(e) => return self.fail_link(now, link, LinkError::Decode(e)),
        };
        if self.closed.is_some() {
            return;
        }
        let result = match inbound {
            Inbound::Data { seq, payload } => {
                if let Some(l) = self.link_mut(link) {
                    l.peer_pace.on_data(payload.len(), now, l.rtt.smoothed());
                }
                self.on_reliable(link, seq, ReliableMsg::Data(payload))
            }
            Inbound::Message(msg) => self.on_message(now, link, msg),
        };
        if let Err(error) = result {
            self.fail_link(now, link, error);
        }
        self.refresh_working(now);
        self.check_graceful_end();
        self.sync_budget();
    }

    /// A link's transport failed or closed: its data moves to the other links.
    pub fn handle_link_error(&mut self, now: Time, link: LinkId, error: LinkError) {
        self.fail_link(now, link, error);
        self.check_graceful_end();
    }

    fn on_message(&mut self, now: Time, link: LinkId, msg: Message) -> Result<(), LinkError> {
        let rtt_cap = match msg {
            Message::Pong => self.due_rtt_cap(link),
            _ => Duration::MAX,
        };
        let l = self.link_mut(link).ok_or(LinkError::ConnectionClosed)?;
        match msg {
            Message::Ping => l.queue_pong(),
            Message::Pong => {
                l.on_pong(now, rtt_cap);
            }
            Message::Ack { received } => self.on_ack(now, link, received),
            Message::Consumed { seq, consumed } => {
                self.on_reliable(link, seq, ReliableMsg::Consumed(consumed))?
            }
            Message::SendFinish { seq } => self.on_reliable(link, seq, ReliableMsg::SendFinish)?,
            Message::ReceiveClose { seq } => {
                self.on_reliable(link, seq, ReliableMsg::ReceiveClose)?
            }
            Message::ReceiveFinish { seq } => {
                self.on_reliable(link, seq, ReliableMsg::ReceiveFinish)?
            }
            Message::TestData { .. } => {}
            Message::SetBlock { blocked } => l.remote_blocked = blocked,
            Message::Goodbye => match l.goodbye {
                Goodbye::None => {
                    l.goodbye = Goodbye::Remote { sent: false };
                    self.requeue_link(link);
                }
                Goodbye::Local { sent: Some(_) } => {
                    self.fail_link(now, link, LinkError::Goodbye);
                }
                // Both sides started at once: ours goes out, then the link closes.
                Goodbye::Local { sent: None } => {}
                Goodbye::Remote { .. } => return Err(Violation::RepeatedGoodbye.into()),
            },
            Message::Terminate => {
                for l in &mut self.links {
                    l.terminate_pending = true;
                }
                self.close(Err(ConnectionError::TerminatedByPeer));
            }
            Message::Welcome(_) | Message::Connect(_) | Message::Accepted | Message::Refused(_) => {
                return Err(Violation::HandshakeAfterEstablished(msg.kind()).into());
            }
            // The inbound reader pairs Data with its payload, so it never arrives here; and
            // messages added to a later protocol version are ignored.
            _ => {}
        }
        Ok(())
    }

    fn on_ack(&mut self, now: Time, link: LinkId, seq: Seq) {
        if let Some(l) = self.link_mut(link) {
            l.acks_received += 1;
            // A copy's acknowledgement measures its link's round trip too: a link that carries
            // only copies gets its ack timeout from them.
            if let Some(at) = l.copies.acked(seq) {
                l.rtt.update(now - at, now);
            }
        }
        let Acked::New {
            link: carrier,
            data_len,
            sent_at,
            resent,
        } = self.send.ack(seq)
        else {
            return;
        };
        let max_payload = self.config.max_payload;
        // Whether the carrier had a queue of liag's own data: two payloads beyond what its
        // path holds in transit.
        let mut own_queue = false;
        if let Some(carrier) = carrier {
            if let Some(c) = self.link_mut(carrier) {
                let (inflight, window) = (c.inflight_bytes, c.inflight_limit());
                let payload = link_payload(max_payload, c);
                c.window_limited = c.ack_burst.window_limited(now, inflight, window, payload);
                let in_path = c.rate() * c.rtt.min().as_secs_f64();
                own_queue = inflight as f64 >= in_path + 2.0 * data_len as f64;
                c.inflight_bytes -= data_len;
            }
        }
        // Data waited that some link could have taken: resends, or new data the budgets and
        // the sequence window let go (a receiver that reads slowly sets no link's pace).
        let send = &self.send;
        let backlogged = !send.resend.is_empty()
            || (send.queued > 0
                && send.data_budget(self.config.send_buffer) > 0
                && send.window_open(self.config.seq_window));
        let Some(l) = self.link_mut(link) else {
            return;
        };
        // A stalled link stays out until its test's Pong: late acknowledgements of what was
        // queued before the stall say the link delivers, not how fast it does now.
        if carrier == Some(link) {
            let sample = match (sent_at, resent) {
                (Some(at), false) => Some(now - at),
                _ => None,
            };
            tracing::trace!(%link, ?seq, ?sample, data_len, "acknowledged");
            if let Some(sample) = sample {
                l.rtt.update(sample, now);
            }
            if data_len > 0 {
                let limited = l.window_limited;
                let rate = l.rate().max(1.0);
                // The floor follows the link's payloads alone, whatever `max_payload` says.
                let floor = payload_for(l.payload_rate().max(1.0));
                l.window.set_floor(floor, rate);
                l.window.set_measured_rate(l.measured_rate());
                // The peer's queue counts only while this end keeps the link busy too: both
                // ways at once. An end that only answers (acknowledgements, small replies)
                // is judged as before.
                let both = l.own_pace.busy(now).is_some();
                let peer = l.peer_pace.busy(now).filter(|_| both);
                l.window.set_peer_sending(peer);
                let payload = payload_time(max_payload, l);
                let delayed = l
                    .window
                    .on_ack(data_len, &l.rtt, sample, now, limited, payload);
                // A delay measures the link only if liag had data queued on it: otherwise it
                // is someone else's queue, a radio's scheduling, or a peer's late acks.
                l.on_data_acked(data_len, now, delayed && own_queue, own_queue, backlogged);
            }
        }
        self.drop_settled_inflight();
        // Only an acknowledgement of the carrier's own copy, coming back on it, says what the
        // carrier delivered: one on another link may be for an earlier copy.
        if let (true, false, Some(at)) = (carrier == Some(link), resent, sent_at) {
            let floor = self.config.ack_timeout_min;
            if let Some(l) = self.link_mut(link) {
                l.pull_in_next_due(at, now, floor);
            }
        }
        self.wake_writer_on_room();
    }

    /// Forgets the front entries of each link's in-flight list that are settled, so the ack
    /// timer always watches a message still in flight there.
    fn drop_settled_inflight(&mut self) {
        for l in &mut self.links {
            while let Some(sent) = l.inflight.front() {
                if self.send.in_flight_on(sent.index, l.id, sent.at) {
                    break;
                }
                l.inflight.pop_front();
            }
        }
    }

    fn on_reliable(&mut self, link: LinkId, seq: Seq, msg: ReliableMsg) -> Result<(), LinkError> {
        let had_data = self.recv.readable();
        let is_data = matches!(&msg, ReliableMsg::Data(payload) if !payload.is_empty());
        let arrival = self.recv.receive(seq, msg, self.budget_room())?;
        tracing::trace!(%link, ?seq, ?arrival, "reliable message received");
        if arrival == Arrival::OverBudget {
            // Not acknowledged: the peer sends it again once there is room.
            return Ok(());
        }
        self.received_data |= is_data;
        let max_acks = self.config.max_queued_acks;
        if let Some(l) = self.link_mut(link) {
            // Every copy is acknowledged on the link it came in on (§7.5 R1), unless this side
            // already said Goodbye there, or the queue is full (the peer then resends).
            let goodbye_sent = matches!(
                l.goodbye,
                Goodbye::Local { sent: Some(_) } | Goodbye::Remote { sent: true }
            );
            if !goodbye_sent && l.acks.len() < max_acks {
                l.acks.push_back(seq);
            }
        }
        match arrival {
            Arrival::Duplicate | Arrival::Stored | Arrival::OverBudget => {}
            Arrival::Consumed(n) => {
                if !self.send.consumed(n) {
                    return Err(Violation::ConsumedUnderflow {
                        consumed: n,
                        outstanding: self.send.unconsumed,
                    }
                    .into());
                }
            }
            Arrival::ReceiveClose => self.send.peer_receive_closed = true,
            Arrival::ReceiveFinish => {
                self.send.peer_receive_finished = true;
                self.send.drop_unsent();
                if self.write_blocked {
                    self.write_blocked = false;
                    self.events.push_back(Event::Writable);
                }
            }
        }
        if !had_data && self.recv.readable() {
            self.events.push_back(Event::Readable);
        }
        Ok(())
    }
}
