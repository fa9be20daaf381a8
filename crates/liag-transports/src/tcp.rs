//! TCP links (spec §10): an acceptor, and a connector that keeps one link per local interface
//! and remote address, reconnecting with backoff and re-probing silent paths.

use liag_tokio::BoxFuture;
use parking_lot::Mutex;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use liag_tokio::{Connection, EndpointConfig, Server};
use liag_tokio::{UserData, Welcome};

use crate::error::{ConnectError, ParseLinkFilterError, TcpTargetError};
use crate::ip::IpVersion;
use crate::known::KnownPaths;
use crate::stream::{BoxStream, StreamAcceptor, StreamConnector, box_stream};
use crate::tcp_reset::ResetOnDrop;
use crate::transport::{Accepted, Links, connect_with};

/// How often targets are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(10);
/// Time allowed for a TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn user_data(text: &str) -> UserData {
    UserData::new(bytes::Bytes::copy_from_slice(text.as_bytes())).unwrap_or_default()
}

/// `host` with `:port` added if it has none; a bare IPv6 address is bracketed first
/// (`::1` becomes `[::1]:port`, `[::1]` becomes `[::1]:port`).
pub fn with_default_port(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else if host.starts_with('[') {
        if host.contains("]:") {
            host.to_string()
        } else {
            format!("{host}:{port}")
        }
    } else if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// How long the interface list read for accepted links is trusted.
const INTERFACES_FOR: Duration = Duration::from_secs(1);

/// The local interfaces, read at most once a second however fast links arrive.
#[derive(Debug, Default)]
struct Interfaces {
    read: Option<(Instant, Vec<if_addrs::Interface>)>,
}

impl Interfaces {
    /// The name of the interface that has `ip`, if any.
    fn name_of(&mut self, ip: IpAddr) -> Option<String> {
        let fresh = self
            .read
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < INTERFACES_FOR);
        if !fresh {
            self.read = Some((Instant::now(), if_addrs::get_if_addrs().unwrap_or_default()));
        }
        let ip = unmap(ip);
        let (_, list) = self.read.as_ref()?;
        list.iter().find(|i| i.ip() == ip).map(|i| i.name.clone())
    }
}

/// The first pause after an accept fails; it doubles while failures go on.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
/// The longest pause between accepts that fail.
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// Whether an accept error concerns only the connection being accepted, so the next accept
/// may follow at once: it was reset or aborted first, or (Linux passes a new socket's pending
/// network errors on through accept) its network or protocol failed. Anything else, running
/// out of descriptors or memory above all, is the listener's trouble and gets a pause.
fn only_that_connection(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    let kind = matches!(
        e.kind(),
        K::ConnectionAborted
            | K::ConnectionReset
            | K::Interrupted
            | K::WouldBlock
            | K::NetworkDown
            | K::NetworkUnreachable
            | K::HostUnreachable
            | K::PermissionDenied
    );
    kind || e.raw_os_error().is_some_and(|code| {
        [
            libc::EPROTO,
            libc::ENOPROTOOPT,
            libc::EHOSTDOWN,
            #[cfg(target_os = "linux")]
            libc::ENONET,
            libc::EOPNOTSUPP,
        ]
        .contains(&code)
    })
}

/// Most bytes a link's socket holds that TCP has not sent yet (`TCP_NOTSENT_LOWAT`).
///
/// Data waits in liag, where the scheduler can still place it on another link, rather than in
/// the kernel, where it is bound to this path: a path that dies then holds little, a healed
/// path's old socket has little to retransmit, and the link's round trip measures the path,
/// not a send buffer. What TCP has sent and not had acknowledged is not counted; its own
/// congestion window bounds that.
const NOT_SENT_LIMIT: u32 = 128 << 10;

/// The congestion control a link's socket asks for where the kernel has it (Linux): BBR paces
/// to the path's measured rate and keeps the bottleneck's queue short, where a loss-based one
/// (cubic, reno) fills it before it slows down, and every message on the link, liag's
/// acknowledgements included, waits behind that queue. Where the kernel lacks it, or does not
/// let this process choose it (`net.ipv4.tcp_allowed_congestion_control`), the system's
/// default stays.
#[cfg(any(target_os = "linux", target_os = "android"))]
const CONGESTION_CONTROL: &[u8] = b"bbr";

