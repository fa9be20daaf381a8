//! The `liag` command: demo, speed test and TCP tunnel over aggregated links.
//!
//! The subcommands are still being written; today the binary reports the protocol it speaks.

use liag_transports::liag_tokio::liag_core::proto::message::VERSION;

fn main() {
    println!(
        "liag {}: link aggregation, protocol version {VERSION}; the demo, speed test and \
         tunnel subcommands are not built yet",
        env!("CARGO_PKG_VERSION")
    );
}
