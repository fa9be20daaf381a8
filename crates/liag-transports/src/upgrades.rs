//! [`Upgrades`]: the WebSocket upgrades or TLS handshakes an acceptor runs at once, bounded,
//! with room made for a newcomer by abandoning the oldest of the busiest source (an IPv4
//! address or IPv6 /64, as the server counts them).
//!
//! Waiting for a free slot instead would let anyone who opens sockets and says nothing hold
//! every slot for the whole upgrade timeout and shut everyone else out.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

use liag_tokio::{Source, oldest_of_busiest};

/// Upgrades in progress, oldest first.
#[derive(Debug)]
pub(crate) struct Upgrades<T> {
    tasks: JoinSet<T>,
    order: VecDeque<(Id, Option<Source>, AbortHandle)>,
    max: usize,
}

impl<T: Send + 'static> Upgrades<T> {
    pub(crate) fn new(max: usize) -> Self {
        Upgrades {
            tasks: JoinSet::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Runs `upgrade` for a transport from `peer`, abandoning the oldest upgrade of the source
    /// with the most in progress if all slots are taken.
    pub(crate) fn spawn(
        &mut self,
        peer: Option<IpAddr>,
        upgrade: impl Future<Output = T> + Send + 'static,
    ) {
        while self.order.len() >= self.max {
            let sources: Vec<Option<Source>> = self.order.iter().map(|(_, s, _)| *s).collect();
            let at = oldest_of_busiest(&sources).unwrap_or(0);
            if let Some((_, source, task)) = self.order.remove(at) {
                tracing::debug!(?source, "too many upgrades at once; abandoning one");
                task.abort();
            }
        }
        let task = self.tasks.spawn(upgrade);
        self.order
            .push_back((task.id(), peer.map(Source::of), task));
    }

    /// Upgrades in progress.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The next upgrade to finish (or fail, or be abandoned); `None` when none runs.
    pub(crate) async fn next(&mut self) -> Option<Result<T, JoinError>> {
        let done = self.tasks.join_next_with_id().await?;
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        self.order.retain(|(i, _, _)| *i != id);
        Some(done.map(|(_, t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_set_abandons_the_busiest_sources_oldest() {
        let mut upgrades = Upgrades::new(3);
        let busy = Some(IpAddr::from([192, 0, 2, 1]));
        let other = Some(IpAddr::from([192, 0, 2, 2]));
        let never = || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        };
        upgrades.spawn(other, never());
        upgrades.spawn(busy, never());
        upgrades.spawn(busy, never());
        // Full: the newcomer takes the place of the busy source's oldest, not of `other`.
        upgrades.spawn(None, async { "done" });
        let first = upgrades.next().await;
        assert!(
            matches!(first, Some(Err(ref e)) if e.is_cancelled()),
            "{first:?}"
        );
        let second = upgrades.next().await;
        assert!(matches!(second, Some(Ok("done"))), "{second:?}");
        let sources: Vec<_> = upgrades.order.iter().map(|(_, s, _)| *s).collect();
        assert_eq!(sources, [other.map(Source::of), busy.map(Source::of)]);
    }
}
