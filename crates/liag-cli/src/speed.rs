//! `liag speed`: a speed test over real TCP and WebSocket links, optionally inside TLS,
//! flag-compatible with aggligator's `agg-speed` and speaking its test stream, so either end
//! can be liag or aggligator.

use serde::Serialize;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use liag_transports::connect_with;
use liag_transports::liag_tokio::{Control, EndpointConfig, ReadHalf, Server, WriteHalf};
use liag_transports::tcp::{TcpAcceptor, TcpLinkFilter};
use liag_transports::websocket::{AGG_SPEED_PATH, DEFAULT_PORT as WS_DEFAULT_PORT, WsAcceptor};
use liag_transports::{MultiConnector, TieredConnector};

use crate::links::{
    ClientLinks, ClientTls, IpChoice, ServerTls, SocksLinks, TierArgs, serve_rfcomm, spawn_serve,
};
use crate::service::say;
use crate::service::{self, Service, ServiceArgs};
use crate::speed_stream::{Generator, PIECE};
use crate::view::{LinkRow, View};

/// agg-speed's default port.
const DEFAULT_PORT: u16 = 5700;

/// Options of `liag speed`.
#[derive(Debug, Clone, clap::Subcommand)]
// Parsed once at start-up: the client's larger size is of no account.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Args {
    /// Answers speed tests: sends test data and checks what arrives.
    Server {
        /// TCP port to listen on.
        #[arg(long = "tcp", default_value_t = DEFAULT_PORT, value_name = "PORT")]
        tcp: u16,
        /// WebSocket (HTTP) port to listen on, at path /agg-speed.
        #[arg(long = "websocket", default_value_t = WS_DEFAULT_PORT, value_name = "PORT")]
        websocket: u16,
        /// Also accept Bluetooth RFCOMM links on this channel (agg-speed uses 20; Linux, a
        /// build with `--features bluetooth`).
        #[arg(long = "rfcomm", value_name = "CHANNEL")]
        rfcomm: Option<u8>,
        #[command(flatten)]
        tls: ServerTls,
        /// Listen on each network interface individually.
        #[arg(short = 'i', long = "individual-interfaces")]
        individual: bool,
        /// Exit after one connection.
        #[arg(long)]
        oneshot: bool,
        /// Do not print per-connection results.
        #[arg(short = 'n', long = "no-monitor")]
        no_monitor: bool,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Measures send and receive speed to a server over every path to it.
    Client {
        /// The server, as `host` or `host:port`; repeat for several of its addresses.
        #[arg(
            long = "tcp",
            required_unless_present_any = ["websocket", "rfcomm", "socks"],
            value_name = "HOST[:PORT]"
        )]
        tcp: Vec<String>,
        /// WebSocket hosts or URLs; a host means ws://HOST:8080/agg-speed. Repeatable.
        #[arg(long = "websocket", value_name = "URL|HOST")]
        websocket: Vec<String>,
        /// Bluetooth RFCOMM links to a device, as ADDRESS (channel 20) or ADDRESS/CHANNEL or
        /// ADDRESS/UUID; one link per local adapter (Linux, a build with
        /// `--features bluetooth`).
        #[arg(long = "rfcomm", value_name = "ADDRESS[/CHANNEL|UUID]")]
        rfcomm: Vec<String>,
        #[command(flatten)]
        socks: SocksLinks,
        #[command(flatten)]
        tls: ClientTls,
        /// Which links to keep: none, interface-interface or interface-ip.
        #[arg(long = "tcp-link-filter", default_value = "interface-interface")]
        link_filter: TcpLinkFilter,
        #[command(flatten)]
        ip: IpChoice,
        #[command(flatten)]
        tiers: TierArgs,
        /// Test for this many seconds.
        #[arg(short = 't', long = "time", default_value_t = 10.0)]
        time: f64,
        /// Stop after this many MB sent.
        #[arg(short = 'l', long = "limit")]
        limit: Option<u64>,
        /// Only measure the send speed.
        #[arg(short = 's', long = "send-only", conflicts_with = "recv_only")]
        send_only: bool,
        /// Only measure the receive speed.
        #[arg(short = 'r', long = "recv-only")]
        recv_only: bool,
        /// No live view.
        #[arg(short = 'n', long = "no-monitor")]
        no_monitor: bool,
        /// Print one JSON object with the results.
        #[arg(short = 'j', long = "json")]
        json: bool,
        #[command(flatten)]
        service: ServiceArgs,
    },
}

