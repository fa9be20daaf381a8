//! `liag proxy`: every application through the aggregate. The client is a SOCKS5 server for
//! local applications and keeps a few aggregated connections to the server (its lanes), each
//! multiplexing streams, one per proxied connection; the server opens the destinations.

mod client;
mod frames;
mod lanes;
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
use tokio::sync::watch;

use liag_transports::liag_tokio::Server;
use liag_transports::tcp::TcpLinkFilter;

use crate::limits::ServerLimits;
use crate::links::{
    ClientLinks, ClientTls, IpChoice, ServerTls, SocksLinks, TierArgs, serve_rfcomm,
};
use crate::listeners::{LinkPorts, Listeners};
use crate::service::say;
use crate::service::{self, Service, ServiceArgs, live};
use client::Credentials;
use policy::Policy;

/// The port aggregated links use when `--tcp` gives none.
const DEFAULT_PORT: u16 = 5810;
/// The WebSocket port when `--websocket` gives a host only.
const WS_DEFAULT_PORT: u16 = 5811;
/// The URL path of the proxy's WebSocket links.
const WS_PATH: &str = "/liag-proxy";

/// Options of `liag proxy`.
#[derive(Debug, Clone, clap::Subcommand)]
// Parsed once at start-up: the client's larger size is of no account.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Args {
    /// Accepts aggregated connections from proxy clients and opens the destinations their
    /// applications ask for.
    Server(ServerArgs),
    /// Serves SOCKS5 to local applications and carries their connections to the server over
    /// one aggregated connection.
    Client(ClientArgs),
}

/// Options of `liag proxy server`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
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
    /// Show no live link monitor (there is none either when standard output is not a
    /// terminal).
    #[arg(short = 'n', long = "no-monitor")]
    no_monitor: bool,
    #[command(flatten)]
    service: ServiceArgs,
}

/// Options of `liag proxy client`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
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
    #[command(flatten)]
    tiers: TierArgs,
    /// Aggregated connections to keep to the server, 1 to 8, each with a link of its own on
    /// every path (N times the sockets and keep-alives). A new proxied connection goes to
    /// the one that carries least, so a shell or a call opened beside a download does not
    /// wait behind the download's data. 1 keeps the fewest links, for a metered path, say.
    #[arg(
        long = "lanes",
        default_value_t = lanes::DEFAULT_LANES,
        value_parser = clap::value_parser!(u8).range(1..=lanes::MAX_LANES as i64),
        value_name = "N"
    )]
    lanes: u8,
    /// Show no live link monitor (there is none either when standard output is not a
    /// terminal).
    #[arg(short = 'n', long = "no-monitor")]
    no_monitor: bool,
    #[command(flatten)]
    service: ServiceArgs,
}

pub(crate) async fn run(args: Args, service: Service<Args>) -> io::Result<ExitCode> {
    match args {
        Args::Server(args) => run_server(args, service).await,
        Args::Client(args) => run_client(args, service).await,
    }
}

impl ServerArgs {
    /// The token clients must give: none with --loopback-only alone.
    fn token(&self) -> io::Result<Arc<[u8]>> {
        let token = match (&self.token_file, self.loopback_only) {
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
        if self.loopback_only && self.token_file.is_none() && self.rfcomm.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--rfcomm takes links from any Bluetooth device in reach, so a server with \
                 --loopback-only and no --token-file would be open to them: give \
                 --token-file FILE",
            ));
        }
        Ok(token.into())
    }

    fn policy(&self) -> Policy {
        Policy {
            allow_private: self.allow_private,
        }
    }

    fn ports(&self) -> LinkPorts {
        LinkPorts {
            tcp: self.tcp,
            websocket: self.websocket,
        }
    }
}

impl ClientArgs {
    fn links(&self) -> ClientLinks {
        ClientLinks {
            tcp: self.tcp.clone(),
            tcp_default_port: DEFAULT_PORT,
            filter: self.link_filter,
            websocket: self.websocket.clone(),
            ws_default_port: WS_DEFAULT_PORT,
            ws_path: WS_PATH,
            ip_version: self.ip.version(),
            rfcomm: self.rfcomm.clone(),
            socks: self.socks.clone(),
            tls: self.tls.clone(),
            tiers: self.tiers.clone(),
        }
    }

