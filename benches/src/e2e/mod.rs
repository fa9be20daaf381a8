//! End-to-end scenarios: real sockets on loopback, and emulated links where rates and delays
//! matter. Each scenario measures liag beside its baseline in the same run and returns its
//! figures as JSON, for `cargo xtask bench` to tabulate and plot.

pub mod emulated;
pub mod links;
pub mod loopback;
pub mod proxy;
pub mod real_paths;
pub mod redundant;
pub mod responsive;
pub mod scale;
pub mod tiers;
pub mod to_aggligator;
pub mod tunnel;

use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

use liag_transports::UserData;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Listener, Server, connect};
use tokio::net::{TcpListener, TcpStream};

/// Size of the writes and reads of bulk transfers.
pub const CHUNK: usize = 1 << 20;

/// One aggregated connection over `links` loopback TCP links (one listener, one port): the
/// client's stream and the server's listener, whose first `Incoming` is this connection.
pub async fn loopback_connection(links: usize) -> io::Result<(Connection, Listener)> {
    let (server, listener) = Server::new(EndpointConfig::default());
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let (stream, outgoing) = connect(EndpointConfig::default());
    for i in 0..links {
        let socket = TcpStream::connect(addr).await?;
        let (accepted, _) = tcp.accept().await?;
        socket.set_nodelay(true)?;
        accepted.set_nodelay(true)?;
        server.add_link(accepted, format!("tcp{i}"), UserData::empty());
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            outgoing
                .add_link(socket, format!("tcp{i}"), UserData::empty())
                .await
        });
    }
    Ok((stream, listener))
}

/// Accepts the listener's next connection.
pub async fn accept(listener: &mut Listener) -> io::Result<Connection> {
    let incoming = listener.next().await.ok_or(io::ErrorKind::NotConnected)?;
    Ok(incoming.accept())
}

/// What a receiver saw: when each read returned and how much, and a checksum of the bytes.
#[derive(Debug, Default)]
pub struct Received {
    /// (seconds since the start, bytes) per read.
    pub reads: Vec<(f64, usize)>,
    /// All bytes received.
    pub total: u64,
    /// CRC-32 of the bytes received.
    pub crc: u32,
}

impl Received {
    /// Reads `stream` to its end, timing each read against `start`.
    pub async fn drain(mut stream: impl AsyncRead + Unpin, start: Instant) -> io::Result<Self> {
        let mut buf = vec![0u8; CHUNK];
        let mut crc = crc32fast::Hasher::new();
        let mut seen = Received::default();
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            seen.total += n as u64;
            seen.reads.push((start.elapsed().as_secs_f64(), n));
        }
        seen.crc = crc.finalize();
        Ok(seen)
    }

    /// Goodput in Mbit/s over `[from, to)` seconds.
    pub fn mbit(&self, from: f64, to: f64) -> f64 {
        let bytes: usize = self
            .reads
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, n)| n)
            .sum();
        bytes as f64 * 8.0 / 1e6 / (to - from)
    }

    /// Goodput in Mbit/s per `bin` seconds up to `until`: `[[t, mbit], ...]`.
    pub fn series(&self, bin: f64, until: f64) -> Vec<[f64; 2]> {
        let bins = (until / bin).ceil() as usize;
        let mut out = vec![0usize; bins];
        for &(t, n) in &self.reads {
            if let Some(b) = out.get_mut((t / bin) as usize) {
                *b += n;
            }
        }
        out.iter()
            .enumerate()
            .map(|(i, &n)| [(i as f64 + 1.0) * bin, n as f64 * 8.0 / 1e6 / bin])
            .collect()
    }

    /// The longest time in `[from, to)` during which no byte arrived, in seconds.
    pub fn longest_gap(&self, from: f64, to: f64) -> f64 {
        let mut last = from;
        let mut gap: f64 = 0.0;
        for &(t, _) in self.reads.iter().filter(|(t, _)| *t >= from && *t < to) {
            gap = gap.max(t - last);
            last = t;
        }
        gap.max(to - last)
    }

    /// The end of the first `window` seconds wholly after `from` whose goodput reaches
    /// `mbit`.
    pub fn reaches(&self, from: f64, window: f64, mbit: f64) -> Option<f64> {
        let need = mbit * 1e6 / 8.0 * window;
        let mut start = 0;
        let mut sum = 0.0;
        for &(t, n) in &self.reads {
            sum += n as f64;
            while self.reads[start].0 <= t - window {
                sum -= self.reads[start].1 as f64;
                start += 1;
            }
            if t - window >= from && sum >= need {
                return Some(t);
            }
        }
        None
    }

    /// Like [`Self::reaches`], and the goodput holds: the `hold` seconds from the window's
    /// start (cut at `until`) carry `mbit` on average too. Data held back behind a lost message
    /// and released at once fills one window, not the next second.
    pub fn reaches_and_holds(
        &self,
        from: f64,
        window: f64,
        hold: f64,
        until: f64,
        mbit: f64,
    ) -> Option<f64> {
        let mut from = from;
        loop {
            let t = self.reaches(from, window, mbit)?;
            let start = t - window;
            let end = (start + hold).min(until);
            if end <= t || self.mbit(start, end) >= mbit {
                return Some(t);
            }
            // The next candidate window starts later; reads are finite, so this ends.
            from = start + 1e-3;
        }
    }
}

/// The `q`-quantile (0..=1) of `samples`, which it sorts.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(i).copied().unwrap_or_default()
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// This process's resident memory in bytes (Linux), if it can be read.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
