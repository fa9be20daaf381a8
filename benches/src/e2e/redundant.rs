//! Redundant sending on real kernel paths: `liag tunnel` between two network namespaces joined
//! by two 20 Mbit/s veth paths, a 64-byte message every 10 ms echoed back through it while one
//! path at a time goes down for 500 ms (every 1–3 s, either path at random: which one an end
//! prefers is up to it, and a fault only on the path it happens not to use would prove
//! nothing); once without and once with
//! `--redundant`. Each message's round trip is timed from when it was due to be written, so a
//! stall delays every message behind it (no coordinated omission). Both namespaces' interface
//! counters give the bytes each mode cost. Where aggligator's `agg-tunnel` is installed, the
//! redundant liag client also runs against it as the server: protocol 4 takes the copies, and
//! every echo must come back in order.

use serde_json::{Value, json};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{median, quantile};
use crate::netpaths::{Fault, NetPaths, SERVER, Side};
use crate::plain_tcp;
use crate::tunnel_run::{Killed, Tunnel};

/// The interval between messages.
const INTERVAL: Duration = Duration::from_millis(10);
/// How long each outage of a path lasts, and the pause between two.
const OUTAGE: Duration = Duration::from_millis(500);
const PAUSE_MS: std::ops::Range<u64> = 1_000..3_000;
/// The tunnel server's link port.
const LINK_PORT: u16 = 5800;

/// What one mode showed in one run.
struct Figures {
    /// Round trips in ms: median, 99th percentile, largest.
    p50: f64,
    p99: f64,
    max: f64,
    outages: usize,
    /// Bytes both namespaces' interfaces sent during the messages.
    wire_bytes: u64,
}

/// The bytes `side`'s path interfaces sent so far, summed.
fn tx_bytes(paths: &NetPaths, side: Side) -> io::Result<u64> {
    let out = paths.ip(side, "-j -s link show")?;
    let all: Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let devs: Vec<String> = (0..paths.rates().len())
        .map(|i| NetPaths::dev(side, i))
        .collect();
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| devs.iter().any(|d| l["ifname"] == d.as_str()))
        .filter_map(|l| l["stats64"]["tx"]["bytes"].as_u64())
        .sum())
}

/// One mode over fresh paths: `liag tunnel client` (at `liag`) to `server`, one second of
/// messages to settle, then `secs` seconds of messages through the outages.
fn run_once(
    (liag, server): (&Path, &Tunnel),
    redundant: bool,
    secs: f64,
    seed: u64,
) -> io::Result<Figures> {
    let paths = NetPaths::new(&[20.0, 20.0])?;
    let stop = plain_tcp::Stopper::default();
    let echo = paths.within(Side::Server, || plain_tcp::echo(stop.0.clone()))??;
    let local = paths.within(Side::Client, || {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
    })??;
    let quiet = |mut cmd: Command| -> io::Result<Killed> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        cmd.spawn().map(Killed)
    };
    let mut server = server.command(&paths, Side::Server, "server");
    server.args(["-n", "--tcp", &LINK_PORT.to_string()]);
    server.args(["-p", &echo.to_string()]);
    let _server = quiet(server)?;
    let mut client = Tunnel::liag(liag).command(&paths, Side::Client, "client");
    client.args(["-n", "--once"]);
    client.args(["-p", &format!("{echo}:{}", local.port())]);
    client.args(["--tcp", &format!("{SERVER}:{LINK_PORT}")]);
    if redundant {
        client.arg("--redundant");
    }
    let _client = quiet(client)?;
    let at = SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()));
    let stream = paths.within(Side::Client, || plain_tcp::connect_retrying(at))??;
    // Both links up and tested before the clock starts.
    let settle = (Duration::from_secs(1).as_millis() / INTERVAL.as_millis()) as usize;
    plain_tcp::paced_round_trips(stream.try_clone()?, settle, INTERVAL)?;

    let count = (secs / INTERVAL.as_secs_f64()) as usize;
    let bytes_before = tx_bytes(&paths, Side::Client)? + tx_bytes(&paths, Side::Server)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let (rtts, outages) = std::thread::scope(|scope| -> io::Result<_> {
        let messages = scope.spawn(|| plain_tcp::paced_round_trips(stream, count, INTERVAL));
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(secs);
        let mut outages = 0;
        loop {
            let pause = Duration::from_millis(rng.u64(PAUSE_MS));
            if Instant::now() + pause + OUTAGE >= end {
                break;
            }
            let path = rng.usize(0..2);
            std::thread::sleep(pause);
            paths.fault(path, Fault::Down)?;
            std::thread::sleep(OUTAGE);
            paths.heal(path, Fault::Down)?;
            outages += 1;
        }
        let rtts = messages
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the messages' thread panicked")))?;
        Ok((rtts, outages))
    })?;
    let wire_bytes =
        tx_bytes(&paths, Side::Client)? + tx_bytes(&paths, Side::Server)? - bytes_before;
    let mut rtts = rtts;
    let mut ms = |q| quantile(&mut rtts, q).as_secs_f64() * 1e3;
    Ok(Figures {
        p50: ms(0.5),
        p99: ms(0.99),
        max: ms(1.0),
        outages,
        wire_bytes,
    })
}

