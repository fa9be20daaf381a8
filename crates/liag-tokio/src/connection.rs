//! The application's side of a connection: a byte stream and a message channel in one.
//!
//! [`Connection`] is `AsyncRead + AsyncWrite` for byte streams, and a `futures` `Stream` and `Sink`
//! of `Bytes` for messages (each message up to the configured `max_payload`, 32 KiB by default,
//! arrives whole). Shutting down the write side sends SendFinish; dropping the read side tells
//! the peer to stop.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use liag_core::WriteError;

use crate::control::Control;
use crate::pool;
use crate::shared::{Shared, io_error};

fn write_error(e: WriteError) -> io::Error {
    match e {
        WriteError::Finished => {
            io::Error::new(io::ErrorKind::BrokenPipe, "writing already shut down")
        }
        WriteError::Stopped => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the peer stopped receiving")
        }
        WriteError::Closed | WriteError::Blocked => {
            io::Error::new(io::ErrorKind::NotConnected, "connection closed")
        }
        _ => io::Error::other(e),
    }
}

/// Reads up to `max` bytes (or a whole message when `max` is `None`).
fn poll_read_bytes(
    shared: &Shared,
    cx: &mut Context<'_>,
    max: Option<usize>,
) -> Poll<io::Result<Option<Bytes>>> {
    let mut inner = shared.lock();
    let data = match max {
        Some(max) => inner.conn.read_max(max),
        None => inner.conn.read(),
    };
    if let Some(data) = data {
        // Reading may make a Consumed due.
        inner.wake_driver();
        return Poll::Ready(Ok(Some(data)));
    }
    if inner.conn.read_finished() {
        return Poll::Ready(Ok(None));
    }
    if let Some(closed) = inner.conn.outcome() {
        return Poll::Ready(match closed {
            Ok(()) => Ok(None),
            Err(_) => Err(io_error(closed)),
        });
    }
    inner.reader = Some(cx.waker().clone());
    Poll::Pending
}

/// What a write hands over: a slice to copy (`AsyncWrite`) or a buffer to share (`Sink`).
#[derive(Clone, Copy)]
enum Source<'a> {
    Copy(&'a [u8]),
    Share(&'a Bytes),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Copy(d) => d.len(),
            Source::Share(b) => b.len(),
        }
    }

    /// Hands the first `n` bytes to `conn`, copying only a slice; how many it took.
    ///
    /// A large copy goes into blocks of the process's write pool, a block at a time: freed to
    /// the allocator as the peer acknowledged it, that memory would go back to the kernel and
    /// the next write's pages be faulted in and zeroed again. Each piece is cut to what the
    /// connection has room for, so no block is copied into for bytes it would not take.
    fn write_to(&self, conn: &mut liag_core::Connection, n: usize) -> Result<usize, WriteError> {
        let d = match self {
            Source::Share(b) => return conn.write(b.slice(..n)),
            Source::Copy(d) if !pool::fills_block(n.min(pool::WRITE_BLOCK), pool::WRITE_BLOCK) => {
                return conn.write(Bytes::copy_from_slice(&d[..n]));
            }
            Source::Copy(d) => &d[..n],
        };
        let pool = pool::write_blocks();
        let mut written = 0;
        while written < n {
            let room = conn.send_capacity();
            let rest = &d[written..n.min(written.saturating_add(room))];
            if rest.is_empty() {
                return if written == 0 {
                    Err(WriteError::Blocked)
                } else {
                    Ok(written)
                };
            }
            let piece = pool::copy(pool, &rest[..rest.len().min(pool::WRITE_BLOCK)]);
            match conn.write(piece) {
                Ok(taken) => written += taken,
                Err(e) if written == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(written)
    }
}

/// Writes what fits of `data`; `whole` asks for a message: all of a shared buffer of at most
/// `max_payload` or nothing, sent in one payload ([`liag_core::Connection::write_message`]).
/// A longer message, like the byte stream, goes in parts.
fn poll_write_bytes(
    shared: &Shared,
    cx: &mut Context<'_>,
    data: Source<'_>,
    whole: bool,
) -> Poll<io::Result<usize>> {
    let mut inner = shared.lock();
    if let Some(closed) = inner.conn.outcome() {
        return Poll::Ready(Err(io_error(closed)));
    }
    // A message longer than a payload cannot arrive whole anyway; it goes in parts.
    let whole = whole && data.len() <= inner.conn.config().max_payload;
    let written = match data {
        Source::Share(b) if whole => inner.conn.write_message(b.clone()).map(|()| b.len()),
        _ => {
            let room = inner.conn.send_capacity();
            if room == 0 && data.len() > 0 {
                inner.writer = Some(cx.waker().clone());
                inner.conn.want_writable();
                return Poll::Pending;
            }
            data.write_to(&mut inner.conn, data.len().min(room))
        }
    };
    match written {
        Ok(n) => {
            inner.wake_driver();
            Poll::Ready(Ok(n))
        }
        Err(WriteError::Blocked) => {
            inner.writer = Some(cx.waker().clone());
            Poll::Pending
        }
        Err(e) => Poll::Ready(Err(write_error(e))),
    }
}

fn shutdown(shared: &Shared) {
    let mut inner = shared.lock();
    inner.conn.finish();
    inner.wake_driver();
}

fn stop_reading(shared: &Shared) {
    let mut inner = shared.lock();
    inner.conn.stop_receiving();
    inner.wake_driver();
}

/// The read side of a connection. Dropping it tells the peer to stop sending.
pub struct ReadHalf {
    shared: Arc<Shared>,
}

/// The write side of a connection. Shutting it down or dropping it ends the write direction.
pub struct WriteHalf {
    shared: Arc<Shared>,
    shut_down: bool,
    /// While shutting down: the bytes unacknowledged when last seen, and how long the wait
    /// for the next acknowledgement may take.
    shutdown_deadline: Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
    /// A message waiting for room, for the `Sink` API.
    pending: Option<Bytes>,
}

/// Both sides of a connection: `AsyncRead + AsyncWrite` for byte streams, and a `futures`
/// `Stream` and `Sink` of `Bytes` for messages (each up to the configured `max_payload`, 32 KiB
/// by default, arrives whole). Shutting down the write side sends SendFinish and completes once
/// the peer has acknowledged every byte written (an error if the connection fails first, or if
/// nothing is acknowledged for the no-link timeout); dropping the read side tells the peer to
/// stop.
pub struct Connection {
    read: ReadHalf,
    write: WriteHalf,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        {
            let mut inner = shared.lock();
            inner.readers += 1;
            inner.writers += 1;
        }
        Connection {
            read: ReadHalf {
                shared: shared.clone(),
            },
            write: WriteHalf {
                shared,
                shut_down: false,
                shutdown_deadline: None,
                pending: None,
            },
        }
    }

    /// Splits into independently usable halves.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// The connection's control handle.
    pub fn control(&self) -> Control {
        Control::new(self.read.shared.clone())
    }
}

