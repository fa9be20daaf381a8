//! Link options shared by `liag speed`, `liag tunnel` and `liag proxy`: which transports to
//! use (TCP, WebSocket, RFCOMM, TCP through SOCKS5 proxies), with or without TLS, turned into
//! a connector or into acceptors on a server.

use crate::service::say;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::socks::SocksConnector;
use liag_transports::tcp::{TcpConnector, TcpLinkFilter, with_default_port};
use liag_transports::tls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use liag_transports::tls::rustls::{ClientConfig, ServerConfig};
use liag_transports::tls::{
    AGG_SERVER_NAME, TlsAcceptor, TlsConnector, ca_client_config, insecure_client_config,
    server_config, server_config_from_pem, webpki_client_config,
};
use liag_transports::websocket::WsConnector;
use liag_transports::{
    IpVersion, Links, MultiConnector, StreamAcceptor, StreamConnector, Tier, TierRules,
    TieredConnector, serve,
};
use tokio::sync::watch;

/// Links through SOCKS5 proxies, one through each (as agg-tunnel and agg-speed 0.19).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SocksLinks {
    /// A SOCKS5 proxy, `host` or `host:port` (port 1080 by default): one link goes through
    /// each. Repeatable.
    #[arg(long = "socks", value_name = "HOST[:PORT]")]
    pub(crate) socks: Vec<String>,
    /// The server as the proxies reach it (each proxy resolves the name) [default: the first
    /// --tcp target].
    #[arg(long = "socks-target", value_name = "HOST[:PORT]", requires = "socks")]
    pub(crate) socks_target: Option<String>,
}

/// Which IP version links use (as agg-tunnel's and agg-speed's `-4` and `-6`).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct IpChoice {
    /// Use IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
}

impl IpChoice {
    pub(crate) fn version(self) -> IpVersion {
        match (self.ipv4, self.ipv6) {
            (true, _) => IpVersion::V4,
            (_, true) => IpVersion::V6,
            _ => IpVersion::Any,
        }
    }
}

/// TLS options of a client.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientTls {
    /// Encrypt all links using TLS, without authenticating the server (as agg-speed --tls).
    /// Warning: no server authentication is performed unless --tls-ca is given too.
    #[arg(long)]
    tls: bool,
    /// Encrypt all links using TLS and check the server's certificate against the CA
    /// certificates in this PEM file, or against the built-in WebPKI roots with `webpki`.
    #[arg(long = "tls-ca", value_name = "FILE|webpki")]
    tls_ca: Option<String>,
    /// The name the server's certificate must carry [default: the first server's host name].
    #[arg(long = "tls-server-name", value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,
}

/// TLS options of a server.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerTls {
    /// Encrypt all links using TLS; without --tls-cert a self-signed certificate for
    /// aggligator.rs is made at start, as agg-speed's clients expect.
    #[arg(long)]
    tls: bool,
    /// Certificate chain (PEM) to present; implies --tls.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the certificate.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServerTls {
    /// The server configuration, if TLS is on.
    pub(crate) fn config(&self) -> io::Result<Option<Arc<ServerConfig>>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => server_config_from_pem(cert, key).map(Some),
            _ if self.tls => self_signed().map(Some),
            _ => Ok(None),
        }
    }
}

