//! Link transports for liag: adapters that turn a transport into links, with no protocol logic.
//!
//! | feature | module | what |
//! |---|---|---|
//! | `tcp` | [`tcp`] | [`tcp::TcpAcceptor`] for servers; [`tcp::TcpConnector`] keeps one link per local interface and remote address, reconnects with backoff and re-probes silent paths |
//! | `mem` | [`mem`] | emulated links in memory with rate, delay, jitter, queue and faults |
//!
//! A transport of your own implements [`Connector`] (the client side: which paths exist, how to
//! open one) and [`Acceptor`] (the server side); [`connect_with`] and [`serve`] run them with
//! reconnection, backoff and stalled-path probing. `examples/unix_transport.rs` adds Unix
//! domain sockets that way. Byte streams become links with [`liag_tokio::stream_link`];
//! packet transports implement [`liag_tokio::PacketLink`]. WebSocket, Bluetooth RFCOMM and TLS
//! come as further features.

#![deny(missing_docs)]

mod keep;
#[cfg(feature = "mem")]
pub mod mem;
#[cfg(feature = "tcp")]
pub mod tcp;
pub mod transport;

pub use transport::{Acceptor, Connector, Links, connect_with, serve};

pub use liag_tokio;
