//! [`Gate`]: a byte allowance below a WebSocket until the link handshake is through.
//!
//! tungstenite gathers a whole message (up to [`super::MAX_MESSAGE`], 16 MiB) before it hands
//! any of it on, so a peer that upgrades and sends one big message makes the acceptor hold it
//! before liag has seen a byte of a handshake. Below tungstenite, the gate lets through only
//! [`PRE_HANDSHAKE_READ`] bytes (the HTTP upgrade and the link handshake need a few hundred,
//! a TLS handshake inside the WebSocket a few thousand) until the link's handshake is through:
//! the link then runs the acceptor's `OnHandshake`, which opens the gate.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes a WebSocket acceptor reads before the link handshake is through.
pub const PRE_HANDSHAKE_READ: usize = 64 << 10;

/// The allowance of an open gate.
const OPEN: usize = usize::MAX;

/// A stream whose reads stop at an allowance until its [`Opener`] opens it.
#[derive(Debug)]
pub(crate) struct Gate<S> {
    io: S,
    left: Arc<AtomicUsize>,
}

/// Opens a [`Gate`] for good.
#[derive(Debug, Clone)]
pub(crate) struct Opener(Arc<AtomicUsize>);

impl Opener {
    pub(crate) fn open(&self) {
        self.0.store(OPEN, Ordering::Relaxed);
    }
}

impl<S> Gate<S> {
    /// `io`, reading at most `allowance` bytes until opened.
    pub(crate) fn new(io: S, allowance: usize) -> (Gate<S>, Opener) {
        let left = Arc::new(AtomicUsize::new(allowance));
        (
            Gate {
                io,
                left: left.clone(),
            },
            Opener(left),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.left.load(Ordering::Relaxed);
        if left == OPEN {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
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
        // Opened meanwhile: the store of OPEN wins over this subtraction.
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                (l != OPEN).then(|| l - n.min(l))
            });
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
    async fn reads_stop_at_the_allowance_until_opened() {
        let (mut far, near) = tokio::io::duplex(1 << 16);
        let (mut gate, opener) = Gate::new(near, 10);
        far.write_all(&[1u8; 30]).await.unwrap();
        let mut buf = [0u8; 30];
        let mut got = 0;
        while got < 10 {
            got += gate.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(got, 10);
        let e = gate.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        opener.open();
        let n = gate.read(&mut buf).await.unwrap();
        assert_eq!(n, 20, "the rest comes once open");
    }
}