/// A fresh self-signed certificate for aggligator.rs: encryption without authentication.
fn self_signed() -> io::Result<Arc<ServerConfig>> {
    let made = rcgen::generate_simple_self_signed(vec![AGG_SERVER_NAME.to_string()])
        .map_err(|e| io::Error::other(format!("cannot make a TLS certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    server_config(vec![made.cert.der().clone()], key)
}

/// Link policies: which links carry data always, only beyond what the others carry, or only
/// when no other works (by the local interface they leave from), and whether data goes on two
/// links at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Link policies")]
pub(crate) struct TierArgs {
    /// Links leaving from this interface carry no data while any primary or secondary link
    /// works, only keep-alives (a metered cellular modem, say); they take over when none
    /// works, and go quiet once one is back. The server learns it as each link joins (a liag
    /// server then sends nothing on them either; an aggligator server does not know tiers).
    /// Repeatable.
    #[arg(long = "backup-interface", value_name = "IFACE")]
    pub(crate) backup_interface: Vec<String>,
    /// Links leaving from this interface carry data only when more waits to be sent than the
    /// primary links carry in 100 ms (a bulk transfer beyond them), or when no primary link
    /// works. Repeatable.
    #[arg(long = "secondary-interface", value_name = "IFACE")]
    pub(crate) secondary_interface: Vec<String>,
    /// Links to this target (one of the --tcp, --websocket or --rfcomm values, as given) are
    /// backup links, whatever interface they leave from: another address of the same server,
    /// such as one reached through a costly provider (a link to a different server ends the
    /// connection). With an interface's tier, the more reserved wins. Repeatable.
    #[arg(long, value_name = "TARGET")]
    pub(crate) backup: Vec<String>,
    /// Links to this target are secondary links, as --secondary-interface makes them.
    /// Repeatable.
    #[arg(long, value_name = "TARGET")]
    pub(crate) secondary: Vec<String>,
    /// Each link leaving from IFACE sends at most RATE of payload, to leave room on a shared
    /// uplink: in bits (`kbit`, `Mbit`, `Gbit`) or bytes (`kB`, `MB`, `GB`) per second, such
    /// as `eth1=20Mbit`. The other links take the rest. It caps what this client sends, per
    /// link of each connection (a tunnel client's forwarded connections have a cap each),
    /// not what it receives. Repeatable, one cap per interface.
    #[arg(long = "max-rate", value_name = "IFACE=RATE", value_parser = parse_rate_rule)]
    pub(crate) max_rate: Vec<(String, u64)>,
    /// A data allowance for the links leaving from IFACE, such as a cellular plan's:
    /// `wwan0=2GB/month` (or `/day`, `/week` from Monday, `/month@15` for a month that begins
    /// on the 15th; periods begin at midnight UTC; `kB`, `MB`, `GB` decimal, `MiB`, `GiB`
    /// binary). Bytes sent and received count, over every connection of this process. Past
    /// the allowance the links carry data only while no other link works, as backup links
    /// do, and the server is asked to stop sending on them too; liag never cuts the last
    /// working link, so with no other link the count goes past it. A new period brings them
    /// back. The count is kept in --cap-state across restarts. liag counts its messages, not
    /// TCP/IP headers nor TLS, which a provider counts too: leave room. Repeatable, one per
    /// interface.
    #[arg(long = "cap", value_name = "IFACE=SIZE/PERIOD", value_parser = crate::allowance::parse_cap)]
    pub(crate) cap: Vec<crate::allowance::Cap>,
    /// Where --cap keeps its counts: by default $STATE_DIRECTORY/allowances.json under
    /// systemd, else $XDG_STATE_HOME/liag/allowances.json or
    /// ~/.local/state/liag/allowances.json.
    #[arg(long = "cap-state", value_name = "FILE")]
    pub(crate) cap_state: Option<PathBuf>,
    /// Send a copy of each message on a second link, the working one (primary or secondary)
    /// with the next earliest arrival, where that link has room; the first copy to arrive
    /// wins. For calls, games and remote desktops: a link that stops for a moment then costs
    /// no delay while another works. It costs up to twice the bytes, and a bulk transfer that
    /// fills the links may get no more than the fastest one's rate. A liag server is asked to
    /// do the same for what it sends back. An aggligator server takes the copies but sends
    /// its own data once, so round trips through it are not shortened (and were longer in
    /// our runs): leave it off there. A reload applies to this end at once.
    #[arg(long)]
    pub(crate) redundant: bool,
}

impl TierArgs {
    /// The tier of each path by its interface; an interface given both tiers is an error.
    pub(crate) fn rules(&self) -> io::Result<TierRules> {
        let both = (self.backup_interface.iter()).find(|i| self.secondary_interface.contains(i));
        if let Some(both) = both {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{both} is given both --backup-interface and --secondary-interface; give \
                     each interface one tier"
                ),
            ));
        }
        if let Some(both) = (self.backup.iter()).find(|t| self.secondary.contains(t)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{both} is given both --backup and --secondary; give each target one tier"),
            ));
        }
        let secondary = (self.secondary_interface.iter()).map(|i| (i, Tier::Secondary));
        let backup = self.backup_interface.iter().map(|i| (i, Tier::Backup));
        let tiered = secondary
            .chain(backup)
            .fold(TierRules::new(), |rules, (interface, tier)| {
                rules.interface(interface.clone(), tier)
            });
        let mut rules = (self.max_rate.iter()).fold(tiered, |rules, (interface, rate)| {
            rules.max_rate(interface.clone(), *rate)
        });
        if !self.cap.is_empty() {
            let file = (self.cap_state.clone())
                .or_else(crate::allowance::default_state_file)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "--cap needs a file to keep its counts in: give --cap-state FILE",
                    )
                })?;
            for cap in &self.cap {
                let meter = crate::allowance::meter(cap, &file)?;
                rules = rules.meter(cap.interface.clone(), meter);
            }
        }
        Ok(rules)
    }
}

