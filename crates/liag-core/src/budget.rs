//! [`MemoryBudget`]: one bound on the bytes many connections buffer together.
//!
//! Each connection's buffers are bounded by its own configuration (`recv_buffer`,
//! `send_buffer`), but a server with thousands of connections would multiply that by
//! thousands. Connections sharing a budget each keep an account of what they hold (received
//! and unread, written and unacknowledged) and take in more only while the total stays within
//! the budget:
//!
//! - a Data message that does not fit is dropped unacknowledged (the peer sends it again
//!   later), unless it is the very next one in order and the application has read everything
//!   before it, or the connection holds less than its receive floor: every connection can
//!   always make progress;
//! - writes take no more than fits, and always up to the connection's send floor, so a writer
//!   blocked by the budget is woken by its own acknowledgements.
//!
//! A floor is [`RECV_FLOOR`] or [`SEND_FLOOR`], or the budget's even share among the
//! connections sharing it if that is less: the floors together never exceed the budget, so
//! connections hold at most about twice the budget however many there are. A connection
//! held to its floors is slow (a dropped payload waits for the peer's resend) but it moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a connection may always have written and unacknowledged, whatever the budget.
pub const SEND_FLOOR: usize = 256 << 10;
/// Bytes a connection may always have received and not read, whatever the budget.
pub const RECV_FLOOR: usize = 256 << 10;

/// A byte budget shared by connections: clone it into each one's [`crate::Config`].
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

    /// `floor`, or the budget's even share among its connections if that is less.
    pub(crate) fn floor(&self, floor: usize) -> usize {
        let accounts = self.budget.inner.accounts.load(Ordering::Relaxed).max(1);
        floor.min(self.budget.limit() / accounts)
    }

    /// Records that the connection now holds `held` bytes.
    pub(crate) fn set(&mut self, held: usize) {
        let used = &self.budget.inner.used;
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
            500,
            "two connections share a floor of 1000"
        );
        drop(b);
        assert_eq!(a.floor(SEND_FLOOR), 1000);
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
