//! Emulated links in memory: rate, one-way delay, jitter and a queue, with runtime faults.
//!
//! A [`pair`] is two packet-link ends and a [`MemControl`] that applies a [`Fault`] (reset,
//! black hole, heal, rate, corruption) while the link runs; [`MemPaths`] makes such links on
//! named paths for a connector. Each direction is liag-core's [`Netem`], the emulator the
//! simulator drives in virtual time, here driven by tokio's clock. For tests, benchmarks and
//! the demo.

use bytes::Bytes;
use futures::{Sink, Stream};
use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::time::{Instant, Sleep};

use liag_core::Time;
use liag_core::netem::{Netem, Segment};
use liag_tokio::{BoxLink, PacketLink};

mod paths;
pub use liag_core::netem::{Fault, LinkSpec, ParseLinkSpecError};
pub use paths::MemPaths;

/// One direction of a link, shared by the end that sends on it and the end that receives.
struct Dir {
    line: Netem,
    /// The instant `Time::ZERO` stands for.
    epoch: Instant,
    /// The receiver took the Fin: the stream has ended.
    ended: bool,
    receiver: Option<Waker>,
    sender: Option<Waker>,
}

impl Dir {
    fn now(&self) -> Time {
        Time::from(Instant::now().saturating_duration_since(self.epoch))
    }

    fn instant(&self, at: Time) -> Instant {
        // A delay past what an Instant holds (a spec built by hand) is a year away: "never".
        let year = std::time::Duration::from_secs(86_400 * 365);
        self.epoch
            .checked_add(at.since_epoch())
            .unwrap_or_else(|| Instant::now() + year)
    }

    /// The line's next event as an instant, if anything is to move.
    fn next_event(&self) -> Option<Instant> {
        self.line.poll_timeout().map(|at| self.instant(at))
    }

    /// Hands a segment to the line and wakes the receiver, whose next event may be sooner.
    fn send(&mut self, segment: Segment) {
        let now = self.now();
        self.line.handle_input(now, segment);
        if let Some(w) = self.receiver.take() {
            w.wake();
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.receiver.take() {
            w.wake();
        }
        if let Some(w) = self.sender.take() {
            w.wake();
        }
    }
}

/// The error a failed link reports to the end that receives on it.
fn receive_error(fault: Fault) -> io::Error {
    match fault {
        Fault::Corrupt => io::Error::new(io::ErrorKind::InvalidData, "frame checksum mismatch"),
        _ => io::Error::new(io::ErrorKind::ConnectionReset, "link reset"),
    }
}

fn send_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "link reset")
}

/// Waits on `sleep` until `at`; wakes the task at once if `at` has passed already.
fn sleep_until(sleep: &mut Pin<Box<Sleep>>, at: Instant, cx: &mut Context<'_>) {
    sleep.as_mut().reset(at);
    if sleep.as_mut().poll(cx).is_ready() {
        cx.waker().wake_by_ref();
    }
}

/// One end of an emulated link: it sends on one direction and receives on the other.
pub struct MemLink {
    tx: Arc<Mutex<Dir>>,
    rx: Arc<Mutex<Dir>>,
    rx_sleep: Pin<Box<Sleep>>,
    tx_sleep: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for MemLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemLink").finish_non_exhaustive()
    }
}

/// Controls a running emulated link.
#[derive(Clone)]
pub struct MemControl {
    dirs: [Arc<Mutex<Dir>>; 2],
}

impl std::fmt::Debug for MemControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemControl").finish_non_exhaustive()
    }
}

/// Makes an emulated link: its two ends and its control; `seed` seeds its jitter.
pub fn pair(spec: LinkSpec, seed: u64) -> (MemLink, MemLink, MemControl) {
    let epoch = Instant::now();
    let dir = |seed| {
        Arc::new(Mutex::new(Dir {
            line: Netem::new(spec, seed),
            epoch,
            ended: false,
            receiver: None,
            sender: None,
        }))
    };
    let (ab, ba) = (dir(seed), dir(seed ^ 0x9E37_79B9));
    let end = |tx: &Arc<Mutex<Dir>>, rx: &Arc<Mutex<Dir>>| MemLink {
        tx: tx.clone(),
        rx: rx.clone(),
        rx_sleep: Box::pin(tokio::time::sleep_until(epoch)),
        tx_sleep: Box::pin(tokio::time::sleep_until(epoch)),
    };
    let a = end(&ab, &ba);
    let b = end(&ba, &ab);
    (a, b, MemControl { dirs: [ab, ba] })
}

impl MemControl {
    /// Applies `fault` to both directions now: [`Fault::Reset`] fails both ends and loses
    /// what was in flight; [`Fault::BlackHole`] silences the link until [`Fault::Heal`],
    /// losing nothing; [`Fault::Rate`] degrades it; [`Fault::Corrupt`] makes the receiving
    /// ends see a checksum failure.
    pub fn fault(&self, fault: Fault) {
        for dir in &self.dirs {
            let mut d = dir.lock();
            let now = d.now();
            d.line.apply(now, fault);
            d.wake();
        }
    }