/// `IFACE=RATE` for `--max-rate`: the interface and its cap in bytes per second. RATE is a
/// number and a unit: `bit`, `kbit`, `Mbit`, `Gbit` (bits) or `B`, `kB`, `MB`, `GB` (bytes),
/// per second (a trailing `/s` is allowed); the prefixes are decimal, as `tc` and iperf3 use.
fn parse_rate_rule(rule: &str) -> Result<(String, u64), String> {
    let (interface, rate) = rule
        .split_once('=')
        .filter(|(i, _)| !i.is_empty())
        .ok_or_else(|| format!("`{rule}`: give IFACE=RATE, such as eth1=20Mbit"))?;
    let rate = rate.trim().trim_end_matches("/s");
    let split = rate
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rate.len());
    let (number, unit) = rate.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{rule}`: the rate needs a number, such as 20Mbit"))?;
    let bytes_per_unit = match unit.trim() {
        "" => {
            return Err(format!(
                "`{rule}`: give the rate a unit, such as 20Mbit or 2500000B"
            ));
        }
        "bit" => 1.0 / 8.0,
        "kbit" => 1e3 / 8.0,
        "Mbit" | "mbit" => 1e6 / 8.0,
        "Gbit" | "gbit" => 1e9 / 8.0,
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "`{rule}`: unknown unit `{other}`; use bit, kbit, Mbit, Gbit, B, kB, MB or GB"
            ));
        }
    };
    let bytes = (number * bytes_per_unit).round();
    if bytes < 1.0 {
        return Err(format!(
            "`{rule}`: the rate must be at least 1 byte per second"
        ));
    }
    if bytes > 1e15 {
        return Err(format!(
            "`{rule}`: the rate must be at most 1 PB per second"
        ));
    }
    Ok((interface.trim().to_string(), bytes as u64))
}

/// The client's links: TCP targets, WebSocket URLs, RFCOMM devices and SOCKS5 proxies, with
/// or without TLS.
#[derive(Debug, Clone)]
pub(crate) struct ClientLinks {
    pub(crate) tcp: Vec<String>,
    pub(crate) tcp_default_port: u16,
    pub(crate) filter: TcpLinkFilter,
    pub(crate) websocket: Vec<String>,
    pub(crate) ws_default_port: u16,
    pub(crate) ws_path: &'static str,
    pub(crate) ip_version: IpVersion,
    pub(crate) rfcomm: Vec<String>,
    pub(crate) socks: SocksLinks,
    pub(crate) tls: ClientTls,
    pub(crate) tiers: TierArgs,
}

/// `host`, `host:port` or a `ws://`/`wss://` URL as a URL (agg-speed's rule for hosts).
pub(crate) fn ws_url(target: &str, default_port: u16, path: &str) -> String {
    if target.starts_with("ws://") || target.starts_with("wss://") {
        return target.to_string();
    }
    let with_port = with_default_port(target, default_port);
    format!("ws://{with_port}{path}")
}

/// The host part of a TCP target or WebSocket URL, for the TLS server name.
fn host_of(target: &str) -> String {
    let rest = target
        .strip_prefix("wss://")
        .or_else(|| target.strip_prefix("ws://"))
        .unwrap_or(target);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    if authority.matches(':').count() == 1 {
        return authority.split(':').next().unwrap_or(authority).to_string();
    }
    authority.to_string()
}

impl ClientLinks {
    /// The settings of a connection over these links.
    pub(crate) fn endpoint_config(&self) -> EndpointConfig {
        let mut endpoint = EndpointConfig::default();
        endpoint.config.redundant = self.tiers.redundant;
        endpoint
    }

    /// The TLS configuration and server name, if TLS is on.
    fn tls(&self) -> io::Result<Option<(Arc<ClientConfig>, String)>> {
        let first = self
            .tcp
            .first()
            .or(self.websocket.first())
            .or(self.socks.socks_target.as_ref());
        match &self.tls.tls_ca {
            Some(ca) => {
                let config = if ca == "webpki" {
                    webpki_client_config()
                } else {
                    ca_client_config(ca.as_ref())?
                };
                let name = match (&self.tls.tls_server_name, first) {
                    (Some(name), _) => name.clone(),
                    (None, Some(target)) => host_of(target),
                    (None, None) => AGG_SERVER_NAME.to_string(),
                };
                Ok(Some((config, name)))
            }
            None if self.tls.tls => {
                say!(
                    "warning: --tls without --tls-ca encrypts the links but does not \
                     authenticate the server: anyone on the path can pose as it and read \
                     everything (docs/transports.md, \"Threat model\")"
                );
                Ok(Some((insecure_client_config(), AGG_SERVER_NAME.into())))
            }
            None => Ok(None),
        }
    }

