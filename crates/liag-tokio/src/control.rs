//! [`Control`]: watch and steer a running connection.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

use liag_core::{
    ConnectionError, ConnectionStats, LinkConfig, LinkError, LinkId, LinkInfo, LinkState, LinkStats,
};

use liag_core::proto::message::RefusedReason;

use crate::codec::BoxLink;
use crate::shared::{NewLink, Shared};

/// A link's figures with its rates in bytes per second, averaged over the last second and the
/// last ten (or as much of them as the link has been up).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkRates {
    /// The link's figures.
    pub stats: LinkStats,
    /// Bytes sent per second over the last second.
    pub send_1s: f64,
    /// Bytes received per second over the last second.
    pub receive_1s: f64,
    /// Bytes sent per second over the last ten seconds.
    pub send_10s: f64,
    /// Bytes received per second over the last ten seconds.
    pub receive_10s: f64,
}

/// Closes a transport no connection will take, in a task of its own if there is a runtime.
fn close_alone(mut io: BoxLink) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            use futures::SinkExt;
            let _ = tokio::time::timeout(crate::shared::CLOSE_GRACE, io.close()).await;
        });
    }
}

/// A change to a connection's links, published by [`Control::link_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// A link joined; it starts [`LinkState::Active`], or is followed at once by
    /// [`LinkState::Testing`] when it joins while another link is active.
    Added {
        /// The link.
        link: LinkId,
    },
    /// A link's state changed.
    State {
        /// The link.
        link: LinkId,
        /// Its new state.
        state: LinkState,
    },
    /// The connection let a link go; its transport is being closed.
    Removed {
        /// The link.
        link: LinkId,
        /// Why.
        error: LinkError,
    },
    /// The connection ended; its links are being closed.
    Closed(Result<(), ConnectionError>),
    /// A link's handshake ended in a refusal, so it never joined.
    Refused {
        /// The tag it would have had.
        tag: String,
        /// Who refused it, and why.
        refusal: Refusal,
    },
}

/// Why a link never joined ([`LinkEvent::Refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// This side's link filter turned it down after the server's Welcome: it would duplicate
    /// a link already up (see the transport's link filter).
    LinkFilter,
    /// The server refused it.
    Server(RefusedReason),
}

