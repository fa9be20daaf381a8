//! The operator's tunnel: bulk transfer and 64-byte round trips through two `liag tunnel`
//! processes, beside two baselines measured in the same run over the same paths — direct TCP
//! over one path, and a plain user-space relay pair ([`crate::plain_tcp`]) — and, where their
//! binaries are named, aggligator's `agg-tunnel` at both ends.
//!
//! It runs on loopback (three links to 127.0.0.1, .2 and .3) and, where network namespaces
//! can be made, over three unshaped veth paths between two namespaces.

use serde_json::{Value, json};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::quantile;
use crate::netpaths::{NetPaths, SERVER, Side};
use crate::plain_tcp::{self, Stop, Stopper};
use crate::tunnel_run::Killed;

/// Where the two ends run.
pub enum Place {
    /// Both on this host's loopback; links to 127.0.0.1, .2 and .3.
    Loopback,
    /// Two namespaces joined by unshaped veth paths.
    Veth(NetPaths),
}

impl Place {
    /// Three unshaped veth paths, or why they cannot be made.
    pub fn veth() -> io::Result<Place> {
        NetPaths::new(&[f64::INFINITY; 3]).map(Place::Veth)
    }

    fn name(&self) -> &'static str {
        match self {
            Place::Loopback => "loopback",
            Place::Veth(_) => "3 unshaped veth paths",
        }
    }

    fn within<T: Send>(&self, side: Side, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        match self {
            Place::Loopback => Ok(f()),
            Place::Veth(paths) => paths.within(side, f),
        }
    }

    fn command(&self, side: Side, program: &str) -> Command {
        match self {
            Place::Loopback => Command::new(program),
            Place::Veth(paths) => paths.command(side, program),
        }
    }

    /// The server's address as the client reaches it (over the first path).
    fn server_ip(&self) -> IpAddr {
        match self {
            Place::Loopback => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Place::Veth(_) => IpAddr::V4(SERVER),
        }
    }

    /// A tunnel client's link arguments for a server taking links on `port`.
    fn link_args(&self, port: u16) -> Vec<String> {
        match self {
            Place::Loopback => {
                let mut args: Vec<String> = (1..=3)
                    .flat_map(|i| ["--tcp".to_string(), format!("127.0.0.{i}:{port}")])
                    .collect();
                args.extend(["--tcp-link-filter".into(), "none".into()]);
                args
            }
            Place::Veth(_) => vec!["--tcp".into(), format!("{SERVER}:{port}")],
        }
    }
}

/// A tunnel program to measure: `liag tunnel` or `agg-tunnel`.
pub struct Program {
    /// How the report names it.
    pub name: String,
    /// The binary.
    pub path: PathBuf,
    /// Arguments before `server` or `client` (`tunnel` for liag).
    pub prefix: Vec<String>,
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Lengths {
    /// Seconds of bulk transfer not counted, then counted.
    pub warm: f64,
    /// Seconds of bulk transfer counted.
    pub secs: f64,
    /// Round trips timed, at most.
    pub samples: usize,
    /// The most time spent timing them: a slow crossing's figure rests on fewer.
    pub round_trip_secs: f64,
}

/// What one way of crossing measured.
struct Figures {
    bulk_mb_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// Round trips timed.
    samples: usize,
}

impl Figures {
    fn json(&self, name: &str) -> Value {
        json!({"name": name, "bulk_mb_s": self.bulk_mb_s, "p50_us": self.p50_us,
               "p99_us": self.p99_us, "samples": self.samples})
    }
}

/// The servers every way of crossing leads to: a sink and an echo server on the server side.
struct Targets {
    sink: u16,
    echo: u16,
    reads: mpsc::Receiver<Option<(f64, usize)>>,
    start: Instant,
    _stop: Stopper,
}

fn targets(place: &Place) -> io::Result<Targets> {
    let stop = Stopper::default();
    let start = Instant::now();
    let (tx, reads) = mpsc::channel();
    let (sink, echo) = place.within(Side::Server, || {
        io::Result::Ok((
            plain_tcp::sink(stop.0.clone(), start, tx)?,
            plain_tcp::echo(stop.0.clone())?,
        ))
    })??;
    Ok(Targets {
        sink,
        echo,
        reads,
        start,
        _stop: stop,
    })
}

/// Measures bulk and round trips from the client side to `bulk_at` and `echo_at`.
fn measure(
    place: &Place,
    targets: &Targets,
    (bulk_at, echo_at): (SocketAddr, SocketAddr),
    len: Lengths,
) -> io::Result<Figures> {
    let stream = place.within(Side::Client, || plain_tcp::connect_retrying(bulk_at))??;
    let mb_s = plain_tcp::bulk(stream, targets.start, &targets.reads, len.warm, len.secs)?;
    let stream = place.within(Side::Client, || plain_tcp::connect_retrying(echo_at))??;
    let within = Duration::from_secs_f64(len.round_trip_secs);
    let mut times = plain_tcp::round_trips(stream, len.samples, within)?;
    let samples = times.len();
    if samples == 0 {
        return Err(io::Error::other("no round trip was timed"));
    }
    let mut us = |q| quantile(&mut times, q).as_secs_f64() * 1e6;
    Ok(Figures {
        samples,
        bulk_mb_s: mb_s,
        p50_us: us(0.5),
        p99_us: us(0.99),
    })
}

/// A port free on `side` now (bound, read and let go).
fn free_port(place: &Place, side: Side) -> io::Result<u16> {
    place.within(side, || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
    })?
}

