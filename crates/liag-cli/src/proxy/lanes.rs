//! The proxy client's lanes: aggregated connections to the server over the same paths, each
//! with a link of its own on every path, and each multiplexing streams of its own.
//!
//! One aggregated connection delivers its bytes in the order they were written, whichever
//! stream wrote them. A small request written behind a download's data waits at the far end
//! until the download's earlier bytes have come in, the slowest link's included: under load,
//! the round trips of a shell or a call through one connection take as long as the slowest
//! link's queue. A stream of another connection shares the paths' queues but not that order.
//! So the client keeps a few connections, and a new stream goes to the lane that carries
//! least at the time; a stream opened beside a running download travels apart from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

use liag_transports::liag_tokio::{Control, LinkState};

/// The lanes a client keeps unless told otherwise.
pub(crate) const DEFAULT_LANES: u8 = 2;
/// The most lanes a client may keep: each is a connection with a link on every path.
pub(crate) const MAX_LANES: u8 = 8;
/// Lanes whose traffic over the last second falls in the same step of this many bytes per
/// second (both ways together, a megabit per second) count as equally busy, and the one with
/// fewer streams takes a new stream. A lane carrying only interactive streams stays in the
/// first step; one carrying a transfer of a megabit per second or more does not.
const LOAD_STEP: f64 = 125_000.0;
/// How often a serving lane's figures are read from its connection, so that choosing a lane
/// takes no connection's lock.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// What the opener knows of one lane. The figures are each read on its own: a choice made on
/// a mix of two readings is as good as one made a moment earlier or later.
#[derive(Debug)]
pub(crate) struct Lane {
    /// The lane's connection serves streams.
    serving: AtomicBool,
    /// At the last reading, a link of the connection was active: a connection whose links are
    /// all down or under test serves nothing until one comes back.
    working: AtomicBool,
    /// At the last reading, the bytes per second its links carried over the last second, both
    /// ways together (an `f64`'s bits).
    load: AtomicU64,
    /// Streams of the lane still open.
    streams: AtomicUsize,
    /// How many of the client's lanes serve, shared by them all.
    lanes_serving: Arc<watch::Sender<usize>>,
}

impl Lane {
    /// `n` lanes that count together how many of them serve.
    pub(crate) fn lanes(n: usize) -> Vec<Arc<Lane>> {
        let lanes_serving = Arc::new(watch::Sender::new(0));
        (0..n)
            .map(|_| {
                Arc::new(Lane {
                    serving: AtomicBool::new(false),
                    working: AtomicBool::new(false),
                    load: AtomicU64::new(0),
                    streams: AtomicUsize::new(0),
                    lanes_serving: lanes_serving.clone(),
                })
            })
            .collect()
    }

    /// Whether the lane serves streams (its connection greeted, and not yet ended). A lane
    /// that stops serving forgets its figures: its next connection reads its own.
    pub(crate) fn set_serving(&self, serving: bool) {
        if !serving {
            self.working.store(false, Ordering::Relaxed);
            self.load.store(0, Ordering::Relaxed);
        }
        if self.serving.swap(serving, Ordering::AcqRel) != serving {
            self.lanes_serving
                .send_modify(|n| *n = if serving { *n + 1 } else { *n - 1 });
        }
    }

    /// Waits until one of the lanes serves.
    pub(crate) async fn any_serving(&self) {
        let mut count = self.lanes_serving.subscribe();
        // The sender lives as long as this lane: the wait cannot fail.
        let _ = count.wait_for(|&n| n > 0).await;
    }

    /// Reads the lane's figures from its connection now.
    pub(crate) fn read(&self, control: &Control) {
        let links = control.link_rates();
        let working = links.iter().any(|l| l.stats.state == LinkState::Active);
        let load: f64 = links.iter().map(|l| l.send_1s + l.receive_1s).sum();
        self.working.store(working, Ordering::Relaxed);
        self.load.store(load.to_bits(), Ordering::Relaxed);
    }

    /// Reads the lane's figures from its connection every [`FOLLOW_EVERY`], until dropped.
    pub(crate) async fn follow(self: Arc<Self>, control: Control) {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            self.read(&control);
        }
    }

    /// How the lane ranks for a new stream now (see [`Rank`]).
    fn rank(&self) -> Rank {
        Rank::new(
            self.serving.load(Ordering::Acquire),
            self.working.load(Ordering::Relaxed),
            f64::from_bits(self.load.load(Ordering::Relaxed)),
            self.streams.load(Ordering::Relaxed),
        )
    }
}

/// How a lane ranks for a new stream, lower first: one that serves before one that does not
/// (connecting, or waiting to connect again), one with an active link before one without,
/// then by its traffic over the last second in steps of [`LOAD_STEP`], then by its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    not_serving: bool,
    not_working: bool,
    load_steps: u64,
    streams: usize,
}

impl Rank {
    /// The rank of a lane that serves (or not), with an active link (or not), carrying `load`
    /// bytes per second both ways, with `streams` open.
    fn new(serving: bool, working: bool, load: f64, streams: usize) -> Self {
        Rank {
            not_serving: !serving,
            not_working: !working,
            // A float to integer cast saturates, and takes NaN to 0.
            load_steps: (load / LOAD_STEP) as u64,
            streams,
        }
    }
}

