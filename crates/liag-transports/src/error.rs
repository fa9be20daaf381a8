//! Why an operation failed: [`ConnectError`] for a connector's `connect`, [`WaitError`] for
//! [`Links::wait_for_links`](crate::Links::wait_for_links), [`AttemptError`] for one attempt
//! at a link, and each transport's parse errors.
//!
//! Every error converts into [`io::Error`] with a fitting [`io::ErrorKind`], the error kept
//! inside (`get_ref` and `downcast_ref` give it back), so `?` works in code that returns
//! `io::Result`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use liag_tokio::{AddLinkError, ConnectionError};

/// Why a connector's `connect` (or `resolve`) failed: its targets are malformed, do not
/// resolve, or cannot be reached from here. No connection was made.
///
/// Returned by `TcpConnector::connect` and `resolve`, `WsConnector::connect` and `resolve`,
/// and `RfcommConnector::connect`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A TCP target is malformed.
    #[error(transparent)]
    Target(#[from] TcpTargetError),
    /// A target's host name did not resolve.
    #[error("cannot resolve {target:?}: {error}")]
    Resolve {
        /// The target (a TCP target, a WebSocket URL).
        target: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// The targets have no address of the IP version asked for (`set_ip_version`).
    #[error("{targets:?} has no address of the requested IP version")]
    NoAddress {
        /// The targets.
        targets: Vec<String>,
    },
    /// No local interface can reach the targets' addresses (none of the same IP version, or
    /// none of those the connector may use).
    #[error("no local interface can reach {targets:?}")]
    NoInterface {
        /// The targets.
        targets: Vec<String>,
    },
    /// The transport cannot open links on this machine; the error says what is missing
    /// (Bluetooth: BlueZ, or a powered adapter).
    #[error(transparent)]
    Unavailable(io::Error),
}

impl ConnectError {
    /// The [`io::ErrorKind`] the error has as an [`io::Error`].
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            ConnectError::Target(_) => io::ErrorKind::InvalidInput,
            ConnectError::Resolve { error, .. } | ConnectError::Unavailable(error) => error.kind(),
            ConnectError::NoAddress { .. } | ConnectError::NoInterface { .. } => {
                io::ErrorKind::NotFound
            }
        }
    }
}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Unavailable(e) => e,
            e => io::Error::new(e.io_kind(), e),
        }
    }
}

/// Why a TCP target (`host`, `host:port`, `[v6 address]:port`) is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpTargetError {
    /// The target has no port, and the connector no default port (`TcpConnector::to`).
    #[error("target {target:?} has no port (host:port, or TcpConnector::new with a default port)")]
    NoPort {
        /// The target.
        target: String,
    },
    /// What follows the target's last colon is not a port number (0 to 65535).
    #[error("target {target:?}: {port:?} is not a port (0 to 65535)")]
    BadPort {
        /// The target.
        target: String,
        /// What stands where the port should.
        port: String,
    },
}

