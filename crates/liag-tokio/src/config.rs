//! [`EndpointConfig`]: a connection's configuration plus the driver's own limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use liag_core::{Config, EarliestArrival, Scheduler};

/// How each new connection gets its scheduler, the policy that places data on links: liag's
/// [`EarliestArrival`] by default, or one of the application's.
///
/// ```
/// use liag_tokio::{EndpointConfig, Offer, Scheduler, SchedulerChoice};
///
/// /// Puts new data only on the link with the smallest round trip.
/// #[derive(Debug)]
/// struct Quickest;
///
/// impl Scheduler for Quickest {
///     fn admit(&mut self, offer: &Offer<'_>) -> bool {
///         let best = offer.links.iter().min_by_key(|l| l.min_rtt);
///         best.is_some_and(|l| l.id == offer.link)
///     }
/// }
///
/// let mut endpoint = EndpointConfig::default();
/// endpoint.scheduler = SchedulerChoice::new(|| Box::new(Quickest));
/// ```
#[derive(Clone)]
pub struct SchedulerChoice(Arc<dyn Fn() -> Box<dyn Scheduler> + Send + Sync>);

impl SchedulerChoice {
    /// Each connection calls `make` once, as it is made, for a scheduler of its own.
    pub fn new(make: impl Fn() -> Box<dyn Scheduler> + Send + Sync + 'static) -> Self {
        SchedulerChoice(Arc::new(make))
    }

    /// A scheduler for a new connection.
    pub fn make(&self) -> Box<dyn Scheduler> {
        (self.0)()
    }
}

impl Default for SchedulerChoice {
    fn default() -> Self {
        SchedulerChoice::new(|| Box::new(EarliestArrival::new()))
    }
}

impl fmt::Debug for SchedulerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SchedulerChoice(..)")
    }
}

/// Everything the tokio layer needs to know, for connections and servers alike.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The state machine's configuration.
    pub config: Config,
    /// How long a link's handshake may take. Default 10 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub handshake_timeout: Duration,
    /// Most handshakes a server runs at once; a newcomer beyond them takes the place of the
    /// oldest handshake of the source with the most. Default 256.
    pub max_pending_handshakes: usize,
    /// Most connections a server keeps. When it holds them all, a new connection takes the
    /// place of one that gives way: without links and never any data; with links but no data
    /// for `no_link_timeout_before_data` since it opened; without links (a client between
    /// paths). If none gives way, Refused(NotListening). Default 4096.
    pub max_connections: usize,
    /// Most new connections waiting for the application to accept them. Default 32.
    pub max_pending_connections: usize,
    /// Most links one connection of a server may have; a link beyond them is refused with
    /// Refused(LinkRefused). Each link costs a socket, a read buffer and work on every packet,
    /// so one peer must not open thousands. Default 32.
    pub max_links_per_connection: usize,
    /// Most sockets (links and handshakes in progress) one source may hold on a server; a
    /// socket beyond them is closed at once. A source ([`crate::Source`]) is the peer's IPv4
    /// address or IPv6 /64, for links added with an address (`Server::add_link_from`,
    /// `Server::add_packet_link_from`; liag-transports' acceptors do). Default 128: far more
    /// than one host's paths, and few enough that one host cannot take a server's file
    /// descriptors. Hosts behind one NAT address share it: raise it for them.
    pub max_links_per_source: usize,
    /// Most connections one source may hold on a server; a new one beyond them is refused with
    /// Refused(NotListening). `liag tunnel` opens a connection per forwarded TCP connection,
    /// so this bounds those a host forwards at once. Default 64.
    pub max_connections_per_source: usize,
    /// How long a server's connection that has never received data lives without a working
    /// link (with data received, `config.no_link_timeout`, 90 s, applies). The server puts it
    /// into each connection's configuration where `config.no_link_timeout_before_data` is
    /// `None`, and never above `config.no_link_timeout`; set it to that to turn it off. Mind
    /// protocols where the client sends nothing and the server speaks. Default 10 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub no_link_timeout_before_data: Duration,
    /// Bytes all of a server's connections may buffer together, received and unread or
    /// written and unacknowledged: a `liag_core::MemoryBudget` (its rules are there) given to
    /// each connection whose `config.memory_budget` is `None`. Each connection's own bounds
    /// (`recv_buffer`, `send_buffer`) still hold; `usize::MAX` bounds nothing more. Default
    /// 128 MiB.
    pub memory_budget: usize,
    /// Whether a server sends redundantly on a connection whose client asks for it in a
    /// link's handshake (liag's `Extensions::REDUNDANT`; see `liag_core::Config::redundant`).
    /// Copies can double what the server sends that client; false ignores the requests (the
    /// client still sends its own copies). Default true.
    pub redundant_on_request: bool,
    /// The scheduler of each connection, client's and server's alike. Default liag's
    /// [`EarliestArrival`]. Copies of redundant sending go where `LinkView::arrival` says,
    /// without asking it; a link's rate cap and tier apply before it is asked. Not part of a
    /// configuration file.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub scheduler: SchedulerChoice,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
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
            redundant_on_request: true,
            scheduler: SchedulerChoice::default(),
        }
    }
}