pub(crate) async fn run(args: Args, service: Service<Args>) -> io::Result<ExitCode> {
    match args {
        Args::Server {
            tcp,
            websocket,
            rfcomm,
            tls,
            individual,
            oneshot,
            no_monitor,
            service: options,
        } => {
            let listen = Listen {
                tcp,
                websocket,
                rfcomm,
                tls,
                individual,
            };
            server(listen, (oneshot, no_monitor), options, service).await
        }
        Args::Client {
            tcp,
            websocket,
            rfcomm,
            socks,
            tls,
            link_filter,
            ip,
            tiers,
            time,
            limit,
            send_only,
            recv_only,
            no_monitor,
            json,
            service: options,
        } => {
            let links = ClientLinks {
                tcp,
                tcp_default_port: DEFAULT_PORT,
                filter: link_filter,
                websocket,
                ws_default_port: WS_DEFAULT_PORT,
                ws_path: AGG_SPEED_PATH,
                ip_version: ip.version(),
                rfcomm,
                socks,
                tls,
                tiers,
            };
            let connector = links.connector().await?;
            let endpoint = links.endpoint_config();
            let test = Test {
                time: Duration::from_secs_f64(time.max(0.1)),
                limit: limit.map(|mb| mb * 1_000_000),
                send: !recv_only,
                receive: !send_only,
            };
            if let Some(addr) = options.metrics {
                service::metrics::serve(addr, "speed-client", &service.connections, None)?;
            }
            client((connector, endpoint), test, (no_monitor, json), service).await
        }
    }
}

/// Sends the test stream until `stop` says so or the peer stops reading; returns bytes sent.
async fn send(
    mut w: WriteHalf,
    stop: Arc<AtomicBool>,
    limit: Option<u64>,
    sent: Arc<AtomicU64>,
) -> io::Result<u64> {
    let seed = rand::random::<u64>();
    w.write_all(&seed.to_be_bytes()).await?;
    let mut generator = Generator::new(seed);
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| total < l) {
        match w.write_all(generator.next_piece()).await {
            Ok(()) => {
                total += PIECE as u64;
                sent.fetch_add(PIECE as u64, Ordering::Relaxed);
            }
            // The peer stopped receiving: the test of this direction is over.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e),
        }
    }
    let _ = w.shutdown().await;
    Ok(total)
}

/// Reads and checks the test stream until its end or `stop`; returns bytes received.
async fn receive(
    mut r: ReadHalf,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
) -> io::Result<u64> {
    let mut seed = [0u8; 8];
    match r.read_exact(&mut seed).await {
        Ok(_) => {}
        // The peer sends nothing in this direction.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
        Err(e) => return Err(e),
    }
    let mut checker = Generator::new(u64::from_be_bytes(seed));
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if !checker.check(&buf[..n]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "received data is malformed",
            ));
        }
        total += n as u64;
        received.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(total)
}

/// What the server listens on.
struct Listen {
    tcp: u16,
    websocket: u16,
    rfcomm: Option<u8>,
    tls: ServerTls,
    individual: bool,
}

