//! `liag proxy server`: checks each connection's token, then opens the destinations its
//! streams ask for, and relays their bytes and datagrams.

use fast_socks5::util::target_addr::TargetAddr;
use futures::future::poll_fn;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use liag_transports::liag_tokio::Connection;

use super::policy::Policy;
use super::session::multiplexer;
use super::stream::ProxyStream;
use super::wire::{self, Greeting};
use crate::service::say;

/// How long a new connection may take to greet.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new stream may take to say what it wants.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long looking a destination's name up may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(4);
/// How long connecting to a destination may take, all its addresses together. With the
/// lookup, under the 15 s the client waits.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// SOCKS5 reply codes (RFC 1928, section 6).
mod reply {
    pub(super) const OK: u8 = 0;
    pub(super) const FAILURE: u8 = 1;
    pub(super) const NOT_ALLOWED: u8 = 2;
    pub(super) const NETWORK_UNREACHABLE: u8 = 3;
    pub(super) const HOST_UNREACHABLE: u8 = 4;
    pub(super) const REFUSED: u8 = 5;
    pub(super) const TTL_EXPIRED: u8 = 6;
    pub(super) const NO_SUCH_COMMAND: u8 = 7;
}

/// Serves one client's connection: its greeting, then its streams.
pub(crate) async fn session(mut conn: Connection, token: &[u8], policy: Policy) -> io::Result<()> {
    let greeting = tokio::time::timeout(GREETING_TIMEOUT, wire::welcome(&mut conn, token))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "a client sent no greeting"))??;
    match greeting {
        Greeting::Welcome => {}
        refused => {
            // The answer goes out before the connection ends.
            let _ = tokio::time::timeout(GREETING_TIMEOUT, conn.shutdown()).await;
            let why = match refused {
                Greeting::WrongToken => "a client gave a wrong token",
                _ => "a client spoke another protocol",
            };
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
    }
    let (mut mux, frame) = multiplexer(conn, yamux::Mode::Server);
    // Polling for inbound streams drives every stream's bytes, so it never waits on one.
    while let Some(stream) = poll_fn(|cx| mux.poll_next_inbound(cx)).await {
        let stream = stream.map_err(|e| io::Error::other(format!("a connection failed: {e}")))?;
        let stream = ProxyStream::new(stream, frame.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_stream(stream, policy).await {
                tracing::debug!("liag proxy server: a stream: {e}");
            }
        });
    }
    Ok(())
}

async fn serve_stream(mut stream: ProxyStream, policy: Policy) -> io::Result<()> {
    let (cmd, target) = tokio::time::timeout(REQUEST_TIMEOUT, wire::read_request(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request in time"))??;
    match cmd {
        wire::CMD_CONNECT => match open_unless_abandoned(&target, policy, &mut stream).await? {
            Ok(mut socket) => {
                answer(&mut stream, reply::OK).await?;
                super::client::relay(&mut socket, &mut stream).await
            }
            Err(code) => {
                if code == reply::NOT_ALLOWED {
                    say!(
                        "liag proxy server: refused {}: on the server's own host or networks \
                         (see --allow-private)",
                        shown(&target)
                    );
                }
                answer(&mut stream, code).await
            }
        },
        wire::CMD_UDP => {
            answer(&mut stream, reply::OK).await?;
            datagrams(stream, policy).await
        }
        _ => answer(&mut stream, reply::NO_SUCH_COMMAND).await,
    }
}

/// `target` for the log; a name is the peer's text, so it is quoted and escaped.
fn shown(target: &TargetAddr) -> String {
    match target {
        TargetAddr::Ip(addr) => addr.to_string(),
        TargetAddr::Domain(name, port) => format!("{name:?}:{port}"),
    }
}

async fn answer(stream: &mut ProxyStream, code: u8) -> io::Result<()> {
    stream.write_u8(code).await?;
    stream.flush().await
}

/// The destination's addresses that `policy` allows, or the reply code saying why none.
async fn resolve(target: &TargetAddr, policy: Policy) -> Result<Vec<SocketAddr>, u8> {
    let found: Vec<SocketAddr> = match target {
        TargetAddr::Ip(addr) => vec![*addr],
        TargetAddr::Domain(name, port) => tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((name.as_str(), *port)),
        )
        .await
        .map_err(|_| reply::HOST_UNREACHABLE)?
        .map_err(|_| reply::HOST_UNREACHABLE)?
        .collect(),
    };
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| policy.allows(a.ip()))
        .collect();
    match (found.is_empty(), allowed.is_empty()) {
        (true, _) => Err(reply::HOST_UNREACHABLE),
        (false, true) => Err(reply::NOT_ALLOWED),
        (false, false) => Ok(allowed),
    }
}

