//! The WebSocket client: [`WsConnector`] keeps one link per local interface and server address
//! of each `ws://` or `wss://` URL.

use liag_tokio::BoxFuture;
use parking_lot::Mutex;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Uri;

use liag_tokio::{Connection, EndpointConfig};
use liag_tokio::{UserData, Welcome};

use super::{HANDSHAKE_TIMEOUT, RESOLVE_EVERY, WsBytes, upgrade_error, ws_config};
use crate::error::{ConnectError, WsUrlError};
use crate::ip::IpVersion;
use crate::known::KnownPaths;
use crate::stream::{BoxStream, StreamConnector, box_stream};
use crate::tcp::{interfaces_for, open_tcp, unmap, user_data};
use crate::transport::{Links, connect_with};

/// A server URL, checked.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    host: String,
    port: u16,
    tls: bool,
}

impl Target {
    fn parse(url: &str) -> Result<Self, WsUrlError> {
        let uri: Uri = url.parse().map_err(|error| WsUrlError::Invalid {
            url: url.to_string(),
            error,
        })?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(WsUrlError::Scheme {
                    url: url.to_string(),
                });
            }
        };
        let host = uri.host().ok_or_else(|| WsUrlError::NoHost {
            url: url.to_string(),
        })?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            url: url.to_string(),
            host,
            port,
            tls,
        })
    }
}

/// Addresses (with the index of their URL) and when they were resolved.
type Resolved = (Instant, Vec<(usize, SocketAddr)>);

/// One path: a local interface (or any) towards one address of one URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Path {
    target: usize,
    interface: Option<String>,
    remote: SocketAddr,
}

/// Opens and keeps WebSocket links to a server, one per local interface and server address.
pub struct WsConnector {
    targets: Vec<Target>,
    multi_interface: bool,
    interfaces: Option<Vec<String>>,
    ip_version: IpVersion,
    tls: Arc<ClientConfig>,
    resolved: Mutex<Option<Resolved>>,
    known: KnownPaths<Path>,
}

impl fmt::Debug for WsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnector")
            .field("urls", &self.urls())
            .field("multi_interface", &self.multi_interface)
            .finish_non_exhaustive()
    }
}

