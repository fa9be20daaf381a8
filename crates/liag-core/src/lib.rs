//! The aggregation state machine of liag, free of I/O.
//!
//! liag-core turns several links into one reliable, ordered connection: it numbers and
//! acknowledges reliable messages, resends what a failed or stalled link carried, reorders
//! what arrives, keeps flow control, and decides which link carries what. It reads no clock,
//! opens no socket and draws randomness only from an RNG it is given, so any runtime or
//! transport can drive it and every behaviour can be tested in virtual time (`sim`).
//!
//! | piece | what |
//! |---|---|
//! | [`Connection`] | one aggregated connection: inputs `handle_*`, outputs `poll_*` |
//! | [`handshake`] | a link's Welcome/Connect/Accepted exchange, both roles, and the server's table |
//! | [`Scheduler`] | the policy placing new data on links; [`EarliestArrival`] by default |
//! | [`Tier`] | which links may carry data at all: primary, secondary or backup ([`LinkConfig::tier`]) |
//! | [`Meter`] | a data allowance shared by metered links, past which they fall back to backup |
//! | `netem` | a link emulator free of I/O: rate, delay, jitter, queue and faults (feature `netem`) |
//! | `sim` | two connections over emulated links in virtual time, replayable from a seed (feature `sim`) |
//!
//! The emulator and the simulator are for tests, benchmarks and demos; their features keep
//! their dependencies out of a build that does not ask for them. Feature `serde` makes
//! [`Config`] serde data, to load it from a file (durations as `"100ms"`, `"30s"`).
//!
//! A custom transport plugs in below the [`Connection`]: anything that carries packets for a
//! [`LinkId`] in order works. Stream transports frame packets with
//! [`liag_proto::frame`]; packet transports carry them as they are.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod arena;
mod budget;
mod config;
mod connection;
mod error;
pub mod handshake;
mod link;
mod meter;
#[cfg(feature = "netem")]
pub mod netem;
mod pace;
mod peer_queue;
mod probe;
mod recheck;
mod recv;
mod redundant;
mod rtt;
mod scheduler;
mod send;
#[cfg(feature = "sim")]
pub mod sim;
mod startup;
mod tier;
mod time;

pub use budget::{MIN_FLOOR, MemoryBudget, RECV_FLOOR, SEND_FLOOR};
pub use config::Config;
pub use connection::{Connection, ConnectionStats, Event, WriteError};
pub use error::{ConnectionError, LinkError, Violation};
pub use liag_proto as proto;
pub use link::{Direction, LinkConfig, LinkId, LinkInfo, LinkState, LinkStats};
pub use meter::Meter;
pub use scheduler::{EarliestArrival, LinkView, Offer, Scheduler};
pub use tier::{SECONDARY_HORIZON, Tier};
pub use time::Time;