/// TCP_NODELAY, a short unsent queue, BBR where the kernel offers it, and keep-alive so a dead
/// peer is noticed even on an idle link.
pub(crate) fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket.set_tcp_notsent_lowat(NOT_SENT_LIMIT)?;
        if let Err(e) = socket.set_tcp_congestion(CONGESTION_CONTROL) {
            tracing::trace!(%e, "the link keeps the system's congestion control");
        }
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5));
    socket.set_tcp_keepalive(&keepalive)
}

/// Accepts TCP links for a [`Server`].
///
/// Accepting never stops on an error. When the process runs out of file descriptors or
/// memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), or the listener itself fails, the
/// acceptor logs it once at `warn`, pauses (10 ms at first, doubling up to 1 s while the
/// failure lasts) and tries again; it logs at `info` when it accepts again. A connection that
/// fails while being accepted, or whose address cannot be read, is dropped alone.
#[derive(Debug)]
pub struct TcpAcceptor {
    listeners: Vec<TcpListener>,
    next: usize,
    /// Since when accepting fails, and the pause before the next try.
    failing: Option<(Instant, Duration)>,
    interfaces: Interfaces,
}

impl TcpAcceptor {
    /// Listens on each address (IPv6 sockets are dual-stack where the system allows).
    pub async fn bind(addrs: &[SocketAddr]) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for &addr in addrs {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            listeners.push(listener);
        }
        Ok(TcpAcceptor {
            listeners,
            next: 0,
            failing: None,
            interfaces: Interfaces::default(),
        })
    }

    /// Listens on each address of each local interface individually, at `port`.
    pub async fn each_interface(port: u16) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = if_addrs::get_if_addrs()?
            .into_iter()
            // Link-local IPv6 addresses need a scope to bind; they are left out.
            .filter(|i| !matches!(i.ip(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
            .map(|i| SocketAddr::new(i.ip(), port))
            .collect();
        Self::bind(&addrs).await
    }

    /// Listens on every interface, IPv4 and IPv6, at `port`.
    pub async fn all_interfaces(port: u16) -> io::Result<Self> {
        match Self::bind(&[SocketAddr::from(([0u16; 8], port))]).await {
            Ok(acceptor) => Ok(acceptor),
            Err(_) => Self::bind(&[SocketAddr::from(([0, 0, 0, 0], port))]).await,
        }
    }

    /// The addresses listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Hands every accepted connection to `server`; it returns only if the acceptor listens on
    /// no address.
    ///
    /// Each link's Welcome carries the name of the interface it arrived on (spec §10.3), or its
    /// local address as text when no interface has it.
    pub async fn serve(self, server: Server) -> io::Result<()> {
        crate::serve(self, server).await
    }

    /// The next accepted connection, tuned, with its tag, this side's user data and the
    /// peer's address.
    pub async fn accept_tcp(&mut self) -> io::Result<Accepted<TcpStream>> {
        if self.listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the TCP acceptor listens on no address",
            ));
        }
        loop {
            let (stream, peer) = match self.next_connection().await {
                Ok(accepted) => accepted,
                Err(e) if only_that_connection(&e) => continue,
                Err(e) => {
                    self.pause_after(&e).await;
                    continue;
                }
            };
            if let Some((since, _)) = self.failing.take() {
                tracing::info!(after = ?since.elapsed(), "accepting TCP links again");
            }
            let peer = SocketAddr::new(unmap(peer.ip()), peer.port());
            let local = match stream.local_addr() {
                Ok(local) => local,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "accepted socket has no address");
                    continue;
                }
            };
            if let Err(e) = tune(&stream) {
                tracing::debug!(%peer, error = %e, "cannot tune socket");
            }
            let name = (self.interfaces.name_of(local.ip()))
                .unwrap_or_else(|| unmap(local.ip()).to_string());
            let accepted = Accepted::new(stream, format!("{name} <- {peer}"), user_data(&name));
            return Ok(accepted.with_peer(peer.ip()));
        }
    }

    /// The next connection any listener has.
    async fn next_connection(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        // Start with a different listener each time, so a busy one cannot starve the others.
        self.next = (self.next + 1) % self.listeners.len();
        let start = self.next;
        let listeners = &self.listeners;
        std::future::poll_fn(|cx| {
            for i in 0..listeners.len() {
                let listener = &listeners[(start + i) % listeners.len()];
                if let std::task::Poll::Ready(r) = listener.poll_accept(cx) {
                    return std::task::Poll::Ready(r);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// Waits before the next accept after `e`: out of descriptors or memory, the pending
    /// connections stay in the kernel's queue until some close.
    async fn pause_after(&mut self, e: &io::Error) {
        let pause = match self.failing {
            None => {
                tracing::warn!(error = %e, "cannot accept TCP links for now; retrying");
                ACCEPT_PAUSE_MIN
            }
            Some((_, pause)) => (pause * 2).min(ACCEPT_PAUSE_MAX),
        };
        let since = self.failing.map_or_else(Instant::now, |(since, _)| since);
        self.failing = Some((since, pause));
        tokio::time::sleep(pause).await;
    }
}

impl StreamAcceptor for TcpAcceptor {
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>> {
        Box::pin(async move {
            let accepted = self.accept_tcp().await?;
            Ok(accepted.map(|stream| box_stream(ResetOnDrop::new(stream))))
        })
    }
}

/// Which new links the connector keeps (spec §10.5), compared with the links it has.
///
/// The filter runs when the server accepts a link, against the links up (or kept) at that
/// moment, so its effect does not depend on which handshake finishes first. A refused link
/// is logged at `warn`, published as [`LinkEvent::Refused`](liag_tokio::LinkEvent::Refused)
/// and tried again when one of the connection's links goes.
///
/// The default, [`TcpLinkFilter::InterfaceInterface`], keeps one link per local interface and
/// server interface: right for a client with several networks (Wi-Fi, Ethernet, cellular).
/// Where every link leaves through one interface (loopback tests, or one network card towards
/// several addresses of a server) it keeps a single link; use [`TcpLinkFilter::None`] there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TcpLinkFilter {
    /// Keep every link.
    None,
    /// Refuse a link with the same local interface and the same remote interface name.
    #[default]
    InterfaceInterface,
    /// Refuse a link with the same local interface and the same remote IP.
    InterfaceIp,
}

impl std::str::FromStr for TcpLinkFilter {
    type Err = ParseLinkFilterError;

    /// `none`, `interface-interface` or `interface-ip`.
    fn from_str(s: &str) -> Result<Self, ParseLinkFilterError> {
        match s {
            "none" => Ok(TcpLinkFilter::None),
            "interface-interface" => Ok(TcpLinkFilter::InterfaceInterface),
            "interface-ip" => Ok(TcpLinkFilter::InterfaceIp),
            other => Err(ParseLinkFilterError {
                given: other.to_string(),
            }),
        }
    }
}

/// Addresses and when they were resolved.
type Resolved = (Instant, Vec<SocketAddr>);

/// One path: a local interface (or any) towards one remote address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Path {
    interface: Option<String>,
    remote: SocketAddr,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.interface {
            Some(i) => write!(f, "{i} -> {}", self.remote),
            None => write!(f, "{}", self.remote),
        }
    }
}

/// Opens and keeps TCP links to a server.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    targets: Vec<String>,
    default_port: Option<u16>,
    multi_interface: bool,
    filter: TcpLinkFilter,
    interfaces: Option<Vec<String>>,
    ip_version: IpVersion,
    resolved: Arc<Mutex<Option<Resolved>>>,
    known: Arc<KnownPaths<Path>>,
}

