//! The tokio driver of liag: aggregated connections over real transports.
//!
//! One task per connection runs the liag-core state machine and owns its links' I/O; the
//! application talks to it through a [`Connection`], which is both an `AsyncRead + AsyncWrite` byte
//! stream and a `Sink`/`Stream` of [`Bytes`](bytes::Bytes) messages, and a [`Control`]. The
//! connection's handles call into the state machine directly and wake the task, so no channel sits
//! between the application and the links.
//!
//! - Initiating side: [`connect`] makes a connection; [`Outgoing::add_link`] handshakes
//!   transports into it.
//! - Accepting side: a [`Server`] takes incoming transports ([`Server::add_link`]) and
//!   routes each link to its connection; a [`Listener`] yields new connections as
//!   [`Incoming`], to accept or refuse.
//!
//! Links are byte streams framed by liag-proto ([`stream_link`]) or packet transports
//! ([`PacketLink`]). Ready-made transports (TCP, emulated links) are in `liag-transports`.
//! A link's settings, such as its [`Tier`] (a backup link carries data only when no other
//! works), go with its handshake ([`Outgoing::add_packet_link_with`], which tells the server
//! the tier too) or change later ([`Control::set_link_tier`], [`Control::set_link_config`],
//! [`Control::set_link_max_rate`] for a rate cap, [`Control::set_link_meter`] for a data
//! allowance past which the link falls back to backup, a [`Meter`]). A connection's own policies are in its
//! [`EndpointConfig`]: the scheduler ([`SchedulerChoice`]) and redundant sending
//! (`config.redundant`, or [`Control::set_redundant`] on a running connection).
//!
//! Errors are typed: adding a link fails with an [`AddLinkError`], a link leaves with a
//! [`LinkError`] ([`LinkEvent::Removed`]), a connection ends with a [`ConnectionError`]
//! ([`Control::result`]). Each converts into `std::io::Error` with a fitting kind, the typed
//! error kept inside, so `?` works where the application returns `io::Result`.
//!
//! Feature `serde`: [`EndpointConfig`] (and liag-core's `Config` in it) implement serde's
//! `Serialize` and `Deserialize`, to be read from a configuration file: durations as
//! `"100ms"` or `"30s"`, missing keys at their defaults, unknown keys refused. A server's
//! [`HandshakeStats`] count how its incoming links ended, for metrics.
//!
//! # Example
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod config;
mod connect;
mod connection;
mod control;
mod driver;
mod ended;
mod error;
mod evict;
mod guard;
mod handshake;
mod handshake_stats;
mod pool;
mod read_buf;
mod server;
mod shared;
mod sources;

pub use codec::{BoxLink, FREE_PARTIAL, PacketLink, StreamLink, stream_link};
pub use config::{EndpointConfig, SchedulerChoice};
pub use connect::{Outgoing, connect};
pub use connection::{Connection, ReadHalf, WriteHalf};
pub use control::{Control, LinkEvent, LinkRates, Refusal};
pub use error::AddLinkError;
pub use guard::{LinkGuard, guarded};
pub use handshake_stats::HandshakeStats;
pub use liag_core;
pub use server::{Incoming, LinkDescription, LinkFilter, Listener, Server};
pub use sources::{Source, oldest_of_busiest};

// What users name in signatures and handle, so that depending on liag-tokio alone is enough.
pub use liag_core::handshake::HandshakeError;
pub use liag_core::proto::frame::FrameError;
pub use liag_core::proto::message::{RefusedReason, UserData, Welcome};
pub use liag_core::{
    Config, ConnectionError, ConnectionStats, EarliestArrival, LinkConfig, LinkError, LinkId,
    LinkInfo, LinkState, LinkStats, LinkView, Meter, Offer, Scheduler, Tier,
};

/// A boxed future that is `Send`, as transports return them.
pub type BoxFuture<'a, T> = futures::future::BoxFuture<'a, T>;
