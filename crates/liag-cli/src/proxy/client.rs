//! `liag proxy client`'s front end: a SOCKS5 server (RFC 1928) for the local applications,
//! with no authentication or a username and password (RFC 1929). CONNECT and UDP ASSOCIATE
//! each take a stream of one of the kept connections (see `lanes`).

use fast_socks5::server::{Socks5ServerProtocol, states};
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command, new_udp_header, parse_udp_request};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::session::Opener;
use super::stream::ProxyStream;
use super::wire;

/// How long an application may take to say what it wants.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new stream may wait for the connection to the server.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// The copy buffers of a proxied connection, each way.
pub(crate) const COPY_BUFFER: usize = 64 << 10;

/// A username and password the applications must give (RFC 1929).
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

/// Serves SOCKS5 on `listener` until it fails.
pub(crate) async fn serve(
    listener: TcpListener,
    credentials: Option<Arc<Credentials>>,
    opener: Opener,
) -> io::Error {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors, say: the sockets in use will free some.
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return e,
        };
        let (credentials, opener) = (credentials.clone(), opener.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(socket, peer, credentials.as_deref(), &opener).await {
                tracing::debug!("liag proxy client: {peer}: {e}");
            }
        });
    }
}

fn is_transient(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied | io::ErrorKind::AddrInUse
    )
}

async fn handle(
    socket: TcpStream,
    peer: SocketAddr,
    credentials: Option<&Credentials>,
    opener: &Opener,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let local = socket.local_addr()?;
    let request = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let proto = match credentials {
            None => Socks5ServerProtocol::accept_no_auth(socket).await,
            Some(c) => Socks5ServerProtocol::accept_password_auth(socket, |user, password| {
                let user_ok = user.as_bytes().ct_eq(c.user.as_bytes());
                let password_ok = password.as_bytes().ct_eq(c.password.as_bytes());
                bool::from(user_ok & password_ok)
            })
            .await
            .map(|(proto, _)| proto),
        };
        proto
            .map_err(socks_error)?
            .read_command()
            .await
            .map_err(socks_error)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no SOCKS5 request in time"))??;
    match request {
        (proto, Socks5Command::TCPConnect, target) => connect(proto, target, local, opener).await,
        (proto, Socks5Command::UDPAssociate, _) => associate(proto, peer, local, opener).await,
        (proto, _, _) => proto
            .reply_error(&ReplyError::CommandNotSupported)
            .await
            .map_err(socks_error),
    }
}

type Commanded = Socks5ServerProtocol<TcpStream, states::CommandRead>;

/// A stream to the server with `cmd` for `target` asked for and granted; else the SOCKS5
/// client has been told why not.
async fn request(
    proto: Commanded,
    cmd: u8,
    target: &TargetAddr,
    opener: &Opener,
) -> io::Result<Option<(Commanded, ProxyStream)>> {
    let opened = async {
        let mut stream = opener.open().await?;
        wire::write_request(&mut stream, cmd, target).await?;
        let reply = stream.read_u8().await?;
        io::Result::Ok((stream, reply))
    };
    match tokio::time::timeout(OPEN_TIMEOUT, opened).await {
        Ok(Ok((stream, 0))) => Ok(Some((proto, stream))),
        Ok(Ok((_, reply))) => {
            proto
                .reply_error(&reply_error(reply))
                .await
                .map_err(socks_error)?;
            Ok(None)
        }
        Ok(Err(e)) => {
            let _ = proto.reply_error(&ReplyError::NetworkUnreachable).await;
            Err(e)
        }
        Err(_) => {
            let _ = proto.reply_error(&ReplyError::NetworkUnreachable).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no connection to the server in time",
            ))
        }
    }
}

