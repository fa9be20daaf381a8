//! What a server lets one peer hold: the flags of `liag tunnel server` and `liag proxy
//! server`, as [`EndpointConfig`].

use liag_transports::liag_tokio::EndpointConfig;

/// A server's limits on what peers may hold (see docs/transports.md, "A server facing the
/// internet").
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerLimits {
    /// Most connections one peer address (IPv4, or IPv6 /64) may hold at once: for the tunnel
    /// each forwarded TCP connection is one, for the proxy each lane of a client is one (two
    /// by default). Raise it for clients behind one NAT address.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_connections_per_source: usize,
    /// Most sockets (links and handshakes) one peer address may hold.
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_links_per_source: usize,
    /// MiB all connections may buffer together (received and unread, sent and unacknowledged).
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    memory_budget: usize,
    /// Ignore clients' requests to send redundantly (`--redundant` on a liag client: each
    /// message to them on two links, which can double what the server sends them).
    #[arg(long)]
    no_redundant: bool,
}

impl ServerLimits {
    /// The server's configuration with these limits.
    pub(crate) fn config(&self) -> EndpointConfig {
        let mut config = EndpointConfig::default();
        config.max_connections_per_source = self.max_connections_per_source;
        config.max_links_per_source = self.max_links_per_source;
        config.memory_budget = self.memory_budget.saturating_mul(1 << 20);
        config.redundant_on_request = !self.no_redundant;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        limits: ServerLimits,
    }

    #[test]
    fn defaults_are_the_libraries_and_flags_change_them() {
        let default = Cli::parse_from(["x"]).limits.config();
        let library = EndpointConfig::default();
        assert_eq!(
            default.max_connections_per_source,
            library.max_connections_per_source
        );
        assert_eq!(default.max_links_per_source, library.max_links_per_source);
        assert_eq!(default.memory_budget, library.memory_budget);
        assert!(default.redundant_on_request && library.redundant_on_request);
        let set = Cli::parse_from([
            "x",
            "--max-connections-per-source",
            "500",
            "--memory-budget",
            "512",
            "--no-redundant",
        ])
        .limits
        .config();
        assert_eq!(set.max_connections_per_source, 500);
        assert_eq!(set.memory_budget, 512 << 20);
        assert!(!set.redundant_on_request);
    }
}
