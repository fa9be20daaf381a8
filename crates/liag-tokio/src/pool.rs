//! Blocks of memory that come back for reuse when the last `Bytes` sharing them is dropped.
//!
//! A busy stream link hands out its payloads as slices of what it read, so read memory lives
//! until the application has taken the last payload in it. Memory freed to the allocator at
//! that pace tends to be handed back to the kernel, and the next buffer's pages are then
//! faulted in again, which at gigabytes per second costs more than the read itself. A busy
//! link therefore reads into blocks from a small pool of its own, and a block rejoins the pool
//! when its last slice is dropped. The pool keeps blocks only while its owner says it is busy.
//!
//! Large byte-stream writes are copied into blocks of one pool that the whole process shares
//! ([`write_blocks`]): their memory is freed as the peer acknowledges it, so it churns the same
//! way, and a shared pool serves a hundred busy connections with the blocks one would keep.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The size of a block of the write pool.
pub(crate) const WRITE_BLOCK: usize = 64 << 10;
/// What a shared pool keeps beyond its recent peak, and all it keeps once every block is back.
const SHARED_SPARE_BYTES: usize = 1 << 20;
/// How long a shared pool remembers a peak: it keeps that of this period and the last.
const PEAK_PERIOD: Duration = Duration::from_secs(1);

/// The process's pool for copies of large byte-stream writes. Writes in flight swing between
/// their peak and a fraction of it as acknowledgements come in batches (over three loopback
/// links, between 1 and 64 MiB many times a second), and a block freed to the allocator in a
/// trough is faulted in again at the next peak. So the pool keeps enough blocks for the peak
/// in use over the last second or two, and lets the rest go once every block is back.
pub(crate) fn write_blocks() -> &'static Arc<BlockPool> {
    static POOL: OnceLock<Arc<BlockPool>> = OnceLock::new();
    shared(&POOL, WRITE_BLOCK)
}

/// The size of a block of the packet pool: a payload of the default 32 KiB and its message's
/// header.
pub(crate) const PACKET_BLOCK: usize = 33 << 10;

/// The process's pool for packets a link hands out as copies (see
/// [`crate::read_buf::MAX_PINNED`]): a reader that falls behind has every packet copied, and
/// those copies churn like the writes'.
pub(crate) fn packet_blocks() -> &'static Arc<BlockPool> {
    static POOL: OnceLock<Arc<BlockPool>> = OnceLock::new();
    shared(&POOL, PACKET_BLOCK)
}

fn shared(cell: &'static OnceLock<Arc<BlockPool>>, block_len: usize) -> &'static Arc<BlockPool> {
    cell.get_or_init(|| {
        let pool = BlockPool::new(
            block_len,
            Limit::RecentPeak {
                spare: SHARED_SPARE_BYTES / block_len,
                period: PEAK_PERIOD,
            },
        );
        pool.set_keep(true);
        pool
    })
}

/// A copy of `data` as `Bytes`: in a block of `pool` if it fills at least half of one, else
/// in an allocation of its own (a small copy must not hold a whole block).
pub(crate) fn copy(pool: &Arc<BlockPool>, data: &[u8]) -> Bytes {
    if data.len() >= pool.block_len / 2 && data.len() <= pool.block_len {
        pool.copy(data)
    } else {
        Bytes::copy_from_slice(data)
    }
}

/// Free blocks of one capacity. A block is a `Vec` filled by copying or reading into its
/// spare capacity, so no block is ever zeroed.
#[derive(Debug)]
pub(crate) struct BlockPool {
    state: Mutex<State>,
    /// Whether returned blocks are kept.
    keep: AtomicBool,
    block_len: usize,
    limit: Limit,
}

/// How many free blocks a pool keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// At most this many.
    Fixed(usize),
    /// Enough for the most blocks in use at once in this period and the last, and `spare`
    /// more; only `spare` once no block has been in use for two periods.
    RecentPeak {
        /// Free blocks kept beyond the peak.
        spare: usize,
        /// How long one period lasts.
        period: Duration,
    },
}

#[derive(Debug)]
struct State {
    free: Vec<Vec<u8>>,
    /// Blocks taken and not yet given back.
    in_use: usize,
    /// The most blocks in use at once in the current period, and in the one before.
    peak: usize,
    last_peak: usize,
    period_start: Option<Instant>,
    /// When the latest trim of an idle pool was asked for, until it has run.
    trim_asked: Option<Instant>,
}