impl From<TcpTargetError> for io::Error {
    fn from(e: TcpTargetError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// A TCP link filter's name that is none of `none`, `interface-interface` and `interface-ip`
/// (`TcpLinkFilter`'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown link filter {given:?}; use none, interface-interface or interface-ip")]
#[non_exhaustive]
pub struct ParseLinkFilterError {
    /// The name given.
    pub given: String,
}

impl From<ParseLinkFilterError> for io::Error {
    fn from(e: ParseLinkFilterError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Why one attempt at a link on a path failed: what [`WaitError`] reports as the last failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The connector could not name its paths (a host name that no longer resolves, say).
    #[error("cannot list paths: {0}")]
    Paths(io::Error),
    /// The connector could not open the path's transport.
    #[error("{path}: {error}")]
    Open {
        /// The path.
        path: String,
        /// The connector's error.
        error: io::Error,
    },
    /// The transport opened, and its link did not join: refused, filtered, timed out, ...
    #[error("{path}: {error}")]
    AddLink {
        /// The path.
        path: String,
        /// Why the link did not join.
        error: AddLinkError,
    },
    /// An attempt that probed a stalled path gave up.
    #[error("{path}: probe timed out")]
    ProbeTimeout {
        /// The path.
        path: String,
    },
}

impl AttemptError {
    /// The [`io::ErrorKind`] the error has as an [`io::Error`].
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            AttemptError::Paths(error) | AttemptError::Open { error, .. } => error.kind(),
            AttemptError::AddLink { error, .. } => error.io_kind(),
            AttemptError::ProbeTimeout { .. } => io::ErrorKind::TimedOut,
        }
    }
}

impl From<AttemptError> for io::Error {
    fn from(e: AttemptError) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

/// Why [`Links::wait_for_link`](crate::Links::wait_for_link) or
/// [`Links::wait_for_links`](crate::Links::wait_for_links) returned without the links: the
/// connection ended, or the time ran out, and then what kept the links away.
///
/// Each variant has the links the connection had (`have`) and the links waited for
/// (`wanted`); those of a wait that ran out of time, the `limit` too.
#[derive(Debug)]
#[non_exhaustive]
pub enum WaitError {
    /// The server answered link handshakes, but its application has not accepted the
    /// connection: a server takes each new connection from its `Listener` and accepts it
    /// (`Incoming::accept`) before the connection's first link is up.
    NotAccepted {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How long the wait was.
        limit: Duration,
        /// Handshakes the server answered that wait for its application.
        answered: usize,
        /// Why the last attempt failed, if one did.
        last_failure: Option<Arc<AttemptError>>,
    },
    /// The links' upkeep was stopped ([`Links::stop`](crate::Links::stop)).
    UpkeepStopped {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How long the wait was.
        limit: Duration,
    },
    /// The connector names no path.
    NoPath {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How long the wait was.
        limit: Duration,
        /// Why the last attempt failed (the connector could not list its paths, say).
        last_failure: Option<Arc<AttemptError>>,
    },
    /// The connector names fewer paths than links were waited for, and it keeps one link on
    /// each.
    TooFewPaths {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How long the wait was.
        limit: Duration,
        /// The paths the connector names.
        paths: usize,
    },
    /// The links did not come within the limit: attempts are under way, or failed.
    NoLinkInTime {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How long the wait was.
        limit: Duration,
        /// Attempts still under way.
        attempts: usize,
        /// Why the last attempt failed, if one did.
        last_failure: Option<Arc<AttemptError>>,
    },
    /// The connection ended.
    Ended {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
        /// How it ended, unless it ended gracefully.
        error: Option<ConnectionError>,
    },
    /// The connection's events ended (its task is gone).
    EventsEnded {
        /// Links up.
        have: usize,
        /// Links waited for.
        wanted: usize,
    },
}

impl WaitError {
    /// The links the connection had.
    pub fn have(&self) -> usize {
        match self {
            WaitError::NotAccepted { have, .. }
            | WaitError::UpkeepStopped { have, .. }
            | WaitError::NoPath { have, .. }
            | WaitError::TooFewPaths { have, .. }
            | WaitError::NoLinkInTime { have, .. }
            | WaitError::Ended { have, .. }
            | WaitError::EventsEnded { have, .. } => *have,
        }
    }

    /// The links waited for.
    pub fn wanted(&self) -> usize {
        match self {
            WaitError::NotAccepted { wanted, .. }
            | WaitError::UpkeepStopped { wanted, .. }
            | WaitError::NoPath { wanted, .. }
            | WaitError::TooFewPaths { wanted, .. }
            | WaitError::NoLinkInTime { wanted, .. }
            | WaitError::Ended { wanted, .. }
            | WaitError::EventsEnded { wanted, .. } => *wanted,
        }
    }

    /// The [`io::ErrorKind`] the error has as an [`io::Error`]: `TimedOut` when the time ran
    /// out, `NotConnected` when the connection ended.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            WaitError::Ended { .. } | WaitError::EventsEnded { .. } => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::TimedOut,
        }
    }
}

/// `; last failure: ...`, or nothing.
struct LastFailure<'a>(&'a Option<Arc<AttemptError>>);

