//! [`Settings`]: a connection's configuration plus the driver's own limits.

use std::time::Duration;

use liag_core::Config;

/// Everything the tokio layer needs to know, for connections and servers alike.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The state machine's configuration.
    pub config: Config,
    /// How long a link's handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Most handshakes a server runs at once; further links are closed at once. Default 256.
    pub max_pending_handshakes: usize,
    /// Most connections a server keeps. Default 4096.
    pub max_connections: usize,
    /// Most new connections waiting for the application to accept them. Default 32.
    pub max_pending_connections: usize,
    /// Most links one connection of a server may have; a link beyond them is refused with
    /// Refused(LinkRefused). Each link costs a socket, a read buffer and work on every packet,
    /// so one peer must not open thousands. Default 32.
    pub max_links_per_connection: usize,
    /// Most sockets (links and handshakes in progress) one source may hold on a server; a
    /// socket beyond them is closed at once. A source is the peer's IPv4 address or IPv6 /64,
    /// for transports that have one. Default 128: far more than one host's paths, and few
    /// enough that one host cannot take a server's file descriptors.
    pub max_links_per_source: usize,
    /// Most connections one source may hold on a server; a new one beyond them is refused with
    /// Refused(NotListening). Default 64.
    pub max_connections_per_source: usize,
    /// A server's connection that has received no data yet fails after this long without a
    /// working link (its configuration's `no_link_timeout_before_data`, unless that is set).
    /// And when the server holds `max_connections`, a new connection takes the place of one
    /// without links, one that never carried data first. Default 10 s.
    pub no_link_timeout_before_data: Duration,
    /// Bytes all of a server's connections may buffer together, received and unread or
    /// written and unacknowledged (a `liag_core::MemoryBudget`, unless the configuration
    /// names one). Each connection's own bounds (`recv_buffer`, `send_buffer`) still hold.
    /// Default 128 MiB.
    pub memory_budget: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config: Config::default(),
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 256,
            max_connections: 4096,
            max_pending_connections: 32,
            max_links_per_connection: 32,
            max_links_per_source: 128,
            max_connections_per_source: 64,
            no_link_timeout_before_data: Duration::from_secs(10),
            memory_budget: 128 << 20,
        }
    }
}
