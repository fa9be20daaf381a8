//! Responsiveness under load on real kernel paths: small round trips while a bulk transfer
//! fills the links. Two network namespaces joined by three veth paths shaped with `tbf` to
//! 40, 20 and 10 Mbit/s (50 ms of queue each); a 64-byte message every 10 ms to an echo
//! server, timed from when each was due, while another connection writes as fast as it can
//! to a sink: through `liag tunnel` (two forwarded connections, so two aggregated
//! connections over the same paths), through `agg-tunnel` where installed, and as plain TCP
//! over the first path. The same round trips through the idle tunnel give the floor.

use serde_json::{Value, json};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{median, quantile};
use crate::netpaths::{NetPaths, SERVER, Side};
use crate::plain_tcp::{self, Stopper};
use crate::tunnel_run::{Killed, Tunnel};

/// The paths' rates, Mbit/s.
const RATES: [f64; 3] = [40.0, 20.0, 10.0];
/// The interval between small messages.
const INTERVAL: Duration = Duration::from_millis(10);
/// The tunnel server's first link port. Each tunnel takes the next: a server killed a moment
/// ago leaves its port in TIME_WAIT, and agg-tunnel 0.9 cannot listen on such a port.
const LINK_PORT: u16 = 5800;

/// Tunnels set up so far, for their link ports.
static TUNNELS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// One way of crossing the paths.
pub enum Crossing {
    /// Straight to the targets: the kernel routes over the first path.
    PlainTcp,
    /// Through a tunnel program at both ends (`liag tunnel` or `agg-tunnel`).
    Tunnel(String, Tunnel),
}

/// What one crossing showed.
struct Figures {
    /// Round trips in ms.
    p50: f64,
    p99: f64,
    /// The bulk transfer's goodput in Mbit/s, if one ran.
    bulk_mbit: Option<f64>,
}

/// The sink and echo in the server namespace, and the tunnel between the namespaces if the
/// crossing has one: the addresses the client namespace reaches them at.
struct Setup {
    sink: SocketAddr,
    echo: SocketAddr,
    reads: mpsc::Receiver<Option<(f64, usize)>>,
    start: Instant,
    _tunnel: Vec<Killed>,
    _stop: Stopper,
}

fn setup(paths: &NetPaths, crossing: &Crossing) -> io::Result<Setup> {
    let stop = Stopper::default();
    let start = Instant::now();
    let (tx, reads) = mpsc::channel();
    let (sink, echo) = paths.within(Side::Server, || {
        io::Result::Ok((
            plain_tcp::sink(stop.0.clone(), start, tx)?,
            plain_tcp::echo(stop.0.clone())?,
        ))
    })??;
    let Crossing::Tunnel(_, tunnel) = crossing else {
        let at = |port| SocketAddr::from((SERVER, port));
        return Ok(Setup {
            sink: at(sink),
            echo: at(echo),
            reads,
            start,
            _tunnel: Vec::new(),
            _stop: stop,
        });
    };
    let local = || {
        paths.within(Side::Client, || {
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
        })?
    };
    let (l_sink, l_echo) = (local()?.port(), local()?.port());
    let quiet = |mut cmd: Command| -> io::Result<Killed> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        cmd.spawn().map(Killed)
    };
    let link_port = LINK_PORT + TUNNELS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
    let mut server = tunnel.command(paths, Side::Server, "server");
    server.args(["-n", "--tcp", &link_port.to_string()]);
    server.args(["-p", &sink.to_string(), "-p", &echo.to_string()]);
    let server = quiet(server)?;
    let mut client = tunnel.command(paths, Side::Client, "client");
    client.arg("-n");
    client.args([
        "-p",
        &format!("{sink}:{l_sink}"),
        "-p",
        &format!("{echo}:{l_echo}"),
    ]);
    client.args(["--tcp", &format!("{SERVER}:{link_port}")]);
    let client = quiet(client)?;
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Ok(Setup {
        sink: at(l_sink),
        echo: at(l_echo),
        reads,
        start,
        _tunnel: vec![client, server],
        _stop: stop,
    })
}

