//! Link tiers: which links may carry data at all, before the scheduler chooses among them.

use std::time::Duration;

use liag_proto::extensions::LinkTier;

/// How readily a link carries data (see [`crate::LinkConfig::tier`]).
///
/// Tiers decide which links the [`crate::Scheduler`] is asked about; it then places data among
/// those alone. Every link, whatever its tier, keeps its keep-alives and acknowledgements, so
/// a link of a lower tier is measured and ready when its turn comes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Tier {
    /// Carries data whenever the scheduler places it there. The default.
    #[default]
    Primary,
    /// Carries data only while the primary links cannot carry what is offered: none of them
    /// is usable, or more waits to be sent than they deliver in [`SECONDARY_HORIZON`] (a bulk
    /// transfer beyond their rate).
    Secondary,
    /// Carries no data while any primary or secondary link is usable, only its keep-alives.
    /// It takes over when none is (failed, stalled, blocked), and goes quiet again once one
    /// is usable again; the data in flight on it then completes.
    Backup,
}

impl Tier {
    /// The tier's name, as the command line and the live monitor spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Primary => "primary",
            Tier::Secondary => "secondary",
            Tier::Backup => "backup",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Tier> for LinkTier {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Primary => LinkTier::Primary,
            Tier::Secondary => LinkTier::Secondary,
            Tier::Backup => LinkTier::Backup,
        }
    }
}

impl From<LinkTier> for Tier {
    fn from(tier: LinkTier) -> Self {
        match tier {
            LinkTier::Primary => Tier::Primary,
            LinkTier::Secondary => Tier::Secondary,
            LinkTier::Backup => Tier::Backup,
        }
    }
}

/// Secondary links carry data while more waits to be sent than the primary links deliver in
/// this time. Long enough that a burst the primaries absorb stays on them, short enough that
/// a transfer beyond their rate reaches the secondaries at once.
pub const SECONDARY_HORIZON: Duration = Duration::from_millis(100);

/// What a link contributes to the choice of [`open_tier`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TierView {
    pub(crate) tier: Tier,
    /// It could carry data now (active: not testing, stalled, blocked or leaving).
    pub(crate) usable: bool,
    /// Its estimated delivery rate, bytes per second.
    pub(crate) rate: f64,
}

/// The last tier whose links may carry data now, with `backlog` bytes waiting to be sent:
/// backup links only when no primary or secondary link is usable, secondary links only when
/// no primary link is, or the backlog is more than the primaries deliver in
/// [`SECONDARY_HORIZON`].
pub(crate) fn open_tier(links: impl IntoIterator<Item = TierView>, backlog: usize) -> Tier {
    let (mut upper, mut primaries, mut primary_rate) = (false, false, 0.0);
    for l in links.into_iter().filter(|l| l.usable) {
        match l.tier {
            Tier::Primary => {
                (upper, primaries) = (true, true);
                // An estimate that is not a finite rate counts for nothing.
                if l.rate.is_finite() {
                    primary_rate += l.rate.max(0.0);
                }
            }
            Tier::Secondary => upper = true,
            Tier::Backup => {}
        }
    }
    if !upper {
        Tier::Backup
    } else if !primaries || backlog as f64 > primary_rate * SECONDARY_HORIZON.as_secs_f64() {
        Tier::Secondary
    } else {
        Tier::Primary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(tier: Tier, usable: bool) -> TierView {
        // 1 MB/s: the primaries deliver 100 kB in the horizon.
        TierView {
            tier,
            usable,
            rate: 1e6,
        }
    }

    #[test]
    fn lower_tiers_open_only_as_the_upper_ones_run_out() {
        use Tier::*;
        let primary = view(Primary, true);
        let down = view(Primary, false);
        let secondary = view(Secondary, true);
        let backup = view(Backup, true);
        assert_eq!(open_tier([primary, secondary, backup], 0), Primary);
        assert_eq!(open_tier([primary, secondary, backup], 100_000), Primary);
        assert_eq!(
            open_tier([primary, secondary, backup], 100_001),
            Secondary,
            "more waits than the primary delivers in the horizon"
        );
        assert_eq!(open_tier([primary, primary, secondary], 150_000), Primary);
        assert_eq!(open_tier([down, secondary, backup], 0), Secondary);
        assert_eq!(open_tier([down, view(Secondary, false), backup], 0), Backup);
        assert_eq!(open_tier([backup], 0), Backup);
        assert_eq!(
            open_tier([], 0),
            Backup,
            "nothing usable: nothing is held back"
        );
        let odd = |rate| TierView {
            rate,
            ..view(Primary, true)
        };
        for rate in [f64::INFINITY, f64::NAN, -1.0, 0.0] {
            assert_eq!(open_tier([odd(rate), secondary], 1), Secondary, "{rate}");
        }
    }

    #[test]
    fn tiers_print_by_name_and_cross_the_wire_unchanged() {
        for (tier, name) in [
            (Tier::Primary, "primary"),
            (Tier::Secondary, "secondary"),
            (Tier::Backup, "backup"),
        ] {
            assert_eq!(tier.to_string(), name);
            assert_eq!(Tier::from(LinkTier::from(tier)), tier);
        }
    }
}
