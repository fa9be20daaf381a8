//! `liag proxy`: every application through the aggregate. The client is a SOCKS5 server for
//! local applications and keeps one aggregated connection to the server, multiplexing a stream
//! per proxied connection over it; the server opens the destinations.

mod client;
mod policy;
mod server;
mod session;
mod stream;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;

use liag_transports::liag_tokio::Server;
use liag_transports::tcp::{TcpAcceptor, TcpLinkFilter};
use liag_transports::websocket::WsAcceptor;

use crate::limits::ServerLimits;
use crate::links::{
    ClientLinks, ClientTls, IpChoice, ServerTls, SocksLinks, serve_rfcomm, spawn_serve,
};
use client::Credentials;
use policy::Policy;

/// The port aggregated links use when `--tcp` gives none.
const DEFAULT_PORT: u16 = 5810;
/// The WebSocket port when `--websocket` gives a host only.
const WS_DEFAULT_PORT: u16 = 5811;
/// The URL path of the proxy's WebSocket links.
const WS_PATH: &str = "/liag-proxy";

/// Options of `liag proxy`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Args {
    /// Accepts aggregated connections from proxy clients and opens the destinations their
    /// applications ask for.
    Server {
        /// A file holding the token clients must present (required unless --loopback-only).
        #[arg(long = "token-file", value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Accept links on loopback only, then no token is needed: for a server reached
        /// through an SSH tunnel or a reverse proxy on the same host.
        #[arg(long = "loopback-only")]
        loopback_only: bool,
        /// Also open destinations on the server's own host and networks (loopback,
        /// link-local, private ranges).
        #[arg(long = "allow-private")]
        allow_private: bool,
        /// TCP port to accept links on (all interfaces, or loopback with --loopback-only).
        #[arg(long = "tcp", default_value_t = DEFAULT_PORT, value_name = "PORT")]
        tcp: u16,
        /// Also accept WebSocket links on this port, at path /liag-proxy.
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
    },
    /// Serves SOCKS5 to local applications and carries their connections to the server over
    /// one aggregated connection.
    Client {
        /// Where to serve SOCKS5.
        #[arg(
            long = "listen",
            default_value = "127.0.0.1:1080",
            value_name = "IP:PORT"
        )]
        listen: SocketAddr,
        /// A copy of the server's token file; needed unless the server runs with
        /// --loopback-only.
        #[arg(long = "token-file", value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// A file holding `USER:PASSWORD` that local applications must give (RFC 1929).
        #[arg(long = "listen-auth-file", value_name = "FILE")]
        listen_auth_file: Option<PathBuf>,
        /// The server, as `host` or `host:port` (port 5810 by default); repeat for several
        /// addresses of it.
        #[arg(
            long = "tcp",
            required_unless_present_any = ["websocket", "rfcomm", "socks"],
            value_name = "HOST[:PORT]"
        )]
        tcp: Vec<String>,
        /// WebSocket hosts or URLs; a host means ws://HOST:5811/liag-proxy (start the server
        /// with --websocket 5811). Repeatable.
        #[arg(long = "websocket", value_name = "URL|HOST")]
        websocket: Vec<String>,
        /// Bluetooth RFCOMM links to a device, as ADDRESS (channel 20) or ADDRESS/CHANNEL or
        /// ADDRESS/UUID (Linux, a build with `--features bluetooth`).
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
    },
}

pub(crate) async fn run(args: Args) -> io::Result<ExitCode> {
    match args {
        Args::Server {
            token_file,
            loopback_only,
            allow_private,
            tcp,
            websocket,
            rfcomm,
            tls,
            limits,
        } => {
            let token = match (&token_file, loopback_only) {
                (Some(file), _) => read_token(file)?,
                (None, true) => Vec::new(),
                (None, false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a proxy server open to anyone who reaches it is an open proxy: give \
                         --token-file FILE (the same file on the clients), or --loopback-only",
                    ));
                }
            };
            if loopback_only && token_file.is_none() && rfcomm.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--rfcomm takes links from any Bluetooth device in reach, so a server with \
                     --loopback-only and no --token-file would be open to them: give \
                     --token-file FILE",
                ));
            }
            let policy = Policy { allow_private };
            run_server(
                token,
                policy,
                loopback_only,
                (tcp, websocket, rfcomm),
                tls,
                limits,
            )
            .await
        }
        Args::Client {
            listen,
            token_file,
            listen_auth_file,
            tcp,
            websocket,
            rfcomm,
            socks,
            tls,
            link_filter,
            ip,
        } => {
            let token = token_file
                .as_deref()
                .map(read_token)
                .transpose()?
                .unwrap_or_default();
            let credentials = listen_auth_file
                .as_deref()
                .map(read_credentials)
                .transpose()?;
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
            run_client(listen, token, credentials, links).await
        }
    }
}