async fn connect(
    proto: Commanded,
    target: TargetAddr,
    local: SocketAddr,
    opener: &Opener,
) -> io::Result<()> {
    let Some((proto, mut stream)) = request(proto, wire::CMD_CONNECT, &target, opener).await?
    else {
        return Ok(());
    };
    let mut socket = proto.reply_success(local).await.map_err(socks_error)?;
    relay(&mut socket, &mut stream).await
}

/// Copies both ways until both ends have closed; half-closes pass through. A failure on
/// either side resets the application's socket.
pub(crate) async fn relay(socket: &mut TcpStream, stream: &mut ProxyStream) -> io::Result<()> {
    match tokio::io::copy_bidirectional_with_sizes(socket, stream, COPY_BUFFER, COPY_BUFFER).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // Closing with a zero linger sends a reset, as the other side did; a zero linger
            // never blocks the thread, which is what the deprecation warns of.
            #[allow(deprecated)]
            let _ = socket.set_linger(Some(Duration::ZERO));
            Err(e)
        }
    }
}

/// UDP ASSOCIATE: datagrams from the application's address to a UDP socket of ours travel as
/// messages on one stream; the association lasts as long as the application's TCP connection.
async fn associate(
    proto: Commanded,
    peer: SocketAddr,
    local: SocketAddr,
    opener: &Opener,
) -> io::Result<()> {
    let udp = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
    let any = TargetAddr::Ip(SocketAddr::new(unspecified(local.ip()), 0));
    let Some((proto, stream)) = request(proto, wire::CMD_UDP, &any, opener).await? else {
        return Ok(());
    };
    let mut control = proto
        .reply_success(udp.local_addr()?)
        .await
        .map_err(socks_error)?;
    let (mut from_server, mut to_server) = tokio::io::split(stream);
    // Where the application sends from: replies go there.
    let app = Mutex::new(None::<SocketAddr>);
    let up = async {
        let mut buf = vec![0u8; wire::DATAGRAM_MAX];
        loop {
            let (n, from) = udp.recv_from(&mut buf).await?;
            // The first datagram from the application's address pins the association to its
            // port: another program on that host cannot borrow it.
            {
                let mut app = app.lock().unwrap_or_else(|e| e.into_inner());
                match *app {
                    Some(pinned) if pinned != from => continue,
                    None if from.ip() != peer.ip() => continue,
                    _ => *app = Some(from),
                }
            }
            // Fragments are not supported (RFC 1928, section 7): such datagrams are dropped.
            if let Ok((0, target, data)) = parse_udp_request(&buf[..n]).await {
                wire::write_datagram(&mut to_server, &target, data).await?;
            }
        }
    };
    let down = async {
        while let Some((from, data)) = wire::read_datagram(&mut from_server).await? {
            let Some(to) = *app.lock().unwrap_or_else(|e| e.into_inner()) else {
                continue;
            };
            let Ok(mut packet) = new_udp_header(from) else {
                continue;
            };
            packet.extend_from_slice(&data);
            udp.send_to(&packet, to).await?;
        }
        io::Result::Ok(())
    };
    let held = async {
        let mut scrap = [0u8; 512];
        while control.read(&mut scrap).await? > 0 {}
        io::Result::Ok(())
    };
    let ended = tokio::select! {
        r = up => r,
        r = down => r,
        r = held => r,
    };
    let _ = control.shutdown().await;
    ended
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::from([0u8; 4]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// The SOCKS5 reply for a reply code from the server (unknown codes are general failures).
fn reply_error(code: u8) -> ReplyError {
    match code {
        2 => ReplyError::ConnectionNotAllowed,
        3 => ReplyError::NetworkUnreachable,
        4 => ReplyError::HostUnreachable,
        5 => ReplyError::ConnectionRefused,
        6 => ReplyError::TtlExpired,
        7 => ReplyError::CommandNotSupported,
        8 => ReplyError::AddressTypeNotSupported,
        _ => ReplyError::GeneralFailure,
    }
}

fn socks_error(e: fast_socks5::server::SocksServerError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("SOCKS5: {e}"))
}
