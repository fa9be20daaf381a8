//! A deterministic simulator: two [`Connection`]s joined by simulated links, in virtual time.
//!
//! Each direction of a link is a [`Netem`]: rate, one-way delay, jitter and a queue. Faults of
//! the emulator's vocabulary ([`Fault`]: reset, black hole, heal, rate, corruption) can be
//! scheduled, and so can an endpoint's own acts: graceful removal, blocking, and links that
//! appear mid-transfer. Randomness comes from one seed, so a run replays exactly.
//!
//! ```
//! use liag_core::sim::{LinkSpec, Side, Sim};
//! use liag_core::Config;
//! use std::time::Duration;
//!
//! let mut sim = Sim::new(7, Config::default());
//! sim.add_link(LinkSpec::mbit(40.0, 5));
//! sim.add_link(LinkSpec::mbit(20.0, 40));
//! sim.send(Side::A, 2_000_000);
//! sim.run_for(Duration::from_secs(10));
//! assert!(sim.verified(Side::B));
//! ```

mod app;

pub use crate::netem::{Fault, LinkSpec};
pub use app::Received;

use std::io::ErrorKind;
use std::time::Duration;

use crate::config::Config;
use crate::connection::{Connection, Event};
use crate::error::LinkError;
use crate::link::{Direction, LinkId, LinkInfo};
use crate::netem::{Netem, Segment};
use crate::time::Time;
use app::Writer;
use liag_proto::frame::FrameError;

/// One of the two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The side that opens the links.
    A,
    /// The side that accepts them.
    B,
}

impl Side {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Fault(usize, Fault),
    /// A fault on the link's direction from the given side only.
    FaultFrom(usize, Side, Fault),
    /// Side A removes the link gracefully (Goodbye).
    Remove(usize),
    /// Side A blocks (`true`) or unblocks the link.
    Block(usize, bool),
    AddLink(LinkSpec),
    Write(Side, u64),
}

#[derive(Debug)]
struct SimLink {
    /// `dirs[0]` carries A to B, `dirs[1]` B to A.
    dirs: [Netem; 2],
    /// Each side's id for the link, while that side has it.
    ids: [Option<LinkId>; 2],
}

#[derive(Debug)]
struct End {
    conn: Connection,
    writer: Writer,
    received: Received,
    closed: Option<Result<(), crate::error::ConnectionError>>,
    /// How many [`Event::Writable`] the connection gave.
    writable: u64,
    /// The writer writes only when woken ([`Sim::set_writer_waits`]), and is now.
    waits: bool,
    woken: bool,
}

/// Two connections and the links between them, in virtual time.
#[derive(Debug)]
pub struct Sim {
    now: Time,
    rng: fastrand::Rng,
    seed: u64,
    ends: [End; 2],
    links: Vec<SimLink>,
    schedule: Vec<(Time, Action)>,
    arrived: Vec<Segment>,
    removed: Vec<(Time, Side, LinkId, LinkError)>,
}

/// Most input/drain rounds at one instant before the simulator moves time on.
const MAX_ROUNDS: usize = 10_000;

impl Sim {
    /// Two connections with `config`, no links, randomness from `seed`.
    pub fn new(seed: u64, config: Config) -> Self {
        Self::with_configs(seed, config.clone(), config)
    }

