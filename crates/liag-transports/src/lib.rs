//! Link transports for liag: adapters that turn a transport into links, with no protocol logic.
//!
//! | feature | module | what |
//! |---|---|---|
//! | `tcp` | [`tcp`] | [`tcp::TcpAcceptor`] for servers; [`tcp::TcpConnector`] opens one link per local interface and server address and by default keeps one per pair of interfaces, reconnects with backoff and re-probes silent paths |
//! | `socks` | [`socks`] | [`socks::SocksConnector`] opens one link through each of several SOCKS5 proxies |
//! | `mem` | [`mem`] | emulated links in memory with rate, delay, jitter, queue and faults |
//! | `websocket` | `websocket` | `ws://` and `wss://` links, client and server, also on an HTTP server's route (spec §11) |
//! | `tls` | `tls` | TLS around any stream transport, the framing inside it (spec §12) |
//! | `bluetooth` | `bluetooth` | Bluetooth RFCOMM links through BlueZ, Linux only; links the system's libdbus |
//! | `bluetooth-vendored` | `bluetooth` | the same with libdbus built from source (a C compiler, no system packages) |
//!
//! The transports are on by default; the Bluetooth features are off by default and have no
//! effect off Linux.
//!
//! A transport of your own implements [`Connector`] (the client side: which paths exist, how to
//! open one) and [`Acceptor`] (the server side); [`connect_with`] and [`serve`] run them with
//! reconnection, backoff and stalled-path probing. `examples/unix_transport.rs` adds Unix
//! domain sockets that way. A byte-stream transport had better implement [`StreamConnector`]
//! and [`StreamAcceptor`]: it is then a `Connector` or `Acceptor` too, and wrappers such as TLS
//! fit around it. Byte streams become links with [`stream_link`]; packet transports implement
//! [`PacketLink`]. [`MultiConnector`] puts several
//! connectors' links into one connection. A connector gives each path's link settings
//! ([`Connector::link_config`]); [`TieredConnector`] sets the links' [`Tier`] and rate cap by
//! the interface their path leaves from, or one tier for all of a connector's paths
//! ([`TierRules`]): a backup modem, or a server's address through a costly provider.
//!
//! Errors are typed per operation and keep their cause: a connector's `connect` fails with a
//! [`ConnectError`], [`Links::wait_for_link`] with a [`WaitError`] (naming the last
//! [`AttemptError`]), a link added by hand with an [`AddLinkError`]; parsing a target fails
//! with [`TcpTargetError`] and its kin. Each converts into `std::io::Error` with a fitting
//! kind, so `?` works where the application returns `io::Result`.

#![deny(missing_docs)]

#[cfg(all(feature = "bluetooth", target_os = "linux"))]
pub mod bluetooth;
mod error;
mod ip;
mod keep;
mod known;
#[cfg(feature = "mem")]
pub mod mem;
#[cfg(feature = "socks")]
pub mod socks;
pub mod stream;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "tcp")]
mod tcp_reset;
mod tiers;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
#[cfg(feature = "tls")]
mod upgrades;
#[cfg(feature = "websocket")]
pub mod websocket;

#[cfg(all(feature = "bluetooth", target_os = "linux"))]
pub use error::RfcommTargetError;
#[cfg(feature = "tls")]
pub use error::ServerNameError;
#[cfg(feature = "websocket")]
pub use error::WsUrlError;
pub use error::{AttemptError, ConnectError, ParseLinkFilterError, TcpTargetError, WaitError};
pub use ip::IpVersion;
pub use stream::{BoxStream, IoStream, StreamAcceptor, StreamConnector, box_stream};
pub use tiers::{TierRules, TieredConnector};
pub use transport::{Accepted, Acceptor, Connector, Links, MultiConnector, connect_with, serve};

pub use liag_tokio;
// What users name in the traits' signatures and around a connection, so that depending on
// liag-transports alone is enough.
pub use liag_core::LinkInfo;
pub use liag_tokio::{
    AddLinkError, BoxFuture, BoxLink, Config, Connection, ConnectionError, Control, EndpointConfig,
    FrameError, HandshakeError, Incoming, LinkConfig, LinkError, LinkEvent, LinkId, LinkRates,
    LinkState, LinkStats, Listener, Meter, Outgoing, PacketLink, Refusal, RefusedReason, Server,
    Tier, UserData, Welcome, stream_link,
};
