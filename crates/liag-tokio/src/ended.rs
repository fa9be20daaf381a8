//! The ids of connections that ended lately, so that a link of one of them whose handshake
//! was held up until after it ended is refused rather than made a new connection.
//!
//! A client's first links all say `existing_connection: false`, since none was accepted
//! when their handshakes began. Should one of them reach the server's table only after the
//! connection it belongs to ended and was forgotten, it would open a connection of its own:
//! one the application accepts and nobody uses.

use std::collections::VecDeque;
use std::time::Duration;

use liag_core::proto::ids::ConnId;
use tokio::time::Instant;

/// Connection ids that ended within the last `horizon`, the latest `capacity` of them.
#[derive(Debug)]
pub(crate) struct Ended {
    ids: VecDeque<(ConnId, Instant)>,
    horizon: Duration,
    capacity: usize,
}

impl Ended {
    /// Remembers ids for `horizon` (a handshake's longest: the request of a link whose
    /// transport reached the server before its connection ended comes no later; one that
    /// reached it later still is not caught), at most `capacity` of them.
    pub(crate) fn new(horizon: Duration, capacity: usize) -> Self {
        Ended {
            ids: VecDeque::new(),
            horizon,
            capacity: capacity.max(1),
        }
    }

    /// Notes that the connection `id` ended `now`.
    pub(crate) fn note(&mut self, id: ConnId, now: Instant) {
        self.forget_before(now);
        if self.ids.len() >= self.capacity {
            self.ids.pop_front();
        }
        self.ids.push_back((id, now));
    }

    /// Whether the connection `id` ended within the horizon.
    pub(crate) fn contains(&mut self, id: ConnId, now: Instant) -> bool {
        self.forget_before(now);
        self.ids.iter().any(|&(ended, _)| ended == id)
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .ids
            .front()
            .is_some_and(|&(_, at)| now.saturating_duration_since(at) > self.horizon)
        {
            self.ids.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ConnId {
        ConnId::new(n)
    }

    #[tokio::test(start_paused = true)]
    async fn ids_are_remembered_for_the_horizon_and_up_to_the_capacity() {
        let mut ended = Ended::new(Duration::from_secs(10), 2);
        let start = Instant::now();
        ended.note(id(1), start);
        assert!(ended.contains(id(1), start + Duration::from_secs(10)));
        assert!(!ended.contains(id(2), start));
        assert!(!ended.contains(id(1), start + Duration::from_millis(10_001)));
        // The oldest makes room for the latest.
        ended.note(id(2), start);
        ended.note(id(3), start);
        ended.note(id(4), start);
        assert!(!ended.contains(id(2), start));
        assert!(ended.contains(id(3), start) && ended.contains(id(4), start));
    }
}
