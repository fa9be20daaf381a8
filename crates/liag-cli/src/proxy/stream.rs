//! A multiplexed stream that tells a reset from an end, and writes frames of its connection's
//! frame size ([`FrameSize`]). yamux reads a reset stream as ended, so a stream that ends
//! closed both ways without this side having closed it was reset, and its reader gets
//! `ConnectionReset`: the relay then resets its TCP connection too.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use super::frames::FrameSize;
use super::lanes::LaneSeat;

/// A stream of one of the kept connections, with tokio's I/O traits.
#[derive(Debug)]
pub(crate) struct ProxyStream {
    inner: Compat<yamux::Stream>,
    /// The most one write puts in a frame.
    frame: FrameSize,
    /// This side has closed its direction.
    shut: bool,
    /// The client's permit for this stream (see `session::MAX_OPEN`), and its place in its
    /// lane.
    _held: Option<(OwnedSemaphorePermit, LaneSeat)>,
}

impl ProxyStream {
    pub(crate) fn new(stream: yamux::Stream, frame: FrameSize) -> Self {
        ProxyStream {
            inner: stream.compat(),
            frame,
            shut: false,
            _held: None,
        }
    }

    /// The stream, holding `slot` and `seat` until it is dropped.
    pub(crate) fn holding(mut self, slot: OwnedSemaphorePermit, seat: LaneSeat) -> Self {
        self._held = Some((slot, seat));
        self
    }
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let ended = buf.filled().len() == before && buf.remaining() > 0;
        if ended && !self.shut && self.inner.get_ref().is_closed() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the other end reset the connection",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.frame.get());
        Pin::new(&mut self.inner).poll_write(cx, &buf[..n])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut = true;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
