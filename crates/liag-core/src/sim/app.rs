//! The simulated applications: a writer of verifiable data and a reader that checks it.

use bytes::Bytes;
use std::time::Duration;
use xxhash_rust::xxh3::Xxh3;

use crate::connection::Connection;
use crate::time::Time;

/// A running XXH3 digest of a byte stream.
#[derive(Default)]
struct Digest(Xxh3);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({:016x})", self.0.digest())
    }
}

/// Size of the random block written data is cut from.
const SOURCE_LEN: usize = 1 << 20;

/// Writes `total` bytes of pseudo-random data, then finishes; keeps a digest of what it wrote.
#[derive(Debug)]
pub(crate) struct Writer {
    source: Bytes,
    offset: usize,
    pub(crate) total: u64,
    pub(crate) written: u64,
    digest: Digest,
    max_write: usize,
    pub(crate) finish: bool,
    finished: bool,
}

impl Writer {
    pub(crate) fn new(rng: &mut fastrand::Rng) -> Self {
        let mut source = vec![0u8; SOURCE_LEN];
        rng.fill(&mut source);
        Writer {
            source: Bytes::from(source),
            offset: 0,
            total: 0,
            written: 0,
            digest: Digest::default(),
            max_write: 64 << 10,
            finish: false,
            finished: false,
        }
    }

    /// Writes as much as the connection takes.
    pub(crate) fn pump(&mut self, conn: &mut Connection, rng: &mut fastrand::Rng) -> bool {
        let mut progressed = false;
        while self.written < self.total {
            let left = (self.total - self.written) as usize;
            let len = left.min(rng.usize(1..=self.max_write));
            let start = self.offset;
            let chunk = self
                .source
                .slice(start..start + len.min(SOURCE_LEN - start));
            match conn.write(chunk.clone()) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.digest.0.update(&chunk[..n]);
                    self.written += n as u64;
                    // Step by an odd amount so consecutive writes differ in content and phase.
                    self.offset = (self.offset + n + 7919) % (SOURCE_LEN - self.max_write);
                    progressed = true;
                }
            }
        }
        if self.finish && self.written == self.total && !self.finished {
            conn.finish();
            self.finished = true;
            progressed = true;
        }
        progressed
    }

    pub(crate) fn digest(&self) -> u64 {
        self.digest.0.digest()
    }
}

/// What one side has received.
#[derive(Debug)]
pub struct Received {
    /// Bytes read.
    pub bytes: u64,
    /// Whether the peer's end of stream was read.
    pub finished: bool,
    /// When each read happened and how many bytes had arrived by then: (time, total).
    pub progress: Vec<(Time, u64)>,
    digest: Digest,
    /// Whether the application reads at all.
    pub(crate) reading: bool,
}

impl Received {
    pub(crate) fn new() -> Self {
        Received {
            bytes: 0,
            finished: false,
            progress: Vec::new(),
            digest: Digest::default(),
            reading: true,
        }
    }

    /// Reads everything readable.
    pub(crate) fn pump(&mut self, now: Time, conn: &mut Connection) -> bool {
        if !self.reading {
            return false;
        }
        let mut progressed = false;
        while let Some(data) = conn.read() {
            self.digest.0.update(&data);
            self.bytes += data.len() as u64;
            progressed = true;
        }
        if progressed {
            self.progress.push((now, self.bytes));
        }
        if !self.finished && conn.read_finished() {
            self.finished = true;
            progressed = true;
        }
        progressed
    }

    /// Digest of the bytes read, in order.
    pub fn digest(&self) -> u64 {
        self.digest.0.digest()
    }

    /// Bytes that had arrived by `t`.
    pub fn bytes_at(&self, t: Time) -> u64 {
        let i = self.progress.partition_point(|&(at, _)| at <= t);
        if i == 0 { 0 } else { self.progress[i - 1].1 }
    }

    /// The longest time between two reads (or `from` and the first read) within `[from, to]`.
    pub fn longest_gap(&self, from: Time, to: Time) -> Duration {
        let mut last = from;
        let mut longest = Duration::ZERO;
        for &(at, _) in self
            .progress
            .iter()
            .filter(|&&(at, _)| at > from && at <= to)
        {
            longest = longest.max(at - last);
            last = at;
        }
        longest
    }
}
