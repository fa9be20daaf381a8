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
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
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
/// in use over the last one to two seconds, and a thread of its own lets the rest go once the
/// pool has gone quiet.
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

/// Whether a copy of `len` bytes goes into a block of `block_len`: only one that fills most of
/// it, so a pooled copy holds at most a few bytes more than it carries.
pub(crate) fn fills_block(len: usize, block_len: usize) -> bool {
    len >= block_len - block_len / 8 && len <= block_len
}

/// A copy of `data` as `Bytes`: in a block of `pool` if it fills most of one (see
/// [`fills_block`]), else in an allocation of its own.
pub(crate) fn copy(pool: &Arc<BlockPool>, data: &[u8]) -> Bytes {
    if fills_block(data.len(), pool.block_len) {
        pool.copy(data)
    } else {
        Bytes::copy_from_slice(data)
    }
}

/// Free blocks of one capacity. A block is a `Vec` filled by copying or reading into its
/// spare capacity, so no block is ever zeroed. The allocator is called, and freed blocks
/// dropped, outside the pool's lock.
#[derive(Debug)]
pub(crate) struct BlockPool {
    state: Mutex<State>,
    /// Wakes the trim thread of a [`Limit::RecentPeak`] pool.
    trim_wanted: Condvar,
    /// Whether the trim thread started, once it was first wanted.
    trimmer: OnceLock<bool>,
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
    /// more.
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
    /// The pool holds more than its spare blocks, and its trim thread is to look at it.
    trim_asked: bool,
}

impl State {
    /// Starts a new period if the current one is over at `now`.
    fn roll(&mut self, now: Instant, period: Duration) {
        let start = *self.period_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= period {
            // Every call that changes `in_use` rolls first, so a period without calls had
            // what is in use now at its peak.
            self.last_peak = if elapsed >= period * 2 {
                self.in_use
            } else {
                self.peak
            };
            self.peak = self.in_use;
            self.period_start = Some(now);
        }
    }

    /// How many free blocks may stay at `now`.
    fn limit(&mut self, limit: Limit, now: Instant) -> usize {
        match limit {
            Limit::Fixed(n) => n,
            Limit::RecentPeak { spare, period } => {
                self.roll(now, period);
                let peak = self.peak.max(self.last_peak);
                peak.saturating_sub(self.in_use).saturating_add(spare)
            }
        }
    }

    /// Takes the free blocks beyond `limit` out, to be dropped once the lock is let go.
    fn excess(&mut self, limit: usize) -> Vec<Vec<u8>> {
        if self.free.len() > limit {
            self.free.drain(limit..).collect()
        } else {
            Vec::new()
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
                trim_asked: false,
            }),
            trim_wanted: Condvar::new(),
            trimmer: OnceLock::new(),
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
            let freed = std::mem::take(&mut self.state.lock().free);
            drop(freed);
        }
    }

    /// An empty block with room for `block_len` bytes: a kept one, or a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Vec<u8> {
        let kept = {
            let mut state = self.state.lock();
            if let Limit::RecentPeak { period, .. } = self.limit {
                state.roll(now, period);
            }
            state.in_use += 1;
            state.peak = state.peak.max(state.in_use);
            state.free.pop()
        };
        kept.unwrap_or_else(|| Vec::with_capacity(self.block_len))
    }

    /// Returns a block, whatever it holds.
    pub(crate) fn give_back(self: &Arc<Self>, block: Vec<u8>) {
        self.give_back_at(block, Instant::now());
    }

    fn give_back_at(self: &Arc<Self>, mut block: Vec<u8>, now: Instant) {
        // Only blocks of the pool's size were taken from it.
        if block.capacity() != self.block_len {
            return;
        }
        let mut state = self.state.lock();
        state.in_use = state.in_use.saturating_sub(1);
        let limit = state.limit(self.limit, now);
        if !self.keeps() {
            return;
        }
        if state.free.len() < limit {
            block.clear();
            state.free.push(block);
        }
        // A shrinking limit lets kept blocks go too.
        let excess = state.excess(limit);
        let ask = match self.limit {
            Limit::RecentPeak { spare, .. } => state.free.len() > spare && !state.trim_asked,
            Limit::Fixed(_) => false,
        };
        state.trim_asked |= ask;
        drop(state);
        drop(excess);
        if ask {
            self.ask_trim();
        }
    }

    /// Has the pool's trim thread look at it: a pool that has gone quiet gets no more calls
    /// that would let its recent peak age, so the thread ages it, every period, until only
    /// the spare blocks are left. Should the thread not start, the pool keeps only those.
    fn ask_trim(self: &Arc<Self>) {
        let Limit::RecentPeak { spare, period } = self.limit else {
            return;
        };
        let started = *self.trimmer.get_or_init(|| {
            let pool = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("liag-pool-trim".into())
                .spawn(move || trim_while_alive(&pool, spare, period))
                .is_ok()
        });
        if started {
            self.trim_wanted.notify_one();
        } else {
            let excess = {
                let mut state = self.state.lock();
                state.trim_asked = false;
                state.excess(spare)
            };
            drop(excess);
        }
    }
}