impl TcpConnector {
    /// Targets are `host` or `host:port`; hosts are resolved to all their addresses, and a
    /// target without a port gets `default_port`.
    ///
    /// The default link filter keeps one link per local interface and server interface:
    /// several targets reached over one interface (loopback, or one network card towards
    /// several addresses of a server) give one link unless the filter is
    /// [`TcpLinkFilter::None`] ([`TcpConnector::set_filter`]).
    pub fn new(targets: impl IntoIterator<Item = impl Into<String>>, default_port: u16) -> Self {
        Self::with_port(targets, Some(default_port))
    }

    /// Targets that each carry their port: `host:port`, `192.0.2.1:5700`,
    /// `[2001:db8::1]:5700`. A target without one fails [`TcpConnector::connect`]. Otherwise
    /// as [`TcpConnector::new`].
    pub fn to(targets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with_port(targets, None)
    }

    fn with_port(
        targets: impl IntoIterator<Item = impl Into<String>>,
        default_port: Option<u16>,
    ) -> Self {
        TcpConnector {
            targets: targets.into_iter().map(Into::into).collect(),
            default_port,
            multi_interface: true,
            filter: TcpLinkFilter::default(),
            interfaces: None,
            ip_version: IpVersion::Any,
            resolved: Arc::default(),
            known: Arc::default(),
        }
    }