    fn token(&self) -> io::Result<Vec<u8>> {
        Ok(self
            .token_file
            .as_deref()
            .map(read_token)
            .transpose()?
            .unwrap_or_default())
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

const SERVER: &str = "liag proxy server";
const CLIENT: &str = "liag proxy client";

async fn run_server(args: ServerArgs, mut service: Service<Args>) -> io::Result<ExitCode> {
    let mut token = args.token()?;
    let mut policy = args.policy();
    let tls = args.tls.config()?;
    let (server, mut listener) = Server::new(args.limits.config());
    if let Some(addr) = args.service.metrics {
        service::metrics::serve(
            addr,
            "proxy-server",
            &service.connections,
            Some(server.clone()),
        )?;
    }
    let mode = (args.loopback_only, WS_PATH);
    let mut listeners = Listeners::start(SERVER, args.ports(), mode, tls.clone(), &server).await?;
    if let Some(channel) = args.rfcomm {
        serve_rfcomm(channel, &tls, &server, SERVER).await;
    }
    say!(
        "{SERVER}: {}",
        if token.is_empty() {
            "no token (loopback only)"
        } else {
            "token required"
        },
    );
    service::notify_ready();
    let shutdown = service.shutdown.clone();
    let monitor = live::start(args.no_monitor, SERVER, &service.connections, &shutdown);
    loop {
        tokio::select! {
            incoming = listener.next() => {
                let Some(incoming) = incoming else { break };
                let label = format!("from {}", incoming.tag());
                let conn = incoming.accept();
                let control = conn.control();
                let tracked = service.connections.track(label, control.clone());
                let (token, task) = (token.clone(), shutdown.clone());
                shutdown.spawn(async move {
                    let served = task.guard(&control, server::session(conn, &token, policy));
                    if let Some(Err(e)) = served.await {
                        say!("{SERVER}: {e}");
                    }
                    drop(tracked);
                });
            }
            () = shutdown.stopping() => break,
            reloaded = service.reloaded() => {
                match reloaded {
                    Ok(Args::Server(new)) if new.loopback_only != args.loopback_only => {
                        say!("{SERVER}: reload: --loopback-only changes at a restart only");
                    }
                    Ok(Args::Server(new)) => match new.token() {
                        Ok(new_token) => {
                            // Sessions from now on check the new token and policy.
                            (token, policy) = (new_token, new.policy());
                            listeners.change(new.ports()).await;
                            say!(
                                "{SERVER}: reload: token and destination policy read again, for \
                                 the clients that connect from now on (those connected keep \
                                 theirs until they reconnect)"
                            );
                            service::restart_only(
                                SERVER,
                                "TLS, limits, RFCOMM or metrics",
                                (&args, &new),
                                |a: &ServerArgs| {
                                    format!("{:?}", (&a.tls, &a.limits, a.rfcomm, &a.service))
                                },
                            );
                        }
                        Err(e) => say!("{SERVER}: reload: {e}; nothing changed"),
                    },
                    Ok(Args::Client(_)) => say!("{SERVER}: reload: not a server's options"),
                    Err(e) => say!("{SERVER}: reload: {e}; nothing changed"),
                }
                service::notify_ready();
            }
        }
    }
    drop(listener);
    if !shutdown.drain().await {
        say!("{SERVER}: some connections did not end in time");
    }
    live::finish(monitor).await;
    say!("{SERVER}: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn run_client(args: ClientArgs, mut service: Service<Args>) -> io::Result<ExitCode> {
    let listen = args.listen;
    let credentials = args
        .listen_auth_file
        .as_deref()
        .map(read_credentials)
        .transpose()?;
    let token = args.token()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let links = args.links();
    // Check the server's names (and TLS files) once up front, so a typo fails at once.
    links.connector().await?;
    if !listen.ip().is_loopback() && credentials.is_none() {
        say!(
            "warning: SOCKS5 on {listen} without --listen-auth-file: anyone who reaches it can \
             use the proxy"
        );
    }
    if let Some(addr) = args.service.metrics {
        service::metrics::serve(addr, "proxy-client", &service.connections, None)?;
    }
    say!("{CLIENT}: SOCKS5 on {}", listener.local_addr()?);
    let shutdown = service.shutdown.clone();
    let (links, token) = (watch::Sender::new(links), watch::Sender::new(token));
    let setup = session::Setup {
        links: links.subscribe(),
        token: token.subscribe(),
    };
    let lanes = usize::from(args.lanes);
    let (opener, kept) = session::keep(setup, shutdown.clone(), service.connections.clone(), lanes);
    let serving = client::serve(listener, credentials, opener);
    tokio::pin!(serving, kept);
    service::notify_ready();
    let monitor = live::start(args.no_monitor, CLIENT, &service.connections, &shutdown);
    loop {
        tokio::select! {
            e = &mut serving => {
                shutdown.stop();
                live::finish(monitor).await;
                return Err(e);
            }
            kept = &mut kept => {
                live::finish(monitor).await;
                return match kept {
                    Ok(None) => {
                        say!("{CLIENT}: stopped");
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(Some(refused)) => Err(refused),
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
            }
            reloaded = service.reloaded() => {
                match reloaded {
                    Ok(Args::Client(new)) => match (new.links().connector().await, new.token()) {
                        (Ok(_), Ok(new_token)) => {
                            service::restart_only(
                                CLIENT,
                                "--listen, --listen-auth-file, --lanes or metrics",
                                (&args, &new),
                                |a: &ClientArgs| {
                                    let fixed = (a.listen, &a.listen_auth_file, a.lanes);
                                    format!("{:?}", (fixed, &a.service))
                                },
                            );
                            links.send_replace(new.links());
                            token.send_replace(new_token);
                            say!(
                                "{CLIENT}: reload: the connections use the links now \
                                 configured (the token applies when each is next made; \
                                 --listen, --listen-auth-file and --lanes at a restart)"
                            );
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            say!("{CLIENT}: reload: {e}; nothing changed")
                        }
                    },
                    Ok(Args::Server(_)) => say!("{CLIENT}: reload: not a client's options"),
                    Err(e) => say!("{CLIENT}: reload: {e}; nothing changed"),
                }
                service::notify_ready();
            }
        }
    }
}