/// A TCP connection to the first of the destination's allowed addresses that answers, all
/// tries within [`CONNECT_TIMEOUT`].
async fn open(target: &TargetAddr, policy: Policy) -> Result<TcpStream, u8> {
    let addrs = resolve(target, policy).await?;
    let tries = async {
        let mut code = reply::FAILURE;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(socket) => {
                    let _ = socket.set_nodelay(true);
                    return Ok(socket);
                }
                Err(e) => code = connect_error(&e),
            }
        }
        Err(code)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, tries)
        .await
        .unwrap_or(Err(reply::TTL_EXPIRED))
}

/// [`open`], given up as soon as the client ends the stream (it sends nothing before the
/// answer): a stream the client has let go must not hold one of the connection's stream
/// slots meanwhile, for yamux ends the whole connection when the peer opens one too many.
async fn open_unless_abandoned(
    target: &TargetAddr,
    policy: Policy,
    stream: &mut ProxyStream,
) -> io::Result<Result<TcpStream, u8>> {
    let mut early = [0u8; 1];
    tokio::select! {
        opened = open(target, policy) => Ok(opened),
        _ = stream.read(&mut early) => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the client gave up on the stream before it was opened",
        )),
    }
}

fn connect_error(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => reply::REFUSED,
        io::ErrorKind::NetworkUnreachable => reply::NETWORK_UNREACHABLE,
        io::ErrorKind::HostUnreachable => reply::HOST_UNREACHABLE,
        io::ErrorKind::TimedOut => reply::TTL_EXPIRED,
        _ => reply::FAILURE,
    }
}

/// Destinations an association remembers: datagrams from them are let back in.
const DESTINATIONS_KEPT: usize = 64;

/// Remembers `to` among the latest destinations.
fn remember(sent_to: &mut VecDeque<SocketAddr>, to: SocketAddr) {
    if !sent_to.contains(&to) {
        if sent_to.len() == DESTINATIONS_KEPT {
            sent_to.pop_front();
        }
        sent_to.push_back(to);
    }
}

/// Names resolved for datagrams, kept for the association (at most this many).
const NAMES_KEPT: usize = 64;

/// A UDP ASSOCIATE: datagrams from the stream go out of our UDP sockets (IPv4 and IPv6) to
/// the allowed destinations; those that come back go onto the stream with their source.
async fn datagrams(stream: ProxyStream, policy: Policy) -> io::Result<()> {
    let v4 = UdpSocket::bind(SocketAddr::from(([0u8; 4], 0))).await?;
    let v6 = UdpSocket::bind(SocketAddr::from(([0u16; 8], 0))).await.ok();
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    let sent_to = Mutex::new(VecDeque::new());
    let up = async {
        let mut names: HashMap<(String, u16), Option<SocketAddr>> = HashMap::new();
        while let Some((target, data)) = wire::read_datagram(&mut from_client).await? {
            let to = match &target {
                TargetAddr::Ip(addr) => policy.allows(addr.ip()).then_some(*addr),
                TargetAddr::Domain(name, port) => {
                    let key = (name.clone(), *port);
                    if let Some(known) = names.get(&key) {
                        *known
                    } else {
                        let found = resolve(&target, policy)
                            .await
                            .ok()
                            .and_then(|a| a.first().copied());
                        if names.len() >= NAMES_KEPT {
                            // One goes, so names that rotate cost one lookup each, not all.
                            if let Some(old) = names.keys().next().cloned() {
                                names.remove(&old);
                            }
                        }
                        names.insert(key, found);
                        found
                    }
                }
            };
            let socket = match to {
                Some(SocketAddr::V4(_)) => Some(&v4),
                Some(SocketAddr::V6(_)) => v6.as_ref(),
                None => None,
            };
            if let (Some(socket), Some(to)) = (socket, to) {
                remember(&mut sent_to.lock().unwrap_or_else(|e| e.into_inner()), to);
                // A datagram that cannot go is lost, as UDP's are.
                let _ = socket.send_to(&data, to).await;
            }
        }
        io::Result::Ok(())
    };
    let down = async {
        let mut buf4 = vec![0u8; wire::DATAGRAM_MAX];
        let mut buf6 = vec![0u8; wire::DATAGRAM_MAX];
        loop {
            let (n, from, buf) = tokio::select! {
                r = v4.recv_from(&mut buf4) => { let (n, from) = r?; (n, from, &buf4) }
                r = recv_maybe(v6.as_ref(), &mut buf6) => { let (n, from) = r?; (n, from, &buf6) }
            };
            // Only answers come back: datagrams from where the association sent to.
            if !sent_to
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&from)
            {
                continue;
            }
            // The address takes up to 19 bytes of a frame's 65,535.
            let data = &buf[..n.min(wire::DATAGRAM_MAX - 19)];
            wire::write_datagram(&mut to_client, &TargetAddr::Ip(from), data).await?;
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

async fn recv_maybe(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