    /// One link per local interface (true) or one per remote address (false). Default true.
    pub fn set_multi_interface(&mut self, multi_interface: bool) -> &mut Self {
        self.multi_interface = multi_interface;
        self
    }

    /// The link filter. Default [`TcpLinkFilter::InterfaceInterface`].
    pub fn set_filter(&mut self, filter: TcpLinkFilter) -> &mut Self {
        self.filter = filter;
        self
    }

    /// Only these local interfaces (by name), if set. Default: every interface that is up.
    pub fn set_interfaces(&mut self, interfaces: Option<Vec<String>>) -> &mut Self {
        self.interfaces = interfaces;
        self
    }

    /// Which addresses of the targets to use: [`IpVersion::V4`] or [`IpVersion::V6`] only.
    /// Default [`IpVersion::Any`], both.
    pub fn set_ip_version(&mut self, ip_version: IpVersion) -> &mut Self {
        self.ip_version = ip_version;
        self
    }

    /// Resolves the targets once; an error names the target that failed.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Target`]: a target is malformed ([`TcpTargetError`]).
    /// [`ConnectError::Resolve`]: a host name did not resolve. [`ConnectError::NoAddress`]:
    /// no address of the IP version asked for ([`TcpConnector::set_ip_version`]).
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, ConnectError> {
        let mut addrs = Vec::new();
        for target in &self.targets {
            let with_port = with_port(target, self.default_port)?;
            let found = tokio::net::lookup_host(&with_port).await.map_err(|error| {
                ConnectError::Resolve {
                    target: target.clone(),
                    error,
                }
            })?;
            addrs.extend(found.map(|a| SocketAddr::new(unmap(a.ip()), a.port())));
        }
        addrs.retain(|a| self.ip_version.allows(a.ip()));
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(ConnectError::NoAddress {
                targets: self.targets.clone(),
            });
        }
        Ok(addrs)
    }

    /// The paths to the addresses: per fitting local interface, or one each.
    fn paths_to(&self, addrs: &[SocketAddr]) -> Vec<Path> {
        if !self.multi_interface {
            return addrs
                .iter()
                .map(|&remote| Path {
                    interface: None,
                    remote,
                })
                .collect();
        }
        let mut paths = Vec::new();
        for &remote in addrs {
            let names = interfaces_for(remote, self.interfaces.as_deref());
            paths.extend(names.into_iter().map(|name| Path {
                interface: Some(name),
                remote,
            }));
        }
        paths
    }

    /// Makes a connection and starts keeping its links; fails only if the targets cannot be
    /// resolved or no path exists.
    ///
    /// # Errors
    ///
    /// As [`TcpConnector::resolve`], and [`ConnectError::NoInterface`]: no local interface
    /// can reach the addresses.
    pub async fn connect(
        self,
        config: EndpointConfig,
    ) -> Result<(Connection, Links), ConnectError> {
        let addrs = self.resolve().await?;
        if self.paths_to(&addrs).is_empty() {
            return Err(ConnectError::NoInterface {
                targets: self.targets.clone(),
            });
        }
        *self.resolved.lock() = Some((Instant::now(), addrs));
        Ok(connect_with(self, config))
    }

    /// The addresses, resolved at most every ten seconds.
    async fn addresses(&self) -> Result<Vec<SocketAddr>, ConnectError> {
        let cached = self.resolved.lock().clone();
        match cached {
            Some((at, addrs)) if at.elapsed() < RESOLVE_EVERY => Ok(addrs),
            _ => {
                let addrs = self.resolve().await?;
                *self.resolved.lock() = Some((Instant::now(), addrs.clone()));
                Ok(addrs)
            }
        }
    }
}

/// `target` with its port: its own (checked), or `default_port`.
fn with_port(target: &str, default_port: Option<u16>) -> Result<String, TcpTargetError> {
    // A port follows the last colon of `host:port` or `[v6 address]:port`.
    let port = target.rsplit_once(':').and_then(|(host, port)| {
        let bracketed = host.starts_with('[') && host.ends_with(']');
        (!host.contains(':') || bracketed).then_some(port)
    });
    match (port, default_port) {
        (Some(port), _) if port.parse::<u16>().is_err() => Err(TcpTargetError::BadPort {
            target: target.to_string(),
            port: port.to_string(),
        }),
        (Some(_), _) => Ok(target.to_string()),
        (None, Some(port)) if target.contains(':') && !target.starts_with('[') => {
            Ok(format!("[{target}]:{port}"))
        }
        (None, Some(port)) => Ok(format!("{target}:{port}")),
        (None, None) => Err(TcpTargetError::NoPort {
            target: target.to_string(),
        }),
    }
}