/// Which of `lanes` takes the next stream: the first of the least rank.
pub(crate) fn choose<'a>(lanes: impl Iterator<Item = &'a Lane>) -> usize {
    first_least(lanes.map(Lane::rank))
}

/// The index of the first of the least ranks (0 for none).
fn first_least(ranks: impl Iterator<Item = Rank>) -> usize {
    // `min_by_key` gives the first of equal minimums.
    ranks
        .enumerate()
        .min_by_key(|&(_, rank)| rank)
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
    fn streams_spread_over_lanes_of_equal_traffic_by_their_count() {
        let lanes = Lane::lanes(3);
        let choose = || choose(lanes.iter().map(|l| &**l));
        // None serves yet: the first takes it.
        assert_eq!(choose(), 0);
        let _a = LaneSeat::take(&lanes[0]);
        assert_eq!(choose(), 1);
        let b = LaneSeat::take(&lanes[1]);
        let _c = LaneSeat::take(&lanes[2]);
        assert_eq!(choose(), 0);
        // A stream gone frees its seat.
        drop(b);
        assert_eq!(choose(), 1);
        assert_eq!(lanes[1].streams.load(Ordering::Relaxed), 0);
    }

    /// Which of two lanes of ranks `a` and `b` takes a new stream.
    fn of_two(a: Rank, b: Rank) -> usize {
        first_least([a, b].into_iter())
    }

    #[test]
    fn a_busy_lane_comes_after_quiet_ones_whatever_their_streams() {
        // A download of 2 MB/s on lane 0 with one stream; lane 1 carries a few shells.
        let busy = Rank::new(true, true, 2e6, 1);
        assert_eq!(of_two(busy, Rank::new(true, true, 9_000.0, 5)), 1);
        // Two quiet lanes whose traffic differs by less than a step: the fewer streams win.
        let quiet = Rank::new(true, true, 1_000.0, 3);
        assert_eq!(of_two(quiet, Rank::new(true, true, 60_000.0, 2)), 1);
        // A lane still connecting comes after a busy one that serves, and after one that
        // serves with no link active (a link under test, say), which comes after the rest.
        let (connecting, no_link) = (
            Rank::new(false, false, 0.0, 0),
            Rank::new(true, false, 0.0, 0),
        );
        let serving_busy = Rank::new(true, true, 9e6, 40);
        assert_eq!(of_two(no_link, serving_busy), 1);
        assert_eq!(of_two(connecting, Rank::new(true, false, 9e6, 40)), 1);
        assert_eq!(of_two(connecting, serving_busy), 1);
        // Whatever a rate estimate says, a lane ranks.
        let (nan, inf) = (
            Rank::new(true, true, f64::NAN, 1),
            Rank::new(true, true, f64::INFINITY, 0),
        );
        assert_eq!(of_two(nan, inf), 0);
        assert_eq!(first_least(std::iter::empty()), 0);
    }

    #[tokio::test]
    async fn an_open_waits_for_a_lane_that_serves_and_takes_it() {
        use liag_transports::liag_tokio::{EndpointConfig, connect};
        let lanes = Lane::lanes(2);
        let choose = || choose(lanes.iter().map(|l| &**l));
        let waiting = tokio::spawn({
            let lane = lanes[0].clone();
            async move { lane.any_serving().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // The second lane serves: the wait ends, and it ranks before the first, which does
        // not, though its connection has no link yet and more streams.
        let (conn, _links) = connect(EndpointConfig::default());
        lanes[1].set_serving(true);
        lanes[1].read(&conn.control());
        waiting.await.unwrap();
        assert!(!lanes[1].working.load(Ordering::Relaxed));
        let _seats = [LaneSeat::take(&lanes[1]), LaneSeat::take(&lanes[1])];
        assert_eq!(choose(), 1);
        // Set twice, it still counts once; unset, none serves.
        lanes[1].set_serving(true);
        assert_eq!(*lanes[0].lanes_serving.borrow(), 1);
        lanes[1].set_serving(false);
        lanes[1].set_serving(false);
        assert_eq!(*lanes[0].lanes_serving.borrow(), 0);
    }

    #[test]
    fn a_serving_lane_with_an_active_link_comes_first() {
        let lanes = Lane::lanes(2);
        lanes[1].set_serving(true);
        lanes[1].working.store(true, Ordering::Relaxed);
        lanes[1].load.store(5e6f64.to_bits(), Ordering::Relaxed);
        let _seats = [LaneSeat::take(&lanes[1]), LaneSeat::take(&lanes[1])];
        assert_eq!(choose(lanes.iter().map(|l| &**l)), 1);
        // Its links down, it ranks after a lane that works, before one that does not serve.
        lanes[1].working.store(false, Ordering::Relaxed);
        assert_eq!(choose(lanes.iter().map(|l| &**l)), 1);
        lanes[0].set_serving(true);
        lanes[0].working.store(true, Ordering::Relaxed);
        assert_eq!(choose(lanes.iter().map(|l| &**l)), 0);
        // Serving no more, a lane forgets what it read.
        lanes[1].set_serving(false);
        assert!(!lanes[1].working.load(Ordering::Relaxed));
        assert_eq!(lanes[1].load.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lanes_are_named_only_when_there_are_several() {
        assert_eq!(label(0, 1), "");
        assert_eq!(label(1, 2), " (lane 2 of 2)");
    }
}
