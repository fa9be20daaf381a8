//! [`MemoryBudget`]: one bound on the bytes many connections buffer together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a connection may have written and not had acknowledged, however full the budget: its
/// send floor, unless the budget's even share among its connections is less (but never below
/// [`MIN_FLOOR`]).
pub const SEND_FLOOR: usize = 256 << 10;
/// Bytes a connection may have received and not read, however full the budget: its receive
/// floor, unless the budget's even share among its connections is less (but never below
/// [`MIN_FLOOR`]).
pub const RECV_FLOOR: usize = 256 << 10;
/// The least a floor is, however many connections share the budget: a connection always
/// moves.
pub const MIN_FLOOR: usize = 16 << 10;
/// The largest payload taken beyond the budget because it is the next to read (with all
/// before it read). Larger ones wait until there is room: a peer cannot make each of many
/// connections hold a payload of 8 MiB this way.
pub(crate) const NEXT_TO_READ_MAX: usize = 64 << 10;

/// A byte budget shared by connections: clone it into each one's [`crate::Config`]
/// (`memory_budget`). A `liag_tokio::Server` gives all its connections one.
///
/// Each connection's buffers are bounded by its own configuration (`recv_buffer`,
/// `send_buffer`), but a server with thousands of connections would multiply that by
/// thousands. Connections sharing a budget each keep an account of what they hold (received
/// and unread, written and unacknowledged) and take in more only while the total stays within
/// the budget:
///
/// - a Data message that does not fit is dropped unacknowledged (the peer sends it again
///   later), unless the connection holds less than its receive floor, or the message is the
///   very next one in order, the application has read everything before it and it is at most
///   64 KiB;
/// - writes take no more than fits, and always up to the connection's send floor, so a writer
///   blocked by the budget is woken by its own acknowledgements.
///
/// A floor is [`RECV_FLOOR`] or [`SEND_FLOOR`], or the budget's even share among the
/// connections sharing it if that is less, but never below [`MIN_FLOOR`]: all connections
/// together hold at most about twice the budget (more only when thousands share a small one).
/// A connection held to its floors is slow (a dropped payload waits for the peer's resend), but
/// it moves. A budget of `usize::MAX` bounds nothing.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    used: AtomicUsize,
    /// Connections sharing the budget.
    accounts: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            inner: Arc::new(Shared {
                limit,
                used: AtomicUsize::new(0),
                accounts: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes the connections sharing it hold now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Bytes left before the budget is spent.
    pub(crate) fn room(&self) -> usize {
        self.limit().saturating_sub(self.used())
    }

    /// Counts `n` more bytes against the budget if they fit; for buffers outside any
    /// connection's own accounts (a link's frame in progress). Give them back with
    /// [`MemoryBudget::release`].
    pub fn try_charge(&self, n: usize) -> bool {
        let limit = self.limit();
        (self.inner.used)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken with [`MemoryBudget::try_charge`] (never below nothing).
    pub fn release(&self, n: usize) {
        let _ = (self.inner.used).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            Some(used.saturating_sub(n))
        });
    }
}

/// One connection's share of a budget: what it holds, given back when dropped.
#[derive(Debug)]
pub(crate) struct Account {
    budget: MemoryBudget,
    held: usize,
}

impl Account {
    pub(crate) fn new(budget: MemoryBudget) -> Self {
        budget.inner.accounts.fetch_add(1, Ordering::Relaxed);
        Account { budget, held: 0 }
    }

    /// `floor`, or the budget's even share among its connections if that is less, but at
    /// least [`MIN_FLOOR`].
    pub(crate) fn floor(&self, floor: usize) -> usize {
        let accounts = self.budget.inner.accounts.load(Ordering::Relaxed).max(1);
        floor
            .min(self.budget.limit() / accounts)
            .max(MIN_FLOOR.min(floor))
    }

    /// Records that the connection now holds `held` bytes.
    pub(crate) fn set(&mut self, held: usize) {
        let used = &self.budget.inner.used;
        if held == self.held {
            // Most packets change nothing: no shared write for them.
            return;
        }
        if held > self.held {
            used.fetch_add(held - self.held, Ordering::Relaxed);
        } else {
            used.fetch_sub(self.held - held, Ordering::Relaxed);
        }
        self.held = held;
    }

    /// Bytes left in the budget for any connection.
    pub(crate) fn room(&self) -> usize {
        self.budget.room()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.set(0);
        self.budget.inner.accounts.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_add_up_and_give_back() {
        let budget = MemoryBudget::new(1000);
        let mut a = Account::new(budget.clone());
        let mut b = Account::new(budget.clone());
        a.set(300);
        b.set(500);
        assert_eq!((budget.used(), budget.room()), (800, 200));
        a.set(100);
        assert_eq!(budget.used(), 600);
        b.set(1500);
        assert_eq!(budget.room(), 0);
        assert_eq!(
            a.floor(SEND_FLOOR),
            MIN_FLOOR,
            "never below the least floor"
        );
        drop(b);
        let big = MemoryBudget::new(1 << 20);
        let (c, _d) = (Account::new(big.clone()), Account::new(big.clone()));
        assert_eq!(c.floor(SEND_FLOOR), 256 << 10);
        let _more: Vec<Account> = (0..6).map(|_| Account::new(big.clone())).collect();
        assert_eq!(c.floor(SEND_FLOOR), 128 << 10, "eight share 1 MiB");
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
