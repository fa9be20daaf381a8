//! Blocks of memory that come back for reuse when the last `Bytes` sharing them is dropped.
//!
//! A busy stream link hands out its payloads as slices of what it read, so read memory lives
//! until the application has taken the last payload in it. Memory freed to the allocator at
//! that pace tends to be handed back to the kernel, and the next buffer's pages are then
//! faulted in again, which at gigabytes per second costs more than the read itself. A busy
//! link therefore reads into blocks from a small pool of its own, and a block rejoins the pool
//! when its last slice is dropped. The pool keeps blocks only while its owner says it is busy.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Free blocks of one capacity. A block is a `Vec` filled by copying or reading into its
/// spare capacity, so no block is ever zeroed.
#[derive(Debug)]
pub(crate) struct BlockPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// Whether returned blocks are kept.
    keep: AtomicBool,
    block_len: usize,
    max_free: usize,
}

impl BlockPool {
    /// A pool of blocks with room for `block_len` bytes, keeping at most `max_free` of them.
    pub(crate) fn new(block_len: usize, max_free: usize) -> Arc<Self> {
        Arc::new(BlockPool {
            free: Mutex::new(Vec::new()),
            keep: AtomicBool::new(false),
            block_len,
            max_free,
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
            self.free.lock().clear();
        }
    }

    /// An empty block with room for `block_len` bytes: a kept one, or a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.block_len))
    }

    /// Returns a block, whatever it holds.
    pub(crate) fn give_back(&self, mut block: Vec<u8>) {
        if block.capacity() == self.block_len && self.keeps() {
            let mut free = self.free.lock();
            if free.len() < self.max_free {
                block.clear();
                free.push(block);
            }
        }
    }

    /// Shares what `block` holds, which came from [`BlockPool::take`], as `Bytes`; the block
    /// comes back when the last slice of it is dropped. Its capacity counts in `pinned` until
    /// then.
    pub(crate) fn share(self: &Arc<Self>, block: Vec<u8>, pinned: &Arc<AtomicUsize>) -> Bytes {
        share(block, Some(self.clone()), pinned)
    }
}

/// Shares what `block` holds as `Bytes`, its capacity counted in `pinned` until the last slice
/// of it is dropped; then it goes back to `pool`, if it came from one.
pub(crate) fn share(
    block: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
    pinned: &Arc<AtomicUsize>,
) -> Bytes {
    pinned.fetch_add(block.capacity(), Ordering::Relaxed);
    Bytes::from_owner(Block {
        data: block,
        pool,
        pinned: pinned.clone(),
    })
}

/// A block shared by the `Bytes` sliced from it.
struct Block {
    data: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
    pinned: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.pinned
            .fetch_sub(self.data.capacity(), Ordering::Relaxed);
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
        let pool = BlockPool::new(64, 2);
        let pinned = Arc::new(AtomicUsize::new(0));
        pool.set_keep(true);
        let mut block = pool.take();
        block.extend_from_slice(&[7; 64]);
        let first = block.as_ptr();
        let shared = pool.share(block, &pinned);
        let slice = shared.slice(8..16);
        drop(shared);
        assert!(pool.free.lock().is_empty(), "a slice still holds it");
        assert_eq!(pinned.load(Ordering::Relaxed), 64, "and it counts whole");
        drop(slice);
        assert_eq!(pinned.load(Ordering::Relaxed), 0);
        let again = pool.take();
        assert_eq!(again.as_ptr(), first, "the same memory again");
        assert!(again.is_empty());

        // At most `max_free` are kept, and none once the pool stops keeping.
        let blocks: Vec<Bytes> = (0..3).map(|_| pool.share(pool.take(), &pinned)).collect();
        drop(blocks);
        assert_eq!(pool.free.lock().len(), 2);
        pool.set_keep(false);
        assert!(pool.free.lock().is_empty());
        drop(pool.share(pool.take(), &pinned));
        assert!(pool.free.lock().is_empty());
    }
}