impl WriteHalf {
    /// Writes all of `data` as part of the byte stream, sharing its buffer instead of copying
    /// it. Unlike the `Sink`, which keeps a message of up to `max_payload` whole, each part goes
    /// out as soon as there is room for any of it, so a connection squeezed below one payload
    /// of room still moves.
    pub async fn write_all_bytes(&mut self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let shared = &self.shared;
            let n = std::future::poll_fn(|cx| {
                poll_write_bytes(shared, cx, Source::Share(&data), false)
            })
            .await?;
            data.advance(n);
        }
        Ok(())
    }
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        let last = {
            let mut inner = self.shared.lock();
            inner.readers -= 1;
            inner.readers == 0
        };
        if last {
            stop_reading(&self.shared);
        }
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let last = {
            let mut inner = self.shared.lock();
            inner.writers -= 1;
            inner.writers == 0
        };
        if last && !self.shut_down {
            shutdown(&self.shared);
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match poll_read_bytes(&self.shared, cx, Some(buf.remaining())) {
            Poll::Ready(Ok(Some(data))) => {
                buf.put_slice(&data);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures::Stream for ReadHalf {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_read_bytes(&self.shared, cx, None).map(Result::transpose)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_bytes(&self.shared, cx, Source::Copy(buf), false)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are in liag's hands; the driver sends them as the links allow.
        Poll::Ready(Ok(()))
    }

    /// Sends the end of the stream and waits until the peer has acknowledged every byte
    /// written (or stopped receiving). It fails if the connection fails first, or if no byte
    /// is acknowledged for as long as the no-link timeout: a slow transfer may take as long
    /// as it needs, a peer that stops acknowledging may not.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut_down {
            this.shut_down = true;
            shutdown(&this.shared);
        }
        let mut inner = this.shared.lock();
        if inner.conn.write_settled() {
            return Poll::Ready(Ok(()));
        }
        match inner.conn.outcome() {
            Some(Ok(())) => return Poll::Ready(Ok(())),
            Some(closed) => return Poll::Ready(Err(io_error(closed))),
            None => {}
        }
        let limit = inner.conn.config().no_link_timeout;
        let unacked = inner.conn.stats().unacked;
        inner.writer = Some(cx.waker().clone());
        inner.conn.want_writable();
        drop(inner);
        let (last, deadline) = this
            .shutdown_deadline
            .get_or_insert_with(|| (unacked, Box::pin(tokio::time::sleep(limit))));
        if unacked < *last {
            // Progress: the wait starts again.
            *last = unacked;
            if let Some(at) = tokio::time::Instant::now().checked_add(limit) {
                deadline.as_mut().reset(at);
            }
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer acknowledged no data for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures::Sink<Bytes> for WriteHalf {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while let Some(msg) = &mut this.pending {
            match poll_write_bytes(&this.shared, cx, Source::Share(msg), true) {
                Poll::Ready(Ok(n)) if n >= msg.len() => this.pending = None,
                Poll::Ready(Ok(n)) => msg.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, msg: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        if !msg.is_empty() {
            this.pending = Some(msg);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::ready!(self.as_mut().poll_ready(cx))?;
        AsyncWrite::poll_shutdown(self, cx)
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().write), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().write), cx)
    }
}

impl futures::Stream for Connection {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().read).poll_next(cx)
    }
}

impl futures::Sink<Bytes> for Connection {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::Sink::poll_ready(Pin::new(&mut self.get_mut().write), cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Bytes) -> io::Result<()> {
        futures::Sink::start_send(Pin::new(&mut self.get_mut().write), msg)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::Sink::poll_flush(Pin::new(&mut self.get_mut().write), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::Sink::poll_close(Pin::new(&mut self.get_mut().write), cx)
    }
}

impl std::fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}
