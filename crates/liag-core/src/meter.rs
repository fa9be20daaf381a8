//! Data allowances of metered links: a count of the bytes links carried, shared by every
//! link that draws on the same allowance, and the limit past which they fall back to backup.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A data allowance, such as a cellular plan's: the bytes some links may carry, sent and
/// received alike, before they carry data only when no other link is usable.
///
/// A `Meter` is a handle: its clones share one count, so every link over one metered
/// interface, in every connection of the process, draws on the same allowance. Give it to a
/// link with [`LinkConfig::with_meter`](crate::LinkConfig::with_meter). What counts is the
/// bytes of liag's messages as [`LinkStats::sent_bytes`](crate::LinkStats::sent_bytes) and
/// [`LinkStats::received_bytes`](crate::LinkStats::received_bytes) count them, keep-alives
/// included; a transport's framing, TLS, link handshakes and TCP/IP headers are not counted,
/// though a provider counts them (a few percent for bulk transfers, more for small messages).
///
/// While the allowance lasts, a metered link is what its tier makes it. Once what is left falls
/// below the link's reserve (its next payload, and twice what it carries in a round trip:
/// about what the peer may have under way on it), and while another link of the connection
/// is usable, the connection blocks the link: no data of this end goes on it, and a SetBlock
/// message tells the peer to stop too (liag and aggligator peers honour it; a peer that does
/// not can pass the allowance). So the block comes a little before the allowance is used up.
/// A blocked metered link still carries its keep-alives; it is unblocked while no other link
/// of the connection is usable, as a backup link takes over, and blocked again once one is.
/// While another link is usable, data this end sends stays within the allowance, to within
/// one message per connection drawing on it; once none is, the link carries everything and
/// the count goes past the allowance: it never cuts a connection's last usable link.
///
/// ```
/// use liag_core::{LinkConfig, Meter};
///
/// // A cellular plan of 2 GB: every link over the modem gets a clone of one meter.
/// let wwan = Meter::new(2_000_000_000);
/// let config = LinkConfig::default().with_meter(wwan.clone());
/// assert!(config.meter.as_ref().is_some_and(|m| m.same(&wwan)));
/// assert_eq!(wwan.remaining(), 2_000_000_000);
/// ```
///
/// The count starts where [`Meter::with_used`] puts it (from a state file, across restarts)
/// and goes back to zero with [`Meter::reset`] (a new billing period); keeping it is the
/// application's job.
#[derive(Clone)]
pub struct Meter(Arc<Allowance>);

struct Allowance {
    used: AtomicU64,
    limit: AtomicU64,
}

impl Meter {
    /// An allowance of `limit` bytes, none used yet.
    pub fn new(limit: u64) -> Self {
        Self::with_used(limit, 0)
    }

    /// An allowance of `limit` bytes of which `used` are gone already.
    pub fn with_used(limit: u64, used: u64) -> Self {
        Meter(Arc::new(Allowance {
            used: AtomicU64::new(used),
            limit: AtomicU64::new(limit),
        }))
    }

    /// The bytes counted so far.
    pub fn used(&self) -> u64 {
        self.0.used.load(Ordering::Relaxed)
    }

    /// The allowance, bytes.
    pub fn limit(&self) -> u64 {
        self.0.limit.load(Ordering::Relaxed)
    }

    /// What is left of the allowance, bytes.
    pub fn remaining(&self) -> u64 {
        self.limit().saturating_sub(self.used())
    }

    /// Whether the allowance is used up.
    pub fn exhausted(&self) -> bool {
        self.remaining() == 0
    }

    /// Changes the allowance; the count stays. Links blocked for the allowance see it, as for
    /// [`Meter::reset`], when their connections next handle one of their packets.
    pub fn set_limit(&self, limit: u64) {
        self.0.limit.store(limit, Ordering::Relaxed);
    }

    /// Starts the count again from zero (a new period). Links blocked for the allowance are
    /// unblocked as their connections next handle one of their packets: a keep-alive at the
    /// latest.
    pub fn reset(&self) {
        self.0.used.store(0, Ordering::Relaxed);
    }

    /// Counts `bytes` carried (at most up to `u64::MAX`: a count loaded near it must not wrap
    /// round to a fresh allowance).
    pub(crate) fn charge(&self, bytes: u64) {
        let add = |used: u64| Some(used.saturating_add(bytes));
        let _ = self
            .0
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add);
    }

    /// Whether `self` and `other` are handles to the same allowance.
    pub fn same(&self, other: &Meter) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Two meters are equal when they share one allowance.
impl PartialEq for Meter {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl Eq for Meter {}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("used", &self.used())
            .field("limit", &self.limit())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_count() {
        let meter = Meter::with_used(1_000, 100);
        let other = meter.clone();
        other.charge(850);
        assert_eq!((meter.used(), meter.remaining()), (950, 50));
        assert!(!meter.exhausted());
        meter.charge(60);
        assert_eq!(other.remaining(), 0, "saturates");
        assert!(other.exhausted());
        meter.set_limit(2_000);
        assert_eq!(other.remaining(), 990);
        other.reset();
        assert_eq!(meter.used(), 0);
        assert_eq!(meter, other);
        assert_ne!(meter, Meter::with_used(2_000, 0), "another allowance");
    }
}