/// The trim thread of a [`Limit::RecentPeak`] pool: while the pool holds more than `spare`
/// free blocks, it lets those beyond the pool's limit go every `period`; it ends with the pool.
fn trim_while_alive(pool: &Weak<BlockPool>, spare: usize, period: Duration) {
    while let Some(pool) = pool.upgrade() {
        let mut state = pool.state.lock();
        if !state.trim_asked {
            // Wakes now and then to see whether the pool is still there.
            pool.trim_wanted.wait_for(&mut state, period * 8);
            continue;
        }
        drop(state);
        std::thread::sleep(period);
        let excess = {
            let mut state = pool.state.lock();
            let limit = state.limit(pool.limit, Instant::now());
            let excess = state.excess(limit);
            state.trim_asked = state.free.len() > spare;
            excess
        };
        drop(excess);
    }
}

impl BlockPool {
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
    fn a_shared_pool_keeps_its_recent_peak_and_lets_the_rest_go() {
        // A period far longer than the test, so its trim thread never wakes meanwhile.
        let period = Duration::from_secs(3600);
        let pool = BlockPool::new(64, Limit::RecentPeak { spare: 2, period });
        pool.set_keep(true);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + period * u32::try_from(ms).unwrap() / 1000;
        let free = |pool: &BlockPool| pool.state.lock().free.len();
        let step = |pool: &BlockPool, now: Instant| {
            let mut state = pool.state.lock();
            let limit = state.limit(pool.limit, now);
            drop(state.excess(limit));
        };

        // Ten in use: half come back and all are kept, for the peak may come again.
        let mut blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take_at(t0)).collect();
        for block in blocks.drain(..5) {
            pool.give_back_at(block, t0);
        }
        assert_eq!(free(&pool), 5);
        blocks.extend((0..5).map(|_| pool.take_at(t0)));
        assert_eq!(free(&pool), 0, "the peak again, all from the pool");

        // All back between two bursts: all kept for the next.
        for block in blocks.drain(..) {
            pool.give_back_at(block, t0);
        }
        assert_eq!(free(&pool), 10);
        assert!(pool.state.lock().trim_asked, "more than the spare are kept");

        // The peak counts for the period after its own, then only the spare stay.
        step(&pool, at(1500));
        assert_eq!(free(&pool), 10, "the last period's peak still counts");
        step(&pool, at(2500));
        assert_eq!(free(&pool), 2);

        // A peak ages even while a block stays in use, and after a gap of several periods.
        let mut blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take_at(at(3000))).collect();
        for block in blocks.drain(1..) {
            pool.give_back_at(block, at(3000));
        }
        assert_eq!(free(&pool), 9, "the peak of 10, one still in use");
        step(&pool, at(9000));
        assert_eq!(
            free(&pool),
            2,
            "one in use throughout the gap: its peak is 1"
        );

        // A block of another size was never taken from the pool: it changes no count.
        pool.give_back_at(Vec::with_capacity(128), at(9000));
        assert_eq!(pool.state.lock().in_use, 1);
    }

    #[test]
    fn a_quiet_shared_pool_is_trimmed_by_its_thread() {
        let period = Duration::from_millis(5);
        let pool = BlockPool::new(64, Limit::RecentPeak { spare: 2, period });
        pool.set_keep(true);
        let blocks: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        for block in blocks {
            pool.give_back(block);
        }
        // Bounded wait: the thread needs two or three periods, on a busy machine maybe more.
        let mut left = 0;
        for _ in 0..1000 {
            left = pool.state.lock().free.len();
            if left == 2 {
                break;
            }
            std::thread::sleep(period);
        }
        assert_eq!(left, 2, "only the spare blocks stay");
        assert!(!pool.state.lock().trim_asked);
    }

    #[test]
    fn only_a_copy_that_fills_most_of_a_block_is_pooled() {
        assert!(!fills_block(PACKET_BLOCK / 2, PACKET_BLOCK));
        assert!(!fills_block(PACKET_BLOCK * 7 / 8 - 1, PACKET_BLOCK));
        assert!(fills_block(PACKET_BLOCK * 7 / 8, PACKET_BLOCK));
        assert!(fills_block(32 << 10, PACKET_BLOCK), "a default payload");
        assert!(!fills_block(PACKET_BLOCK + 1, PACKET_BLOCK));
    }
}