async fn server(
    listen: Listen,
    (oneshot, quiet): (bool, bool),
    options: ServiceArgs,
    service: Service<Args>,
) -> io::Result<ExitCode> {
    let tls = listen.tls.config()?;
    let acceptor = if listen.individual {
        TcpAcceptor::each_interface(listen.tcp).await?
    } else {
        TcpAcceptor::all_interfaces(listen.tcp).await?
    };
    let (server, mut listener) = Server::new(EndpointConfig::default());
    if let Some(addr) = options.metrics {
        service::metrics::serve(
            addr,
            "speed-server",
            &service.connections,
            Some(server.clone()),
        )?;
    }
    let with_tls = if tls.is_some() { " with TLS" } else { "" };
    say!(
        "liag speed server on TCP {:?}{with_tls}",
        acceptor.local_addrs()
    );
    spawn_serve(acceptor, &tls, &server, "TCP".into());
    // As agg-speed: a WebSocket port that cannot be had is reported, and TCP goes on.
    match WsAcceptor::all_interfaces(listen.websocket, AGG_SPEED_PATH).await {
        Ok(ws) => {
            say!(
                "liag speed server on WebSocket {:?} at {AGG_SPEED_PATH}{with_tls}",
                ws.local_addrs()
            );
            spawn_serve(ws, &tls, &server, "WebSocket".into());
        }
        Err(e) => say!("liag speed server: no WebSocket: {e}"),
    }
    if let Some(channel) = listen.rfcomm {
        serve_rfcomm(channel, &tls, &server, "liag speed server").await;
    }
    service::notify_ready();
    let shutdown = service.shutdown.clone();
    loop {
        let incoming = tokio::select! {
            incoming = listener.next() => incoming,
            () = shutdown.stopping() => None,
        };
        let Some(incoming) = incoming else { break };
        let tag = incoming.tag().to_string();
        let conn = incoming.accept();
        let control = conn.control();
        let tracked = service
            .connections
            .track(format!("from {tag}"), control.clone());
        let (r, w) = conn.into_split();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let answer = async move {
            let start = Instant::now();
            // A task of its own, so sending and receiving may run on two threads; aborted
            // should the test be dropped.
            let sending = AbortOnDropHandle::new(tokio::spawn(send(
                w,
                stop.clone(),
                None,
                counters.0.clone(),
            )));
            let received = receive(r, stop.clone(), counters.1.clone()).await;
            let sent = sending.await.map_err(io::Error::other).and_then(|r| r);
            let secs = start.elapsed().as_secs_f64();
            if !quiet {
                match (&sent, &received) {
                    (Ok(s), Ok(r)) => say!(
                        "{tag}: sent {:.2} MB/s, received {:.2} MB/s (verified)",
                        *s as f64 / secs / 1e6,
                        *r as f64 / secs / 1e6
                    ),
                    (s, r) => say!(
                        "{tag}: test failed: {:?} {:?}",
                        s.as_ref().err(),
                        r.as_ref().err()
                    ),
                }
            }
            received.is_ok()
        };
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let task = shutdown.clone();
        shutdown.spawn(async move {
            // On shutdown the test is dropped, which ends its connection gracefully.
            // A test cut short by shutdown did not pass.
            let ok = task.guard(&control, answer).await.unwrap_or(false);
            drop(tracked);
            let _ = done_tx.send(ok);
        });
        if oneshot {
            let ok = done.await.unwrap_or(false);
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    drop(listener);
    shutdown.drain().await;
    Ok(ExitCode::SUCCESS)
}

struct Test {
    time: Duration,
    limit: Option<u64>,
    send: bool,
    receive: bool,
}

#[derive(Serialize)]
struct LinkReport {
    tag: String,
    rtt_ms: f64,
    sent_bytes: u64,
    received_bytes: u64,
    send_speed: f64,
    recv_speed: f64,
    /// Data bytes sent on the link as redundant copies (`--redundant`).
    copied_bytes: u64,
    /// Blocked at the end because its interface's allowance (`--cap`) was used up.
    over_allowance: bool,
}

#[derive(Serialize)]
struct AllowanceReport {
    interface: String,
    used_bytes: u64,
    limit_bytes: u64,
    period: String,
}

#[derive(Serialize)]
struct Report {
    data_limit: Option<u64>,
    time_limit: f64,
    send_speed: f64,
    recv_speed: f64,
    links: Vec<LinkReport>,
    /// Each `--cap` allowance at the end.
    allowances: Vec<AllowanceReport>,
}

async fn client(
    (connector, endpoint): (TieredConnector<MultiConnector>, EndpointConfig),
    test: Test,
    (quiet, json): (bool, bool),
    service: Service<Args>,
) -> io::Result<ExitCode> {
    let (stream, links) = connect_with(connector, endpoint);
    let control = links.outgoing().control();
    let _tracked = service.connections.track("speed test", control.clone());
    // Wait for the first link, so the clock starts with the transfer.
    links.wait_for_link(Duration::from_secs(10)).await?;
    let (r, mut w) = stream.into_split();
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, received) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let sending = if test.send {
        Some(tokio::spawn(send(
            w,
            stop.clone(),
            test.limit,
            sent.clone(),
        )))
    } else {
        w.shutdown().await?;
        drop(w);
        None
    };
    let receiving = if test.receive {
        Some(tokio::spawn(receive(r, stop.clone(), received.clone())))
    } else {
        // Dropping the read side tells the server to stop sending.
        drop(r);
        None
    };

    let mut view = View::new(quiet || json, control.links().len().max(1), test.time);
    let mut last = (Duration::ZERO, 0u64);
    // SIGINT or SIGTERM ends the test early, with the figures so far.
    while start.elapsed() < test.time && !service.shutdown.is_stopping() {
        if sending.as_ref().is_some_and(|t| t.is_finished())
            && receiving.as_ref().is_none_or(|t| t.is_finished())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = start.elapsed();
        if t - last.0 >= view.interval() {
            render(
                &mut view,
                &control,
                t,
                (t - last.0).as_secs_f64(),
                sent.load(Ordering::Relaxed) - last.1,
            );
            last = (t, sent.load(Ordering::Relaxed));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    // The send figure counts what the server has acknowledged by now, not what sits in the
    // send buffer (agg-speed counts bytes written, its buffer of up to 64 MiB included).
    // `sent` is read first: a piece finished after it is in flight but not counted, so the
    // figure errs low.
    let written = sent.load(Ordering::Relaxed);
    let backlog = control.stats();
    let in_flight = (backlog.queued + backlog.unacked) as u64;
    let acknowledged = written.saturating_sub(in_flight);
    let link_figures = control.link_rates();
    if let Some(t) = sending {
        t.await.map_err(io::Error::other)??;
    }
    let received_total = match receiving {
        Some(t) => {
            // The receiver stops at its next read; the stream may be idle, so do not wait long.
            match tokio::time::timeout(Duration::from_secs(2), t).await {
                Ok(r) => r.map_err(io::Error::other)??,
                Err(_) => received.load(Ordering::Relaxed),
            }
        }
        None => 0,
    };
    view.finish();
    // Let the connection end gracefully, so the server hears that both directions are done.
    let _ = tokio::time::timeout(Duration::from_secs(5), control.closed()).await;
    let report = Report {
        data_limit: test.limit.map(|l| l / 1_000_000),
        time_limit: test.time.as_secs_f64(),
        send_speed: acknowledged as f64 / elapsed,
        recv_speed: received_total as f64 / elapsed,
        links: link_figures
            .iter()
            .map(|l| LinkReport {
                tag: l.stats.tag.clone(),
                rtt_ms: l.stats.rtt.as_secs_f64() * 1000.0,
                sent_bytes: l.stats.sent_bytes,
                received_bytes: l.stats.received_bytes,
                send_speed: l.stats.sent_bytes as f64 / elapsed,
                recv_speed: l.stats.received_bytes as f64 / elapsed,
                copied_bytes: l.stats.copied_bytes,
                over_allowance: l.stats.over_allowance,
            })
            .collect(),
        allowances: crate::allowance::shown()
            .into_iter()
            .map(|a| AllowanceReport {
                interface: a.interface,
                used_bytes: a.used,
                limit_bytes: a.limit,
                period: a.period,
            })
            .collect(),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let copied: u64 = report.links.iter().map(|l| l.copied_bytes).sum();
        let copies = if copied > 0 {
            format!(", {:.1} MB sent twice (redundant)", copied as f64 / 1e6)
        } else {
            String::new()
        };
        println!(
            "send {:.2} MB/s, receive {:.2} MB/s (verified) over {} link(s){copies}",
            report.send_speed / 1e6,
            report.recv_speed / 1e6,
            report.links.len()
        );
        for allowance in crate::allowance::shown() {
            println!("allowance {}", allowance.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(view: &mut View, control: &Control, t: Duration, secs: f64, sent: u64) {
    let rows: Vec<LinkRow> = control
        .link_rates()
        .into_iter()
        .map(|l| LinkRow {
            name: l.stats.tag.clone(),
            state: if l.stats.over_allowance {
                "blocked (allowance)".into()
            } else {
                format!("{:?}", l.stats.state).to_lowercase()
            },
            rtt: l.stats.rtt,
            rate: l.send_1s,
            capacity: 0.0,
            total: l.stats.sent_bytes,
        })
        .collect();
    view.render(t, &rows, sent as f64 / secs.max(1e-3), 0.0, sent);
}
