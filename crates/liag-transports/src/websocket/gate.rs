//! [`Gate`] and [`Meter`]: what a WebSocket acceptor's link may hold below liag's framing.
//!
//! tungstenite gathers a whole message (up to [`super::MAX_MESSAGE`], 16 MiB) before it hands
//! any of it on, and [`WsBytes`](super::WsBytes) keeps what the framing has not taken yet of
//! the last one; neither is a buffer liag's own accounts see. So, below tungstenite:
//!
//! - until the link's handshake is through, the gate lets through only
//!   [`PRE_HANDSHAKE_READ`] bytes (the HTTP upgrade and the link handshake need a few hundred,
//!   a TLS handshake inside the WebSocket a few thousand): a peer that upgrades and sends one
//!   big message is closed before it is held;
//! - after it, what the link holds there (the bytes read since the last whole message, and
//!   what is kept of that one) beyond [`FREE_MESSAGE`] is charged to the server's memory
//!   budget, as a stream link's frame in progress is; a read that does not fit fails the link.
//!
//! The link reaches the meter through the hooks its acceptor gives [`crate::Accepted`].

use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use liag_core::MemoryBudget;

use liag_tokio::LinkGuard;

/// Bytes a WebSocket acceptor reads before the link handshake is through.
pub const PRE_HANDSHAKE_READ: usize = 64 << 10;

/// What a WebSocket link may hold below the framing without charging the budget: a busy liag
/// peer's messages (one gathered write each, a few hundred KiB) never are.
pub const FREE_MESSAGE: usize = 1 << 20;

/// The allowance of an open gate.
const OPEN: usize = usize::MAX;

/// What one WebSocket link holds below the framing, shared by its [`Gate`], its `WsBytes` and
/// the link's hooks.
#[derive(Debug)]
pub(crate) struct Meter {
    /// Bytes the gate still lets through before the handshake; [`OPEN`] after it.
    left: AtomicUsize,
    /// Bytes read since the last whole message came out of tungstenite.
    since_message: AtomicUsize,
    /// Bytes `WsBytes` keeps of the last message.
    pending: AtomicUsize,
    /// The budget charged, and how much is charged now.
    charge: Mutex<Option<(MemoryBudget, usize)>>,
}

impl Meter {
    pub(crate) fn new(allowance: usize) -> Arc<Meter> {
        Arc::new(Meter {
            left: AtomicUsize::new(allowance),
            since_message: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            charge: Mutex::new(None),
        })
    }

    /// A whole message of `len` bytes came out of tungstenite and is kept (0 for a message
    /// that carries no data: Text, Ping, Pong).
    pub(crate) fn message_out(&self, len: usize) {
        self.since_message.store(0, Ordering::Relaxed);
        self.pending.store(len, Ordering::Relaxed);
        self.settle();
    }

    /// The framing took some of the kept message: `left` bytes remain.
    pub(crate) fn taken(&self, left: usize) {
        self.pending.store(left, Ordering::Relaxed);
        self.settle();
    }

    /// Charges or gives back the difference between what is held and what is charged;
    /// `false` if a charge did not fit (what was charged stays).
    fn settle(&self) -> bool {
        let mut charge = self.charge.lock();
        let Some((budget, charged)) = charge.as_mut() else {
            return true;
        };
        let held =
            self.since_message.load(Ordering::Relaxed) + self.pending.load(Ordering::Relaxed);
        let held = held.saturating_sub(FREE_MESSAGE);
        if held > *charged {
            if !budget.try_charge(held - *charged) {
                return false;
            }
        } else {
            budget.release(*charged - held);
        }
        *charged = held;
        true
    }
}

impl LinkGuard for Meter {
    fn handshake_done(&self) {
        self.left.store(OPEN, Ordering::Relaxed);
    }

    fn charge_to(&self, budget: &MemoryBudget) {
        let mut charge = self.charge.lock();
        if let Some((old, charged)) = charge.take() {
            old.release(charged);
        }
        *charge = Some((budget.clone(), 0));
        drop(charge);
        self.settle();
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some((budget, charged)) = self.charge.get_mut().take() {
            budget.release(charged);
        }
    }
}

/// A stream below a WebSocket whose reads its [`Meter`] bounds.
#[derive(Debug)]
pub(crate) struct Gate<S> {
    io: S,
    meter: Arc<Meter>,
}

impl<S> Gate<S> {
    pub(crate) fn new(io: S, meter: Arc<Meter>) -> Gate<S> {
        Gate { io, meter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.meter.left.load(Ordering::Relaxed);
        if left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "websocket peer sent over {PRE_HANDSHAKE_READ} bytes before the link handshake"
                ),
            )));
        }
        let room = buf.remaining().min(left);
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(room));
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        let meter = &self.meter;
        // Opened meanwhile: the store of OPEN wins over this subtraction.
        let _ = (meter.left).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
            (l != OPEN).then(|| l - n.min(l))
        });
        meter.since_message.fetch_add(n, Ordering::Relaxed);
        if !meter.settle() {
            return Poll::Ready(Err(io::Error::other(
                "a websocket message in progress does not fit in the server's memory budget",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gate<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_stop_at_the_allowance_until_the_handshake() {
        let (mut far, near) = tokio::io::duplex(1 << 16);
        let meter = Meter::new(10);
        let mut gate = Gate::new(near, meter.clone());
        far.write_all(&[1u8; 30]).await.unwrap();
        let mut buf = [0u8; 30];
        let mut got = 0;
        while got < 10 {
            got += gate.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(got, 10);
        let e = gate.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        meter.handshake_done();
        let n = gate.read(&mut buf).await.unwrap();
        assert_eq!(n, 20, "the rest comes once open");
    }

    #[tokio::test]
    async fn after_the_handshake_what_is_held_is_charged() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let meter = Meter::new(OPEN);
        let budget = MemoryBudget::new(50 << 10);
        let over = FREE_MESSAGE + (150 << 10);
        meter.charge_to(&budget);
        let mut gate = Gate::new(near, meter.clone());
        let _writer = tokio::spawn(async move {
            let _ = far.write_all(&vec![0u8; over]).await;
            far
        });
        let mut buf = vec![0u8; over];
        let mut got = 0;
        let failed = loop {
            match gate.read(&mut buf[got..]).await {
                Ok(n) => got += n,
                Err(_) => break true,
            }
            if got == buf.len() {
                break false;
            }
        };
        assert!(
            failed,
            "a message in progress beyond the budget fails the read"
        );
        assert!(budget.used() <= 50 << 10);
        // A whole message out, and taken by the framing: nothing is held.
        meter.message_out(got);
        meter.taken(0);
        assert_eq!(budget.used(), 0);
    }
}
