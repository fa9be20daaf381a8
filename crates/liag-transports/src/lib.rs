//! Link transports for liag: adapters that turn a transport into links, with no protocol logic.
//!
//! | feature | module | what |
//! |---|---|---|
//! | `tcp` | [`tcp`] | [`tcp::TcpAcceptor`] for servers; [`tcp::TcpConnector`] keeps one link per local interface and remote address, reconnects with backoff and re-probes silent paths |
//! | `mem` | [`mem`] | emulated links in memory with rate, delay, jitter, queue and faults |
//!
//! Any other transport plugs into liag-tokio directly: a byte stream through
//! [`liag_tokio::stream_link`] and [`liag_tokio::Outgoing::add_link`] /
//! [`liag_tokio::Server::add_incoming`], a packet transport by implementing
//! [`liag_tokio::PacketLink`]. WebSocket, Bluetooth RFCOMM and TLS come as further features.

#![deny(missing_docs)]

#[cfg(feature = "mem")]
pub mod mem;
#[cfg(feature = "tcp")]
pub mod tcp;

pub use liag_tokio;
