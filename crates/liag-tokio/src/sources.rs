//! What one source may hold of a server: sockets (links and handshakes) and connections.
//!
//! A source is the peer's address: an IPv4 address, or an IPv6 /64 (one host's usual share of
//! a network, where it can pick any address). Each socket and each connection takes a slot of
//! its source's and gives it back when dropped, so the counts can never fall out of step with
//! what is really held.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A peer as a server counts it: an IPv4 address, or an IPv6 /64 (an IPv4-mapped IPv6
/// address counts as its IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source `ip` belongs to.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => Source(IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())),
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    sockets: usize,
    connections: usize,
}

/// Every source's holdings, with the limits they are held to.
#[derive(Debug)]
pub(crate) struct Sources {
    held: Mutex<HashMap<Source, Held>>,
    max_sockets: usize,
    max_connections: usize,
    /// When a refusal was last logged at `warn`: at most one every ten seconds.
    warned: Mutex<Option<std::time::Instant>>,
}

/// Which of `sources` (oldest first) gives way when there are too many: the oldest of the
/// source with the most (entries without a source count as one source), so one busy source
/// shuts out only itself. `None` when there are none.
pub fn oldest_of_busiest(sources: &[Option<Source>]) -> Option<usize> {
    let mut counts: HashMap<Option<Source>, usize> = HashMap::new();
    for source in sources {
        *counts.entry(*source).or_default() += 1;
    }
    let most = counts.values().copied().max()?;
    sources.iter().position(|s| counts.get(s) == Some(&most))
}

/// Which count a slot is taken from.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Socket,
    Connection,
}

/// One socket or connection of a source, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    sources: Arc<Sources>,
    source: Source,
    kind: Kind,
}

impl Sources {
    pub(crate) fn new(max_sockets: usize, max_connections: usize) -> Arc<Sources> {
        Arc::new(Sources {
            held: Mutex::new(HashMap::new()),
            max_sockets: max_sockets.max(1),
            max_connections: max_connections.max(1),
            warned: Mutex::new(None),
        })
    }

    /// A socket slot of `source`'s, unless it holds its fill.
    pub(crate) fn socket(self: &Arc<Self>, source: Source) -> Option<Slot> {
        self.take(source, Kind::Socket)
    }

    /// A connection slot of `source`'s, unless it holds its fill.
    pub(crate) fn connection(self: &Arc<Self>, source: Source) -> Option<Slot> {
        self.take(source, Kind::Connection)
    }

    fn take(self: &Arc<Self>, source: Source, kind: Kind) -> Option<Slot> {
        let mut held = self.held.lock();
        let entry = held.entry(source).or_default();
        let (count, max) = match kind {
            Kind::Socket => (&mut entry.sockets, self.max_sockets),
            Kind::Connection => (&mut entry.connections, self.max_connections),
        };
        if *count >= max {
            drop(held);
            self.refused(source, kind, max);
            return None;
        }
        *count += 1;
        Some(Slot {
            sources: self.clone(),
            source,
            kind,
        })
    }

    /// Tells the operator of a refusal: at `warn` once every ten seconds (a peer at its limit
    /// may be an attacker, or clients behind one NAT address that need more), else `debug`.
    fn refused(&self, source: Source, kind: Kind, max: usize) {
        let what = match kind {
            Kind::Socket => "sockets (max_links_per_source)",
            Kind::Connection => "connections (max_connections_per_source)",
        };
        let mut warned = self.warned.lock();
        if warned.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
            *warned = Some(std::time::Instant::now());
            tracing::warn!(%source, max, "a source holds its fill of {what}; refusing more");
        } else {
            tracing::debug!(%source, max, "a source holds its fill of {what}; refusing more");
        }
    }

    /// Sockets `source` holds.
    #[cfg(test)]
    fn sockets(&self, source: Source) -> usize {
        self.held.lock().get(&source).map_or(0, |h| h.sockets)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.sources.held.lock();
        if let Some(entry) = held.get_mut(&self.source) {
            match self.kind {
                Kind::Socket => entry.sockets -= 1,
                Kind::Connection => entry.connections -= 1,
            }
            if entry.sockets == 0 && entry.connections == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// A socket slot rides along with its link, through the handshake and in whichever
/// connection it joins, and is given back when the link is dropped.
impl crate::guard::LinkGuard for Slot {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let a = Source::of("2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0u8; 16])));
        let b = Source::of(
            "2001:db8:1:2:ffff::9"
                .parse()
                .unwrap_or(IpAddr::from([0u8; 16])),
        );
        let c = Source::of("2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0u8; 16])));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Source::of(
            "::ffff:192.0.2.7"
                .parse()
                .unwrap_or(IpAddr::from([0u8; 16])),
        );
        assert_eq!(mapped, Source::of(IpAddr::from([192, 0, 2, 7])));
    }

    #[test]
    fn the_busiest_sources_oldest_gives_way() {
        let (a, b) = (
            Some(Source::of(IpAddr::from([192, 0, 2, 1]))),
            Some(Source::of(IpAddr::from([192, 0, 2, 2]))),
        );
        assert_eq!(oldest_of_busiest(&[a, b, b, a, b]), Some(1));
        assert_eq!(
            oldest_of_busiest(&[b, a, None, None, a]),
            Some(1),
            "ties: the oldest"
        );
        assert_eq!(oldest_of_busiest(&[]), None);
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let sources = Sources::new(2, 1);
        let src = Source::of(IpAddr::from([192, 0, 2, 1]));
        let other = Source::of(IpAddr::from([192, 0, 2, 2]));
        let a = sources.socket(src);
        let b = sources.socket(src);
        assert!(a.is_some() && b.is_some());
        assert!(sources.socket(src).is_none());
        assert!(
            sources.socket(other).is_some(),
            "another source is not affected"
        );
        drop(a);
        assert_eq!(sources.sockets(src), 1);
        assert!(sources.socket(src).is_some());
        let c = sources.connection(src);
        assert!(c.is_some());
        assert!(sources.connection(src).is_none());
        drop((b, c));
        assert!(
            sources.held.lock().get(&src).is_none(),
            "forgotten once it holds nothing"
        );
    }
}