impl fmt::Display for LastFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => write!(f, "; last failure: {e}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (have, wanted) = (self.have(), self.wanted());
        match self {
            WaitError::Ended { error, .. } => {
                write!(f, "the connection has {have} of {wanted} links and ended: ")?;
                return match error {
                    Some(e) => write!(f, "{e}"),
                    None => f.write_str("it ended"),
                };
            }
            WaitError::EventsEnded { .. } => {
                return write!(
                    f,
                    "the connection has {have} of {wanted} links and its events ended"
                );
            }
            WaitError::NotAccepted { limit, .. }
            | WaitError::UpkeepStopped { limit, .. }
            | WaitError::NoPath { limit, .. }
            | WaitError::TooFewPaths { limit, .. }
            | WaitError::NoLinkInTime { limit, .. } => {
                if wanted == 1 {
                    write!(f, "no link came up within {limit:?}: ")?;
                } else {
                    write!(f, "{have} of {wanted} links up within {limit:?}: ")?;
                }
            }
        }
        match self {
            WaitError::NotAccepted {
                answered,
                last_failure,
                ..
            } => write!(
                f,
                "the server answered {answered} link handshake(s) but its application has not \
                 accepted the connection: a server takes each new connection from its \
                 Listener and accepts it (Incoming::accept) before the connection's first link \
                 is up{}",
                LastFailure(last_failure)
            ),
            WaitError::UpkeepStopped { .. } => f.write_str("the links' upkeep was stopped"),
            WaitError::NoPath { last_failure, .. } => match last_failure {
                Some(e) => write!(f, "the connector names no path ({e})"),
                None => f.write_str("the connector names no path"),
            },
            WaitError::TooFewPaths { paths, .. } => write!(
                f,
                "the connector names {paths} path(s), and keeps one link on each"
            ),
            WaitError::NoLinkInTime {
                attempts,
                last_failure,
                ..
            } => {
                if *attempts > 0 {
                    write!(f, "{attempts} attempt(s) still under way; ")?;
                }
                match last_failure {
                    Some(e) => write!(f, "last failure: {e}"),
                    None => f.write_str("no attempt has failed yet"),
                }
            }
            WaitError::Ended { .. } | WaitError::EventsEnded { .. } => Ok(()),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<WaitError> for io::Error {
    fn from(e: WaitError) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

/// Why a WebSocket URL given to `WsConnector::new` is unusable.
#[cfg(feature = "websocket")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsUrlError {
    /// No URL was given.
    #[error("no WebSocket URL given")]
    NoUrl,
    /// The URL does not parse.
    #[error("invalid WebSocket URL {url:?}: {error}")]
    Invalid {
        /// The URL.
        url: String,
        /// The parser's error.
        error: tokio_tungstenite::tungstenite::http::uri::InvalidUri,
    },
    /// The scheme is neither `ws` nor `wss`.
    #[error("invalid WebSocket URL {url:?}: the scheme must be ws or wss")]
    Scheme {
        /// The URL.
        url: String,
    },
    /// The URL names no host.
    #[error("invalid WebSocket URL {url:?}: no host")]
    NoHost {
        /// The URL.
        url: String,
    },
}

#[cfg(feature = "websocket")]
impl From<WsUrlError> for io::Error {
    fn from(e: WsUrlError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// A TLS server name (given to `TlsConnector::new`) that is neither a DNS name nor an IP
/// address.
#[cfg(feature = "tls")]
#[derive(Debug, thiserror::Error)]
#[error("{name:?} is not a TLS server name: {error}")]
#[non_exhaustive]
pub struct ServerNameError {
    /// The name given.
    pub name: String,
    /// Why it is none.
    pub error: tokio_rustls::rustls::pki_types::InvalidDnsNameError,
}

#[cfg(feature = "tls")]
impl From<ServerNameError> for io::Error {
    fn from(e: ServerNameError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Why an RFCOMM target (`AA:BB:CC:DD:EE:FF` or `AA:BB:CC:DD:EE:FF/SERVICE`) or service
/// (a channel number or a service UUID) does not parse.
#[cfg(all(feature = "bluetooth", target_os = "linux"))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RfcommTargetError {
    /// A channel number outside 1 to 30.
    #[error("RFCOMM channel {0} is not within 1 to 30")]
    ChannelOutOfRange(u8),
    /// The service is neither a channel number nor a UUID.
    #[error("{0:?} is neither an RFCOMM channel nor a service UUID")]
    NotAService(String),
    /// The address is not a Bluetooth address.
    #[error("{0:?} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")]
    NotAnAddress(String),
}

#[cfg(all(feature = "bluetooth", target_os = "linux"))]
impl From<RfcommTargetError> for io::Error {
    fn from(e: RfcommTargetError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;

    #[cfg(all(feature = "tls", feature = "tcp"))]
    #[test]
    fn a_tls_server_name_that_is_none_is_named() {
        use crate::tcp::TcpConnector;
        use crate::tls::{TlsConnector, insecure_client_config};
        let inner = TcpConnector::to(["127.0.0.1:5700"]);
        let error = TlsConnector::new(inner, insecure_client_config(), "no name!").unwrap_err();
        assert_eq!(error.name, "no name!");
        assert!(
            error
                .to_string()
                .starts_with("\"no name!\" is not a TLS server name")
        );
        assert_eq!(io::Error::from(error).kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn errors_become_io_errors_that_give_them_back() {
        let error = io::Error::from(ConnectError::Target(TcpTargetError::NoPort {
            target: "h".into(),
        }));
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let inner = error.get_ref().unwrap().downcast_ref::<ConnectError>();
        assert!(matches!(inner, Some(ConnectError::Target(_))), "{inner:?}");

        let refused = AttemptError::AddLink {
            path: "eth0 -> 192.0.2.1:5700".into(),
            error: AddLinkError::Refused(liag_tokio::RefusedReason::NotListening),
        };
        assert_eq!(
            refused.to_string(),
            "eth0 -> 192.0.2.1:5700: link refused: server is not accepting new connections"
        );
        let waited = WaitError::NoLinkInTime {
            have: 1,
            wanted: 2,
            limit: Duration::from_secs(5),
            attempts: 1,
            last_failure: Some(Arc::new(refused)),
        };
        assert_eq!(
            waited.to_string(),
            "1 of 2 links up within 5s: 1 attempt(s) still under way; last failure: \
             eth0 -> 192.0.2.1:5700: link refused: server is not accepting new connections"
        );
        assert_eq!(io::Error::from(waited).kind(), io::ErrorKind::TimedOut);
    }
}