/// Connects to `remote`, from `interface` if given (tied to it on Linux); returns the tuned
/// stream and the name of the local side (the interface, or the local IP as text).
pub(crate) async fn open_tcp(
    interface: Option<&str>,
    remote: SocketAddr,
) -> io::Result<(TcpStream, String)> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(interface) = interface {
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot tie a socket to {interface}: {e}"))
            })?;
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(remote))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {remote} timed out"),
            )
        })?
        .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {remote}: {e}")))?;
    tune(&stream)?;
    let local = interface.map(str::to_string).unwrap_or_else(|| {
        stream
            .local_addr()
            .map(|a| unmap(a.ip()).to_string())
            .unwrap_or_default()
    });
    Ok((stream, local))
}

/// The local interfaces a link to `remote` can leave from: same IP family, same loopback
/// property, not unspecified, not `ifb*`, and in `allowed` if given (spec §10.4).
pub(crate) fn interfaces_for(remote: SocketAddr, allowed: Option<&[String]>) -> Vec<String> {
    let mut names: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| {
            let ip = i.ip();
            !ip.is_unspecified()
                && ip.is_ipv4() == remote.is_ipv4()
                && ip.is_loopback() == remote.ip().is_loopback()
                && !i.name.starts_with("ifb")
                && allowed.is_none_or(|allowed| allowed.contains(&i.name))
        })
        .map(|i| i.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

impl StreamConnector for TcpConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let addrs = self.addresses().await.map_err(io::Error::from)?;
            let paths = self.paths_to(&addrs);
            Ok(self
                .known
                .record(paths.into_iter().map(|p| (p.to_string(), p))))
        })
    }

    fn open_stream<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let path = self.known.get(name)?;
            let (stream, local) = open_tcp(path.interface.as_deref(), path.remote).await?;
            Ok((box_stream(ResetOnDrop::new(stream)), user_data(&local)))
        })
    }

    fn keep(&self, name: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        self.known.keep(name, others, |this, other, remote| {
            this.interface == other.interface
                && match self.filter {
                    TcpLinkFilter::None => false,
                    TcpLinkFilter::InterfaceInterface => *remote == welcome.user_data,
                    TcpLinkFilter::InterfaceIp => other.remote.ip() == this.remote.ip(),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::only_that_connection;
    use std::io;

    /// A link's socket asks for BBR where this kernel lets any process choose it, and keeps
    /// the system's default, without an error, where it does not.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn a_link_socket_asks_for_bbr_where_the_kernel_allows_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stream, _) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let stream = stream.unwrap();
        let socket = socket2::SockRef::from(&stream);
        // Start from reno where allowed, so a system default of BBR proves nothing.
        let _ = socket.set_tcp_congestion(b"reno");
        // The kernel pads the name with NULs.
        let name = |socket: &socket2::SockRef<'_>| {
            let mut name = socket.tcp_congestion().unwrap();
            name.retain(|&b| b != 0);
            name
        };
        let before = name(&socket);
        super::tune(&stream).unwrap();
        let after = name(&socket);
        let allowed = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
            .unwrap_or_default();
        if allowed.split_whitespace().any(|name| name == "bbr") {
            assert_eq!(after, b"bbr");
        } else {
            println!("bbr not allowed here ({allowed:?}): the default stays");
            assert_eq!(after, before);
        }
    }

    #[test]
    fn accept_pauses_only_for_the_listeners_own_trouble() {
        // Out of descriptors or memory: pause, the kernel keeps the connections queued.
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let e = io::Error::from_raw_os_error(code);
            assert!(!only_that_connection(&e), "{e}");
        }
        // A broken listener: pause rather than spin.
        for code in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            let e = io::Error::from_raw_os_error(code);
            assert!(!only_that_connection(&e), "{e}");
        }
        // One connection's network errors, passed on by accept: take the next one at once.
        for code in [
            libc::ECONNABORTED,
            libc::EPROTO,
            libc::ENETDOWN,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::EHOSTDOWN,
            libc::ENOPROTOOPT,
            libc::EOPNOTSUPP,
            libc::EPERM,
            libc::EINTR,
            libc::EAGAIN,
        ] {
            let e = io::Error::from_raw_os_error(code);
            assert!(only_that_connection(&e), "{e}");
        }
    }
}
