//! [`Control`]: watch and steer a running connection.

use std::sync::Arc;
use tokio::sync::watch;

use liag_core::{ConnectionError, ConnectionStats, LinkConfig, LinkId, LinkInfo, LinkStats};

use crate::codec::BoxLink;
use crate::shared::{NewLink, Shared};

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

    /// The links and their live figures: state, RTT, rate, bytes in flight, bytes moved.
    pub fn links(&self) -> Vec<LinkStats> {
        self.shared.lock().conn.link_stats()
    }

    /// The connection's buffers and flow control.
    pub fn stats(&self) -> ConnectionStats {
        self.shared.lock().conn.stats()
    }

    /// Adds a link whose handshake is done (the transports do this for you).
    pub fn attach_link(&self, io: BoxLink, info: LinkInfo, peer_recv_buffer: u32) -> LinkId {
        let mut inner = self.shared.lock();
        let now = inner.now();
        let id = inner.conn.add_link(now, info, peer_recv_buffer);
        inner.new_links.push(NewLink { id, io });
        inner.wake_driver();
        drop(inner);
        self.shared.notify_change();
        id
    }

    /// Drops a link at once, as if its transport had failed; its data moves to the others.
    pub fn drop_link(&self, link: LinkId) {
        let mut inner = self.shared.lock();
        let now = inner.now();
        let error = liag_core::LinkError::Transport("dropped by the application".into());
        inner.conn.handle_link_error(now, link, error);
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
        self.shared.lock().closed.clone()
    }

    /// Waits until the connection has ended and its links are closed.
    pub async fn closed(&self) -> Result<(), ConnectionError> {
        let mut changes = self.watch();
        loop {
            {
                let inner = self.shared.lock();
                if inner.driver_done {
                    return inner.closed.clone().unwrap_or(Ok(()));
                }
            }
            if changes.changed().await.is_err() {
                return self.result().unwrap_or(Ok(()));
            }
        }
    }
}
