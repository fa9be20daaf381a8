//! [`Connection`]: one aggregated connection, in either role, driven by its inputs.
//!
//! The method groups, in the order a driver uses them:
//!
//! - **links**: [`Connection::attach_link`] after a link's handshake, [`Connection::remove_link`]
//!   to take one out gracefully, [`Connection::set_link_blocked`];
//! - **inputs**: [`Connection::handle_packet`], [`Connection::handle_link_error`],
//!   [`Connection::handle_timeout`];
//! - **application**: [`Connection::write`], [`Connection::finish`], [`Connection::read`],
//!   [`Connection::stop_receiving`], [`Connection::terminate`];
//! - **outputs**: [`Connection::poll_transmit`] per link, [`Connection::poll_timeout`],
//!   [`Connection::poll_event`].
//!
//! **Drain invariant.** After every input (a packet, a link change, a timeout or an
//! application call) the driver drains the outputs: `poll_transmit` for each link it can write
//! to until it returns `None`, `poll_event` until `None`, then `poll_timeout` to re-arm its
//! timer. The connection never acts on its own between inputs.

mod allowance;
mod copies;
mod inbound;
mod queue;
mod timers;
mod transmit;

use bytes::Bytes;
use std::collections::VecDeque;

use liag_proto::ids::ServerId;

use crate::config::Config;
use crate::error::{ConnectionError, LinkError};
use crate::link::{Link, LinkConfig, LinkId, LinkInfo, LinkState, LinkStats};
use crate::recv::RecvState;
use crate::scheduler::{EarliestArrival, LinkView, Scheduler};
use crate::send::SendState;
use crate::tier::Tier;
use crate::time::Time;

/// Something the driver or the application should learn.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Data, or the end of the stream, can be read.
    Readable,
    /// Write capacity became available after a write was refused or
    /// [`Connection::want_writable`] was called: links took queued data, or acknowledgements
    /// freed send buffer room.
    Writable,
    /// A link's state changed (it went under test, stalled, came back, was blocked or started
    /// its Goodbye). Events compare with [`LinkState::Active`] at first, and a link that joins
    /// while another is active is [`LinkState::Testing`] from the start; a removed link gets
    /// [`Event::LinkRemoved`] instead. A state held only between two drains of the events
    /// may not be published: the event says where the link is now.
    LinkState {
        /// The link.
        link: LinkId,
        /// Its new state.
        state: LinkState,
    },
    /// The connection dropped a link: the driver closes its transport after draining its
    /// transmits. After [`Event::Closed`] the driver closes every link without waiting for
    /// this event; it still comes for a link the application drops or adds after the end.
    LinkRemoved {
        /// The link.
        link: LinkId,
        /// Why.
        error: LinkError,
    },
    /// The connection ended: `Ok` when both directions finished gracefully. The driver drains
    /// the transmits of every link (a Terminate may be queued) and closes them.
    Closed(Result<(), ConnectionError>),
}

/// A snapshot of a connection's buffers and flow control.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Application bytes queued and not yet sent.
    pub queued: usize,
    /// Payload bytes sent and not yet acknowledged.
    pub unacked: usize,
    /// Payload bytes sent and not yet reported consumed by the peer.
    pub unconsumed: u64,
    /// The peer's receive buffer: the send window.
    pub peer_window: u64,
    /// Reliable messages waiting to be sent again.
    pub resend_queue: usize,
    /// Received payload bytes not yet read.
    pub receive_buffered: usize,
    /// Received messages held out of order.
    pub receive_held: usize,
    /// Read bytes not yet reported to the peer with Consumed.
    pub unreported: u64,
}

/// Why a write was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The send buffer or the send queue ([`Config::send_queue_time`]) has no room;
    /// [`Event::Writable`] follows when it has.
    Blocked,
    /// The application already finished writing.
    Finished,
    /// The peer stopped receiving; nothing more will be read.
    Stopped,
    /// The connection has ended.
    Closed,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteError::Blocked => "send buffer full",
            WriteError::Finished => "writing already finished",
            WriteError::Stopped => "the peer stopped receiving",
            WriteError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for WriteError {}

