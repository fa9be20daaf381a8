//! Link transports for liag: adapters that turn a transport into links, with no protocol logic.
//!
//! TCP, WebSocket, Bluetooth RFCOMM and in-memory emulated links, each behind its own feature,
//! plug into the liag-tokio driver. The adapters are still being written; today the crate
//! re-exports the layer below it.

#![deny(missing_docs)]

pub use liag_tokio as tokio_driver;
