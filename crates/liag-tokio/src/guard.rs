//! [`guarded`]: a link with something that lives as long as it and hears what becomes of it
//! (a source's socket slot, a transport's meter).

use bytes::Bytes;
use futures::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use liag_core::MemoryBudget;

use crate::codec::{BoxLink, PacketLink};

/// What rides along with a [`guarded`] link: dropped with it, told when its handshake is
/// through and which memory budget it is charged to. Both do nothing by default.
pub trait LinkGuard: Send + Unpin + 'static {
    /// The link's handshake is through.
    fn handshake_done(&self) {}

    /// The link is charged to `budget` (a server's memory budget).
    fn charge_to(&self, budget: &MemoryBudget) {
        let _ = budget;
    }
}

impl<G: LinkGuard + Sync + ?Sized> LinkGuard for Arc<G> {
    fn handshake_done(&self) {
        (**self).handshake_done();
    }

    fn charge_to(&self, budget: &MemoryBudget) {
        (**self).charge_to(budget);
    }
}

/// `link`, carrying `guard` for as long as it lives and telling it of the handshake and the
/// budget.
pub fn guarded(link: BoxLink, guard: impl LinkGuard) -> BoxLink {
    Box::pin(Guarded { link, guard })
}

struct Guarded<G> {
    link: BoxLink,
    guard: G,
}

impl<G: LinkGuard> Stream for Guarded<G> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().poll_next(cx)
    }
}

impl<G: LinkGuard> Sink<Bytes> for Guarded<G> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, packet: Bytes) -> io::Result<()> {
        self.project().start_send(packet)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().poll_close(cx)
    }
}

impl<G: LinkGuard> Guarded<G> {
    /// The inner link (boxed, so the wrapper is `Unpin` whatever the guard).
    fn project(self: Pin<&mut Self>) -> Pin<&mut dyn PacketLink> {
        self.get_mut().link.as_mut()
    }
}

impl<G: LinkGuard> PacketLink for Guarded<G> {
    fn handshake_done(mut self: Pin<&mut Self>) {
        self.link.as_mut().handshake_done();
        self.guard.handshake_done();
    }

    fn charge_to(mut self: Pin<&mut Self>, budget: MemoryBudget) {
        self.guard.charge_to(&budget);
        self.link.as_mut().charge_to(budget);
    }
}
