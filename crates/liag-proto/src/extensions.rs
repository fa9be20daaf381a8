//! The `extensions` bit set of Welcome and Connect.
//!
//! Protocol 4 sends 0 and ignores the value on receipt (spec §3.3), so a bit set here changes
//! nothing for a peer that does not know it. A liag server announces [`Extensions::TIERS`] in
//! its Welcome; to such a server alone, a liag client's Connect states the link's tier in the
//! [`Extensions::LINK_TIER`] bits ([`LinkTier`]), so that the server's data keeps off a
//! client's backup link too. A liag server's Welcome also announces [`Extensions::REDUNDANT`],
//! and a liag client that sends redundantly sets the same bit in its Connect to ask the server
//! to do so too. Bits liag does not know are kept, so that future extensions can be
//! negotiated as the intersection of both sets.

use core::fmt;

/// A set of protocol extensions: the link's tier ([`Extensions::LINK_TIER`],
/// [`Extensions::TIERS`]) and redundant sending ([`Extensions::REDUNDANT`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extensions(u32);

impl Extensions {
    /// The empty set: what protocol 4 peers send.
    pub const NONE: Extensions = Extensions(0);

    /// The set with exactly these bits, including bits liag does not know.
    pub const fn from_bits(bits: u32) -> Self {
        Extensions(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Extensions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The extensions both sets have: what two peers can use together.
    #[must_use]
    pub const fn intersection(self, other: Extensions) -> Self {
        Extensions(self.0 & other.0)
    }

    /// The two bits of Connect that carry the initiator's tier for the link, sent only to a
    /// responder whose Welcome announced [`Extensions::TIERS`].
    pub const LINK_TIER: Extensions = Extensions(0b11);

    /// In Welcome: the responder applies the [`Extensions::LINK_TIER`] bits of Connect.
    pub const TIERS: Extensions = Extensions(0b100);

    /// In Welcome: the responder sends redundantly on request. In Connect, sent only to such a
    /// responder: the initiator asks that what the responder sends on the connection go
    /// redundantly (each reliable message on two links, liag-core's `Config::redundant`).
    pub const REDUNDANT: Extensions = Extensions(0b1000);

    /// Both sets' bits.
    #[must_use]
    pub const fn union(self, other: Extensions) -> Self {
        Extensions(self.0 | other.0)
    }

    /// These bits without those of `other`.
    #[must_use]
    pub const fn without(self, other: Extensions) -> Self {
        Extensions(self.0 & !other.0)
    }

    /// The link tier these bits state: [`LinkTier::Primary`] for none (what protocol 4 peers
    /// send) and for the unused value 3.
    pub const fn link_tier(self) -> LinkTier {
        match self.0 & Self::LINK_TIER.0 {
            1 => LinkTier::Secondary,
            2 => LinkTier::Backup,
            _ => LinkTier::Primary,
        }
    }

    /// These extensions with the link tier bits set to `tier`.
    #[must_use]
    pub const fn with_link_tier(self, tier: LinkTier) -> Self {
        let bits = match tier {
            LinkTier::Primary => 0,
            LinkTier::Secondary => 1,
            LinkTier::Backup => 2,
        };
        Extensions(self.0 & !Self::LINK_TIER.0 | bits)
    }
}

/// A link's tier as Connect states it: how readily the link carries data (liag-core's `Tier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LinkTier {
    /// Carries data whenever the scheduler places it there.
    #[default]
    Primary,
    /// Carries data only beyond what the primary links carry.
    Secondary,
    /// Carries data only when no primary or secondary link works.
    Backup,
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({:#x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_tier_takes_two_bits_and_leaves_the_others() {
        let other = Extensions::from_bits(0x8000_0000);
        for tier in [LinkTier::Primary, LinkTier::Secondary, LinkTier::Backup] {
            let with = other.with_link_tier(tier);
            assert_eq!(with.link_tier(), tier);
            assert!(with.contains(other));
        }
        assert_eq!(
            Extensions::NONE.link_tier(),
            LinkTier::Primary,
            "protocol 4 peers"
        );
        assert_eq!(Extensions::from_bits(3).link_tier(), LinkTier::Primary);
        assert_eq!(Extensions::NONE.with_link_tier(LinkTier::Backup).bits(), 2);
    }

    #[test]
    fn redundancy_is_its_own_bit() {
        let both = Extensions::TIERS.union(Extensions::REDUNDANT);
        assert_eq!(both.bits(), 0b1100);
        assert!(both.contains(Extensions::REDUNDANT));
        assert_eq!(both.without(Extensions::REDUNDANT), Extensions::TIERS);
        let asked = Extensions::REDUNDANT.with_link_tier(LinkTier::Backup);
        assert_eq!(asked.link_tier(), LinkTier::Backup);
        assert!(asked.contains(Extensions::REDUNDANT));
    }
}