/// Round trips for `secs` through `crossing`, with a bulk transfer beside them if `loaded`
/// (from a second before the round trips start to their end).
fn once(paths: &NetPaths, crossing: &Crossing, loaded: bool, secs: f64) -> io::Result<Figures> {
    let Setup {
        sink,
        echo,
        reads,
        start,
        _tunnel,
        _stop,
    } = setup(paths, crossing)?;
    let count = (secs / INTERVAL.as_secs_f64()) as usize;
    let echo = warm_echo(paths, echo)?;
    let (rtts, bulk_mbit) = std::thread::scope(|scope| -> io::Result<_> {
        let bulk = loaded
            .then(|| -> io::Result<_> {
                let stream = paths.within(Side::Client, || plain_tcp::connect_retrying(sink))??;
                Ok(scope.spawn(move || plain_tcp::bulk(stream, start, &reads, 1.0, secs)))
            })
            .transpose()?;
        if bulk.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        let rtts = plain_tcp::paced_round_trips(echo, count, INTERVAL)?;
        let mb_s = match bulk {
            Some(b) => Some(
                b.join()
                    .unwrap_or_else(|_| Err(io::Error::other("the bulk writer panicked")))?,
            ),
            None => None,
        };
        Ok((rtts, mb_s.map(|mb| mb * 8.0)))
    })?;
    let mut rtts = rtts;
    let mut ms = |q| quantile(&mut rtts, q).as_secs_f64() * 1e3;
    Ok(Figures {
        p50: ms(0.5),
        p99: ms(0.99),
        bulk_mbit,
    })
}

/// A connection to the echo at `at` that has carried a second of round trips, so the
/// tunnel's links are up and tested before anything is timed. A tunnel client may take the
/// local connection before its links are up and reset it (agg-tunnel does): it is made
/// again, for up to 10 s.
fn warm_echo(paths: &NetPaths, at: SocketAddr) -> io::Result<std::net::TcpStream> {
    let began = Instant::now();
    loop {
        let echo = paths.within(Side::Client, || plain_tcp::connect_retrying(at))??;
        match plain_tcp::paced_round_trips(echo.try_clone()?, 100, INTERVAL) {
            Ok(_) => return Ok(echo),
            Err(e) if began.elapsed() > Duration::from_secs(10) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Each crossing, loaded (and the first tunnel idle too), `runs` times.
pub fn run(crossings: &[Crossing], runs: usize, quick: bool) -> io::Result<Value> {
    let secs = if quick { 5.0 } else { 10.0 };
    let paths = NetPaths::new(&RATES)?;
    let sum: f64 = RATES.iter().sum();
    let mut rows = Vec::new();
    let mut cases: Vec<(&Crossing, bool)> = crossings.iter().map(|c| (c, true)).collect();
    if let Some(tunnel) = crossings.iter().find(|c| matches!(c, Crossing::Tunnel(..))) {
        cases.insert(0, (tunnel, false));
    }
    for (crossing, loaded) in cases {
        let name = match (crossing, loaded) {
            (Crossing::PlainTcp, _) => "plain TCP, first path".to_string(),
            (Crossing::Tunnel(name, _), true) => format!("{name}, bulk on another connection"),
            (Crossing::Tunnel(name, _), false) => format!("{name}, idle"),
        };
        let mut all = Vec::new();
        for run in 0..runs {
            // A pause between crossings, so the previous one's sockets and queues are gone.
            std::thread::sleep(Duration::from_millis(300));
            let f = once(&paths, crossing, loaded, secs)?;
            eprintln!(
                "  responsive run {}, {name}: round trip p50 {:.2} ms, p99 {:.1} ms{}",
                run + 1,
                f.p50,
                f.p99,
                f.bulk_mbit.map_or(String::new(), |m| format!(
                    ", bulk {m:.1} Mbit/s of {sum:.0}"
                ))
            );
            all.push(f);
        }
        let pick = |f: fn(&Figures) -> f64| median(&all.iter().map(f).collect::<Vec<f64>>());
        rows.push(json!({
            "name": name,
            "p50_ms": pick(|f| f.p50),
            "p99_ms": pick(|f| f.p99),
            "bulk_mbit_s": loaded.then(|| pick(|f| f.bulk_mbit.unwrap_or(f64::NAN))),
        }));
    }
    Ok(json!({
        "scenario": "real paths, 64-byte round trips while a bulk transfer fills the links",
        "kind": "responsive",
        "links": "veth 40 + 20 + 10 Mbit/s (tbf, 50 ms of queue each)",
        "sum_mbit_s": sum,
        "runs": runs,
        "rows": rows,
    }))
}

/// The crossings: plain TCP, `liag tunnel` at `liag`, and each `(version, agg-tunnel)`.
pub fn crossings(liag: &std::path::Path, aggligators: &[(String, PathBuf)]) -> Vec<Crossing> {
    let mut all = vec![
        Crossing::PlainTcp,
        Crossing::Tunnel("liag tunnel".into(), Tunnel::liag(liag)),
    ];
    all.extend(aggligators.iter().map(|(version, path)| {
        Crossing::Tunnel(format!("agg-tunnel {version}"), Tunnel::aggligator(path))
    }));
    all
}