    /// The tier `--backup` or `--secondary` gives `target`.
    fn target_tier(&self, target: &str) -> Tier {
        let named = |list: &[String]| list.iter().any(|t| t == target);
        if named(&self.tiers.backup) {
            Tier::Backup
        } else if named(&self.tiers.secondary) {
            Tier::Secondary
        } else {
            Tier::Primary
        }
    }

    /// `targets` grouped by the tier `--backup` and `--secondary` give them, primary first.
    fn by_target_tier<'a>(&'a self, targets: &'a [String]) -> Vec<(Tier, Vec<String>)> {
        [Tier::Primary, Tier::Secondary, Tier::Backup]
            .into_iter()
            .map(|tier| {
                let mine = targets.iter().filter(|t| self.target_tier(t) == tier);
                (tier, mine.cloned().collect::<Vec<String>>())
            })
            .filter(|(_, targets)| !targets.is_empty())
            .collect()
    }

    /// Refuses a `--backup` or `--secondary` target that no link goes to.
    fn check_target_tiers(&self) -> io::Result<()> {
        let all = || self.tcp.iter().chain(&self.websocket).chain(&self.rfcomm);
        let flagged = self.tiers.backup.iter().chain(&self.tiers.secondary);
        for target in flagged {
            if !all().any(|t| t == target) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{target} is given a tier but is none of the --tcp, --websocket or \
                         --rfcomm targets; name it as given there (for an interface, use \
                         --backup-interface or --secondary-interface)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A connector for all the links, tiered by target and by interface; names are resolved
    /// first, so a typo fails at once.
    pub(crate) async fn connector(&self) -> io::Result<TieredConnector<MultiConnector>> {
        let tls = self.tls()?;
        let rules = self.tiers.rules()?;
        self.check_target_tiers()?;
        let mut multi = MultiConnector::new();
        for (tier, targets) in self.by_target_tier(&self.tcp) {
            let mut tcp = TcpConnector::new(targets, self.tcp_default_port);
            tcp.set_filter(self.filter).set_ip_version(self.ip_version);
            tcp.resolve().await?;
            add(&mut multi, tcp, &tls, tier)?;
        }
        for (tier, targets) in self.by_target_tier(&self.websocket) {
            let urls = targets
                .iter()
                .map(|t| ws_url(t, self.ws_default_port, self.ws_path));
            let mut ws = WsConnector::new(urls)?;
            ws.set_ip_version(self.ip_version);
            ws.resolve().await?;
            add(&mut multi, ws, &tls, tier)?;
        }
        for target in &self.rfcomm {
            add_rfcomm(&mut multi, target, &tls, self.target_tier(target))?;
        }
        if !self.socks.socks.is_empty() {
            let target = self
                .socks
                .socks_target
                .as_ref()
                .or(self.tcp.first())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "--socks needs the server: give --socks-target or --tcp",
                    )
                })?;
            let socks = SocksConnector::new(&self.socks.socks, target, self.tcp_default_port)?;
            add(&mut multi, socks, &tls, Tier::Primary)?;
        }
        Ok(TieredConnector::new(multi, rules))
    }
}

/// Applies each new set of links from `changes` to the running connection `links` keeps (a
/// reload): paths still configured keep their links, new ones get links, links of paths no
/// longer configured leave gracefully. Never returns; drop it with the connection.
pub(crate) async fn follow(links: &Links, mut changes: watch::Receiver<ClientLinks>) {
    while changes.changed().await.is_ok() {
        let configured = changes.borrow_and_update().clone();
        match configured.connector().await {
            Ok(connector) => links.set_connector(connector),
            Err(e) => say!("liag: reload: {e}; this connection keeps its links"),
        }
        // This end follows at once; a server keeps sending redundantly once asked.
        links
            .outgoing()
            .control()
            .set_redundant(configured.tiers.redundant);
    }
    std::future::pending().await
}

