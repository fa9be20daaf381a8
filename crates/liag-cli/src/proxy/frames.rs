//! How large the proxy's yamux frames are, and how they reach the connection.
//!
//! A round trip's frame waits behind the bulk frames written before it: in yamux's writer, in
//! the connection's send queue, on the links. Frames of 16 KiB take 1.9 ms at 70 Mbit/s, and
//! 4 KiB frames there cut the proxy's round trips under a bulk transfer by about a quarter;
//! over loopback links each frame costs yamux and liag work, and 4 KiB frames cost a quarter
//! to a half of the throughput (266-413 MB/s against 504-607 in alternating runs). So the
//! frame size follows the connection's rate ([`FrameSize`]), and a frame goes to the
//! connection before the next is taken ([`FrameWriter`]) (docs/performance.md, "Responsiveness under load").

use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use liag_transports::liag_tokio::Control;

/// The most data one yamux frame carries, on a fast connection.
pub(crate) const FRAME_MAX: usize = 16 << 10;
/// The least, however slow the connection: its 12-byte header is 0.3 % of it.
const FRAME_MIN: usize = 4 << 10;
/// yamux's frame header.
const HEADER: usize = 12;
/// The most a [`FrameWriter`] holds: one frame of the largest size.
const GATHER_MAX: usize = FRAME_MAX + HEADER;
/// How long one frame should take at the connection's rate.
const FRAME_TIME: Duration = Duration::from_micros(500);
/// How often the frame size follows the links' rates.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// The most one write of a stream puts in a frame: what the connection's links carry in
/// [`FRAME_TIME`], from [`FRAME_MIN`] to [`FRAME_MAX`]. Shared by a connection's streams and
/// its [`FrameWriter`].
#[derive(Debug, Clone)]
pub(crate) struct FrameSize(Arc<AtomicUsize>);

impl FrameSize {
    /// The frame size for the connection `control` belongs to, following its links' rates
    /// until every copy of it is dropped.
    pub(crate) fn following(control: Control) -> Self {
        let size = Arc::new(AtomicUsize::new(FRAME_MAX));
        tokio::spawn(follow(control, Arc::downgrade(&size)));
        FrameSize(size)
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sets `size` from the rates of the links of `control`'s connection (all of them: a link
/// under test or in reserve counts its estimate too) every [`FOLLOW_EVERY`], until `size` is
/// dropped.
async fn follow(control: Control, size: Weak<AtomicUsize>) {
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(size) = size.upgrade() else { return };
        let rate: f64 = (control.links().iter())
            .map(|l| l.rate)
            .filter(|r| r.is_finite() && *r > 0.0)
            .sum();
        size.store(frame_for(rate), Ordering::Relaxed);
    }
}

/// The frame size for links carrying `rate` bytes per second together.
fn frame_for(rate: f64) -> usize {
    // `as` saturates, and a NaN becomes 0: the least frame.
    ((rate * FRAME_TIME.as_secs_f64()) as usize).clamp(FRAME_MIN, FRAME_MAX)
}

/// Gathers yamux's writes into whole frames for the connection; reads pass through.
///
/// yamux writes each frame's header and its body apart, and the connection would send a
/// header alone as a payload of its own. yamux flushes after each frame it writes; but while
/// the connection has no room, a buffer of fixed size goes on taking frames until it is full
/// (16 KiB of 4 KiB frames), and a round trip's frame waits behind them. This one takes
/// nothing more once it holds a frame size's worth (one bulk frame, or several short ones
/// that came in a row) until that has gone to the connection.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
    /// How much of `buf` has gone out.
    sent: usize,
    frame: FrameSize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(inner: W, frame: FrameSize) -> Self {
        FrameWriter {
            inner,
            buf: Vec::with_capacity(GATHER_MAX),
            sent: 0,
            frame,
        }
    }

    /// Writes out what is gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for FrameWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A whole frame is gathered: it goes before anything more is taken.
        if this.buf.len() >= (this.frame.get() + HEADER).min(GATHER_MAX) {
            ready!(this.poll_drain(cx))?;
        }
        let take = data.len().min(GATHER_MAX - this.buf.len());
        this.buf.extend_from_slice(&data[..take]);
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

/// Reads pass through.
impl<W: AsyncRead + Unpin> AsyncRead for FrameWriter<W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::AsyncWriteExt;

    #[test]
    fn frames_take_half_a_millisecond_within_their_bounds() {
        assert_eq!(frame_for(0.0), FRAME_MIN, "no rate yet");
        assert_eq!(frame_for(f64::NAN), FRAME_MIN);
        assert_eq!(frame_for(8.75e6), 4_375, "70 Mbit/s");
        assert_eq!(frame_for(5e6), FRAME_MIN, "40 Mbit/s: 2.5 kB");
        assert_eq!(frame_for(20e6), 10_000, "160 Mbit/s");
        assert_eq!(frame_for(1e9), FRAME_MAX, "loopback");
        assert_eq!(frame_for(f64::INFINITY), FRAME_MAX);
    }

    /// Records each write it takes; while `.1`, it takes none.
    #[derive(Default)]
    struct Writes(Vec<usize>, bool);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.1 {
                return Poll::Pending;
            }
            self.0.push(data.len());
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_frame_goes_out_whole_and_as_soon_as_it_is() {
        let frame = FrameSize(Arc::new(AtomicUsize::new(FRAME_MIN)));
        let mut w = FrameWriter::new(Writes::default(), frame.clone());
        futures::executor::block_on(async {
            for _ in 0..2 {
                w.write_all(&[0; HEADER]).await.unwrap();
                w.write_all(&[1; FRAME_MIN]).await.unwrap();
            }
            // A small frame, then yamux flushes as it has nothing more to write.
            w.write_all(&[0; HEADER]).await.unwrap();
            w.write_all(&[2; 64]).await.unwrap();
            w.flush().await.unwrap();
            // A fast connection's frame, with the header joined to it all the same.
            frame.0.store(FRAME_MAX, Ordering::Relaxed);
            w.write_all(&[0; HEADER]).await.unwrap();
            w.write_all(&[3; FRAME_MAX]).await.unwrap();
            w.flush().await.unwrap();
        });
        let whole = HEADER + FRAME_MIN;
        assert_eq!(w.inner.0, [whole, whole, HEADER + 64, HEADER + FRAME_MAX]);
    }

    #[test]
    fn nothing_more_is_taken_while_a_whole_frame_waits_for_room() {
        let frame = FrameSize(Arc::new(AtomicUsize::new(FRAME_MIN)));
        let mut w = FrameWriter::new(Writes(Vec::new(), true), frame);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut write = |w: &mut FrameWriter<Writes>, data: &[u8]| match Pin::new(w)
            .poll_write(&mut cx, data)
        {
            Poll::Ready(Ok(n)) => Some(n),
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => None,
        };
        assert_eq!(write(&mut w, &[0; HEADER]), Some(HEADER));
        assert_eq!(write(&mut w, &[1; FRAME_MIN]), Some(FRAME_MIN));
        // The connection has no room: the next frame's header waits, and nothing is lost.
        assert_eq!(write(&mut w, &[0; HEADER]), None);
        assert_eq!(w.buf.len(), HEADER + FRAME_MIN);
        w.inner.1 = false;
        assert_eq!(write(&mut w, &[0; HEADER]), Some(HEADER));
        assert_eq!(w.inner.0, [HEADER + FRAME_MIN]);
    }
}