    /// Two connections, A with `a` and B with `b`.
    pub fn with_configs(seed: u64, a: Config, b: Config) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let end = |rng: &mut fastrand::Rng, config: Config| End {
            conn: Connection::new(config, Time::ZERO),
            writer: Writer::new(rng),
            received: Received::new(),
            closed: None,
            writable: 0,
            waits: false,
            woken: true,
        };
        let ends = [end(&mut rng, a), end(&mut rng, b)];
        Sim {
            now: Time::ZERO,
            rng,
            seed,
            ends,
            links: Vec::new(),
            schedule: Vec::new(),
            arrived: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// The seed this run replays from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Adds a link now; returns its index for faults.
    pub fn add_link(&mut self, spec: LinkSpec) -> usize {
        self.add_asymmetric_link(spec, spec)
    }

    /// Adds a link now whose direction from A to B is shaped `a_to_b` and from B to A
    /// `b_to_a` (an access link of 40 Mbit/s down and 1 up, say); returns its index for
    /// faults. Both ends take the sum of the two delays for the handshake's round trip. A
    /// fault acts on both directions: [`Fault::Rate`] gives both the one rate.
    pub fn add_asymmetric_link(&mut self, a_to_b: LinkSpec, b_to_a: LinkSpec) -> usize {
        let rtt = a_to_b.delay + b_to_a.delay;
        let recv_buffer = [1, 0].map(|i| self.ends[i].conn.config().recv_buffer.get());
        let tag = format!("sim{}", self.links.len());
        let a = self.ends[0].conn.attach_link(
            self.now,
            LinkInfo::new(Direction::Outgoing, tag.clone(), rtt),
            recv_buffer[0],
        );
        let b = self.ends[1].conn.attach_link(
            self.now,
            LinkInfo::new(Direction::Incoming, tag, rtt),
            recv_buffer[1],
        );
        // Each direction's jitter has a seed of its own, so adding jitter to one link moves
        // nothing else of the run.
        let seed = |dir: u64| self.seed ^ ((self.links.len() as u64) << 1 | dir);
        let dirs = [Netem::new(a_to_b, seed(0)), Netem::new(b_to_a, seed(1))];
        self.links.push(SimLink {
            dirs,
            ids: [Some(a), Some(b)],
        });
        self.links.len() - 1
    }

    /// Schedules a fault on link `link`, both directions, at `at` from the start.
    pub fn fault_at(&mut self, at: Duration, link: usize, fault: Fault) {
        self.schedule
            .push((Time::from(at), Action::Fault(link, fault)));
    }

    /// Schedules `fault` on link `link`'s direction from `from` only, at `at` from the start:
    /// an uplink that degrades while its downlink does not. A [`Fault::Reset`] or
    /// [`Fault::Corrupt`] ends a link as a whole; schedule those with [`Sim::fault_at`].
    ///
    /// # Panics
    ///
    /// On a reset or a corruption.
    pub fn fault_from_at(&mut self, at: Duration, link: usize, from: Side, fault: Fault) {
        assert!(
            !matches!(fault, Fault::Reset | Fault::Corrupt),
            "a reset or corruption acts on both directions"
        );
        self.schedule
            .push((Time::from(at), Action::FaultFrom(link, from, fault)));
    }

    /// Schedules side A's graceful removal of link `link` (a Goodbye) at `at`.
    pub fn remove_at(&mut self, at: Duration, link: usize) {
        self.schedule.push((Time::from(at), Action::Remove(link)));
    }

    /// Schedules side A's blocking (`true`) or unblocking of link `link` at `at`.
    pub fn block_at(&mut self, at: Duration, link: usize, blocked: bool) {
        self.schedule
            .push((Time::from(at), Action::Block(link, blocked)));
    }

    /// Schedules a new link at `at`.
    pub fn add_link_at(&mut self, at: Duration, spec: LinkSpec) {
        self.schedule.push((Time::from(at), Action::AddLink(spec)));
    }

    /// Schedules a write of `len` bytes by `side` at `at` (without finishing).
    pub fn write_at(&mut self, at: Duration, side: Side, len: u64) {
        self.schedule
            .push((Time::from(at), Action::Write(side, len)));
    }

    /// `side` sends `len` bytes from now on, then finishes its direction.
    pub fn send(&mut self, side: Side, len: u64) {
        let w = &mut self.ends[side.index()].writer;
        w.total += len;
        w.finish = true;
    }

    /// Whether `side`'s application reads what arrives (default true).
    pub fn set_reading(&mut self, side: Side, reading: bool) {
        self.ends[side.index()].received.reading = reading;
    }

    /// Whether `side`'s writer, once the connection refuses it, waits for
    /// [`Event::Writable`] before it writes again, as an application on liag-tokio does;
    /// otherwise it tries at every turn.
    pub fn set_writer_waits(&mut self, side: Side, waits: bool) {
        self.ends[side.index()].waits = waits;
    }

    /// Every link a connection dropped: when, which side, which link, why.
    pub fn removed_links(&self) -> &[(Time, Side, LinkId, LinkError)] {
        &self.removed
    }

    /// What `side` received.
    pub fn received(&self, side: Side) -> &Received {
        &self.ends[side.index()].received
    }

    /// `side`'s connection, to inspect.
    pub fn connection(&self, side: Side) -> &Connection {
        &self.ends[side.index()].conn
    }

    /// `side`'s connection, to act on directly.
    pub fn connection_mut(&mut self, side: Side) -> &mut Connection {
        &mut self.ends[side.index()].conn
    }

    /// How `side`'s connection ended, if it has.
    pub fn closed(&self, side: Side) -> Option<&Result<(), crate::error::ConnectionError>> {
        self.ends[side.index()].closed.as_ref()
    }

    /// Whether `side` received exactly what the other side wrote, in order, and its end.
    pub fn verified(&self, side: Side) -> bool {
        let from = &self.ends[1 - side.index()].writer;
        let got = &self.ends[side.index()].received;
        got.finished && got.bytes == from.written && got.digest() == from.digest()
    }

    /// Whether `side` received, so far, a prefix of the right length with the right digest.
    pub fn bytes_written(&self, side: Side) -> u64 {
        self.ends[side.index()].writer.written
    }

    /// How many times `side`'s connection said a blocked writer may write again
    /// ([`Event::Writable`]).
    pub fn writable_events(&self, side: Side) -> u64 {
        self.ends[side.index()].writable
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds or `end` is reached; returns whether `done` held.
    pub fn run_until(&mut self, end: Time, mut done: impl FnMut(&Sim) -> bool) -> bool {
        self.drive();
        loop {
            if done(self) {
                return true;
            }
            let Some(next) = self.next_event().filter(|&t| t <= end) else {
                self.now = self.now.max(end);
                return done(self);
            };
            self.now = self.now.max(next);
            self.step();
            self.drive();
        }
    }

    fn next_event(&self) -> Option<Time> {
        let links = self
            .links
            .iter()
            .flat_map(|l| l.dirs.iter().filter_map(Netem::poll_timeout));
        let timers = self.ends.iter().filter_map(|e| e.conn.poll_timeout());
        let scheduled = self.schedule.iter().map(|&(t, _)| t);
        links.chain(timers).chain(scheduled).min()
    }

    /// Handles everything due at `now`.
    fn step(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        self.schedule.retain(|&(t, action)| {
            if t <= now {
                due.push((t, action));
            }
            t > now
        });
        due.sort_by_key(|&(t, _)| t);
        for (_, action) in due {
            self.act(action);
        }
        for i in 0..self.links.len() {
            for dir in 0..2 {
                let mut arrived = std::mem::take(&mut self.arrived);
                let line = &mut self.links[i].dirs[dir];
                arrived.extend(std::iter::from_fn(|| line.poll_output(now)));
                let to = 1 - dir;
                for segment in arrived.drain(..) {
                    let Some(id) = self.links[i].ids[to] else {
                        continue;
                    };
                    let conn = &mut self.ends[to].conn;
                    match segment {
                        Segment::Packet(p) => conn.handle_packet(now, id, p),
                        Segment::Fin => {
                            self.links[i].ids[to] = None;
                            conn.handle_link_error(now, id, LinkError::Closed);
                        }
                    }
                }
                self.arrived = arrived;
            }
        }
        for end in &mut self.ends {
            if end.conn.poll_timeout().is_some_and(|t| t <= now) {
                end.conn.handle_timeout(now);
            }
        }
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::AddLink(spec) => {
                self.add_link(spec);
            }
            Action::Write(side, len) => self.ends[side.index()].writer.total += len,
            Action::FaultFrom(i, from, fault) => {
                if let Some(link) = self.links.get_mut(i) {
                    link.dirs[from.index()].apply(now, fault);
                }
            }
            Action::Fault(i, fault) => {
                let Some(link) = self.links.get_mut(i) else {
                    return;
                };
                link.dirs.iter_mut().for_each(|d| d.apply(now, fault));
                if matches!(fault, Fault::Reset | Fault::Corrupt) {
                    // Corruption is of the data from A to B: B's checksum fails, A sees the
                    // reset that follows.
                    let ids = std::mem::take(&mut link.ids);
                    let errors = if fault == Fault::Corrupt {
                        [
                            LinkError::transport(ErrorKind::ConnectionReset, "reset by peer"),
                            LinkError::Frame(FrameError::ChecksumMismatch {
                                expected: 0,
                                computed: 1,
                            }),
                        ]
                    } else {
                        [0, 1].map(|_| {
                            LinkError::transport(ErrorKind::ConnectionReset, "connection reset")
                        })
                    };
                    for ((end, id), error) in self.ends.iter_mut().zip(ids).zip(errors) {
                        if let Some(id) = id {
                            end.conn.handle_link_error(now, id, error);
                        }
                    }
                }
            }
            Action::Remove(i) => {
                if let Some(id) = self.links.get(i).and_then(|l| l.ids[0]) {
                    self.ends[0].conn.remove_link(now, id);
                }
            }
            Action::Block(i, blocked) => {
                if let Some(id) = self.links.get(i).and_then(|l| l.ids[0]) {
                    self.ends[0].conn.set_link_blocked(now, id, blocked);
                }
            }
        }
    }

    /// The drain invariant: after inputs, each side moves its transmits into the links,
    /// handles its events and lets its application write and read, until nothing moves.
    fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = false;
            for side in 0..2 {
                progressed |= self.drive_side(side);
            }
            if !progressed {
                return;
            }
        }
    }

    fn drive_side(&mut self, side: usize) -> bool {
        let now = self.now;
        let mut progressed = false;
        let end = &mut self.ends[side];
        if !end.waits || end.woken {
            progressed |= end.writer.pump(&mut end.conn, &mut self.rng);
            // It stopped short: refused, it waits to be woken.
            end.woken = end.writer.written >= end.writer.total;
        }
        progressed |= end.received.pump(now, &mut end.conn);
        for link in &mut self.links {
            let Some(id) = link.ids[side] else { continue };
            let line = &mut link.dirs[side];
            while line.writable() {
                let Some(packet) = end.conn.poll_transmit(now, id) else {
                    break;
                };
                line.handle_input(now, Segment::Packet(packet));
                progressed = true;
            }
        }
        let events: Vec<Event> = std::iter::from_fn(|| end.conn.poll_event()).collect();
        for event in events {
            progressed = true;
            match event {
                Event::LinkRemoved { link: id, error } => {
                    let who = if side == 0 { Side::A } else { Side::B };
                    self.removed.push((now, who, id, error));
                    self.close_link(side, id);
                }
                Event::Closed(result) => {
                    self.ends[side].closed = Some(result);
                    // Drain what is left (a Terminate), then close every link of this side.
                    let ids: Vec<LinkId> = self.links.iter().filter_map(|l| l.ids[side]).collect();
                    for id in ids {
                        self.close_link(side, id);
                    }
                }
                Event::Writable => {
                    self.ends[side].writable += 1;
                    self.ends[side].woken = true;
                }
                Event::Readable | Event::LinkState { .. } => {}
            }
        }
        progressed
    }

    /// `side` closes its end of link `id`: what it still has to send goes first, then a Fin.
    fn close_link(&mut self, side: usize, id: LinkId) {
        let now = self.now;
        let Some(link) = self.links.iter_mut().find(|l| l.ids[side] == Some(id)) else {
            return;
        };
        while let Some(packet) = self.ends[side].conn.poll_transmit(now, id) {
            link.dirs[side].handle_input(now, Segment::Packet(packet));
        }
        link.dirs[side].handle_input(now, Segment::Fin);
        link.ids[side] = None;
    }
}
