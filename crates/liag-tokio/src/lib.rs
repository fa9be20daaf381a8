//! The tokio driver of liag.
//!
//! One task per connection runs the liag-core state machine, owns its links' I/O and timers,
//! and offers the public API: `Server`, `Listener`, `connect`, `Control`, and a connection
//! that is both an `AsyncRead + AsyncWrite` byte stream and a `Sink`/`Stream` of messages.
//!
//! The driver is still being written; today the crate re-exports the layer below it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use liag_core as core;