/// The shortest token: long enough not to be guessed.
const TOKEN_MIN: usize = 16;

/// The token in `file`: its content without the line end.
fn read_token(file: &Path) -> io::Result<Vec<u8>> {
    let text = std::fs::read(file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
    let token = text.trim_ascii().to_vec();
    if token.len() < TOKEN_MIN || token.len() > wire::TOKEN_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: a token is {TOKEN_MIN} to 255 bytes (this one has {}); make one with \
                 `head -c 32 /dev/urandom | base64 > FILE`",
                file.display(),
                token.len()
            ),
        ));
    }
    Ok(token)
}

/// `USER:PASSWORD` in `file`.
fn read_credentials(file: &Path) -> io::Result<Arc<Credentials>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
    let line = text.lines().next().unwrap_or_default();
    match line.split_once(':') {
        Some((user, password))
            if !user.is_empty()
                && user.len() <= 255
                && !password.is_empty()
                && password.len() <= 255 =>
        {
            Ok(Arc::new(Credentials {
                user: user.to_string(),
                password: password.to_string(),
            }))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: expected one line USER:PASSWORD, each 1 to 255 bytes",
                file.display()
            ),
        )),
    }
}

async fn run_server(
    token: Vec<u8>,
    policy: Policy,
    loopback_only: bool,
    (tcp, websocket, rfcomm): (u16, Option<u16>, Option<u8>),
    tls: ServerTls,
    limits: ServerLimits,
) -> io::Result<ExitCode> {
    let tls = tls.config()?;
    let loopback = [
        SocketAddr::from(([127, 0, 0, 1], tcp)),
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], tcp)),
    ];
    let acceptor = if loopback_only {
        TcpAcceptor::bind(&loopback).await?
    } else {
        TcpAcceptor::all_interfaces(tcp).await?
    };
    let (server, listener) = Server::new(limits.config());
    eprintln!(
        "liag proxy server: links on TCP {:?}{}, {}",
        acceptor.local_addrs(),
        if tls.is_some() { " with TLS" } else { "" },
        if token.is_empty() {
            "no token (loopback only)"
        } else {
            "token required"
        },
    );
    spawn_serve(acceptor, &tls, &server, "TCP".into());
    if let Some(port) = websocket {
        let ws = if loopback_only {
            let addrs = loopback.map(|a| SocketAddr::new(a.ip(), port));
            WsAcceptor::bind(&addrs, WS_PATH).await?
        } else {
            WsAcceptor::all_interfaces(port, WS_PATH).await?
        };
        eprintln!(
            "liag proxy server: links on WebSocket {:?} at {WS_PATH}",
            ws.local_addrs()
        );
        spawn_serve(ws, &tls, &server, "WebSocket".into());
    }
    if let Some(channel) = rfcomm {
        serve_rfcomm(channel, &tls, &server, "liag proxy server").await;
    }
    server::serve(listener, token.into(), policy).await;
    Ok(ExitCode::SUCCESS)
}

async fn run_client(
    listen: SocketAddr,
    token: Vec<u8>,
    credentials: Option<Arc<Credentials>>,
    links: ClientLinks,
) -> io::Result<ExitCode> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    // Check the server's names (and TLS files) once up front, so a typo fails at once.
    links.connector().await?;
    if !listen.ip().is_loopback() && credentials.is_none() {
        eprintln!(
            "warning: SOCKS5 on {listen} without --listen-auth-file: anyone who reaches it can \
             use the proxy"
        );
    }
    eprintln!("liag proxy client: SOCKS5 on {}", listener.local_addr()?);
    let (opener, kept) = session::keep(links, token);
    tokio::select! {
        e = client::serve(listener, credentials, opener) => Err(e),
        refused = kept => Err(refused.unwrap_or_else(|e| io::Error::other(e.to_string()))),
    }
}
