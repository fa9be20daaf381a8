//! Links through SOCKS5 proxies (RFC 1928): one link per proxy, each reaching the same target
//! through it, so a host can bond several proxies or VPN exits that offer SOCKS5.

use liag_tokio::{BoxFuture, UserData};
use std::io;
use std::time::Duration;

use crate::stream::{BoxStream, StreamConnector, box_stream};
use crate::tcp::{open_tcp, user_data, with_default_port};
use crate::tcp_reset::ResetOnDrop;

/// The port of a proxy given without one.
pub const DEFAULT_PROXY_PORT: u16 = 1080;
/// Time allowed for a proxy to reach the target.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens links to a target through SOCKS5 proxies, one link per proxy. The target's name is
/// resolved by each proxy.
#[derive(Debug, Clone)]
pub struct SocksConnector {
    /// Each proxy as `host:port`.
    proxies: Vec<String>,
    target: (String, u16),
}

impl SocksConnector {
    /// Links to `target` (`host:port`, `[v6]:port`, or `host` with `target_port`) through each
    /// of `proxies` (`host` or `host:port`, port 1080 by default).
    pub fn new(
        proxies: impl IntoIterator<Item = impl AsRef<str>>,
        target: &str,
        target_port: u16,
    ) -> io::Result<Self> {
        let proxies: Vec<String> = proxies
            .into_iter()
            .map(|p| with_default_port(p.as_ref(), DEFAULT_PROXY_PORT))
            .collect();
        if proxies.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no SOCKS5 proxy given",
            ));
        }
        Ok(SocksConnector {
            proxies,
            target: split_port(&with_default_port(target, target_port))?,
        })
    }

    fn path_of(&self, proxy: &str) -> String {
        format!("socks {proxy} -> {}:{}", self.target.0, self.target.1)
    }
}

impl StreamConnector for SocksConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move { Ok(self.proxies.iter().map(|p| self.path_of(p)).collect()) })
    }

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let proxy = self
                .proxies
                .iter()
                .find(|p| self.path_of(p) == path)
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("no path {path}"))
                })?;
            let target = (self.target.0.as_str(), self.target.1);
            let through = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let addrs = tokio::net::lookup_host(proxy.as_str()).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot resolve the proxy {proxy}: {e}"))
                })?;
                // Each of the proxy's addresses in turn, until one takes the request.
                let mut last = io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the proxy {proxy} has no address"),
                );
                for addr in addrs {
                    let socket = match open_tcp(None, addr).await {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            last = e;
                            continue;
                        }
                    };
                    match tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, target).await
                    {
                        Ok(through) => return Ok(through),
                        Err(e) => last = socks_error(proxy, e),
                    }
                }
                Err(last)
            })
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the proxy {proxy} did not answer in time"),
                )
            })??;
            // From here on the proxy only relays: the socket is the link.
            let stream = through.into_inner();
            Ok((box_stream(ResetOnDrop::new(stream)), user_data(proxy)))
        })
    }
}

/// A SOCKS5 failure as an I/O error of a fitting kind.
fn socks_error(proxy: &str, e: tokio_socks::Error) -> io::Error {
    use tokio_socks::Error as E;
    let kind = match &e {
        E::Io(io) => io.kind(),
        E::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        E::ConnectionNotAllowedByRuleset => io::ErrorKind::PermissionDenied,
        E::NetworkUnreachable | E::HostUnreachable => io::ErrorKind::HostUnreachable,
        E::TtlExpired => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("through the proxy {proxy}: {e}"))
}

/// `host:port` or `[v6]:port` as host and port.
fn split_port(target: &str) -> io::Result<(String, u16)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{target:?}: expected HOST:PORT"),
        )
    };
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_and_targets_get_their_default_ports() {
        let c = SocksConnector::new(
            ["proxy.example", "10.0.0.1:9050", "::1", "[::2]"],
            "server.example",
            5800,
        )
        .unwrap();
        assert_eq!(
            c.proxies,
            [
                "proxy.example:1080",
                "10.0.0.1:9050",
                "[::1]:1080",
                "[::2]:1080"
            ]
        );
        assert_eq!(c.target, ("server.example".to_string(), 5800));
        let c = SocksConnector::new(["p"], "[2001:db8::1]:443", 5800).unwrap();
        assert_eq!(c.target, ("2001:db8::1".to_string(), 443));
        assert!(SocksConnector::new(["p"], "host:port", 5800).is_err());
        assert!(SocksConnector::new(Vec::<String>::new(), "host", 5800).is_err());
    }
}