/// One aggregated connection: the state machine of protocol 4 over any number of links.
///
/// # Example
///
/// Two connections joined by one in-memory link, driven by hand. A real driver does the same
/// with sockets and a clock; see `liag_core::sim` for a full simulator.
///
/// ```
/// use bytes::Bytes;
/// use liag_core::{Config, Connection, Direction, LinkInfo, Time};
/// use std::time::Duration;
///
/// let now = Time::ZERO;
/// let mut a = Connection::new(Config::default(), now);
/// let mut b = Connection::new(Config::default(), now);
/// let rtt = Duration::from_millis(1);
/// // After each side's handshake, the links join their connections.
/// let la = a.attach_link(now, LinkInfo::new(Direction::Outgoing, "a", rtt), 64 << 20);
/// let lb = b.attach_link(now, LinkInfo::new(Direction::Incoming, "b", rtt), 64 << 20);
///
/// a.write(Bytes::from_static(b"hello"))?;
/// a.finish();
/// // The run loop: feed each side's transmits to the other until both are quiet.
/// for _ in 0..10 {
///     while let Some(packet) = a.poll_transmit(now, la) {
///         b.handle_packet(now, lb, packet);
///     }
///     while let Some(packet) = b.poll_transmit(now, lb) {
///         a.handle_packet(now, la, packet);
///     }
/// }
/// assert_eq!(b.read().as_deref(), Some(&b"hello"[..]));
/// assert!(b.read_finished());
/// # Ok::<(), liag_core::WriteError>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    links: Vec<Link>,
    next_link_id: u64,
    send: SendState,
    recv: RecvState,
    scheduler: Box<dyn Scheduler>,
    events: VecDeque<Event>,
    closed: Option<Result<(), ConnectionError>>,
    /// When the connection last had a working link, or was created.
    no_link_since: Option<Time>,
    /// No link will be added any more ([`Connection::close_to_new_links`]).
    closed_to_new_links: bool,
    /// The server refused a link for not knowing the connection
    /// ([`Connection::abort_by_server`]).
    forgotten_by_server: bool,
    /// A Data message has arrived: the peer uses the connection.
    received_data: bool,
    server_id: Option<ServerId>,
    peer_window_known: bool,
    receive_close_pending: bool,
    receive_finish_pending: bool,
    write_blocked: bool,
    /// Reused buffer of link views for the scheduler.
    views: Vec<LinkView>,
    /// Where outgoing messages are encoded.
    arena: crate::arena::Arena,
    /// This connection's share of a budget shared with others, if it has one.
    account: Option<crate::budget::Account>,
}

impl Connection {
    /// A connection with no links yet, with liag's default scheduler.
    pub fn new(config: Config, now: Time) -> Self {
        Self::with_scheduler(config, now, Box::new(EarliestArrival::new()))
    }

    /// A connection with a scheduler of the application's choice.
    pub fn with_scheduler(mut config: Config, now: Time, scheduler: Box<dyn Scheduler>) -> Self {
        config.seq_window = config.seq_window.min(liag_proto::seq::SEQ_WINDOW);
        config.max_payload = config
            .max_payload
            .clamp(1, liag_proto::frame::MAX_PAYLOAD_LEN as usize);
        let recv = RecvState::new(config.recv_buffer.get(), liag_proto::seq::SEQ_WINDOW);
        let account = config
            .memory_budget
            .clone()
            .map(crate::budget::Account::new);
        Connection {
            config,
            links: Vec::new(),
            next_link_id: 0,
            send: SendState::new(0),
            recv,
            scheduler,
            events: VecDeque::new(),
            closed: None,
            no_link_since: Some(now),
            closed_to_new_links: false,
            forgotten_by_server: false,
            received_data: false,
            server_id: None,
            peer_window_known: false,
            receive_close_pending: false,
            receive_finish_pending: false,
            write_blocked: false,
            views: Vec::new(),
            arena: crate::arena::Arena::default(),
            account,
        }
    }

    /// Whether the peer has sent any data yet.
    pub fn received_data(&self) -> bool {
        self.received_data
    }

    /// Whether the connection has no link at all, working or not.
    pub fn is_linkless(&self) -> bool {
        self.links.is_empty()
    }

