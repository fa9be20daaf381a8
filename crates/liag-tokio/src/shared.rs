//! State shared by a connection's driver task and its handles (stream halves, Control).
//!
//! The handles call into the liag-core connection directly under a mutex and wake the
//! driver; the driver owns the links' I/O. No channel sits between the application and the
//! state machine.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use liag_core::{Connection, ConnectionError, Time};

use crate::codec::BoxLink;
use crate::control::LinkEvent;

/// Link events a subscriber may fall behind by before it is told it lagged.
const LINK_EVENTS_KEPT: usize = 64;

/// A link waiting for the driver to take it.
pub(crate) struct NewLink {
    pub(crate) id: liag_core::LinkId,
    pub(crate) io: BoxLink,
}

pub(crate) struct Inner {
    pub(crate) conn: Connection,
    epoch: Instant,
    pub(crate) driver: Option<Waker>,
    pub(crate) reader: Option<Waker>,
    pub(crate) writer: Option<Waker>,
    pub(crate) new_links: Vec<NewLink>,
    pub(crate) links_to_remove: Vec<liag_core::LinkId>,
    /// Where the driver publishes link changes, for [`crate::Control::link_events`].
    events: broadcast::Sender<LinkEvent>,
    /// The driver task is gone (the connection ended and its links are closed).
    pub(crate) driver_done: bool,
    /// Links a server has let through to this connection and not yet attached: they count
    /// against the link limit while their Accepted goes out.
    pub(crate) joining: usize,
    /// Handles that still write or read; when both reach zero, the application is done.
    pub(crate) writers: usize,
    pub(crate) readers: usize,
    /// Byte counters of every link, sampled by the driver, newest last.
    pub(crate) samples: std::collections::VecDeque<Sample>,
}

/// The links' byte counters at one moment.
pub(crate) struct Sample {
    pub(crate) at: Instant,
    /// (link, bytes sent, bytes received)
    pub(crate) links: Vec<(liag_core::LinkId, u64, u64)>,
}

/// How often the driver samples the counters, and how long it keeps samples.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);
pub(crate) const SAMPLES_KEPT: Duration = Duration::from_secs(12);
/// At most this many samples are kept, whatever their age.
const MAX_SAMPLES: usize = 512;

impl Inner {
    pub(crate) fn now(&self) -> Time {
        Time::from(self.epoch.elapsed())
    }

    /// The instant of core time `t`; a time beyond what the clock can hold (a configuration
    /// with `Duration::MAX` timers) is a day from now, as good as never and checked again then.
    pub(crate) fn instant(&self, t: Time) -> Instant {
        self.epoch
            .checked_add(t.since_epoch())
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
    }

    /// Records the links' counters if the last sample is old enough, or if `force`.
    pub(crate) fn sample(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .samples
                .back()
                .is_some_and(|s| now - s.at < SAMPLE_EVERY)
        {
            return;
        }
        let links = self
            .conn
            .link_stats()
            .iter()
            .map(|l| (l.id, l.sent_bytes, l.received_bytes))
            .collect();
        self.samples.push_back(Sample { at: now, links });
        // Forced samples come with links coming and going; the count bounds them against churn.
        while self
            .samples
            .front()
            .is_some_and(|s| now - s.at > SAMPLES_KEPT)
            || self.samples.len() > MAX_SAMPLES
        {
            self.samples.pop_front();
        }
    }

    /// Publishes a link change to whoever subscribed (nobody, often).
    pub(crate) fn publish(&self, event: LinkEvent) {
        let _ = self.events.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LinkEvent> {
        self.events.subscribe()
    }

    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    pub(crate) fn wake_app(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// The shared part of one connection.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Bumped whenever links change or the connection ends, for `Control::watch`.
    pub(crate) changes: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(conn: Connection) -> Arc<Self> {
        let (changes, _) = watch::channel(0);
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                conn,
                epoch: Instant::now(),
                driver: None,
                reader: None,
                writer: None,
                new_links: Vec::new(),
                links_to_remove: Vec::new(),
                events: broadcast::channel(LINK_EVENTS_KEPT).0,
                driver_done: false,
                joining: 0,
                writers: 0,
                readers: 0,
                samples: std::collections::VecDeque::new(),
            }),
            changes,
        })
    }

    /// Locks the state.
    ///
    /// A std `Mutex`: on `parking_lot`'s, whose waiters spin before they sleep, a driver and
    /// its handles contending on two cores moved a fifth less through the message API
    /// (docs/performance.md, "One task per end"). A poisoned lock is taken as it is, as
    /// `parking_lot`'s would be: it does not poison.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn notify_change(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Converts a connection's end into the error a handle reports: the [`ConnectionError`]
/// inside an error of its kind ([`ConnectionError::io_kind`]).
pub(crate) fn io_error(closed: &Result<(), ConnectionError>) -> std::io::Error {
    match closed {
        Ok(()) => std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed"),
        Err(e) => e.clone().into(),
    }
}

/// How long the driver keeps trying to flush a closing link's last packets.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(5);