#[cfg(all(feature = "bluetooth", target_os = "linux"))]
fn add_rfcomm(
    multi: &mut MultiConnector,
    target: &str,
    tls: &Option<(Arc<ClientConfig>, String)>,
    tier: Tier,
) -> io::Result<()> {
    use liag_transports::bluetooth::{RfcommConnector, parse_target};
    let (address, service) = parse_target(target)?;
    add(multi, RfcommConnector::new(address, service), tls, tier)
}

#[cfg(not(all(feature = "bluetooth", target_os = "linux")))]
fn add_rfcomm(
    _: &mut MultiConnector,
    target: &str,
    _: &Option<(Arc<ClientConfig>, String)>,
    _: Tier,
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("--rfcomm {target}: {NO_RFCOMM}"),
    ))
}

/// Why this build has no RFCOMM links, and how to get them.
#[cfg(not(all(feature = "bluetooth", target_os = "linux")))]
const NO_RFCOMM: &str = if cfg!(target_os = "linux") {
    "this liag was built without Bluetooth; from a clone of liag, build it with \
     `cargo install --locked --path crates/liag-cli --features bluetooth`"
} else {
    "Bluetooth RFCOMM links need Linux"
};

/// Listens for RFCOMM links on `channel` and serves them to `server` (inside TLS if set); a
/// machine without Bluetooth gets a message, and the other transports go on.
pub(crate) async fn serve_rfcomm(
    channel: u8,
    tls: &Option<Arc<ServerConfig>>,
    server: &Server,
    who: &str,
) {
    #[cfg(all(feature = "bluetooth", target_os = "linux"))]
    match liag_transports::bluetooth::RfcommAcceptor::listen(channel).await {
        Ok(acceptor) => {
            say!("{who} on RFCOMM channel {channel}");
            spawn_serve(acceptor, tls, server, "RFCOMM".into());
        }
        Err(e) => say!("{who}: no RFCOMM: {e}"),
    }
    #[cfg(not(all(feature = "bluetooth", target_os = "linux")))]
    {
        let _ = (tls, server);
        say!("{who}: no RFCOMM on channel {channel}: {NO_RFCOMM}");
    }
}

/// Adds `connector`'s links to `multi`, inside TLS if `tls` is set, every one of them at least
/// of tier `tier`.
fn add<C: StreamConnector>(
    multi: &mut MultiConnector,
    connector: C,
    tls: &Option<(Arc<ClientConfig>, String)>,
    tier: Tier,
) -> io::Result<()> {
    let rules = TierRules::new().every_path(tier);
    match tls {
        Some((config, name)) => {
            let tls = TlsConnector::new(connector, config.clone(), name)?;
            multi.push(TieredConnector::new(tls, rules));
        }
        None => multi.push(TieredConnector::new(connector, rules)),
    }
    Ok(())
}

/// Serves `acceptor`'s links to `server` in a task, inside TLS if `tls` is set; aborting the
/// returned handle stops accepting (links already taken go on).
pub(crate) fn spawn_serve<A: StreamAcceptor>(
    acceptor: A,
    tls: &Option<Arc<ServerConfig>>,
    server: &Server,
    what: String,
) -> tokio::task::AbortHandle {
    let server = server.clone();
    let serving = match tls {
        Some(config) => tokio::spawn(serve(TlsAcceptor::new(acceptor, config.clone()), server)),
        None => tokio::spawn(serve(acceptor, server)),
    };
    let handle = serving.abort_handle();
    tokio::spawn(async move {
        match serving.await {
            Ok(Err(e)) => say!("liag: {what} stopped accepting links: {e}"),
            Err(e) if !e.is_cancelled() => {
                say!("liag: {what} stopped accepting links: {e}")
            }
            Ok(Ok(())) | Err(_) => {}
        }
    });
    handle
}

#[cfg(test)]
mod tests {
    use super::*;
    use liag_transports::Connector;

    #[test]
    fn websocket_targets_as_agg_speed_reads_them() {
        assert_eq!(
            ws_url("server.example", 8080, "/agg-speed"),
            "ws://server.example:8080/agg-speed"
        );
        assert_eq!(
            ws_url("10.0.0.1:9000", 8080, "/agg-speed"),
            "ws://10.0.0.1:9000/agg-speed"
        );
        assert_eq!(ws_url("::1", 8080, "/x"), "ws://[::1]:8080/x");
        assert_eq!(ws_url("[::1]:99", 8080, "/x"), "ws://[::1]:99/x");
        assert_eq!(ws_url("wss://h/p", 8080, "/x"), "wss://h/p");
    }