    /// The configuration in force. `max_payload` may be lower than the one given: it is cut
    /// to half the receive window the first link's peer announces (see [`Config::max_payload`]).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Attaches a link whose handshake completed. `peer_recv_buffer` is the receive buffer the peer
    /// announced on it; the first link's value becomes the connection's send window (§3.17),
    /// and [`Config::max_payload`] is cut to half of it (not below 1 KiB).
    ///
    /// A closed connection takes no links: the id it returns then is followed at once by
    /// [`Event::LinkRemoved`] with [`LinkError::ConnectionClosed`], so a driver closes the
    /// transport as it would any other removed link.
    pub fn attach_link(&mut self, now: Time, info: LinkInfo, peer_recv_buffer: u32) -> LinkId {
        let id = LinkId::new(self.next_link_id);
        self.next_link_id += 1;
        if self.closed.is_some() {
            let error = LinkError::ConnectionClosed;
            self.events
                .push_back(Event::LinkRemoved { link: id, error });
            return id;
        }
        if !self.peer_window_known {
            self.peer_window_known = true;
            self.send.peer_window = peer_recv_buffer.into();
            // A payload of more than half the peer's window would leave room for one at a
            // time in flight. Not below the least payload a link is cut to: the peer's
            // window bounds the data sent anyway, and a link test's filler, which no window
            // holds, would go a byte at a time for a peer that says its window is 2 bytes.
            let half = (peer_recv_buffer as usize / 2).max(transmit::MIN_PAYLOAD);
            self.config.max_payload = self.config.max_payload.min(half);
        }
        // The server accepted a link for this connection: it knows it after all, whatever an
        // earlier refusal (or whoever sent it on one path) said.
        self.forgotten_by_server = false;
        tracing::debug!(%id, tag = %info.tag, "link added");
        if info.redundant_requested {
            self.config.redundant = true;
        }
        let mut link = Link::new(id, info, now);
        // The first link carries data at once; later ones are measured first.
        if self.links.iter().any(Link::usable) {
            link.start_test(crate::probe::TEST_BYTES, now);
        }
        // Beside links that carry data, a new one starts up (see [`Startup`]).
        if self
            .links
            .iter()
            .any(|l| l.usable() && l.measured_rate() > 0.0)
        {
            link.startup = crate::startup::Startup::begin();
        }
        self.links.push(link);
        self.refresh_working(now);
        id
    }

    /// The most round trip `link`'s due times and its test allow for ([`crate::link::due_rtt_cap`]
    /// of the other usable links).
    fn due_rtt_cap(&self, link: LinkId) -> std::time::Duration {
        let others = self.links.iter().filter(|l| l.id != link && l.usable());
        crate::link::due_rtt_cap(others.map(|l| l.rtt.min()))
    }

    /// The filler a test of `link` sends: none when no other link carries data, since then
    /// there is nothing to protect the stream from and every moment counts.
    fn test_size(&self, link: LinkId) -> usize {
        if self.links.iter().any(|l| l.id != link && l.usable()) {
            crate::probe::TEST_BYTES
        } else {
            0
        }
    }

    /// Records the server id a link's Welcome carried (initiator side) and checks it against
    /// the first link's, as spec §5.3 step C2 asks. On a mismatch the link must fail, and, if
    /// the configuration says so, the connection ends.
    pub fn handle_server_id(&mut self, server_id: ServerId) -> Result<(), ConnectionError> {
        match self.server_id {
            None => {
                self.server_id = Some(server_id);
                Ok(())
            }
            Some(known) if known == server_id => Ok(()),
            Some(_) => {
                if self.config.disconnect_on_server_id_mismatch {
                    self.close(Err(ConnectionError::ServerIdMismatch));
                }
                Err(ConnectionError::ServerIdMismatch)
            }
        }
    }

    /// Takes a link out gracefully: no new data goes on it, its unacknowledged messages move
    /// to the other links at once, and it closes after the Goodbye exchange (§6.7).
    pub fn remove_link(&mut self, now: Time, link: LinkId) {
        if let Some(l) = self.link_mut(link) {
            if l.goodbye == crate::link::Goodbye::None {
                l.goodbye = crate::link::Goodbye::Local { sent: None };
                self.requeue_link(link);
            }
        }
        self.refresh_working(now);
    }

    /// Blocks or unblocks a link for reliable traffic; the peer is told with SetBlock.
    pub fn set_link_blocked(&mut self, now: Time, link: LinkId, blocked: bool) {
        if let Some(l) = self.link_mut(link) {
            l.local_blocked = blocked;
        }
        self.refresh_working(now);
    }

    /// Changes one link's settings.
    pub fn set_link_config(&mut self, link: LinkId, config: LinkConfig) {
        let Some(l) = self.link_mut(link) else {
            return;
        };
        let metered = l.config.meter != config.meter;
        l.config = config;
        if metered {
            self.meter_changed(link);
        }
    }

    /// Changes one link's tier, and nothing else of its settings. The peer keeps the tier it
    /// learnt when the link joined.
    pub fn set_link_tier(&mut self, link: LinkId, tier: Tier) {
        if let Some(l) = self.link_mut(link) {
            l.config.tier = tier;
        }
    }

