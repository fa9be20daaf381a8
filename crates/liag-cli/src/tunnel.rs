//! `liag tunnel`: forwards TCP ports over aggregated connections, flag-compatible with
//! aggligator's `agg-tunnel` and speaking its stream (a 2-byte port header, then the bytes).
//! WebSocket links and TLS are liag's additions (agg-tunnel has neither).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use liag_transports::connect_with;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Server};
use liag_transports::tcp::{TcpAcceptor, TcpLinkFilter};
use liag_transports::websocket::WsAcceptor;

use crate::limits::ServerLimits;
use crate::links::{
    ClientLinks, ClientTls, IpChoice, ServerTls, SocksLinks, serve_rfcomm, spawn_serve,
};
use crate::relay::relay;

/// The port aggregated links use when `--tcp` gives none.
const DEFAULT_PORT: u16 = 5800;
/// The WebSocket port when `--websocket` gives a host only.
const WS_DEFAULT_PORT: u16 = 5801;
/// The URL path of the tunnel's WebSocket links.
const WS_PATH: &str = "/liag-tunnel";

/// Options of `liag tunnel`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Args {
    /// Accepts aggregated connections and forwards each to a published port.
    Server {
        /// A port to publish, as `port` (on localhost) or `target:port`; repeatable.
        #[arg(
            short = 'p',
            long = "port",
            required = true,
            value_name = "[TARGET:]PORT"
        )]
        ports: Vec<String>,
        /// TCP port to accept links on (all interfaces).
        #[arg(long = "tcp", default_value_t = DEFAULT_PORT, value_name = "PORT")]
        tcp: u16,
        /// Also accept WebSocket links on this port, at path /liag-tunnel.
        #[arg(long = "websocket", value_name = "PORT")]
        websocket: Option<u16>,
        /// Also accept Bluetooth RFCOMM links on this channel (Linux, a build with
        /// `--features bluetooth`).
        #[arg(long = "rfcomm", value_name = "CHANNEL")]
        rfcomm: Option<u8>,
        #[command(flatten)]
        tls: ServerTls,
        #[command(flatten)]
        limits: ServerLimits,
        /// Accepted for agg-tunnel compatibility; liag's tunnel shows no link monitor.
        #[arg(short = 'n', long = "no-monitor")]
        no_monitor: bool,
    },
    /// Listens on local ports and forwards each connection to the server over aggregated links.
    Client {
        /// `SERVER_PORT:LOCAL_PORT` to forward; repeatable.
        #[arg(
            short = 'p',
            long = "port",
            required = true,
            value_name = "SERVER_PORT:LOCAL_PORT"
        )]
        ports: Vec<String>,
        /// The server, as `host` or `host:port`; repeat for several addresses of it.
        #[arg(
            long = "tcp",
            required_unless_present_any = ["websocket", "rfcomm", "socks"],
            value_name = "HOST[:PORT]"
        )]
        tcp: Vec<String>,
        /// WebSocket hosts or URLs; a host means ws://HOST:5801/liag-tunnel. Repeatable.
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
        /// Accept forwarded connections on all interfaces, not only loopback.
        #[arg(short = 'g', long = "global")]
        global: bool,
        /// Exit after one forwarded connection.
        #[arg(long)]
        once: bool,
        /// Accepted for agg-tunnel compatibility; liag's tunnel shows no link monitor.
        #[arg(short = 'n', long = "no-monitor")]
        no_monitor: bool,
    },
}

