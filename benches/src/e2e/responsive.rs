//! Responsiveness under load on real kernel paths: small round trips while a bulk transfer
//! fills the links. Two network namespaces joined by three veth paths shaped with `tbf` to
//! 40, 20 and 10 Mbit/s (50 ms of queue each); a 64-byte message every 10 ms to an echo
//! server, timed from when each was due, while another connection writes as fast as it can
//! to a sink: through `liag tunnel` (two forwarded connections, so two aggregated
//! connections over the same paths), through `liag proxy` (two streams: on two of its lanes,
//! its aggregated connections, by default, and with `--lanes 1` in one connection, where the
//! round trips share its send queue and its order with the bulk data), through
//! `agg-tunnel` where installed, and as plain TCP over the first path. The same round trips
//! through the idle tunnel give the floor. Plain TCP bulk connections over every path at once,
//! one bound to each path's interface, show what the paths carry once TCP's own headers are
//! off: the bulk rows are shown against that too. `LIAG_BENCH_CC=NAME` sets the namespaces' TCP
//! congestion control (`reno`, `bbr`, ...: what the host's
//! `net.ipv4.tcp_allowed_congestion_control` lists) for every socket in them, the links'
//! included; otherwise they keep the system's default. `LIAG_RESPONSIVE_ONLY=TEXT` runs only
//! the rows whose name contains it (`proxy`, `another connection`, ...). `LIAG_RESPONSIVE_LINKS`
//! set (to anything) has the proxy's client serve its metrics, and prints to stderr what each
//! of its links showed halfway through a loaded run: rate estimate, bytes in flight, window
//! and smoothed round trip.

use serde_json::{Value, json};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
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
    /// Through `liag proxy` at the `liag` binary here, with `--lanes` as given (its default
    /// with `None`). With one lane both connections are streams of one aggregated
    /// connection; with more, the round trips' stream takes a lane the bulk stream is not on.
    Proxy(PathBuf, Option<u8>),
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
    /// The SOCKS5 proxy `sink` and `echo` are reached through, if any.
    socks: Option<SocketAddr>,
    /// The proxy client's metrics, in the client namespace, if it serves them.
    metrics: Option<SocketAddr>,
    reads: mpsc::Receiver<Option<(f64, usize)>>,
    start: Instant,
    _tunnel: Vec<Killed>,
    _token: Option<Removed>,
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
    let at = |port| SocketAddr::from((SERVER, port));
    let tunnel = match crossing {
        Crossing::PlainTcp => {
            return Ok(Setup {
                sink: at(sink),
                echo: at(echo),
                socks: None,
                metrics: None,
                reads,
                start,
                _tunnel: Vec::new(),
                _token: None,
                _stop: stop,
            });
        }
        Crossing::Proxy(liag, lanes) => {
            let (socks, metrics, processes, token) = proxy(paths, liag, *lanes)?;
            return Ok(Setup {
                sink: at(sink),
                echo: at(echo),
                socks: Some(socks),
                metrics,
                reads,
                start,
                _tunnel: processes,
                _token: Some(token),
                _stop: stop,
            });
        }
        Crossing::Tunnel(_, tunnel) => tunnel,
    };
    let local = || {
        paths.within(Side::Client, || {
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
        })?
    };
    let (l_sink, l_echo) = (local()?.port(), local()?.port());
    let link_port = next_link_port();
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
        socks: None,
        metrics: None,
        reads,
        start,
        _tunnel: vec![client, server],
        _token: None,
        _stop: stop,
    })
}

/// A port for the next tunnel's or proxy's links.
fn next_link_port() -> u16 {
    LINK_PORT + TUNNELS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100
}

/// Runs `cmd` with its output discarded (unless `LIAG_TUNNEL_RUN_LOG` is set), killed when
/// dropped.
fn quiet(mut cmd: Command) -> io::Result<Killed> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    cmd.spawn().map(Killed)
}

