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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::AsyncRead;

use crate::pool::{BlockPool, Limit};

/// Size of a pooled block: the most a busy link reads at a time.
pub(crate) const BLOCK_LEN: usize = 128 << 10;
/// A pooled block holding less than this after a read is copied out rather than shared.
const SHARE_AT: usize = BLOCK_LEN / 2;
/// Free blocks a link's pool keeps at most (1 MiB).
const POOL_KEEP: usize = 8;
/// Most read memory a link's handed-out packets may keep alive. A packet is a slice of what was
/// read, so one small payload held out of order keeps its whole block alive while the receive
/// buffer counts only the payload: a peer sending one byte per block could pin gigabytes.
/// Beyond this much, packets are handed out as copies, and a copy holds at most an eighth more
/// than itself (see [`crate::pool::fills_block`]).
pub(crate) const MAX_PINNED: usize = 8 << 20;

/// Bytes read from a stream and not yet decoded, and the memory the next read goes into.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// Read and not yet taken; a slice of the last block read into.
    pub(crate) unread: Bytes,
    /// The block the next read goes into: that of a pending read, holding a copy of `unread`,
    /// or a pooled one whose last read was copied out.
    next: Option<Vec<u8>>,
    pool: Arc<BlockPool>,
    /// Capacity of the read memory shared out and still held by some slice.
    pinned: Arc<AtomicUsize>,
    /// While a frame larger than a pooled block arrives: where it ends in `next`, which then
    /// holds `unread` and everything read after it. Nothing can be decoded before the frame
    /// is whole, so the block is filled in place and shared out once, not copied anew for
    /// every read.
    frame_end: Option<usize>,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer {
            unread: Bytes::new(),
            next: None,
            pool: BlockPool::new(BLOCK_LEN, Limit::Fixed(POOL_KEEP)),
            pinned: Arc::new(AtomicUsize::new(0)),
            frame_end: None,
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
        let mut block = match self.next.take() {
            // A big frame still arriving: its block goes on filling.
            Some(block) if self.frame_end.is_some() => block,
            // The block of a pending or copied-out read serves again. `unread` only shrinks from
            // the front meanwhile, so a block of its length still holds a copy of it.
            Some(mut block) if block.capacity() >= self.unread.len() + need => {
                if block.len() != self.unread.len() {
                    block.clear();
                    block.extend_from_slice(&self.unread);
                }
                block
            }
            stale => {
                if let Some(old) = stale {
                    self.pool.give_back(old);
                }
                let block = self.fresh_block(need, chunk);
                if need > BLOCK_LEN {
                    self.frame_end = Some(self.unread.len() + need);
                }
                block
            }
        };
        let filled = block.len();
        // Into the block's spare capacity: nothing is zeroed first.
        match tokio_util::io::poll_read_buf(io, cx, &mut block) {
            Poll::Ready(Ok(n)) if n > 0 => {
                debug_assert_eq!(block.len(), filled + n);
                if self.frame_end.is_some_and(|end| block.len() < end) {
                    // The block holds all that is unread now; the old slice may go.
                    self.unread = Bytes::new();
                    self.next = Some(block);
                    return Poll::Ready(Ok(n));
                }
                self.frame_end = None;
                // A block of the pool's size is the pool's (it takes back only those).
                self.unread = if block.capacity() != BLOCK_LEN {
                    crate::pool::share(block, None, Some(&self.pinned))
                } else if block.len() >= SHARE_AT {
                    self.pool.share(block, &self.pinned)
                } else {
                    // Too little to tie up a whole block: copied out, the block stays ours.
                    let copy = Bytes::copy_from_slice(&block);
                    block.clear();
                    self.next = Some(block);
                    copy
                };
                Poll::Ready(Ok(n))
            }
            other => {
                block.truncate(filled);
                self.next = Some(block);
                other
            }
        }
    }

    /// Bytes read and not yet taken, with those of a big frame still arriving.
    pub(crate) fn held(&self) -> usize {
        match (&self.next, self.frame_end) {
            (Some(block), Some(_)) => block.len(),
            _ => self.unread.len(),
        }
    }

    /// A decoded packet as it leaves the link: the slice of the read memory it is, or, while
    /// the link's packets already keep more than [`MAX_PINNED`] of that memory alive, a copy.
    pub(crate) fn hand_out(&self, packet: Bytes) -> Bytes {
        if self.pinned.load(Ordering::Relaxed) > MAX_PINNED {
            crate::pool::copy(crate::pool::packet_blocks(), &packet)
        } else {
            packet
        }
    }

    /// Reads into pooled blocks while `busy`, and frees the pool's blocks once not.
    pub(crate) fn set_busy(&mut self, busy: bool) {
        self.pool.set_keep(busy);
    }

    /// A block with `unread` copied to its front: a pooled one while the link is busy and the
    /// frame in progress fits, else one of the size asked for.
    fn fresh_block(&mut self, need: usize, chunk: usize) -> Vec<u8> {
        let filled = self.unread.len();
        let mut block = if self.pool.keeps() && filled + need <= BLOCK_LEN {
            self.pool.take()
        } else {
            Vec::with_capacity(filled + need.max(chunk))
        };
        block.extend_from_slice(&self.unread);
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
    use tokio::io::ReadBuf;

    /// Hands out `data` in pieces of the sizes given in turn, with a `Pending` before each.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
        ready: bool,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !std::mem::replace(&mut self.ready, false) {
                self.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let size = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = size.min(self.data.len() - self.at).min(buf.remaining());
            buf.put_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Reads `io` to its end through `read`, handing each decoded packet to `each` (with the
    /// read buffer, to look at) and calling `before_read` before every read.
    fn read_all(
        read: &mut ReadBuffer,
        io: &mut Pieces,
        mut before_read: impl FnMut(&mut ReadBuffer, usize),
        mut each: impl FnMut(&ReadBuffer, Bytes),
    ) -> FrameDecoder {
        let mut decoder = FrameDecoder::new();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        for round in 0..100_000 {
            if let Some(p) = decoder.decode(&mut read.unread).unwrap() {
                each(read, p);
                continue;
            }
            before_read(read, round);
            let need = decoder.bytes_needed(read.unread.len());
            match read.poll_read(Pin::new(&mut *io), &mut cx, need, 4096) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(Ok(_)) | Poll::Pending => {}
                Poll::Ready(Err(e)) => panic!("{e}"),
            }
        }
        decoder
    }

    /// `payloads` framed, handed out in pieces of `sizes` in turn.
    fn framed(payloads: &[Vec<u8>], sizes: Vec<usize>) -> Pieces {
        let mut wire = bytes::BytesMut::new();
        let mut encoder = FrameEncoder::new();
        for p in payloads {
            encoder.encode(p, &mut wire).unwrap();
        }
        Pieces {
            data: wire.to_vec(),
            at: 0,
            sizes,
            turn: 0,
            ready: false,
        }
    }

    #[test]
    fn frames_come_through_whole_however_the_stream_is_cut() {
        let payloads: Vec<Vec<u8>> = (0..400u32)
            .map(|i| vec![i as u8; (i as usize * 7919) % 40_000])
            .collect();
        // Whole blocks (shared), small reads (copied out of a pooled block) and odd cuts.
        let mut io = framed(
            &payloads,
            vec![BLOCK_LEN, 10, 70_000, 3, BLOCK_LEN, 40_000, 1],
        );
        let mut read = ReadBuffer::default();
        let mut got = Vec::new();
        // Busy for a while, then not, then busy again: both kinds of block.
        let busy = |read: &mut ReadBuffer, round: usize| read.set_busy(round % 3000 < 2000);
        let mut decoder = read_all(&mut read, &mut io, busy, |_, p| got.push(p));
        assert_eq!(got.len(), payloads.len());
        assert!(got.iter().zip(&payloads).all(|(a, b)| a[..] == b[..]));
        assert_eq!(decoder.decode_eof(&mut read.unread), Ok(None));
    }

    #[test]
    fn a_big_frame_fills_one_block_in_place() {
        // Frames of several blocks' size, between small ones, cut into small reads.
        let payloads: Vec<Vec<u8>> = [100, 3 << 20, 7, 1 << 20, (8 << 20) - 5, 60_000]
            .iter()
            .enumerate()
            .map(|(i, &len)| (0..len).map(|j| (i * 31 + j * 7) as u8).collect())
            .collect();
        let mut io = framed(&payloads, vec![65_536, 1, 40_000, 16_384]);
        let mut read = ReadBuffer::default();
        let mut got = Vec::new();
        let mut most_held = 0;
        let mut decoder = read_all(
            &mut read,
            &mut io,
            |read, _| most_held = most_held.max(read.held()),
            |_, p| got.push(p),
        );
        assert_eq!(got.len(), payloads.len());
        assert!(got.iter().zip(&payloads).all(|(a, b)| a[..] == b[..]));
        assert_eq!(decoder.decode_eof(&mut read.unread), Ok(None));
        // What is held of a frame in progress is what has come of it.
        assert!(most_held < 8 << 20, "{most_held}");
    }

    #[test]
    fn small_payloads_held_out_of_order_pin_a_bounded_amount() {
        // A peer's pattern: one tiny payload per block, each kept by the receiver (held out of
        // order, say), while the big ones around it are consumed.
        let mut wire = bytes::BytesMut::new();
        let mut encoder = FrameEncoder::new();
        for i in 0..400u32 {
            encoder.encode(&[i as u8], &mut wire).unwrap();
            encoder.encode(&vec![0u8; 120_000], &mut wire).unwrap();
        }
        let mut io = Pieces {
            data: wire.to_vec(),
            at: 0,
            sizes: vec![BLOCK_LEN],
            turn: 0,
            ready: false,
        };
        let mut read = ReadBuffer::default();
        read.set_busy(true);
        let mut held = Vec::new();
        let mut most = 0;
        read_all(
            &mut read,
            &mut io,
            |_, _| {},
            |read, p| {
                // As the link hands its packets out.
                let p = read.hand_out(p);
                if p.len() == 1 {
                    held.push(p);
                }
                most = most.max(read.pinned.load(Ordering::Relaxed));
            },
        );
        assert_eq!(held.len(), 400);
        assert!(held.iter().enumerate().all(|(i, p)| p[0] == i as u8));
        // Without the bound, 400 blocks of 128 KiB (50 MiB) stay pinned. With it, the counter
        // is real memory: the held copies keep no block alive.
        assert!(most <= MAX_PINNED + 2 * BLOCK_LEN, "pinned {most}");
        let after = read.pinned.load(Ordering::Relaxed);
        assert!(after <= MAX_PINNED + BLOCK_LEN, "still pinned {after}");
        drop(held);
        drop(read);
    }
}
