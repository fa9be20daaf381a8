//! Emulated links in memory: rate, one-way delay, jitter and a queue, with runtime faults.
//!
//! A [`pair`] is two packet-link ends and a [`MemControl`] to cut, black-hole, heal or corrupt
//! the link while it runs; [`MemPaths`] makes such links on named paths for a connector. For
//! tests, benchmarks and the demo.

use bytes::Bytes;
use futures::{Sink, Stream};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

use liag_tokio::{BoxLink, PacketLink};

mod paths;
pub use paths::MemPaths;

/// The shape of an emulated link (both directions alike).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MemLinkSpec {
    /// Bits per second.
    pub rate: u64,
    /// One-way delay.
    pub delay: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`; order is kept.
    pub jitter: Duration,
    /// Bytes the sender may queue ahead of the line before it has to wait.
    pub queue: usize,
}

impl MemLinkSpec {
    /// `mbit` Mbit/s with `delay` one way, no jitter, a queue of 20 ms at the rate (at least
    /// 64 KiB).
    pub fn new(mbit: f64, delay: Duration) -> Self {
        let rate = (mbit * 1e6) as u64;
        MemLinkSpec {
            rate,
            delay,
            jitter: Duration::ZERO,
            queue: ((rate / 8 / 50) as usize).max(64 << 10),
        }
    }

    /// The same link with jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.rate as f64 / 8.0
    }
}

impl std::str::FromStr for MemLinkSpec {
    type Err = String;

    /// Parses `40mbit/5ms` (also `kbit`, `gbit`, `s`, `us`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (rate, delay) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected RATE/DELAY, such as 40mbit/5ms"))?;
        let number = |s: &str, units: &[(&str, f64)]| -> Result<f64, String> {
            let s = s.trim().to_ascii_lowercase();
            for (unit, scale) in units {
                if let Some(n) = s.strip_suffix(unit) {
                    return n
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .map(|v| v * scale)
                        .ok_or_else(|| format!("{text:?}: {n:?} is not a number"));
                }
            }
            Err(format!("{text:?}: unknown unit in {s:?}"))
        };
        let bits = number(
            rate,
            &[("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)],
        )?;
        let secs = number(delay, &[("ms", 1e-3), ("us", 1e-6), ("s", 1.0)])?;
        if bits < 1000.0 {
            return Err(format!("{text:?}: the rate must be at least 1kbit"));
        }
        let mut spec = MemLinkSpec::new(bits / 1e6, Duration::from_secs_f64(secs));
        spec.rate = bits as u64;
        Ok(spec)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Cut,
    Corrupt,
}

/// One direction of a link.
struct Dir {
    spec: MemLinkSpec,
    /// Packets on the way, with their arrival times.
    transit: VecDeque<(Instant, Bytes)>,
    /// When the line finishes sending what it was given.
    line_free: Instant,
    last_arrival: Instant,
    held: bool,
    fault: Fault,
    sender_closed: bool,
    receiver: Option<Waker>,
    sender: Option<Waker>,
    rng: fastrand::Rng,
}

impl Dir {
    fn backlog(&self, now: Instant) -> usize {
        let secs = self.line_free.saturating_duration_since(now).as_secs_f64();
        (secs * self.spec.bytes_per_sec()) as usize
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

fn lock(dir: &Mutex<Dir>) -> std::sync::MutexGuard<'_, Dir> {
    dir.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes an emulated link: its two ends and its control.
pub fn pair(spec: MemLinkSpec, seed: u64) -> (MemLink, MemLink, MemControl) {
    let now = Instant::now();
    let dir = |s| {
        Arc::new(Mutex::new(Dir {
            spec,
            transit: VecDeque::new(),
            line_free: now,
            last_arrival: now,
            held: false,
            fault: Fault::None,
            sender_closed: false,
            receiver: None,
            sender: None,
            rng: fastrand::Rng::with_seed(s),
        }))
    };
    let (ab, ba) = (dir(seed), dir(seed ^ 0x9E37_79B9));
    let end = |tx: &Arc<Mutex<Dir>>, rx: &Arc<Mutex<Dir>>| MemLink {
        tx: tx.clone(),
        rx: rx.clone(),
        rx_sleep: Box::pin(tokio::time::sleep_until(now)),
        tx_sleep: Box::pin(tokio::time::sleep_until(now)),
    };
    let a = end(&ab, &ba);
    let b = end(&ba, &ab);
    (a, b, MemControl { dirs: [ab, ba] })
}

impl MemControl {
    fn each(&self, f: impl Fn(&mut Dir)) {
        for dir in &self.dirs {
            let mut d = lock(dir);
            f(&mut d);
            d.wake();
        }
    }

    /// Resets the link: both ends fail, everything in flight is lost.
    pub fn cut(&self) {
        self.each(|d| {
            d.fault = Fault::Cut;
            d.transit.clear();
        });
    }

    /// Silences the link: nothing moves until [`MemControl::heal`]; nothing is lost.
    pub fn black_hole(&self) {
        self.each(|d| d.held = true);
    }

    /// Ends a black hole: what was held arrives after the one-way delay.
    pub fn heal(&self) {
        let now = Instant::now();
        self.each(|d| {
            if d.held {
                d.held = false;
                let earliest = now + d.spec.delay;
                for (at, _) in &mut d.transit {
                    *at = (*at).max(earliest);
                }
                d.last_arrival = d.last_arrival.max(earliest);
                d.line_free = d.line_free.max(now);
            }
        });
    }

    /// Corrupts the link: the receiving ends see a checksum failure, and the link fails.
    pub fn corrupt(&self) {
        self.each(|d| d.fault = Fault::Corrupt);
    }

    /// Whether an end of the link is still in use (this control not counted, nor its clones).
    pub(crate) fn in_use(&self) -> bool {
        Arc::strong_count(&self.dirs[0]) > 1
    }

    /// Whether the link is silenced.
    pub fn is_black_holed(&self) -> bool {
        lock(&self.dirs[0]).held
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
        let mut d = lock(&this.rx);
        match d.fault {
            Fault::Cut => {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "link cut",
                ))));
            }
            Fault::Corrupt => {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "frame checksum mismatch",
                ))));
            }
            Fault::None => {}
        }
        if !d.held {
            let now = Instant::now();
            match d.transit.front() {
                Some(&(at, _)) if at <= now => {
                    let packet = d.transit.pop_front().map(|(_, p)| p);
                    return Poll::Ready(packet.map(Ok));
                }
                Some(&(at, _)) => {
                    this.rx_sleep.as_mut().reset(at);
                    if this.rx_sleep.as_mut().poll(cx).is_ready() {
                        cx.waker().wake_by_ref();
                    }
                }
                None if d.sender_closed => return Poll::Ready(None),
                None => {}
            }
        }
        d.receiver = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Sink<Bytes> for MemLink {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut d = lock(&this.tx);
        if d.fault != Fault::None {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "link cut",
            )));
        }
        let now = Instant::now();
        if !d.held && d.backlog(now) < d.spec.queue {
            return Poll::Ready(Ok(()));
        }
        if !d.held {
            // Wait until the line has sent enough of its backlog.
            let wait = Duration::from_secs_f64(
                (d.backlog(now) - d.spec.queue + 1) as f64 / d.spec.bytes_per_sec(),
            );
            this.tx_sleep.as_mut().reset(now + wait);
            if this.tx_sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        d.sender = Some(cx.waker().clone());
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, packet: Bytes) -> io::Result<()> {
        let mut d = lock(&self.tx);
        if d.fault != Fault::None {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "link cut"));
        }
        let now = Instant::now();
        let transmit = Duration::from_secs_f64((packet.len() + 10) as f64 / d.spec.bytes_per_sec());
        d.line_free = d.line_free.max(now) + transmit;
        let jitter = if d.spec.jitter.is_zero() {
            Duration::ZERO
        } else {
            let max = d.spec.jitter.as_nanos() as u64;
            Duration::from_nanos(d.rng.u64(0..=max))
        };
        let at = (d.line_free + d.spec.delay + jitter).max(d.last_arrival);
        d.last_arrival = at;
        d.transit.push_back((at, packet));
        if let Some(w) = d.receiver.take() {
            w.wake();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut d = lock(&self.tx);
        d.sender_closed = true;
        if let Some(w) = d.receiver.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemLink {
    fn drop(&mut self) {
        let mut d = lock(&self.tx);
        d.sender_closed = true;
        if let Some(w) = d.receiver.take() {
            w.wake();
        }
    }
}

impl PacketLink for MemLink {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let spec: MemLinkSpec = "40mbit/5ms".parse().unwrap();
        assert_eq!(spec.rate, 40_000_000);
        assert_eq!(spec.delay, Duration::from_millis(5));
        let spec: MemLinkSpec = "1.5gbit/150us".parse().unwrap();
        assert_eq!(spec.rate, 1_500_000_000);
        assert_eq!(spec.delay, Duration::from_micros(150));
        assert!("40mbit".parse::<MemLinkSpec>().is_err());
        assert!("fast/5ms".parse::<MemLinkSpec>().is_err());
        assert!("40parsec/5ms".parse::<MemLinkSpec>().is_err());
        assert!("-4mbit/5ms".parse::<MemLinkSpec>().is_err());
    }
}
