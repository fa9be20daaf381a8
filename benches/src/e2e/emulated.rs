//! Emulated links in real time: efficiency (goodput ÷ the links' sum) with equal and unequal
//! delays, and failover when the fastest path is reset or black-holed mid-transfer.
//!
//! The links are [`MemPaths`] kept by [`connect_with`], so reconnection and stalled-path
//! probing run exactly as over a real transport.

use serde_json::{Value, json};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

use liag_transports::connect_with;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Server};
use liag_transports::mem::{Fault, LinkSpec, MemPaths};

use super::{CHUNK, Received, accept};

/// 40, 20 and 10 Mbit/s, all with a one-way delay of 10 ms.
pub fn equal_delays() -> Vec<LinkSpec> {
    [40.0, 20.0, 10.0]
        .map(|mbit| LinkSpec::mbit(mbit, 10))
        .to_vec()
}

/// 40 Mbit/s 5 ms, 20 Mbit/s 40 ms, 10 Mbit/s 150 ms.
pub fn unequal_delays() -> Vec<LinkSpec> {
    [(40.0, 5), (20.0, 40), (10.0, 150)]
        .map(|(mbit, ms)| LinkSpec::mbit(mbit, ms))
        .to_vec()
}

fn describe(specs: &[LinkSpec]) -> String {
    let links: Vec<String> = specs
        .iter()
        .map(|s| format!("{} Mbit/s {} ms", s.rate / 1_000_000, s.delay.as_millis()))
        .collect();
    links.join(" + ")
}

/// A fresh connection over `specs`, written to for `secs` seconds; returns what arrived,
/// what was sent (bytes, CRC-32), the paths, and the start time.
struct Run {
    paths: MemPaths,
    start: Instant,
    receiver: tokio::task::JoinHandle<io::Result<Received>>,
    writer: tokio::task::JoinHandle<io::Result<(u64, u32)>>,
}

impl Run {
    fn start(specs: &[LinkSpec], secs: f64) -> Run {
        let (server, mut listener) = Server::new(EndpointConfig::default());
        let paths = MemPaths::new(server, specs.iter().copied(), 7);
        let start = Instant::now();
        let (stream, _links) = connect_with(paths.clone(), EndpointConfig::default());
        let receiver = tokio::spawn(async move {
            let _links = _links;
            Received::drain(accept(&mut listener).await?, start).await
        });
        let writer = tokio::spawn(write_for(stream, start, secs));
        Run {
            paths,
            start,
            receiver,
            writer,
        }
    }

    async fn at(&self, secs: f64) {
        tokio::time::sleep_until((self.start + Duration::from_secs_f64(secs)).into()).await;
    }

    async fn finish(self) -> io::Result<(Received, u64, u32)> {
        let (sent, crc) = self.writer.await.map_err(io::Error::other)??;
        let received = self.receiver.await.map_err(io::Error::other)??;
        Ok((received, sent, crc))
    }
}

/// Writes a counting pattern until `secs` after `start`, then closes.
async fn write_for(mut stream: Connection, start: Instant, secs: f64) -> io::Result<(u64, u32)> {
    let mut chunk = vec![0u8; CHUNK / 4];
    let mut crc = crc32fast::Hasher::new();
    let mut sent = 0u64;
    let mut round = 0u8;
    while start.elapsed().as_secs_f64() < secs {
        chunk.iter_mut().for_each(|b| *b = round);
        round = round.wrapping_add(1);
        stream.write_all(&chunk).await?;
        crc.update(&chunk);
        sent += chunk.len() as u64;
    }
    stream.shutdown().await?;
    Ok((sent, crc.finalize()))
}

/// Goodput ÷ the links' sum over a fresh connection: cold (its first `cold` seconds) and
/// warm (the `warm` seconds after).
pub async fn efficiency(name: &str, specs: &[LinkSpec], cold: f64, warm: f64) -> io::Result<Value> {
    let run = Run::start(specs, cold + warm);
    let sum = run.paths.bytes_per_sec() * 8.0 / 1e6;
    let (received, sent, crc) = run.finish().await?;
    Ok(json!({
        "scenario": format!("efficiency, {name}"),
        "kind": "efficiency",
        "links": describe(specs),
        "sum_mbit_s": sum,
        "cold_secs": cold,
        "warm_secs": warm,
        "cold": received.mbit(0.0, cold) / sum,
        "warm": received.mbit(cold, cold + warm) / sum,
        "lost_bytes": sent - received.total,
        "intact": received.crc == crc,
        "series_mbit_s": received.series(0.2, cold + warm),
    }))
}

/// What happens to the fastest path in a failover run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Its link is reset; new links on it work at once.
    Reset,
    /// It goes silent for a while, then heals.
    BlackHole,
}

/// The fastest of `specs` fails `fault_at` seconds into a transfer; a black hole heals
/// `heal_after` seconds later. Measures the stall (the longest time nothing arrived), the time
/// until goodput is back to 90 % of its rate before the fault (over 100 ms), and bytes lost.
pub async fn failover(
    failure: Failure,
    specs: &[LinkSpec],
    fault_at: f64,
    heal_after: f64,
    secs: f64,
) -> io::Result<Value> {
    let run = Run::start(specs, secs);
    let sum = run.paths.bytes_per_sec() * 8.0 / 1e6;
    run.at(fault_at).await;
    let healed_at = match failure {
        Failure::Reset => {
            run.paths.fault(0, Fault::Reset);
            fault_at
        }
        Failure::BlackHole => {
            run.paths.fault(0, Fault::BlackHole);
            run.at(fault_at + heal_after).await;
            run.paths.fault(0, Fault::Heal);
            fault_at + heal_after
        }
    };
    let (received, sent, crc) = run.finish().await?;
    let before = received.mbit(fault_at - 2.0, fault_at);
    let back = received
        .reaches(healed_at, 0.1, 0.9 * before)
        .map(|t| t - healed_at);
    let name = match failure {
        Failure::Reset => "failover, fastest link reset",
        Failure::BlackHole => "failover, fastest link black-holed",
    };
    Ok(json!({
        "scenario": name,
        "kind": "failover",
        "fault": format!("{failure:?}"),
        "links": describe(specs),
        "sum_mbit_s": sum,
        "fault_at": fault_at,
        "healed_at": healed_at,
        "rate_before_mbit_s": before,
        "stall_ms": received.longest_gap(fault_at, fault_at + 2.0) * 1e3,
        "back_to_full_ms": back.map(|s| s * 1e3),
        "lost_bytes": sent - received.total,
        "intact": received.crc == crc,
        "series_mbit_s": received.series(0.1, secs),
    }))
}
