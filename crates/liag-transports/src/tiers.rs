//! Link tiers by interface or for every path of a connector: which links carry data always,
//! only beyond what the others carry, or only when no other works.

use std::io;

use liag_tokio::{BoxFuture, BoxLink, LinkConfig, Meter, Tier, UserData, Welcome};

use crate::transport::Connector;

/// The tier of each link by the local interface its path leaves from: the part of the path's
/// name before ` -> `, as the TCP, WebSocket and RFCOMM connectors name paths bound to an
/// interface (`"wwan0 -> 192.0.2.1:5700"`), or one tier for every path
/// ([`TierRules::every_path`], for a connector that reaches a backup server, say). Paths no
/// rule names are primary.
///
/// The same rules cap a link's rate by its interface ([`TierRules::max_rate`]) and give it
/// the data allowance it draws on ([`TierRules::meter`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierRules {
    by_interface: Vec<(String, Tier)>,
    every_path: Option<Tier>,
    rate_by_interface: Vec<(String, u64)>,
    meter_by_interface: Vec<(String, Meter)>,
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

    /// Every path gets at least `tier`; an interface rule may make a link more reserved
    /// still.
    pub fn every_path(mut self, tier: Tier) -> Self {
        self.every_path = Some(tier);
        self
    }

    /// Links leaving from `interface` take at most `bytes_per_sec` of payload
    /// ([`LinkConfig::max_rate`]); a later cap for the same interface replaces an earlier one.
    pub fn max_rate(mut self, interface: impl Into<String>, bytes_per_sec: u64) -> Self {
        let interface = interface.into();
        self.rate_by_interface
            .retain(|(name, _)| *name != interface);
        self.rate_by_interface.push((interface, bytes_per_sec));
        self
    }

    /// Links leaving from `interface` draw on `meter` ([`LinkConfig::meter`]): past its
    /// allowance they carry data only while no other link is usable. Give every connector the
    /// same handle (a clone), so that all links over the interface share one count; a later
    /// meter for the same interface replaces an earlier one.
    pub fn meter(mut self, interface: impl Into<String>, meter: Meter) -> Self {
        let interface = interface.into();
        self.meter_by_interface
            .retain(|(name, _)| *name != interface);
        self.meter_by_interface.push((interface, meter));
        self
    }

    /// Whether no rule is set: every link primary, uncapped and unmetered.
    pub fn is_empty(&self) -> bool {
        self.by_interface.is_empty()
            && self.every_path.is_none()
            && self.rate_by_interface.is_empty()
            && self.meter_by_interface.is_empty()
    }

    /// The allowance a rule gives a link on the path named `path`, if one does.
    pub fn meter_of(&self, path: &str) -> Option<&Meter> {
        let (interface, _) = path.split_once(" -> ")?;
        self.meter_by_interface
            .iter()
            .find(|(name, _)| name == interface)
            .map(|(_, meter)| meter)
    }

    /// The rate cap a rule gives a link on the path named `path`, if one does.
    pub fn max_rate_of(&self, path: &str) -> Option<u64> {
        let (interface, _) = path.split_once(" -> ")?;
        self.rate_by_interface
            .iter()
            .find(|(name, _)| name == interface)
            .map(|&(_, rate)| rate)
    }

    /// The tier the rules give a link on the path named `path`, if one does: the most
    /// reserved of its interface's rule and the rule for every path.
    pub fn tier_of(&self, path: &str) -> Option<Tier> {
        let by_interface = path.split_once(" -> ").and_then(|(interface, _)| {
            self.by_interface
                .iter()
                .find(|(name, _)| name == interface)
                .map(|&(_, tier)| tier)
        });
        by_interface.max(self.every_path)
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

    /// The inner connector's settings, with the tier the rules give, or the inner one's if
    /// that is more reserved (a connector for a backup server inside rules by interface), and
    /// the lower of both rate caps.
    fn link_config(&self, path: &str) -> LinkConfig {
        let mut config = self.inner.link_config(path);
        if let Some(tier) = self.rules.tier_of(path) {
            config.tier = config.tier.max(tier);
        }
        if let Some(rate) = self.rules.max_rate_of(path) {
            config.max_rate = Some(config.max_rate.map_or(rate, |inner| inner.min(rate)));
        }
        if let Some(meter) = self.rules.meter_of(path) {
            config.meter = Some(meter.clone());
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
        let everywhere = rules.clone().every_path(Tier::Secondary);
        assert!(!TierRules::new().every_path(Tier::Backup).is_empty());
        assert_eq!(
            everywhere.tier_of("eth0 -> 192.0.2.1:5700"),
            Some(Tier::Secondary)
        );
        assert_eq!(everywhere.tier_of("192.0.2.1:5700"), Some(Tier::Secondary));
        assert_eq!(
            everywhere.tier_of("wwan0 -> 192.0.2.1:5700"),
            Some(Tier::Backup),
            "the more reserved"
        );
    }

    #[test]
    fn a_paths_rate_cap_follows_its_interface() {
        let rules = TierRules::new()
            .max_rate("eth1", 1_000)
            .max_rate("eth1", 2_000);
        assert!(!rules.is_empty());
        assert_eq!(rules.max_rate_of("eth1 -> 192.0.2.1:5700"), Some(2_000));
        assert_eq!(rules.max_rate_of("eth0 -> 192.0.2.1:5700"), None);
        assert_eq!(rules.tier_of("eth1 -> 192.0.2.1:5700"), None);
    }

    #[test]
    fn a_paths_meter_follows_its_interface_and_is_shared() {
        let meter = Meter::new(2_000_000_000);
        let rules = TierRules::new().meter("wwan0", meter.clone());
        assert!(!rules.is_empty());
        let on = rules.meter_of("wwan0 -> 192.0.2.1:5700").unwrap();
        assert!(on.same(&meter), "the one handle, not a copy of its count");
        assert!(rules.meter_of("eth0 -> 192.0.2.1:5700").is_none());
        assert!(rules.meter_of("192.0.2.1:5700").is_none(), "no interface");
    }
}
