//! The WebSocket server: [`WsAcceptor`] upgrades connections on TCP ports at one URL path,
//! with TLS first for `wss://`.

use liag_tokio::BoxFuture;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use liag_tokio::UserData;

use super::gate::{Gate, Meter, PRE_HANDSHAKE_READ};
use super::{HANDSHAKE_TIMEOUT, MAX_UPGRADES, WsBytes, acceptor_user_data, ws_config};
use crate::stream::{BoxStream, StreamAcceptor, box_stream};
use crate::tcp::TcpAcceptor;
use crate::transport::{Accepted, Hooks};
use crate::upgrades::Upgrades;

/// Accepts WebSocket links on TCP ports, at one URL path; other paths get HTTP 404.
///
/// Upgrades run concurrently, each for at most ten seconds, so a slow client holds up no one;
/// at most [`MAX_UPGRADES`] at once, and when all are taken a newcomer takes the place of the
/// oldest upgrade of the source with the most. Until the link handshake is answered, at most
/// [`super::PRE_HANDSHAKE_READ`] bytes are read. Messages are limited to [`super::MAX_MESSAGE`].
/// To accept on a route of an HTTP server of your own instead, upgrade there and hand the
/// socket, as [`WsBytes`], to [`liag_tokio::Server::add_link_from`] (`examples/websocket_axum.rs`).
pub struct WsAcceptor {
    tcp: TcpAcceptor,
    path: Arc<str>,
    user_data: UserData,
    tls: Option<tokio_rustls::TlsAcceptor>,
    upgrades: Upgrades<io::Result<Accepted<BoxStream>>>,
}

impl fmt::Debug for WsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsAcceptor")
            .field("addrs", &self.local_addrs())
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl WsAcceptor {
    /// Listens on each address; WebSockets are accepted at `path` (such as `/agg-speed`).
    pub async fn bind(addrs: &[SocketAddr], path: &str) -> io::Result<Self> {
        Ok(WsAcceptor {
            tcp: TcpAcceptor::bind(addrs).await?,
            path: path.into(),
            user_data: acceptor_user_data(Ipv6Addr::UNSPECIFIED.into()),
            tls: None,
            upgrades: Upgrades::new(MAX_UPGRADES),
        })
    }

    /// Listens on every interface, IPv4 and IPv6, at `port`.
    pub async fn all_interfaces(port: u16, path: &str) -> io::Result<Self> {
        Ok(WsAcceptor {
            tcp: TcpAcceptor::all_interfaces(port).await?,
            path: path.into(),
            user_data: acceptor_user_data(Ipv6Addr::UNSPECIFIED.into()),
            tls: None,
            upgrades: Upgrades::new(MAX_UPGRADES),
        })
    }

    /// The addresses listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.local_addrs()
    }

    /// The user data sent to clients: the octets of `ip` (spec §11). By default `::`, sixteen
    /// zero bytes, as aggligator's default acceptor sends; a client then keeps one link per
    /// local interface towards this server.
    pub fn set_local_ip(&mut self, ip: IpAddr) -> &mut Self {
        self.user_data = acceptor_user_data(ip);
        self
    }

    /// Serves `wss://`: a TLS handshake with this configuration comes before the upgrade.
    pub fn set_tls(&mut self, config: Arc<ServerConfig>) -> &mut Self {
        self.tls = Some(config.into());
        self
    }
}

async fn upgrade(
    tcp: TcpStream,
    tag: String,
    path: Arc<str>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<(BoxStream, Arc<Meter>, String)> {
    let work = async {
        match tls {
            Some(tls) => {
                let tls = tls.accept(tcp).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("{tag}: TLS handshake failed: {e}"))
                })?;
                let (io, meter) = upgrade_on(tls, &tag, &path).await?;
                Ok((io, meter, format!("wss {tag}")))
            }
            None => {
                let (io, meter) = upgrade_on(tcp, &tag, &path).await?;
                Ok((io, meter, format!("ws {tag}")))
            }
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{tag}: upgrade timed out")))?
}

/// Upgrades `io` at `path`: the stream, and the meter of what it holds below the framing.
async fn upgrade_on<S>(io: S, tag: &str, path: &str) -> io::Result<(BoxStream, Arc<Meter>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // tungstenite's callback returns its (large) error response by value.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| {
        if request.uri().path() == path {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(Some("no WebSocket at this path".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let meter = Meter::new(PRE_HANDSHAKE_READ);
    let io = Gate::new(io, meter.clone());
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(ws_config()))
        .await
        .map_err(|e| io::Error::other(format!("{tag}: websocket upgrade failed: {e}")))?;
    Ok((box_stream(WsBytes::metered(ws, meter.clone())), meter))
}

impl StreamAcceptor for WsAcceptor {
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>> {
        Box::pin(async move {
            loop {
                tokio::select! {
                    accepted = self.tcp.accept_tcp() => {
                        let Accepted { io, tag, peer, .. } = accepted?;
                        let upgrade = upgrade(io, tag, self.path.clone(), self.tls.clone());
                        let user_data = self.user_data.clone();
                        self.upgrades.spawn(peer, async move {
                            let (io, meter, tag) = upgrade.await?;
                            let mut accepted = Accepted::new(io, tag, user_data);
                            accepted.peer = peer;
                            accepted.hooks = Some(Hooks(meter));
                            Ok(accepted)
                        });
                    }
                    Some(done) = self.upgrades.next() => match done {
                        Ok(Ok(accepted)) => return Ok(accepted),
                        Ok(Err(e)) => tracing::debug!(error = %e, "websocket link refused"),
                        Err(e) => tracing::debug!(error = %e, "websocket upgrade task failed"),
                    },
                }
            }
        })
    }
}
