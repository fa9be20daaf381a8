//! `liag demo`: a server and a client in one process, joined by emulated links, carrying a
//! verified stream while the fastest link is silenced and healed.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use liag_transports::UserData;
use liag_transports::liag_tokio::{EndpointConfig, Server, connect};
use liag_transports::mem::{Fault, LinkSpec, MemControl, pair};

use crate::speed_stream::{Generator, PIECE};
use crate::view::{LinkRow, View};

/// Options of `liag demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// An emulated link as RATE/DELAY[/JITTER], the delay one way (repeat for more
    /// links). Default: 40mbit/5ms, 20mbit/40ms and 10mbit/150ms.
    #[arg(long = "link", value_name = "RATE/DELAY[/JITTER]")]
    links: Vec<LinkSpec>,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20.0, value_parser = parse_duration)]
    duration: f64,
    /// Do not silence the fastest link.
    #[arg(long)]
    no_fault: bool,
    /// Print one JSON object with the results instead of the live view.
    #[arg(long)]
    json: bool,
}

fn parse_duration(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?}: give the duration in seconds, from 1 to 3600"
        )),
    }
}

const SEED: u64 = 0x11A6;
/// Progress samples per second, for the stall and recovery figures.
const SAMPLE: Duration = Duration::from_millis(10);

/// What the receiving application saw.
struct Progress {
    received: AtomicU64,
    corrupt: AtomicBool,
    done: AtomicBool,
}

