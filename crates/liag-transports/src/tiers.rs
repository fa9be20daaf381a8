//! Link tiers by interface: which links carry data always, only beyond what the others carry,
//! or only when no other works.

use std::io;

use liag_tokio::{BoxFuture, BoxLink, LinkConfig, Tier, UserData, Welcome};

use crate::transport::Connector;

/// The tier of each link by the local interface its path leaves from: the part of the path's
/// name before ` -> `, as the TCP, WebSocket and RFCOMM connectors name paths bound to an
/// interface (`"wwan0 -> 192.0.2.1:5700"`). Paths on no named interface are primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierRules {
    by_interface: Vec<(String, Tier)>,
}

impl TierRules {
    /// No rules: every link primary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Links leaving from `interface` get `tier`; a later rule for the same interface
    /// replaces an earlier one.
    pub fn interface(mut self, interface: impl Into<String>, tier: Tier) -> Self {
        let interface = interface.into();
        self.by_interface.retain(|(name, _)| *name != interface);
        self.by_interface.push((interface, tier));
        self
    }

    /// Whether every link is primary.
    pub fn is_empty(&self) -> bool {
        self.by_interface.is_empty()
    }

    /// The tier a rule gives a link on the path named `path`, if one does.
    pub fn tier_of(&self, path: &str) -> Option<Tier> {
        let (interface, _) = path.split_once(" -> ")?;
        self.by_interface
            .iter()
            .find(|(name, _)| name == interface)
            .map(|&(_, tier)| tier)
    }
}

/// A connector whose links get their tiers from [`TierRules`]; everything else is the inner
/// connector's.
#[derive(Debug)]
pub struct TieredConnector<C> {
    inner: C,
    rules: TierRules,
}

impl<C: Connector> TieredConnector<C> {
    /// `inner`'s links, tiered by `rules`.
    pub fn new(inner: C, rules: TierRules) -> Self {
        TieredConnector { inner, rules }
    }
}

impl<C: Connector> Connector for TieredConnector<C> {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        self.inner.paths()
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        self.inner.open(path)
    }

    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        self.inner.keep(path, welcome, others)
    }

    fn link_config(&self, path: &str) -> LinkConfig {
        let mut config = self.inner.link_config(path);
        if let Some(tier) = self.rules.tier_of(path) {
            config.tier = tier;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paths_tier_follows_its_interface() {
        let rules = TierRules::new()
            .interface("wwan0", Tier::Backup)
            .interface("wlan0", Tier::Backup)
            .interface("wlan0", Tier::Secondary);
        assert_eq!(rules.tier_of("wwan0 -> 192.0.2.1:5700"), Some(Tier::Backup));
        assert_eq!(
            rules.tier_of("wlan0 -> ws://h:8080/liag (192.0.2.1:8080) tls"),
            Some(Tier::Secondary),
            "the later rule"
        );
        assert_eq!(rules.tier_of("eth0 -> 192.0.2.1:5700"), None);
        assert_eq!(rules.tier_of("192.0.2.1:5700"), None, "no interface");
        assert!(TierRules::new().is_empty() && !rules.is_empty());
    }
}