/// `liag proxy server` in the server namespace and `liag proxy client` (with `--lanes` if
/// given) in the client namespace, linked over every path: the client's SOCKS5 address, its metrics address if
/// `LIAG_RESPONSIVE_LINKS` asks for it, both processes, and their token file.
fn proxy(
    paths: &NetPaths,
    liag: &std::path::Path,
    lanes: Option<u8>,
) -> io::Result<(SocketAddr, Option<SocketAddr>, Vec<Killed>, Removed)> {
    let path = std::env::temp_dir().join(format!(
        "liag-bench-responsive-{}-{}.token",
        std::process::id(),
        next_link_port()
    ));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(b"a bench token, long enough")?;
    }
    let token = path.display().to_string();
    // Two free ports at once, so they differ.
    let (socks_port, metrics_port) = paths.within(Side::Client, || {
        let a = TcpListener::bind("127.0.0.1:0")?;
        let b = TcpListener::bind("127.0.0.1:0")?;
        io::Result::Ok((a.local_addr()?, b.local_addr()?))
    })??;
    let metrics = std::env::var_os("LIAG_RESPONSIVE_LINKS").map(|_| metrics_port);
    let link_port = next_link_port().to_string();
    let liag = liag.display().to_string();
    let mut server = paths.command(Side::Server, &liag);
    server.args([
        "proxy",
        "server",
        "-n",
        "--allow-private",
        "--tcp",
        &link_port,
    ]);
    server.args(["--token-file", &token]);
    let server = quiet(server)?;
    let mut client = paths.command(Side::Client, &liag);
    client.args(["proxy", "client", "-n", "--listen", &socks_port.to_string()]);
    if let Some(metrics) = metrics {
        client.args(["--metrics", &metrics.to_string()]);
    }
    if let Some(lanes) = lanes {
        client.args(["--lanes", &lanes.to_string()]);
    }
    client.args([
        "--token-file",
        &token,
        "--tcp",
        &format!("{SERVER}:{link_port}"),
    ]);
    let client = quiet(client)?;
    Ok((socks_port, metrics, vec![client, server], Removed(path)))
}