pub(crate) async fn run(args: Args) -> io::Result<ExitCode> {
    match args {
        Args::Server {
            ports,
            tcp,
            websocket,
            rfcomm,
            tls,
            limits,
            ..
        } => server(ports, tcp, (websocket, rfcomm), tls, limits).await,
        Args::Client {
            ports,
            tcp,
            websocket,
            rfcomm,
            socks,
            tls,
            link_filter,
            ip,
            global,
            once,
            ..
        } => {
            let links = ClientLinks {
                tcp,
                tcp_default_port: DEFAULT_PORT,
                filter: link_filter,
                websocket,
                ws_default_port: WS_DEFAULT_PORT,
                ws_path: WS_PATH,
                ip_version: ip.version(),
                rfcomm,
                socks,
                tls,
            };
            client(ports, links, global, once).await
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `port` or `target:port` → (port, target address).
fn parse_published(spec: &str) -> io::Result<(u16, String)> {
    let (target, port) = match spec.rsplit_once(':') {
        Some((target, port)) => (target.to_string(), port),
        None => ("localhost".to_string(), spec),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("{spec:?}: expected PORT or TARGET:PORT")))?;
    Ok((port, format!("{target}:{port}")))
}

async fn server(
    ports: Vec<String>,
    tcp: u16,
    (websocket, rfcomm): (Option<u16>, Option<u8>),
    tls: ServerTls,
    limits: ServerLimits,
) -> io::Result<ExitCode> {
    let published: HashMap<u16, String> = ports
        .iter()
        .map(|p| parse_published(p))
        .collect::<io::Result<_>>()?;
    let tls = tls.config()?;
    let with_tls = if tls.is_some() { " with TLS" } else { "" };
    let acceptor = TcpAcceptor::all_interfaces(tcp).await?;
    let (server, mut listener) = Server::new(limits.config());
    eprintln!(
        "liag tunnel server: links on TCP {:?}{with_tls}, publishing {:?}",
        acceptor.local_addrs(),
        published
    );
    spawn_serve(acceptor, &tls, &server, "TCP".into());
    if let Some(port) = websocket {
        let ws = WsAcceptor::all_interfaces(port, WS_PATH).await?;
        eprintln!(
            "liag tunnel server: links on WebSocket {:?} at {WS_PATH}{with_tls}",
            ws.local_addrs()
        );
        spawn_serve(ws, &tls, &server, "WebSocket".into());
    }
    if let Some(channel) = rfcomm {
        serve_rfcomm(channel, &tls, &server, "liag tunnel server").await;
    }
    while let Some(incoming) = listener.next().await {
        let stream = incoming.accept();
        let published = published.clone();
        tokio::spawn(async move {
            if let Err(e) = forward_to_target(stream, &published).await {
                eprintln!("liag tunnel server: {e}");
            }
        });
    }
    Ok(ExitCode::SUCCESS)
}

async fn forward_to_target(
    mut stream: Connection,
    published: &HashMap<u16, String>,
) -> io::Result<()> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await?;
    let port = u16::from_be_bytes(header);
    let Some(target) = published.get(&port) else {
        // Terminate, so the client learns at once that this went wrong.
        stream.control().terminate();
        return Err(invalid(format!(
            "a client asked for port {port}, which is not published"
        )));
    };
    let socket = TcpStream::connect(target)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {target}: {e}")))?;
    socket.set_nodelay(true)?;
    eprintln!("liag tunnel server: forwarding to {target}");
    relay(socket, stream).await?;
    Ok(())
}

async fn client(
    ports: Vec<String>,
    links: ClientLinks,
    global: bool,
    once: bool,
) -> io::Result<ExitCode> {
    let mut listeners = Vec::new();
    for spec in &ports {
        let (server_port, local_port) = spec
            .split_once(':')
            .and_then(|(s, l)| Some((s.parse::<u16>().ok()?, l.parse::<u16>().ok()?)))
            .ok_or_else(|| invalid(format!("{spec:?}: expected SERVER_PORT:LOCAL_PORT")))?;
        let ip = if global { [0, 0, 0, 0] } else { [127, 0, 0, 1] };
        let addr = SocketAddr::from((ip, local_port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        eprintln!("liag tunnel client: {addr} -> server port {server_port}");
        listeners.push((listener, server_port));
    }
    // Check the server's names (and TLS files) once up front, so a typo fails at once.
    links.connector().await?;

    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<io::Result<()>>(1);
    for (listener, server_port) in listeners {
        let (links, done_tx) = (links.clone(), done_tx.clone());
        tokio::spawn(async move {
            loop {
                let accepted = listener.accept().await;
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        let _ = done_tx.send(Err(e)).await;
                        return;
                    }
                };
                let (links, done_tx) = (links.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let result = forward_to_server(socket, &links, server_port).await;
                    if let Err(e) = &result {
                        eprintln!("liag tunnel client: connection from {peer}: {e}");
                    }
                    let _ = done_tx.send(result).await;
                });
                if once {
                    return;
                }
            }
        });
    }
    drop(done_tx);
    while let Some(result) = done_rx.recv().await {
        if once {
            return Ok(if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn forward_to_server(
    socket: TcpStream,
    links: &ClientLinks,
    server_port: u16,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let connector = links.connector().await?;
    let (mut stream, links) = connect_with(connector, EndpointConfig::default());
    let control = links.outgoing().control();
    let forwarded = async {
        links
            .wait_for_link(std::time::Duration::from_secs(10))
            .await?;
        stream.write_all(&server_port.to_be_bytes()).await?;
        relay(socket, stream).await?;
        // Both directions are done; let the connection end gracefully before links go away.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), control.closed()).await;
        io::Result::Ok(())
    }
    .await;
    // However the forwarding ended, no new link is made for it: with its stream gone and
    // no handle left to add links, the connection ends with its last link.
    links.stop();
    forwarded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports() {
        assert_eq!(
            parse_published("5401").unwrap(),
            (5401, "localhost:5401".into())
        );
        assert_eq!(
            parse_published("db:5432").unwrap(),
            (5432, "db:5432".into())
        );
        assert!(parse_published("db:").is_err());
    }
}