/// Crosses through `program`'s server and client.
fn through_tunnel(
    place: &Place,
    targets: &Targets,
    program: &Program,
    len: Lengths,
) -> io::Result<Figures> {
    let link_port = match place {
        Place::Loopback => free_port(place, Side::Server)?,
        Place::Veth(_) => 5800,
    };
    let (l_bulk, l_echo) = (
        free_port(place, Side::Client)?,
        free_port(place, Side::Client)?,
    );
    let path = program.path.display().to_string();
    let spawn = |mut cmd: Command| -> io::Result<Killed> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        cmd.spawn().map(Killed)
    };
    let mut server = place.command(Side::Server, &path);
    server.args(&program.prefix).arg("server");
    server.args(["-n", "--tcp", &link_port.to_string()]);
    server.args([
        "-p",
        &targets.sink.to_string(),
        "-p",
        &targets.echo.to_string(),
    ]);
    let _server = spawn(server)?;
    let mut client = place.command(Side::Client, &path);
    client.args(&program.prefix).arg("client").arg("-n");
    client.args(["-p", &format!("{}:{l_bulk}", targets.sink)]);
    client.args(["-p", &format!("{}:{l_echo}", targets.echo)]);
    client.args(place.link_args(link_port));
    let _client = spawn(client)?;
    let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    measure(place, targets, (local(l_bulk), local(l_echo)), len)
}

/// Crosses through a plain relay pair over the first path.
fn through_relay(place: &Place, targets: &Targets, len: Lengths) -> io::Result<Figures> {
    let stop = Stopper::default();
    let exit = place.within(Side::Server, || plain_tcp::relay_exit(stop.0.clone()))??;
    let exit = SocketAddr::new(place.server_ip(), exit);
    let entry = |port| -> io::Result<SocketAddr> {
        let s: Stop = stop.0.clone();
        let local = place.within(Side::Client, || plain_tcp::relay_entry(s, exit, port))??;
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, local)))
    };
    measure(
        place,
        targets,
        (entry(targets.sink)?, entry(targets.echo)?),
        len,
    )
}

/// Runs every way of crossing at `place`: direct TCP, the relay pair, then each program.
pub fn run(place: &Place, programs: &[Program], len: Lengths) -> io::Result<Value> {
    let targets = targets(place)?;
    let direct = |port| SocketAddr::new(place.server_ip(), port);
    let mut rows = Vec::new();
    let figures = measure(
        place,
        &targets,
        (direct(targets.sink), direct(targets.echo)),
        len,
    )?;
    rows.push(figures.json("direct TCP, one path"));
    rows.push(through_relay(place, &targets, len)?.json("plain relay pair, one path"));
    for program in programs {
        // A pause between programs, so the previous one's sockets are gone.
        std::thread::sleep(Duration::from_millis(200));
        rows.push(through_tunnel(place, &targets, program, len)?.json(&program.name));
    }
    Ok(json!({
        "kind": "tunnel",
        "scenario": format!("operator's tunnel, {}", place.name()),
        "rows": rows,
    }))
}
