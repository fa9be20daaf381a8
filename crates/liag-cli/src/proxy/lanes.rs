//! The proxy client's lanes: aggregated connections to the server over the same links, each
//! multiplexing streams of its own.
//!
//! One aggregated connection delivers its bytes in the order they were written, whichever
//! stream wrote them. A small request written behind a download's data waits at the far end
//! until the download's earlier bytes have come in, the slowest link's included: under load,
//! the round trips of a shell or a call through one connection take as long as the slowest
//! link's queue. A stream of another connection shares the links' queues but not that order.
//! So the client keeps a few connections, and a new stream goes to the lane that carries
//! least at the time; a stream opened beside a running download travels apart from it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use liag_transports::liag_tokio::Control;

/// The lanes a client keeps unless told otherwise.
pub(crate) const DEFAULT_LANES: u8 = 2;
/// The most lanes a client may keep: each is a connection with a link on every path.
pub(crate) const MAX_LANES: u8 = 8;
/// Lanes whose traffic differs by less than this (bytes per second, both ways together) count
/// as equally busy, and the one with fewer streams takes a new stream. A lane carrying only
/// interactive streams stays under it; one carrying a transfer of a megabit or more does not.
const LOAD_STEP: f64 = 125_000.0;

/// What the opener knows of one lane.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    /// The lane's connection while it serves streams.
    serving: Mutex<Option<Control>>,
    /// Streams of the lane still open.
    streams: AtomicUsize,
}

impl Lane {
    /// The lane serves streams on the connection of `control`, or (with `None`) on none.
    pub(crate) fn set_serving(&self, control: Option<Control>) {
        *self.serving() = control;
    }

    fn serving(&self) -> MutexGuard<'_, Option<Control>> {
        // Nothing is left half-changed under the lock: a panic elsewhere leaves it usable.
        self.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the lane ranks for a new stream now (see [`Rank`]).
    fn rank(&self) -> Rank {
        let serving = self.serving().clone();
        let load = serving.as_ref().map_or(0.0, |control| {
            control
                .link_rates()
                .iter()
                .map(|l| l.send_1s + l.receive_1s)
                .sum::<f64>()
        });
        Rank::new(
            serving.is_some(),
            load,
            self.streams.load(Ordering::Relaxed),
        )
    }
}

/// How a lane ranks for a new stream, lower first: one that serves before one that is
/// connecting, then by its traffic over the last second in steps of [`LOAD_STEP`], then by its
/// streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    connecting: bool,
    load_steps: u64,
    streams: usize,
}

impl Rank {
    /// The rank of a lane that `serving` or not, carrying `load` bytes per second both ways,
    /// with `streams` open.
    fn new(serving: bool, load: f64, streams: usize) -> Self {
        Rank {
            connecting: !serving,
            // A float to integer cast saturates, and takes NaN to 0.
            load_steps: (load / LOAD_STEP) as u64,
            streams,
        }
    }
}

/// Which lane takes the next stream: the first of the least rank.
pub(crate) fn choose(lanes: &[Arc<Lane>]) -> usize {
    first_least(lanes.iter().map(|lane| lane.rank()))
}

/// The index of the first of the least ranks (0 for none).
fn first_least(ranks: impl Iterator<Item = Rank>) -> usize {
    ranks
        .enumerate()
        .min_by_key(|&(i, rank)| (rank, i))
        .map_or(0, |(i, _)| i)
}

/// A stream's place in its lane, counted until the stream is dropped.
#[derive(Debug)]
pub(crate) struct LaneSeat(Arc<Lane>);

impl LaneSeat {
    pub(crate) fn take(lane: &Arc<Lane>) -> Self {
        lane.streams.fetch_add(1, Ordering::Relaxed);
        LaneSeat(lane.clone())
    }
}

impl Drop for LaneSeat {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the operator's messages name lane `i` of `n`: not at all when there is one.
pub(crate) fn label(i: usize, n: usize) -> String {
    if n > 1 {
        format!(" (lane {} of {n})", i + 1)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_spread_over_idle_lanes_and_a_connecting_lane_comes_last() {
        let lanes: Vec<Arc<Lane>> = (0..3).map(|_| Arc::new(Lane::default())).collect();
        // None serves yet: the first takes it.
        assert_eq!(choose(&lanes), 0);
        let _a = LaneSeat::take(&lanes[0]);
        assert_eq!(choose(&lanes), 1);
        let b = LaneSeat::take(&lanes[1]);
        let _c = LaneSeat::take(&lanes[2]);
        assert_eq!(choose(&lanes), 0);
        // A stream gone frees its seat.
        drop(b);
        assert_eq!(choose(&lanes), 1);
        assert_eq!(lanes[1].streams.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_busy_lane_comes_after_quiet_ones_whatever_their_streams() {
        // A download of 2 MB/s on lane 0 with one stream; lane 1 carries a few shells.
        let ranks = [Rank::new(true, 2e6, 1), Rank::new(true, 9_000.0, 5)];
        assert_eq!(first_least(ranks.into_iter()), 1);
        // Two quiet lanes whose traffic differs by less than a step: the fewer streams win.
        let ranks = [Rank::new(true, 1_000.0, 3), Rank::new(true, 60_000.0, 2)];
        assert_eq!(first_least(ranks.into_iter()), 1);
        // A lane still connecting comes after a busy one that serves.
        let ranks = [Rank::new(false, 0.0, 0), Rank::new(true, 9e6, 40)];
        assert_eq!(first_least(ranks.into_iter()), 1);
        // Whatever a rate estimate says, a lane ranks.
        let ranks = [
            Rank::new(true, f64::NAN, 1),
            Rank::new(true, f64::INFINITY, 0),
        ];
        assert_eq!(first_least(ranks.into_iter()), 0);
        assert_eq!(first_least(std::iter::empty()), 0);
    }

    #[test]
    fn lanes_are_named_only_when_there_are_several() {
        assert_eq!(label(0, 1), "");
        assert_eq!(label(1, 2), " (lane 2 of 2)");
    }
}
