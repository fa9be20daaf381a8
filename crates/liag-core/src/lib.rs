//! The aggregation state machine of liag, free of I/O.
//!
//! liag-core turns several links into one reliable, ordered connection: it numbers and
//! acknowledges reliable messages, resends what a failed link carried, reorders what arrives,
//! keeps flow control, and decides which link carries what. It reads no clock, opens no
//! socket and draws randomness only from an RNG it is given, so any runtime or transport can
//! drive it and every behaviour can be tested in virtual time.
//!
//! The state machine itself is still being written; today the crate re-exports the wire
//! format it builds on.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use liag_proto as proto;