/// A handle to a connection for everything but its data: its links and how it ends.
/// Cheap to clone.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Control { shared }
    }

    /// The links and their live figures: state, RTT, bytes in flight, bytes moved, user data.
    pub fn links(&self) -> Vec<LinkStats> {
        self.shared.lock().conn.link_stats()
    }

    /// The links with their send and receive rates over the last second and the last ten.
    pub fn link_rates(&self) -> Vec<LinkRates> {
        let inner = self.shared.lock();
        let now = tokio::time::Instant::now();
        let rate = |id: LinkId, current: (u64, u64), window: Duration| -> (f64, f64) {
            // The newest sample at least `window` old that has the link, or else the oldest
            // that has it (the link is younger than the window).
            let with_link = |s: &crate::shared::Sample| {
                s.links
                    .iter()
                    .find(|(l, _, _)| *l == id)
                    .map(|&(_, sent, received)| (s.at, sent, received))
            };
            let old = inner
                .samples
                .iter()
                .rev()
                .filter(|s| now - s.at >= window)
                .find_map(with_link)
                .or_else(|| inner.samples.iter().find_map(with_link));
            let Some((at, sent, received)) = old else {
                return (0.0, 0.0);
            };
            let secs = (now - at).as_secs_f64().max(1e-3);
            (
                current.0.saturating_sub(sent) as f64 / secs,
                current.1.saturating_sub(received) as f64 / secs,
            )
        };
        inner
            .conn
            .link_stats()
            .into_iter()
            .map(|stats| {
                let current = (stats.sent_bytes, stats.received_bytes);
                let (send_1s, receive_1s) = rate(stats.id, current, Duration::from_secs(1));
                let (send_10s, receive_10s) = rate(stats.id, current, Duration::from_secs(10));
                LinkRates {
                    stats,
                    send_1s,
                    receive_1s,
                    send_10s,
                    receive_10s,
                }
            })
            .collect()
    }

    /// The connection's buffers and flow control.
    pub fn stats(&self) -> ConnectionStats {
        self.shared.lock().conn.stats()
    }

    /// Attaches a link whose handshake is done (the transports do this for you). A connection that
    /// has ended lets the link go at once ([`LinkEvent::Removed`] with
    /// [`LinkError::ConnectionClosed`]) and closes its transport.
    pub fn attach_link(&self, io: BoxLink, info: LinkInfo, peer_recv_buffer: u32) -> LinkId {
        let mut inner = self.shared.lock();
        let now = inner.now();
        let id = inner.conn.attach_link(now, info, peer_recv_buffer);
        if inner.driver_done {
            // No driver is left to close it: the core's events have no reader any more.
            while inner.conn.poll_event().is_some() {}
            let error = LinkError::ConnectionClosed;
            inner.publish(LinkEvent::Removed { link: id, error });
            close_alone(io);
            return id;
        }
        inner.new_links.push(NewLink { id, io });
        inner.wake_driver();
        drop(inner);
        self.shared.notify_change();
        id
    }

    /// Drops a link at once, as if its transport had failed; its data moves to the others.
    /// It leaves with [`LinkError::Dropped`].
    pub fn drop_link(&self, link: LinkId) {
        let mut inner = self.shared.lock();
        let now = inner.now();
        inner.conn.handle_link_error(now, link, LinkError::Dropped);
        inner.wake_driver();
    }

    /// Removes a link gracefully: its data moves to the others, then Goodbye closes it.
    pub fn remove_link(&self, link: LinkId) {
        let mut inner = self.shared.lock();
        inner.links_to_remove.push(link);
        inner.wake_driver();
    }

    /// Blocks or unblocks a link for data (it stays connected).
    pub fn set_blocked(&self, link: LinkId, blocked: bool) {
        let mut inner = self.shared.lock();
        let now = inner.now();
        inner.conn.set_link_blocked(now, link, blocked);
        inner.wake_driver();
        drop(inner);
        self.shared.notify_change();
    }

    /// Changes one link's settings.
    pub fn set_link_config(&self, link: LinkId, config: LinkConfig) {
        let mut inner = self.shared.lock();
        inner.conn.set_link_config(link, config);
        inner.wake_driver();
    }

    /// Changes one link's tier, and nothing else of its settings. This end follows it at once;
    /// the peer keeps the tier the link's handshake told it (a new link on the path tells it
    /// the new one).
    pub fn set_link_tier(&self, link: LinkId, tier: liag_core::Tier) {
        let mut inner = self.shared.lock();
        inner.conn.set_link_tier(link, tier);
        inner.wake_driver();
    }

    /// Changes one link's rate cap (`LinkConfig::max_rate`, bytes per second; `None` for
    /// none), and nothing else of its settings.
    pub fn set_link_max_rate(&self, link: LinkId, max_rate: Option<u64>) {
        let mut inner = self.shared.lock();
        inner.conn.set_link_max_rate(link, max_rate);
        inner.wake_driver();
    }

    /// Changes the data allowance one link draws on (`LinkConfig::meter`; `None` for none),
    /// and nothing else of its settings.
    pub fn set_link_meter(&self, link: LinkId, meter: Option<liag_core::Meter>) {
        let mut inner = self.shared.lock();
        inner.conn.set_link_meter(link, meter);
        inner.wake_driver();
    }

    /// Sends redundantly from now on (each reliable message also goes, as a copy, on the link
    /// with the next earliest arrival), or stops; see `liag_core::Config::redundant`. This
    /// end only: links added from then on ask a liag server to send redundantly too, and a
    /// server once asked keeps doing so for the connection.
    pub fn set_redundant(&self, redundant: bool) {
        let mut inner = self.shared.lock();
        inner.conn.set_redundant(redundant);
        inner.wake_driver();
    }

    /// A receiver that changes whenever links come or go or the connection ends.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Ends the connection at once; the peer is told with Terminate.
    pub fn terminate(&self) {
        let mut inner = self.shared.lock();
        inner.conn.terminate();
        inner.wake_driver();
    }

    /// How the connection ended, if it has.
    pub fn result(&self) -> Option<Result<(), ConnectionError>> {
        self.shared.lock().conn.outcome().cloned()
    }

    /// Every change to the connection's links from now on, as the connection makes it: links
    /// added, their state, links removed and why, and the connection's end. A receiver that
    /// falls more than 64 events behind gets [`broadcast::error::RecvError::Lagged`] and
    /// should read [`Control::links`] afresh.
    pub fn link_events(&self) -> broadcast::Receiver<LinkEvent> {
        self.shared.lock().subscribe()
    }

    /// The links announced so far, and every change from then on, taken together: each link
    /// is either in the list or comes later as [`LinkEvent::Added`], never both. (A link just
    /// attached is in [`Control::links`] before the driver announces it, so reading that list
    /// beside [`Control::link_events`] may see a link twice.) The receiver lags as
    /// [`Control::link_events`] says.
    pub fn links_and_events(&self) -> (Vec<LinkStats>, broadcast::Receiver<LinkEvent>) {
        let inner = self.shared.lock();
        let events = inner.subscribe();
        let unannounced: Vec<LinkId> = inner.new_links.iter().map(|l| l.id).collect();
        let mut links = inner.conn.link_stats();
        links.retain(|l| !unannounced.contains(&l.id));
        (links, events)
    }

    /// Waits until the connection has ended and its links are closed.
    pub async fn closed(&self) -> Result<(), ConnectionError> {
        let mut changes = self.watch();
        loop {
            {
                let inner = self.shared.lock();
                if inner.driver_done {
                    return inner.conn.outcome().cloned().unwrap_or(Ok(()));
                }
            }
            if changes.changed().await.is_err() {
                return self.result().unwrap_or(Ok(()));
            }
        }
    }
}