impl WsConnector {
    /// Links to these `ws://` or `wss://` URLs; `wss` checks the server against the WebPKI
    /// roots unless [`WsConnector::set_tls_config`] says otherwise.
    ///
    /// # Errors
    ///
    /// A URL that is unusable, or none at all ([`WsUrlError`]).
    pub fn new(urls: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, WsUrlError> {
        let targets = urls
            .into_iter()
            .map(|u| Target::parse(u.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(WsUrlError::NoUrl);
        }
        Ok(WsConnector {
            targets,
            multi_interface: true,
            interfaces: None,
            ip_version: IpVersion::Any,
            tls: crate::tls::webpki_client_config(),
            resolved: Mutex::default(),
            known: KnownPaths::default(),
        })
    }

    /// The TLS client configuration for `wss://` URLs (a private CA, say).
    pub fn set_tls_config(&mut self, config: Arc<ClientConfig>) -> &mut Self {
        self.tls = config;
        self
    }

    /// One link per local interface (true) or one per server address (false). Default true.
    pub fn set_multi_interface(&mut self, multi_interface: bool) -> &mut Self {
        self.multi_interface = multi_interface;
        self
    }

    /// Only these local interfaces (by name), if set. Default: every interface that is up.
    pub fn set_interfaces(&mut self, interfaces: Option<Vec<String>>) -> &mut Self {
        self.interfaces = interfaces;
        self
    }

    /// Which addresses of the servers to use: [`IpVersion::V4`] or [`IpVersion::V6`] only.
    /// Default [`IpVersion::Any`], both.
    pub fn set_ip_version(&mut self, ip_version: IpVersion) -> &mut Self {
        self.ip_version = ip_version;
        self
    }

    /// The URLs.
    pub fn urls(&self) -> Vec<&str> {
        self.targets.iter().map(|t| t.url.as_str()).collect()
    }

    /// Resolves every URL's host; an error names the URL that failed.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Resolve`]: a host name did not resolve. [`ConnectError::NoAddress`]:
    /// no address of the IP version asked for ([`WsConnector::set_ip_version`]).
    pub async fn resolve(&self) -> Result<Vec<(usize, SocketAddr)>, ConnectError> {
        let mut found = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let addrs = tokio::net::lookup_host((t.host.as_str(), t.port))
                .await
                .map_err(|error| ConnectError::Resolve {
                    target: t.url.clone(),
                    error,
                })?;
            found.extend(addrs.map(|a| (i, SocketAddr::new(unmap(a.ip()), a.port()))));
        }
        found.retain(|(_, a)| self.ip_version.allows(a.ip()));
        found.sort();
        found.dedup();
        if found.is_empty() {
            return Err(ConnectError::NoAddress {
                targets: self.urls().into_iter().map(str::to_string).collect(),
            });
        }
        Ok(found)
    }

    /// Makes a connection and starts keeping its links; fails only if no URL resolves.
    ///
    /// # Errors
    ///
    /// As [`WsConnector::resolve`].
    pub async fn connect(
        self,
        config: EndpointConfig,
    ) -> Result<(Connection, Links), ConnectError> {
        let found = self.resolve().await?;
        *self.resolved.lock() = Some((Instant::now(), found));
        Ok(connect_with(self, config))
    }

    async fn addresses(&self) -> Result<Vec<(usize, SocketAddr)>, ConnectError> {
        let cached = self.resolved.lock().clone();
        match cached {
            Some((at, found)) if at.elapsed() < RESOLVE_EVERY => Ok(found),
            _ => {
                let found = self.resolve().await?;
                *self.resolved.lock() = Some((Instant::now(), found.clone()));
                Ok(found)
            }
        }
    }

    fn name(&self, path: &Path) -> String {
        let url = &self.targets[path.target].url;
        match &path.interface {
            Some(i) => format!("{i} -> {url} ({})", path.remote),
            None => format!("{url} ({})", path.remote),
        }
    }

    async fn open_path(&self, path: &Path) -> io::Result<(BoxStream, UserData)> {
        let target = &self.targets[path.target];
        let (tcp, local) = open_tcp(path.interface.as_deref(), path.remote).await?;
        let request = target
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| upgrade_error(&target.url, e))?;
        let upgrade = async {
            if target.tls {
                let name = ServerName::try_from(target.host.clone()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} is not a TLS server name: {e}", target.host),
                    )
                })?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("TLS with {} failed: {e}", target.url))
                    })?;
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(request, tls, Some(ws_config()))
                        .await
                        .map_err(|e| upgrade_error(&target.url, e))?;
                Ok(box_stream(WsBytes::new(ws)))
            } else {
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config()))
                        .await
                        .map_err(|e| upgrade_error(&target.url, e))?;
                Ok::<BoxStream, io::Error>(box_stream(WsBytes::new(ws)))
            }
        };
        let io = tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("websocket upgrade to {} timed out", target.url),
                )
            })??;
        Ok((io, user_data(&local)))
    }
}

impl StreamConnector for WsConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let found = self.addresses().await.map_err(io::Error::from)?;
            let mut paths = Vec::new();
            for (target, remote) in found {
                if self.multi_interface {
                    for name in interfaces_for(remote, self.interfaces.as_deref()) {
                        paths.push(Path {
                            target,
                            interface: Some(name),
                            remote,
                        });
                    }
                } else {
                    paths.push(Path {
                        target,
                        interface: None,
                        remote,
                    });
                }
            }
            Ok(self
                .known
                .record(paths.into_iter().map(|p| (self.name(&p), p))))
        })
    }

    fn open_stream<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let path = self.known.get(name)?;
            self.open_path(&path).await
        })
    }

    /// Refuses a link when one on the same local interface already has the same remote user
    /// data (spec §11): with aggligator's default acceptor, one link per local interface.
    fn keep(&self, name: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        self.known.keep(name, others, |this, other, remote| {
            this.interface == other.interface && *remote == welcome.user_data
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Target::parse("ws://127.0.0.1:8080/agg-speed").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 8080, false));
        let t = Target::parse("wss://[::1]/x").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 443, true));
        let e = Target::parse("http://h/p").unwrap_err();
        assert!(matches!(e, WsUrlError::Scheme { .. }), "{e}");
        assert!(e.to_string().contains("scheme"), "{e}");
        let e = Target::parse("ws:///p").unwrap_err();
        assert!(matches!(e, WsUrlError::Invalid { .. }), "{e}");
        let e = Target::parse("ws://h h/p").unwrap_err();
        assert!(matches!(e, WsUrlError::Invalid { .. }), "{e}");
        let e = WsConnector::new(Vec::<String>::new()).unwrap_err();
        assert!(matches!(e, WsUrlError::NoUrl), "{e}");
    }
}