    /// Changes one link's rate cap ([`LinkConfig::max_rate`]), and nothing else of its
    /// settings.
    pub fn set_link_max_rate(&mut self, link: LinkId, max_rate: Option<u64>) {
        if let Some(l) = self.link_mut(link) {
            l.config.max_rate = max_rate;
        }
    }

    /// Changes the allowance one link draws on ([`LinkConfig::meter`]; `None` for none), and
    /// nothing else of its settings.
    pub fn set_link_meter(&mut self, link: LinkId, meter: Option<crate::Meter>) {
        let Some(l) = self.link_mut(link) else {
            return;
        };
        if l.config.meter != meter {
            l.config.meter = meter;
            self.meter_changed(link);
        }
    }

    /// The links, with their figures.
    pub fn link_stats(&self) -> Vec<LinkStats> {
        self.links.iter().map(Link::stats).collect()
    }

    /// How many links the connection has.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Queues application data; returns how many bytes were taken: up to
    /// [`Connection::send_capacity`], so possibly fewer than offered.
    pub fn write(&mut self, mut data: Bytes) -> Result<usize, WriteError> {
        self.writable_or_err()?;
        let room = self.send_capacity();
        if room == 0 && !data.is_empty() {
            self.write_blocked = true;
            return Err(WriteError::Blocked);
        }
        let taken = data.len().min(room);
        if taken > 0 {
            self.send.queue_data(data.split_to(taken), false);
            self.sync_budget();
        }
        Ok(taken)
    }

    /// Queues `data` as one message: all of it, or nothing (`WriteError::Blocked`, and
    /// [`Event::Writable`] once there is room). A message of at most
    /// [`Config::max_payload`](crate::Config::max_payload) goes in one payload, however short
    /// the links' payloads are cut, so the peer reads it in one piece ([`Connection::read`]).
    /// `max_payload` is cut to half the peer's receive window once a link tells it; a message
    /// written before the first link attached was measured against the `max_payload` given,
    /// and goes in one payload once the peer's window has room for it. A longer message goes
    /// in parts, as the byte stream does. For a message the send queue's limit is at least
    /// `max_payload`, and a connection with nothing queued or unacknowledged takes one
    /// whatever its send buffer and memory budget allow, so a writer blocked waits at most
    /// until what it wrote before is acknowledged.
    ///
    /// `Event::Writable` after `Blocked` says there is some room, not necessarily room for
    /// this message: call again. The peer's [`Connection::read`] returns the message as one
    /// `Bytes` (`read_max` may cut it); liag marks no boundaries, so an application that
    /// mixes `write` and `write_message` frames its data itself.
    ///
    /// A slow link takes a message longer than its own payloads only once its window has
    /// room for all of it, and the reader waits its whole transmission (32 KiB is 262 ms at
    /// 1 Mbit/s): keep messages short where delay matters.
    pub fn write_message(&mut self, data: Bytes) -> Result<(), WriteError> {
        self.writable_or_err()?;
        let limit = self.queue_limit().max(self.config.max_payload);
        let idle = self.send.queued == 0 && self.send.unacked == 0;
        if !idle && data.len() > self.send_capacity_within(limit) {
            self.write_blocked = true;
            return Err(WriteError::Blocked);
        }
        if !data.is_empty() {
            let whole = data.len() <= self.config.max_payload;
            self.send.queue_data(data, whole);
            self.sync_budget();
        }
        Ok(())
    }