/// Both modes, `runs` times each, alternating; then the redundant client against each
/// `(version, agg-tunnel)` in `aggligators`.
pub fn outages(
    liag: &Path,
    aggligators: &[(String, std::path::PathBuf)],
    runs: usize,
    quick: bool,
) -> io::Result<Value> {
    let secs = if quick { 6.0 } else { 12.0 };
    let liag_server = Tunnel::liag(liag);
    let mut servers = vec![("liag", liag_server)];
    servers.extend(
        aggligators
            .iter()
            .map(|(version, path)| (version.as_str(), Tunnel::aggligator(path))),
    );
    let mut rows = Vec::new();
    for (server_name, server) in &servers {
        // aggligator's server sends no copies, so its replies still wait out its own
        // failover: the figures show that the copies reach it and change nothing for worse.
        let modes = [false, true];
        let mut all: Vec<Vec<Figures>> = modes.iter().map(|_| Vec::new()).collect();
        for run in 0..runs {
            let seed = run as u64 + 1;
            for (&mode, figures) in modes.iter().zip(&mut all) {
                let f = run_once((liag, server), mode, secs, seed)?;
                eprintln!(
                    "  redundant run {} to a {server_name} server, {}: {} outages, round trip \
                     p50 {:.2} ms, p99 {:.1} ms, max {:.1} ms, {} bytes on the wire",
                    run + 1,
                    if mode { "with --redundant" } else { "without" },
                    f.outages,
                    f.p50,
                    f.p99,
                    f.max,
                    f.wire_bytes
                );
                figures.push(f);
            }
        }
        for (&mode, figures) in modes.iter().zip(&all) {
            let name = match (*server_name, mode) {
                ("liag", false) => "liag tunnel".to_string(),
                ("liag", true) => "liag tunnel --redundant".to_string(),
                (version, false) => format!("liag tunnel client to agg-tunnel {version}"),
                (version, true) => {
                    format!("liag tunnel client --redundant to agg-tunnel {version}")
                }
            };
            rows.push(row(&name, figures));
        }
    }
    Ok(json!({
        "scenario": "real paths, 64-byte round trips while one path drops out for 500 ms",
        "kind": "redundant",
        "links": "veth 20 Mbit/s + veth 20 Mbit/s, one of them down 500 ms every 1-3 s",
        "runs": runs,
        "rows": rows,
    }))
}

/// The medians of one mode's runs.
fn row(name: &str, all: &[Figures]) -> Value {
    let pick = |f: fn(&Figures) -> f64| median(&all.iter().map(f).collect::<Vec<f64>>());
    json!({
        "name": name,
        "p50_ms": pick(|f| f.p50),
        "p99_ms": pick(|f| f.p99),
        "max_ms": pick(|f| f.max),
        "wire_bytes": pick(|f| f.wire_bytes as f64),
    })
}