impl State {
    /// How many free blocks may stay at `now`.
    fn limit(&mut self, limit: Limit, now: impl FnOnce() -> Instant) -> usize {
        match limit {
            Limit::Fixed(n) => n,
            Limit::RecentPeak { spare, period } => {
                let now = now();
                let start = *self.period_start.get_or_insert(now);
                if now.duration_since(start) >= period {
                    self.last_peak = self.peak;
                    self.peak = self.in_use;
                    self.period_start = Some(now);
                }
                let peak = self.peak.max(self.last_peak);
                peak.saturating_sub(self.in_use).saturating_add(spare)
            }
        }
    }
}

impl BlockPool {
    /// A pool of blocks with room for `block_len` bytes, keeping at most `limit` of them.
    pub(crate) fn new(block_len: usize, limit: Limit) -> Arc<Self> {
        Arc::new(BlockPool {
            state: Mutex::new(State {
                free: Vec::new(),
                in_use: 0,
                peak: 0,
                last_peak: 0,
                period_start: None,
                trim_asked: None,
            }),
            keep: AtomicBool::new(false),
            block_len,
            limit,
        })
    }

    /// Whether the pool keeps returned blocks.
    pub(crate) fn keeps(&self) -> bool {
        self.keep.load(Ordering::Relaxed)
    }

    /// Keeps returned blocks from now on, or stops and frees the kept ones.
    pub(crate) fn set_keep(&self, keep: bool) {
        let was = self.keep.swap(keep, Ordering::Relaxed);
        if was && !keep {
            self.state.lock().free.clear();
        }
    }

    /// An empty block with room for `block_len` bytes: a kept one, or a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut state = self.state.lock();
        state.in_use += 1;
        state.peak = state.peak.max(state.in_use);
        state
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.block_len))
    }

    /// Returns a block, whatever it holds.
    pub(crate) fn give_back(self: &Arc<Self>, block: Vec<u8>) {
        self.give_back_at(block, Instant::now());
    }

    fn give_back_at(self: &Arc<Self>, mut block: Vec<u8>, now: Instant) {
        let mut state = self.state.lock();
        state.in_use = state.in_use.saturating_sub(1);
        if block.capacity() != self.block_len || !self.keeps() {
            return;
        }
        let limit = state.limit(self.limit, || now);
        if state.free.len() < limit {
            block.clear();
            state.free.push(block);
        }
        // A shrinking limit lets a kept block go too.
        state.free.truncate(limit);
        if let Limit::RecentPeak { spare, period } = self.limit {
            if state.in_use == 0 && state.free.len() > spare {
                self.trim_when_idle(&mut state, spare, period, now);
            }
        }
    }

    /// With every block back, lets all but `spare` go two periods later if none has been
    /// taken by then (at once, outside a runtime). All blocks come back at times, between two
    /// bursts of writes, and the next burst needs them as much as the last did; but a pool
    /// that has gone quiet gets no more calls that would let its recent peak age.
    fn trim_when_idle(
        self: &Arc<Self>,
        state: &mut State,
        spare: usize,
        period: Duration,
        now: Instant,
    ) {
        // A trim asked for long ago and never run went with its runtime.
        if state
            .trim_asked
            .is_some_and(|asked| now.duration_since(asked) < period * 4)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                state.trim_asked = Some(now);
                let pool = self.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(period * 2).await;
                    let mut state = pool.state.lock();
                    state.trim_asked = None;
                    if state.in_use == 0 {
                        state.free.truncate(spare);
                    }
                });
            }
            Err(_) => state.free.truncate(spare),
        }
    }

    /// Shares what `block` holds, which came from [`BlockPool::take`], as `Bytes`; the block
    /// comes back when the last slice of it is dropped. Its capacity counts in `pinned` until
    /// then.
    pub(crate) fn share(self: &Arc<Self>, block: Vec<u8>, pinned: &Arc<AtomicUsize>) -> Bytes {
        share(block, Some(self.clone()), Some(pinned))
    }

    /// A block's worth of `data` (all of it, if it is shorter) copied into a block from the
    /// pool and shared as `Bytes`; the block comes back when the last slice of it is dropped.
    pub(crate) fn copy(self: &Arc<Self>, data: &[u8]) -> Bytes {
        let mut block = self.take();
        block.extend_from_slice(&data[..data.len().min(self.block_len)]);
        share(block, Some(self.clone()), None)
    }
}

