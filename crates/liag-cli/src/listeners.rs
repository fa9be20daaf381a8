//! A server's link listeners (TCP and WebSocket) that a reload may move to other ports while
//! the links and connections already made go on.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::task::AbortHandle;

use liag_transports::liag_tokio::Server;
use liag_transports::tcp::TcpAcceptor;
use liag_transports::tls::rustls::ServerConfig;
use liag_transports::websocket::WsAcceptor;

use crate::links::spawn_serve;
use crate::service::say;

/// Where a server takes links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkPorts {
    /// The TCP port.
    pub(crate) tcp: u16,
    /// The WebSocket port, if any.
    pub(crate) websocket: Option<u16>,
}

/// What every listener of a server shares.
struct Serving {
    who: &'static str,
    ws_path: &'static str,
    loopback_only: bool,
    tls: Option<Arc<ServerConfig>>,
    server: Server,
}

/// The listeners running, and their ports.
pub(crate) struct Listeners {
    serving: Serving,
    tcp: (u16, AbortHandle),
    websocket: Option<(u16, AbortHandle)>,
}

impl Listeners {
    /// Listens on `ports` (all interfaces, or loopback only) and serves the links to `server`.
    pub(crate) async fn start(
        who: &'static str,
        ports: LinkPorts,
        (loopback_only, ws_path): (bool, &'static str),
        tls: Option<Arc<ServerConfig>>,
        server: &Server,
    ) -> io::Result<Listeners> {
        let serving = Serving {
            who,
            ws_path,
            loopback_only,
            tls,
            server: server.clone(),
        };
        let tcp = (ports.tcp, serving.listen_tcp(ports.tcp).await?);
        let websocket = match ports.websocket {
            Some(port) => Some((port, serving.listen_websocket(port).await?)),
            None => None,
        };
        Ok(Listeners {
            serving,
            tcp,
            websocket,
        })
    }

    /// Moves the listeners to `ports` (a reload): a new port is listened on before the old
    /// one closes; one that cannot be is reported and the old one kept.
    pub(crate) async fn change(&mut self, ports: LinkPorts) {
        let (serving, who) = (&self.serving, self.serving.who);
        if ports.tcp != self.tcp.0 {
            match serving.listen_tcp(ports.tcp).await {
                Ok(handle) => {
                    let (old, listening) = std::mem::replace(&mut self.tcp, (ports.tcp, handle));
                    listening.abort();
                    say!("{who}: reload: no more links on TCP port {old}");
                }
                Err(e) => say!(
                    "{who}: reload: cannot listen on TCP port {}: {e}",
                    ports.tcp
                ),
            }
        }
        let old = self.websocket.as_ref().map(|(port, _)| *port);
        if ports.websocket == old {
            return;
        }
        match ports.websocket {
            Some(port) => match serving.listen_websocket(port).await {
                Ok(handle) => {
                    if let Some((_, listening)) = self.websocket.replace((port, handle)) {
                        listening.abort();
                    }
                }
                Err(e) => {
                    say!("{who}: reload: cannot listen on WebSocket port {port}: {e}");
                    return;
                }
            },
            None => {
                if let Some((_, listening)) = self.websocket.take() {
                    listening.abort();
                }
            }
        }
        if let Some(old) = old {
            say!("{who}: reload: no more links on WebSocket port {old}");
        }
    }
}

impl Serving {
    fn addrs(&self, port: u16) -> Vec<SocketAddr> {
        if self.loopback_only {
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ]
        } else {
            Vec::new()
        }
    }

    fn with_tls(&self) -> &'static str {
        if self.tls.is_some() { " with TLS" } else { "" }
    }

    async fn listen_tcp(&self, port: u16) -> io::Result<AbortHandle> {
        let acceptor = if self.loopback_only {
            TcpAcceptor::bind(&self.addrs(port)).await?
        } else {
            TcpAcceptor::all_interfaces(port).await?
        };
        say!(
            "{}: links on TCP {:?}{}",
            self.who,
            acceptor.local_addrs(),
            self.with_tls()
        );
        Ok(spawn_serve(acceptor, &self.tls, &self.server, "TCP".into()))
    }

    async fn listen_websocket(&self, port: u16) -> io::Result<AbortHandle> {
        let ws = if self.loopback_only {
            WsAcceptor::bind(&self.addrs(port), self.ws_path).await?
        } else {
            WsAcceptor::all_interfaces(port, self.ws_path).await?
        };
        say!(
            "{}: links on WebSocket {:?} at {}{}",
            self.who,
            ws.local_addrs(),
            self.ws_path,
            self.with_tls()
        );
        Ok(spawn_serve(ws, &self.tls, &self.server, "WebSocket".into()))
    }
}