    /// Whether an end of the link is still in use (this control not counted, nor its clones).
    pub(crate) fn in_use(&self) -> bool {
        Arc::strong_count(&self.dirs[0]) > 1
    }

    /// Whether the link is silenced.
    pub fn is_black_holed(&self) -> bool {
        self.dirs[0].lock().line.is_held()
    }
}

impl MemLink {
    /// Boxes this end as a liag link.
    pub fn boxed(self) -> BoxLink {
        Box::pin(self)
    }
}

impl Stream for MemLink {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut d = this.rx.lock();
        if let Some(fault) = d.line.failure() {
            return Poll::Ready(Some(Err(receive_error(fault))));
        }
        if d.ended {
            return Poll::Ready(None);
        }
        let now = d.now();
        match d.line.poll_output(now) {
            Some(Segment::Packet(packet)) => {
                // The line moved: the sender may have room again.
                if let Some(w) = d.sender.take() {
                    w.wake();
                }
                return Poll::Ready(Some(Ok(packet)));
            }
            Some(Segment::Fin) => {
                d.ended = true;
                return Poll::Ready(None);
            }
            None => {}
        }
        if let Some(at) = d.next_event() {
            sleep_until(&mut this.rx_sleep, at, cx);
        }
        d.receiver = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Sink<Bytes> for MemLink {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut d = this.tx.lock();
        if d.line.failure().is_some() {
            return Poll::Ready(Err(send_error()));
        }
        let now = d.now();
        d.line.handle_timeout(now);
        if d.line.writable() {
            return Poll::Ready(Ok(()));
        }
        // Wait until the line has sent its head (nothing moves while black-holed: the heal
        // wakes this). Arrivals are the receiver's to wait for: one it has not taken yet is
        // no reason to poll again.
        if let Some(at) = d.line.next_room().map(|at| d.instant(at)) {
            sleep_until(&mut this.tx_sleep, at, cx);
        }
        d.sender = Some(cx.waker().clone());
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, packet: Bytes) -> io::Result<()> {
        let mut d = self.tx.lock();
        if d.line.failure().is_some() {
            return Err(send_error());
        }
        d.send(Segment::Packet(packet));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.lock().send(Segment::Fin);
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemLink {
    fn drop(&mut self) {
        self.tx.lock().send(Segment::Fin);
    }
}

impl PacketLink for MemLink {}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};
    use std::time::Duration;

    /// 990 payload bytes: with the 10-byte frame header, 1 ms at 8 Mbit/s.
    fn packet() -> Bytes {
        Bytes::from(vec![7; 990])
    }

    #[tokio::test(start_paused = true)]
    async fn a_packet_takes_its_serialization_and_the_delay() {
        let (mut a, mut b, _control) = pair(LinkSpec::mbit(8.0, 5), 1);
        let start = Instant::now();
        a.send(packet()).await.unwrap();
        assert_eq!(b.next().await.unwrap().unwrap(), packet());
        assert_eq!(start.elapsed(), Duration::from_millis(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_black_hole_holds_until_the_heal_and_loses_nothing() {
        let (mut a, mut b, control) = pair(LinkSpec::mbit(8.0, 5), 1);
        control.fault(Fault::BlackHole);
        assert!(control.is_black_holed());
        a.send(packet()).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(1), b.next()).await;
        assert!(waited.is_err(), "nothing comes through a black hole");
        let healed = Instant::now();
        control.fault(Fault::Heal);
        assert_eq!(b.next().await.unwrap().unwrap(), packet());
        assert_eq!(healed.elapsed(), Duration::from_millis(6));
    }

    #[tokio::test(start_paused = true)]
    async fn faults_fail_both_ends_with_their_errors() {
        let (mut a, mut b, control) = pair(LinkSpec::mbit(8.0, 5), 1);
        control.fault(Fault::Corrupt);
        let received = b.next().await.unwrap().unwrap_err();
        assert_eq!(received.kind(), io::ErrorKind::InvalidData);
        let sent = a.send(packet()).await.unwrap_err();
        assert_eq!(sent.kind(), io::ErrorKind::ConnectionReset);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_end_ends_the_stream_after_what_it_sent() {
        let (mut a, mut b, _control) = pair(LinkSpec::mbit(8.0, 5), 1);
        a.send(packet()).await.unwrap();
        drop(a);
        assert_eq!(b.next().await.unwrap().unwrap(), packet());
        assert!(b.next().await.is_none());
        assert!(b.next().await.is_none(), "and stays ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_holds_the_sender_back_to_the_rate() {
        let spec = LinkSpec::mbit(8.0, 5).with_queue(10 * 990);
        let (mut a, mut b, _control) = pair(spec, 1);
        let reader = tokio::spawn(async move {
            for _ in 0..100 {
                b.next().await.unwrap().unwrap();
            }
        });
        let start = Instant::now();
        for _ in 0..100 {
            a.send(packet()).await.unwrap();
        }
        // 100 packets at 1 ms each; the sender is let go once the queue holds the last 10.
        let sent = start.elapsed();
        assert!(
            sent >= Duration::from_millis(89) && sent <= Duration::from_millis(92),
            "{sent:?}"
        );
        reader.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(105));
    }
}
