//! `liag tunnel`: forwards TCP ports over aggregated connections, flag-compatible with
//! aggligator's `agg-tunnel` and speaking its stream (a 2-byte port header, then the bytes).
//! WebSocket links and TLS are liag's additions (agg-tunnel has neither).

mod client;
mod server;

use std::io;
use std::process::ExitCode;

use liag_transports::tcp::TcpLinkFilter;

use crate::limits::ServerLimits;
use crate::links::{ClientLinks, ClientTls, IpChoice, ServerTls, SocksLinks, TierArgs};
use crate::service::{Service, ServiceArgs};

/// The port aggregated links use when `--tcp` gives none.
const DEFAULT_PORT: u16 = 5800;
/// The WebSocket port when `--websocket` gives a host only.
const WS_DEFAULT_PORT: u16 = 5801;
/// The URL path of the tunnel's WebSocket links.
const WS_PATH: &str = "/liag-tunnel";

/// Options of `liag tunnel`.
#[derive(Debug, Clone, clap::Subcommand)]
// Parsed once at start-up: the client's larger size is of no account.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Args {
    /// Accepts aggregated connections and forwards each to a published port.
    Server(ServerArgs),
    /// Listens on local ports and forwards each connection to the server over aggregated links.
    Client(ClientArgs),
}

/// Options of `liag tunnel server`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
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
    /// Show no live link monitor (there is none either when standard output is not a
    /// terminal). agg-tunnel's flag of the same name.
    #[arg(short = 'n', long = "no-monitor")]
    no_monitor: bool,
    #[command(flatten)]
    service: ServiceArgs,
}

/// Options of `liag tunnel client`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
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
    #[command(flatten)]
    tiers: TierArgs,
    /// Accept forwarded connections on all interfaces, not only loopback.
    #[arg(short = 'g', long = "global")]
    global: bool,
    /// Exit after one forwarded connection.
    #[arg(long)]
    once: bool,
    /// Show no live link monitor (there is none either when standard output is not a
    /// terminal). agg-tunnel's flag of the same name.
    #[arg(short = 'n', long = "no-monitor")]
    no_monitor: bool,
    #[command(flatten)]
    service: ServiceArgs,
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
}

pub(crate) async fn run(args: Args, service: Service<Args>) -> io::Result<ExitCode> {
    match args {
        Args::Server(args) => server::run(args, service).await,
        Args::Client(args) => client::run(args, service).await,
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