    /// Why nothing can be written, if so: the connection ended, the application finished
    /// writing, or the peer stopped receiving.
    fn writable_or_err(&self) -> Result<(), WriteError> {
        if self.closed.is_some() {
            Err(WriteError::Closed)
        } else if self.send.finish_requested {
            Err(WriteError::Finished)
        } else if self.send.peer_receive_finished {
            Err(WriteError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Asks for [`Event::Writable`] the next time there is room (links took half the queue,
    /// or acknowledgements freed send buffer room), for a writer that needs more room than
    /// there is. The room [`Connection::write`] sees never exceeds the send queue's limit,
    /// which may be two of the links' payloads (a few kilobytes on slow links): write
    /// anything longer in parts, or as a message of up to
    /// [`Config::max_payload`](crate::Config::max_payload) with
    /// [`Connection::write_message`], which waits at most until what was written before it
    /// is acknowledged.
    pub fn want_writable(&mut self) {
        self.write_blocked = true;
    }

    /// Bytes [`Connection::write`] would take now: what the send buffer and the send queue
    /// ([`Config::send_queue_time`]) have room for.
    pub fn send_capacity(&self) -> usize {
        self.send_capacity_within(self.queue_limit())
    }

    /// [`Connection::send_capacity`] with the send queue's bound `queue_limit` already known.
    pub(crate) fn send_capacity_within(&self, queue_limit: usize) -> usize {
        let sending = self.send.queued + self.send.unacked;
        let room = self
            .config
            .send_buffer
            .saturating_sub(sending)
            .min(queue_limit.saturating_sub(self.send.queued));
        match &self.account {
            // What the shared budget has left, and always enough for this connection's own
            // acknowledgements to wake a blocked writer.
            Some(account) => {
                let floor = account.floor(crate::budget::SEND_FLOOR);
                room.min(account.room().max(floor.saturating_sub(sending)))
            }
            None => room,
        }
    }

    /// Bytes this connection buffers: received and unread, written and unacknowledged.
    fn held(&self) -> usize {
        self.recv.buffered + self.send.queued + self.send.unacked
    }

    /// Brings the shared budget's account up to date with what the connection holds.
    pub(crate) fn sync_budget(&mut self) {
        let held = self.held();
        if let Some(account) = &mut self.account {
            account.set(held);
        }
    }

    /// What the shared budget has left and this connection's receive floor, if it has a
    /// budget.
    pub(crate) fn budget_room(&self) -> Option<(usize, usize)> {
        (self.account.as_ref()).map(|a| (a.room(), a.floor(crate::budget::RECV_FLOOR)))
    }

    /// Whether the write side is done: [`Connection::finish`] was called, the end of the
    /// stream went out, and the peer acknowledged every byte of data; or the peer stopped
    /// receiving.
    pub fn write_settled(&self) -> bool {
        (self.send.finish_sent && self.send.unacked == 0) || self.send.peer_receive_finished
    }

    /// Whether the peer asked this side to stop sending (it closed its receiving side).
    pub fn peer_stopped_receiving(&self) -> bool {
        self.send.peer_receive_closed || self.send.peer_receive_finished
    }

    /// Ends the write direction: SendFinish follows the last queued byte.
    pub fn finish(&mut self) {
        self.send.finish_requested = true;
    }

    /// The next received payload, in order.
    pub fn read(&mut self) -> Option<Bytes> {
        let payload = self.recv.read();
        self.sync_budget();
        payload
    }

    /// Up to `max` bytes of received data, in order.
    pub fn read_max(&mut self, max: usize) -> Option<Bytes> {
        let payload = self.recv.read_max(max);
        self.sync_budget();
        payload
    }

    /// Whether the peer finished sending and everything was read.
    pub fn read_finished(&self) -> bool {
        self.recv.finished && !self.recv.readable_data()
    }

    /// The application will read no more: buffered and incoming data is dropped (but counted
    /// as consumed), and the peer is asked to stop (ReceiveClose, ReceiveFinish).
    pub fn stop_receiving(&mut self) {
        if !self.recv.closed {
            self.recv.close();
            if !self.recv.finished {
                self.receive_close_pending = true;
                self.receive_finish_pending = true;
            }
            self.sync_budget();
        }
    }

    /// The server refused a link for this connection with Refused(Closed): it no longer
    /// knows the connection, or is ending it. The connection ends with
    /// [`ConnectionError::AbortedByServer`] rather than retrying until the no-link timeout
    /// (spec §5.5, as aggligator 0.10 does), as soon as none of its links works, unless a
    /// link the server accepts for it is attached first (a refusal is not authenticated: one
    /// path may lie).
    ///
    /// A server that ends a connection gracefully closes its links after its last
    /// acknowledgements; a refusal met on a fresh link meanwhile must not overtake them. So
    /// while a link still works the connection carries on: it may yet end cleanly on what that
    /// link brings, and otherwise ends when the link goes or stalls.
    pub fn abort_by_server(&mut self) {
        self.forgotten_by_server = true;
        self.end_if_linkless();
    }

    /// Says that no link will be added any more (the initiator's handle that adds links is
    /// gone). Without links the connection can then never move data again, so it ends with
    /// [`ConnectionError::NoLinkLeft`] as soon as it has none, rather than after the no-link
    /// timeout. Links it has keep working, and a stalled one may still come back.
    pub fn close_to_new_links(&mut self) {
        self.closed_to_new_links = true;
        self.end_if_linkless();
    }

    /// Ends the connection once it has no working link and can get none.
    pub(super) fn end_if_linkless(&mut self) {
        if self.forgotten_by_server && self.links.iter().all(|l| l.stalled) {
            self.close(Err(ConnectionError::AbortedByServer));
        } else if self.closed_to_new_links && self.links.is_empty() {
            self.close(Err(ConnectionError::NoLinkLeft));
        }
    }

    /// Ends the connection at once: Terminate goes out on every link, and pending data is lost.
    pub fn terminate(&mut self) {
        for link in &mut self.links {
            link.terminate_pending = true;
        }
        self.close(Err(ConnectionError::TerminatedLocally));
    }

    /// The next event, if any.
    #[must_use = "an event taken is gone from the queue"]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.publish_link_states();
        }
        self.events.pop_front()
    }

    /// Queues [`Event::LinkState`] for every link whose state changed since it was last
    /// published. Done when the events are drained, so every input is covered however it
    /// changed a link.
    fn publish_link_states(&mut self) {
        for l in &mut self.links {
            let state = l.state();
            if state != l.reported {
                l.reported = state;
                self.events
                    .push_back(Event::LinkState { link: l.id, state });
            }
        }
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How the connection ended, once it has: `Ok` for a graceful end.
    pub fn outcome(&self) -> Option<&Result<(), ConnectionError>> {
        self.closed.as_ref()
    }

    /// Buffers and flow control at a glance.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            queued: self.send.queued,
            unacked: self.send.unacked,
            unconsumed: self.send.unconsumed,
            peer_window: self.send.peer_window,
            resend_queue: self.send.resend.len(),
            receive_buffered: self.recv.buffered,
            receive_held: self.recv.held(),
            unreported: self.recv.unreported,
        }
    }

    fn link_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.id == id)
    }

    fn close(&mut self, result: Result<(), ConnectionError>) {
        if self.closed.is_none() {
            tracing::debug!(?result, "connection closed");
            self.closed = Some(result.clone());
            self.events.push_back(Event::Closed(result));
        }
    }

    /// Moves everything in flight on `link` to the resend queue.
    fn requeue_link(&mut self, link: LinkId) {
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        for sent in l.inflight.drain(..) {
            self.send.requeue(sent.index, link);
        }
        l.inflight_bytes = 0;
        l.copies.clear();
    }

    /// Drops a link for `error` and moves its data to the others.
    fn fail_link(&mut self, now: Time, link: LinkId, error: LinkError) {
        let closed_by_peer = matches!(error, LinkError::Closed | LinkError::Goodbye);
        self.requeue_link(link);
        let before = self.links.len();
        self.links.retain(|l| l.id != link);
        if self.links.len() < before {
            tracing::debug!(%link, %error, "link removed");
            self.events.push_back(Event::LinkRemoved { link, error });
        }
        // A peer that closes every link after both sides finished has ended gracefully, even
        // if its last acknowledgements never left it (spec §8.3, weak point W8): it ends only
        // once our SendFinish, and so all our data, reached its application, or once it had
        // told us with ReceiveFinish that it takes no more of it. Our last Consumed, which its
        // end waits for, may be the message left unacknowledged. A last link that failed
        // instead proves nothing: with data unacknowledged, a clean end would be a lie.
        if self.links.is_empty()
            && self.send.write_finished()
            && (self.send.unacked == 0 || closed_by_peer)
            && self.recv.finished
        {
            self.close(Ok(()));
        }
        self.end_if_linkless();
        self.refresh_working(now);
    }

    /// Starts or stops the no-link clock.
    fn refresh_working(&mut self, now: Time) {
        self.refresh_allowances();
        let working = self.links.iter().any(Link::usable);
        match (working, self.no_link_since) {
            (true, Some(_)) => self.no_link_since = None,
            (false, None) => self.no_link_since = Some(now),
            _ => {}
        }
    }

    /// Ends the connection successfully once both directions are finished and settled (§8.3).
    fn check_graceful_end(&mut self) {
        let read_done = (self.recv.finished && !self.recv.readable_data()) || self.recv.closed;
        if read_done
            && self.send.write_finished()
            && self.send.all_acked()
            && self.send.unconsumed == 0
            && self.recv.buffered == 0
            && self.recv.unreported == 0
            && !self.receive_close_pending
            && !self.receive_finish_pending
        {
            self.close(Ok(()));
        }
    }
}