/// A file removed when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A connection to `to` from the client namespace, through `socks` if given; either may take
/// up to 10 s to listen. A read that waits 10 s fails, so a stalled crossing fails the run
/// rather than hanging it.
fn open(paths: &NetPaths, socks: Option<SocketAddr>, to: SocketAddr) -> io::Result<TcpStream> {
    let stream = match socks {
        None => paths.within(Side::Client, || plain_tcp::connect_retrying(to))??,
        Some(socks) => {
            let began = Instant::now();
            loop {
                match paths.within(Side::Client, || super::proxy::socks_connect(socks, to))? {
                    Ok(stream) => break stream,
                    Err(e) if began.elapsed() > Duration::from_secs(10) => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// Round trips for `secs` through `crossing`, with a bulk transfer beside them if `loaded`
/// (from a second before the round trips start to their end).
fn once(paths: &NetPaths, crossing: &Crossing, loaded: bool, secs: f64) -> io::Result<Figures> {
    let Setup {
        sink,
        echo,
        socks,
        metrics,
        reads,
        start,
        _tunnel,
        _token,
        _stop,
    } = setup(paths, crossing)?;
    let count = (secs / INTERVAL.as_secs_f64()) as usize;
    let echo = warm_echo(paths, socks, echo)?;
    let (rtts, bulk_mbit) = std::thread::scope(|scope| -> io::Result<_> {
        let bulk = loaded
            .then(|| -> io::Result<_> {
                let stream = open(paths, socks, sink)?;
                Ok(scope.spawn(move || plain_tcp::bulk(stream, start, &reads, 1.0, secs)))
            })
            .transpose()?;
        if bulk.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        if let (Some(metrics), true) = (metrics, loaded) {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_secs_f64(secs / 2.0));
                match paths.within(Side::Client, || super::links::scrape(metrics)) {
                    Ok(Ok(text)) => super::links::eprint_links(&text),
                    Ok(Err(e)) | Err(e) => eprintln!("  responsive: no metrics: {e}"),
                }
            });
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
fn warm_echo(paths: &NetPaths, socks: Option<SocketAddr>, at: SocketAddr) -> io::Result<TcpStream> {
    let began = Instant::now();
    loop {
        let echo = open(paths, socks, at)?;
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
    let congestion_control = congestion_control(&paths)?;
    let sum: f64 = RATES.iter().sum();
    let mut rows = Vec::new();
    let only = std::env::var("LIAG_RESPONSIVE_ONLY").ok();
    // What the paths carry for TCP, their headers off: the sum the bulk rows are also shown
    // against (the targets are judged against the nominal `sum`).
    let mut carried = Vec::new();
    const EACH_PATH: &str = "plain TCP, every path at once";
    if only
        .as_ref()
        .is_none_or(|only| EACH_PATH.contains(only.as_str()))
    {
        for run in 0..runs {
            std::thread::sleep(Duration::from_millis(300));
            let mbit = tcp_over_each_path(&paths, secs)?;
            eprintln!(
                "  responsive run {}, {EACH_PATH}: bulk {mbit:.1} Mbit/s of {sum:.0}",
                run + 1
            );
            carried.push(mbit);
        }
    }
    let carried = (!carried.is_empty()).then(|| median(&carried));
    let mut cases: Vec<(&Crossing, bool)> = crossings.iter().map(|c| (c, true)).collect();
    if let Some(tunnel) = crossings.iter().find(|c| matches!(c, Crossing::Tunnel(..))) {
        cases.insert(0, (tunnel, false));
    }
    for (crossing, loaded) in cases {
        let name = match (crossing, loaded) {
            (Crossing::PlainTcp, _) => "plain TCP, first path".to_string(),
            (Crossing::Tunnel(name, _), true) => format!("{name}, bulk on another connection"),
            (Crossing::Tunnel(name, _), false) => format!("{name}, idle"),
            (Crossing::Proxy(_, None), true) => "liag proxy, bulk on another lane".to_string(),
            (Crossing::Proxy(_, Some(1)), true) => {
                "liag proxy --lanes 1, bulk in the same connection".to_string()
            }
            (Crossing::Proxy(_, Some(n)), true) => format!("liag proxy --lanes {n}, bulk"),
            (Crossing::Proxy(..), false) => "liag proxy, idle".to_string(),
        };
        if only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
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
                    ", bulk {m:.1} Mbit/s of {sum:.0}{}",
                    carried.map_or(String::new(), |c| format!(
                        " ({:.1} % of plain TCP over every path)",
                        m / c * 100.0
                    ))
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
        "tcp_every_path_mbit_s": carried,
        "congestion_control": congestion_control,
        "runs": runs,
        "rows": rows,
    }))
}

/// Mbit/s of goodput that plain TCP gets over all the paths at once: a bulk connection on each,
/// bound to its path's interface, into one sink, for `secs` after a second.
fn tcp_over_each_path(paths: &NetPaths, secs: f64) -> io::Result<f64> {
    use socket2::{Domain, Socket, Type};
    let stop = Stopper::default();
    let (tx, reads) = mpsc::channel();
    let start = Instant::now();
    let sink = paths.within(Side::Server, || plain_tcp::sink(stop.0.clone(), start, tx))??;
    let to = SocketAddr::from((SERVER, sink));
    let streams = paths.within(Side::Client, || {
        (0..paths.rates().len())
            .map(|i| {
                let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                socket.bind_device(Some(NetPaths::dev(Side::Client, i).as_bytes()))?;
                socket.set_tcp_nodelay(true)?;
                socket.connect_timeout(&to.into(), Duration::from_secs(10))?;
                io::Result::Ok(TcpStream::from(socket))
            })
            .collect::<io::Result<Vec<_>>>()
    })??;
    let mb_s = plain_tcp::bulk_all(streams, start, &reads, 1.0, secs)?;
    Ok(mb_s * 8.0)
}

/// Sets both namespaces' TCP congestion control to `LIAG_BENCH_CC` if given; the one they use.
fn congestion_control(paths: &NetPaths) -> io::Result<String> {
    const KEY: &str = "net.ipv4.tcp_congestion_control";
    let wanted = std::env::var("LIAG_BENCH_CC").ok();
    let mut used = String::new();
    for side in [Side::Client, Side::Server] {
        let mut sysctl = paths.command(side, "sysctl");
        match &wanted {
            Some(name) => sysctl.args(["-w", &format!("{KEY}={name}")]),
            None => sysctl.args(["-n", KEY]),
        };
        let out = sysctl.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "sysctl {KEY} failed: {} (a namespace may use only what the host's \
                 net.ipv4.tcp_allowed_congestion_control lists)",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        used = text
            .rsplit(['=', ' '])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
    }
    eprintln!("  responsive: TCP congestion control {used}");
    Ok(used)
}

/// The crossings: plain TCP, `liag tunnel` and `liag proxy` at `liag`, and each
/// `(version, agg-tunnel)`.
pub fn crossings(liag: &std::path::Path, aggligators: &[(String, PathBuf)]) -> Vec<Crossing> {
    let mut all = vec![
        Crossing::PlainTcp,
        Crossing::Tunnel("liag tunnel".into(), Tunnel::liag(liag)),
        Crossing::Proxy(liag.to_path_buf(), None),
        // One lane: the bulk data and the round trips in the same connection.
        Crossing::Proxy(liag.to_path_buf(), Some(1)),
    ];
    all.extend(aggligators.iter().map(|(version, path)| {
        Crossing::Tunnel(format!("agg-tunnel {version}"), Tunnel::aggligator(path))
    }));
    all
}
