//! A stream link's read buffer: what was read and not yet decoded, and where the next read
//! goes.
//!
//! Payloads are handed out as slices of what was read, so read memory lives until the
//! application has taken the last payload in it. A busy link reads into blocks of a pool of
//! its own (see [`crate::pool`]); a quiet one reads into small buffers of the size it asks for.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use crate::pool::BlockPool;

/// Size of a pooled block: the most a busy link reads at a time.
pub(crate) const BLOCK_LEN: usize = 128 << 10;
/// Free blocks a link's pool keeps at most (8 MiB).
const POOL_KEEP: usize = 64;

/// Bytes read from a stream and not yet decoded, and the memory the next read goes into.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// Read and not yet taken; a slice of the last block read into.
    pub(crate) unread: Bytes,
    /// The block being filled, holding a copy of `unread` in its first `filled` bytes.
    next: Option<(Vec<u8>, usize)>,
    /// Whether `next` came from (and goes back to) the pool.
    next_pooled: bool,
    pool: Arc<BlockPool>,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer {
            unread: Bytes::new(),
            next: None,
            next_pooled: false,
            pool: BlockPool::new(BLOCK_LEN, POOL_KEEP),
        }
    }
}

impl ReadBuffer {
    /// Reads once from `io` into room for `chunk` bytes, and at least `need`, after what is
    /// unread; the bytes read join [`ReadBuffer::unread`]. Returns how many were read, 0 at
    /// the end of the stream.
    pub(crate) fn poll_read<S: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
        need: usize,
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        if self.unread.is_empty() {
            // An empty slice would still hold its block.
            self.unread = Bytes::new();
        }
        let (mut block, filled) = match self.next.take() {
            // A read that was pending goes on into the same block.
            Some((block, filled))
                if filled == self.unread.len() && block.len() >= filled + need =>
            {
                (block, filled)
            }
            stale => {
                if let Some((old, _)) = stale {
                    self.give_back(old);
                }
                self.fresh_block(need, chunk)
            }
        };
        let mut buf = ReadBuf::new(&mut block[filled..]);
        let read = io.poll_read(cx, &mut buf);
        let n = buf.filled().len();
        match read {
            Poll::Ready(Ok(())) if n > 0 => {
                let data = if self.next_pooled {
                    self.pool.share(block)
                } else {
                    Bytes::from(block)
                };
                self.unread = data.slice(..filled + n);
                Poll::Ready(Ok(n))
            }
            other => {
                self.next = Some((block, filled));
                other.map_ok(|()| 0)
            }
        }
    }

    /// Reads into pooled blocks while `busy`, and frees the pool's blocks once not.
    pub(crate) fn set_busy(&mut self, busy: bool) {
        self.pool.set_keep(busy);
    }

    /// A block with `unread` copied to its front: a pooled one while the link is busy and the
    /// frame in progress fits, else one of the size asked for.
    fn fresh_block(&mut self, need: usize, chunk: usize) -> (Vec<u8>, usize) {
        let filled = self.unread.len();
        self.next_pooled = self.pool.keeps() && filled + need <= BLOCK_LEN;
        let mut block = if self.next_pooled {
            self.pool.take()
        } else {
            vec![0; filled + need.max(chunk)]
        };
        block[..filled].copy_from_slice(&self.unread);
        (block, filled)
    }

    /// Returns an unused block to the pool it came from.
    fn give_back(&self, block: Vec<u8>) {
        if self.next_pooled {
            self.pool.give_back(block);
        }
    }
}