pub(crate) async fn run(args: Args) -> std::io::Result<ExitCode> {
    let specs = if args.links.is_empty() {
        vec![
            LinkSpec::mbit(40.0, 5),
            LinkSpec::mbit(20.0, 40),
            LinkSpec::mbit(10.0, 150),
        ]
    } else {
        args.links.clone()
    };
    let duration = Duration::from_secs_f64(args.duration);
    let sum: f64 = specs.iter().map(LinkSpec::bytes_per_sec).sum();
    let fastest = (0..specs.len())
        .max_by(|&a, &b| {
            specs[a]
                .bytes_per_sec()
                .total_cmp(&specs[b].bytes_per_sec())
        })
        .unwrap_or(0);
    let cut_at = duration.mul_f64(0.3);
    let heal_at = duration.mul_f64(0.6);

    let mut endpoint = EndpointConfig::default();
    // Small buffers keep the end of the demo close to its duration.
    endpoint.config.send_buffer = 4 << 20;
    let (server, mut listener) = Server::new(endpoint.clone());
    let progress = Arc::new(Progress {
        received: AtomicU64::new(0),
        corrupt: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let receiver = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let Some(incoming) = listener.next().await else {
                return;
            };
            let mut stream = incoming.accept();
            let mut pattern = Generator::new(SEED);
            let mut buf = vec![0u8; 256 << 10];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !pattern.check(&buf[..n]) {
                            progress.corrupt.store(true, Ordering::Relaxed);
                        }
                        progress.received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            progress.done.store(true, Ordering::Relaxed);
        })
    };

    let (mut stream, outgoing) = connect(endpoint);
    let mut controls: Vec<MemControl> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (a, b, control) = pair(*spec, i as u64);
        let tag = format!("link {i}");
        server.add_packet_link(b.boxed(), tag.clone(), UserData::empty());
        outgoing
            .add_packet_link(a.boxed(), tag, UserData::empty(), |_| true)
            .await?;
        controls.push(control);
    }
    let control = outgoing.control();

    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut pattern = Generator::new(SEED);
            while start.elapsed() < duration {
                if stream.write_all(pattern.next_piece()).await.is_err() {
                    return;
                }
                sent.fetch_add(PIECE as u64, Ordering::Relaxed);
            }
            let _ = stream.shutdown().await;
            // Keep the stream until the peer has everything.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        })
    };

    let mut view = View::new(args.json, specs.len(), duration);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut last_render = Duration::ZERO;
    let mut last_bytes: Vec<u64> = vec![0; specs.len()];
    let mut last_total = 0u64;
    let (mut cut_done, mut heal_done) = (args.no_fault, args.no_fault);
    let limit = duration + Duration::from_secs(30);
    let mut tick = tokio::time::interval(SAMPLE);
    while !progress.done.load(Ordering::Relaxed) && start.elapsed() < limit {
        tick.tick().await;
        let t = start.elapsed();
        if !cut_done && t >= cut_at {
            controls[fastest].fault(Fault::BlackHole);
            cut_done = true;
        }
        if !heal_done && t >= heal_at {
            controls[fastest].fault(Fault::Heal);
            heal_done = true;
        }
        let received = progress.received.load(Ordering::Relaxed);
        samples.push((t, received));
        if t - last_render >= view.interval() {
            let secs = (t - last_render).as_secs_f64();
            let links = control.links();
            let rows: Vec<LinkRow> = links
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let bytes = l.data_bytes;
                    let delta = bytes.saturating_sub(last_bytes.get(i).copied().unwrap_or(0));
                    if let Some(b) = last_bytes.get_mut(i) {
                        *b = bytes;
                    }
                    LinkRow {
                        name: l.tag.clone(),
                        state: if controls.get(i).is_some_and(MemControl::is_black_holed) {
                            "silenced".into()
                        } else {
                            format!("{:?}", l.state).to_lowercase()
                        },
                        rtt: l.rtt,
                        rate: delta as f64 / secs,
                        capacity: specs.get(i).map_or(0.0, LinkSpec::bytes_per_sec),
                        total: bytes,
                    }
                })
                .collect();
            let rate = (received - last_total) as f64 / secs;
            view.render(t, &rows, rate, sum, received);
            last_total = received;
            last_render = t;
        }
    }
    let _ = writer.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), receiver).await;
    view.finish();

    let summary = Summary::new(
        &samples,
        &specs,
        fastest,
        duration,
        cut_at,
        heal_at,
        args.no_fault,
        &progress,
        sent.load(Ordering::Relaxed),
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        summary.print();
    }
    Ok(if summary.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The demo's results.
#[derive(Debug, serde::Serialize)]
struct Summary {
    bytes_sent: u64,
    bytes_verified: u64,
    verified: bool,
    links_sum_bytes_per_sec: f64,
    goodput_bytes_per_sec: f64,
    /// Goodput over the sending time, as a share of the links' sum.
    efficiency_of_sum: f64,
    /// The same, counting only the capacity of links that were not silenced.
    efficiency_of_available: f64,
    /// Longest time without new data after the fastest link went silent, in ms.
    stall_after_cut_ms: Option<f64>,
    /// From the heal until the rate over 500 ms reached 90 % of the links' sum, in ms.
    back_to_full_rate_ms: Option<f64>,
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    fn new(
        samples: &[(Duration, u64)],
        specs: &[LinkSpec],
        fastest: usize,
        duration: Duration,
        cut_at: Duration,
        heal_at: Duration,
        no_fault: bool,
        progress: &Progress,
        sent: u64,
    ) -> Self {
        let sum: f64 = specs.iter().map(LinkSpec::bytes_per_sec).sum();
        let at = |t: Duration| {
            let i = samples.partition_point(|&(s, _)| s <= t);
            if i == 0 { 0 } else { samples[i - 1].1 }
        };
        let in_time = at(duration);
        let secs = duration.as_secs_f64();
        let silenced = if no_fault {
            0.0
        } else {
            (heal_at - cut_at).as_secs_f64() * specs[fastest].bytes_per_sec()
        };
        let stall = (!no_fault).then(|| {
            let mut last = cut_at;
            let mut longest = Duration::ZERO;
            let mut prev = at(cut_at);
            for &(t, bytes) in samples
                .iter()
                .filter(|&&(t, _)| t > cut_at && t <= cut_at + Duration::from_secs(3))
            {
                if bytes > prev {
                    longest = longest.max(t - last);
                    last = t;
                    prev = bytes;
                }
            }
            longest.as_secs_f64() * 1000.0
        });
        let back = if no_fault {
            None
        } else {
            let window = Duration::from_millis(500);
            samples
                .iter()
                .filter(|&&(t, _)| t >= heal_at + window && t <= duration)
                .find(|&&(t, bytes)| {
                    (bytes - at(t - window)) as f64 / window.as_secs_f64() >= 0.9 * sum
                })
                .map(|&(t, _)| (t - window - heal_at).as_secs_f64() * 1000.0)
        };
        let received = progress.received.load(Ordering::Relaxed);
        let verified = !progress.corrupt.load(Ordering::Relaxed)
            && received == sent
            && progress.done.load(Ordering::Relaxed);
        Summary {
            bytes_sent: sent,
            bytes_verified: if verified { received } else { 0 },
            verified,
            links_sum_bytes_per_sec: sum,
            goodput_bytes_per_sec: in_time as f64 / secs,
            efficiency_of_sum: in_time as f64 / (sum * secs),
            efficiency_of_available: in_time as f64 / (sum * secs - silenced),
            stall_after_cut_ms: stall,
            back_to_full_rate_ms: back,
        }
    }

    fn print(&self) {
        let mb = |b: f64| b / 1e6;
        println!();
        println!("bytes sent        {:>14}", self.bytes_sent);
        println!(
            "bytes verified    {:>14}  {}",
            self.bytes_verified,
            if self.verified {
                "every byte arrived intact, in order"
            } else {
                "VERIFICATION FAILED"
            }
        );
        println!(
            "goodput           {:>11.2} MB/s of {:.2} MB/s summed link capacity",
            mb(self.goodput_bytes_per_sec),
            mb(self.links_sum_bytes_per_sec)
        );
        println!(
            "efficiency        {:>11.1} % of the links' sum, {:.1} % of the capacity that was up",
            self.efficiency_of_sum * 100.0,
            self.efficiency_of_available * 100.0
        );
        if let Some(stall) = self.stall_after_cut_ms {
            println!("stall after cut   {stall:>11.0} ms without new data");
        }
        match self.back_to_full_rate_ms {
            Some(ms) => println!(
                "back to full rate {ms:>11.0} ms after healing (90 % of the sum over 500 ms)"
            ),
            None if self.stall_after_cut_ms.is_some() => {
                println!("back to full rate  not reached before the end")
            }
            None => {}
        }
    }
}