    /// Client links to `tcp` targets over the loopback interface, with `tiers`.
    fn loopback_links(tcp: &[&str], tiers: TierArgs) -> ClientLinks {
        ClientLinks {
            tcp: tcp.iter().map(|t| t.to_string()).collect(),
            tcp_default_port: 5700,
            filter: TcpLinkFilter::None,
            websocket: Vec::new(),
            ws_default_port: 8080,
            ws_path: "/",
            ip_version: IpVersion::V4,
            rfcomm: Vec::new(),
            socks: SocksLinks::default(),
            tls: ClientTls {
                tls: false,
                tls_ca: None,
                tls_server_name: None,
            },
            tiers,
        }
    }

    #[tokio::test]
    async fn a_target_takes_its_tier_and_an_interface_rule_may_reserve_it_further() {
        let tiers = TierArgs {
            backup: vec!["127.0.0.2:5700".into()],
            secondary: vec!["127.0.0.3:5700".into()],
            ..TierArgs::default()
        };
        let targets = ["127.0.0.1:5700", "127.0.0.2:5700", "127.0.0.3:5700"];
        let connector = loopback_links(&targets, tiers.clone())
            .connector()
            .await
            .unwrap();
        let paths = connector.paths().await.unwrap();
        let tier_of = |ip: &str| {
            let path = paths.iter().find(|p| p.contains(ip)).unwrap();
            connector.link_config(path).tier
        };
        assert_eq!(tier_of("127.0.0.1:"), Tier::Primary);
        assert_eq!(tier_of("127.0.0.2:"), Tier::Backup);
        assert_eq!(tier_of("127.0.0.3:"), Tier::Secondary);

        // Every path leaves from `lo`: an interface rule makes the primary a backup too, and
        // leaves the more reserved target tiers as they are.
        let on_lo = TierArgs {
            backup_interface: vec!["lo".into()],
            ..tiers
        };
        let connector = loopback_links(&targets, on_lo).connector().await.unwrap();
        let paths = connector.paths().await.unwrap();
        assert!(
            paths
                .iter()
                .all(|p| connector.link_config(p).tier == Tier::Backup),
            "{paths:?}"
        );
    }

    #[tokio::test]
    async fn a_tier_for_a_target_no_link_goes_to_is_refused() {
        let tiers = TierArgs {
            backup: vec!["server.example".into()],
            ..TierArgs::default()
        };
        let error = loopback_links(&["127.0.0.1:5700"], tiers)
            .connector()
            .await
            .err();
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("server.example is given a tier"), "{error}");
        let both = TierArgs {
            backup: vec!["127.0.0.1:5700".into()],
            secondary: vec!["127.0.0.1:5700".into()],
            ..TierArgs::default()
        };
        let error = loopback_links(&["127.0.0.1:5700"], both)
            .connector()
            .await
            .err();
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("both --backup and --secondary"), "{error}");
    }

    #[test]
    fn rate_caps_read_bits_and_bytes() {
        let rate = |s: &str| parse_rate_rule(s).map(|(_, r)| r);
        assert_eq!(
            parse_rate_rule("eth1=20Mbit"),
            Ok(("eth1".into(), 2_500_000))
        );
        assert_eq!(rate("eth1=20mbit/s"), Ok(2_500_000));
        assert_eq!(rate("eth1=1.5MB"), Ok(1_500_000));
        assert_eq!(rate("eth1=800kbit"), Ok(100_000));
        assert_eq!(rate("eth1=1Gbit"), Ok(125_000_000));
        assert_eq!(rate("eth1=64B/s"), Ok(64));
        assert!(rate("eth1=20mb").is_err_and(|e| e.contains("unknown unit `mb`")));
        assert!(rate("eth1=fast").is_err());
        assert!(rate("eth1=2500000").is_err_and(|e| e.contains("give the rate a unit")));
        assert!(rate("eth1=9000000GB").is_err_and(|e| e.contains("at most")));
        assert_eq!(
            parse_rate_rule("eth1 = 1MB"),
            Ok(("eth1".into(), 1_000_000))
        );
        assert!(rate("eth1=0Mbit").is_err());
        assert!(rate("=20Mbit").is_err());
        assert!(rate("20Mbit").is_err());
    }

    #[test]
    fn tls_server_name_is_the_host() {
        assert_eq!(host_of("server.example:5700"), "server.example");
        assert_eq!(host_of("wss://h.example:443/p"), "h.example");
        assert_eq!(host_of("[::1]:5700"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