/// Shares what `block` holds as `Bytes`, its capacity counted in `pinned` (if given) until the
/// last slice of it is dropped; then it goes back to `pool`, if it came from one.
pub(crate) fn share(
    block: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
    pinned: Option<&Arc<AtomicUsize>>,
) -> Bytes {
    if let Some(pinned) = pinned {
        pinned.fetch_add(block.capacity(), Ordering::Relaxed);
    }
    Bytes::from_owner(Block {
        data: block,
        pool,
        pinned: pinned.cloned(),
    })
}

/// A block shared by the `Bytes` sliced from it.
struct Block {
    data: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
    pinned: Option<Arc<AtomicUsize>>,
}

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(pinned) = &self.pinned {
            pinned.fetch_sub(self.data.capacity(), Ordering::Relaxed);
        }
        let data = std::mem::take(&mut self.data);
        if let Some(pool) = &self.pool {
            pool.give_back(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_comes_back_when_its_last_slice_drops_and_only_while_kept() {
        let pool = BlockPool::new(64, Limit::Fixed(2));
        let pinned = Arc::new(AtomicUsize::new(0));
        pool.set_keep(true);
        let mut block = pool.take();
        block.extend_from_slice(&[7; 64]);
        let first = block.as_ptr();
        let shared = pool.share(block, &pinned);
        let slice = shared.slice(8..16);
        drop(shared);
        assert!(pool.state.lock().free.is_empty(), "a slice still holds it");
        assert_eq!(pinned.load(Ordering::Relaxed), 64, "and it counts whole");
        drop(slice);
        assert_eq!(pinned.load(Ordering::Relaxed), 0);
        let again = pool.take();
        assert_eq!(again.as_ptr(), first, "the same memory again");
        assert!(again.is_empty());

        // At most `max_free` are kept, and none once the pool stops keeping.
        let blocks: Vec<Bytes> = (0..3).map(|_| pool.share(pool.take(), &pinned)).collect();
        drop(blocks);
        assert_eq!(pool.state.lock().free.len(), 2);
        pool.set_keep(false);
        assert!(pool.state.lock().free.is_empty());
        drop(pool.share(pool.take(), &pinned));
        assert!(pool.state.lock().free.is_empty());
    }

    #[test]
    fn the_write_pool_keeps_its_recent_peak_and_lets_it_go_when_idle_or_old() {
        let pool = BlockPool::new(
            64,
            Limit::RecentPeak {
                spare: 2,
                period: Duration::from_secs(1),
            },
        );
        pool.set_keep(true);
        let t0 = Instant::now();
        let free = |pool: &BlockPool| pool.state.lock().free.len();

        // Ten in use: half come back and all are kept, for the peak may come again.
        let mut blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        for block in blocks.drain(..5) {
            pool.give_back_at(block, t0);
        }
        assert_eq!(free(&pool), 5);
        blocks.extend((0..5).map(|_| pool.take()));
        assert_eq!(free(&pool), 0, "the peak again, all from the pool");

        // Once none is in use, only the spare ones stay (at once, outside a runtime).
        for block in blocks.drain(..) {
            pool.give_back_at(block, t0);
        }
        assert_eq!(free(&pool), 2);

        // A peak two periods old is forgotten: the pool keeps for what is in use lately.
        let mut blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        for block in blocks.drain(..5) {
            pool.give_back_at(block, t0);
        }
        let later = t0 + Duration::from_millis(1500);
        pool.give_back_at(blocks.pop().unwrap(), later);
        assert_eq!(free(&pool), 6, "the last period's peak still counts");
        let much_later = t0 + Duration::from_millis(3000);
        pool.give_back_at(blocks.pop().unwrap(), much_later);
        assert_eq!(
            free(&pool),
            4 - 3 + 2,
            "the peak since then (4) less those in use (3), and 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_runtime_an_idle_pool_lets_its_blocks_go_two_periods_later() {
        let period = Duration::from_secs(1);
        let pool = BlockPool::new(64, Limit::RecentPeak { spare: 2, period });
        pool.set_keep(true);
        let free = |pool: &BlockPool| pool.state.lock().free.len();

        // Every block back between two bursts: all kept for the next.
        let blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        for block in blocks {
            pool.give_back(block);
        }
        assert_eq!(free(&pool), 10);
        tokio::time::sleep(period).await;
        let blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        assert_eq!(free(&pool), 0, "the next burst found them");

        // A trim due while blocks are in use does nothing; a quiet pool keeps only the spare.
        tokio::time::sleep(period * 2).await;
        for block in blocks {
            pool.give_back(block);
        }
        assert_eq!(free(&pool), 10);
        tokio::time::sleep(period * 3).await;
        assert_eq!(free(&pool), 2);
    }
}
