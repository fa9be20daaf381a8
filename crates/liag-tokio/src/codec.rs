//! Stream links: the framing of spec §2 over any byte stream, and boxed links of both kinds.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Sink, Stream};
use std::collections::VecDeque;
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};

use liag_core::MemoryBudget;
use liag_core::proto::frame::{FrameDecoder, FrameEncoder, FrameError, HEADER_LEN};
use liag_core::proto::message::MAX_HANDSHAKE_LEN;

use crate::read_buf::{BLOCK_LEN, ReadBuffer};

/// How much a stream link queues before `poll_ready` makes it write.
const WRITE_BUFFER: usize = 256 << 10;

/// A stream link's framing (spec §2): its encoder and decoder.
///
/// It starts with the payload limit lowered to the largest handshake message, so an
/// unauthenticated peer cannot make it buffer 8 MiB; [`Framing::open_up`] lifts it.
#[derive(Debug)]
struct Framing {
    encoder: FrameEncoder,
    decoder: FrameDecoder,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            encoder: FrameEncoder::new(),
            decoder: FrameDecoder::with_max_payload_len(MAX_HANDSHAKE_LEN),
        }
    }
}

impl Framing {
    /// Allows full-size frames, once the handshake is done.
    fn open_up(&mut self) {
        self.decoder
            .set_max_payload_len(liag_core::proto::frame::MAX_PAYLOAD_LEN);
    }
}

/// A framing error as an I/O error of kind `InvalidData`; the driver takes the [`FrameError`]
/// back out (`get_ref`), so the link leaves with `LinkError::Frame`.
fn frame_error(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// A link as the driver sees it: packets in, packets out.
///
/// Stream transports become links through [`stream_link`]; packet transports implement this
/// directly (any `Stream<Item = io::Result<Bytes>> + Sink<Bytes, Error = io::Error>`).
pub trait PacketLink:
    Stream<Item = io::Result<Bytes>> + Sink<Bytes, Error = io::Error> + Send + 'static
{
    /// Called once the handshake is done; a framed stream lifts its frame-size limit.
    fn handshake_done(self: Pin<&mut Self>) {}

    /// Counts what the link holds of a frame in progress, beyond [`FREE_PARTIAL`], against
    /// `budget` (a server's memory budget); when it does not fit, the link fails. By default
    /// nothing is counted.
    fn charge_to(self: Pin<&mut Self>, budget: MemoryBudget) {
        let _ = budget;
    }
}

/// What a stream link may hold of a frame in progress without charging a memory budget.
pub const FREE_PARTIAL: usize = 64 << 10;

/// A boxed link.
pub type BoxLink = Pin<Box<dyn PacketLink>>;

/// A stream transport (TCP, TLS, WebSocket stream, RFCOMM, a pipe) framed as a link.
///
/// Writes are vectored: a frame header goes out beside its payload, which is never copied;
/// small packets and headers are gathered in one staging buffer. Reads fill a buffer and hand
/// out payloads as slices of it; the piece read at a time grows while reads fill it and
/// shrinks while they don't, so a busy link reads in large pieces and an idle one holds
/// little memory.
pub struct StreamLink<S> {
    // The stream is boxed so the link is `Unpin` whatever `S` is.
    io: Pin<Box<S>>,
    codec: Framing,
    read: ReadBuffer,
    /// How much to make room for before the next read.
    read_chunk: usize,
    eof: bool,
    /// Buffers waiting to be written, in order.
    write_queue: VecDeque<Bytes>,
    /// Headers and small packets gathered since the last queued buffer.
    staging: BytesMut,
    /// Bytes in `write_queue` and `staging`.
    queued: usize,
    /// The budget a frame in progress is charged to, and how much is charged now.
    charge: Option<(MemoryBudget, usize)>,
}

impl<S> std::fmt::Debug for StreamLink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLink").finish_non_exhaustive()
    }
}

/// Least and most room made for one read.
const READ_MIN: usize = 4 << 10;
const READ_MAX: usize = BLOCK_LEN;
/// Packets up to this size are copied into the staging buffer rather than queued on their own.
const SMALL_PACKET: usize = 2048;
/// Most buffers handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Frames a byte stream as a link.
pub fn stream_link<S>(io: S) -> BoxLink
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    Box::pin(StreamLink {
        io: Box::pin(io),
        codec: Framing::default(),
        read: ReadBuffer::default(),
        read_chunk: READ_MIN,
        eof: false,
        write_queue: VecDeque::new(),
        staging: BytesMut::new(),
        queued: 0,
        charge: None,
    })
}

type Cx<'a, 'b> = &'a mut Context<'b>;

impl<S> StreamLink<S> {
    /// Charges the budget for what is held of the frame in progress beyond [`FREE_PARTIAL`],
    /// or gives back what is no longer held.
    fn settle_charge(&mut self) -> io::Result<()> {
        let Some((budget, charged)) = &mut self.charge else {
            return Ok(());
        };
        let held = self.read.held().saturating_sub(FREE_PARTIAL);
        if held > *charged {
            if !budget.try_charge(held - *charged) {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "a frame in progress does not fit in the server's memory budget",
                ));
            }
        } else {
            budget.release(*charged - held);
        }
        *charged = held;
        Ok(())
    }
}

impl<S> Drop for StreamLink<S> {
    fn drop(&mut self) {
        if let Some((budget, charged)) = &self.charge {
            budget.release(*charged);
        }
    }
}

impl<S: AsyncRead + AsyncWrite> StreamLink<S> {
    fn push_staging(&mut self) {
        if !self.staging.is_empty() {
            self.write_queue.push_back(self.staging.split().freeze());
        }
    }

    fn poll_write_queue(&mut self, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        self.push_staging();
        while !self.write_queue.is_empty() {
            // On the stack: a vectored write costs no allocation.
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, buf) in slices.iter_mut().zip(&self.write_queue) {
                *slot = IoSlice::new(buf);
                count += 1;
            }
            let mut written =
                std::task::ready!(self.io.as_mut().poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.queued -= written;
            while written > 0 {
                let Some(front) = self.write_queue.front_mut() else {
                    break;
                };
                if front.len() <= written {
                    written -= front.len();
                    self.write_queue.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite> Stream for StreamLink<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let decoded = this
                .codec
                .decoder
                .decode(&mut this.read.unread)
                .map_err(frame_error)?;
            if let Some(packet) = decoded {
                return Poll::Ready(Some(Ok(this.read.hand_out(packet))));
            }
            if this.eof {
                let last = this.codec.decoder.decode_eof(&mut this.read.unread);
                return Poll::Ready(last.map_err(frame_error).transpose());
            }
            // Every whole frame is out: what is held now is the frame in progress alone.
            this.settle_charge()?;
            // A frame in progress gets what it needs (bounded by the decoder's checked limit).
            let need = this.codec.decoder.bytes_needed(this.read.unread.len());
            match this
                .read
                .poll_read(this.io.as_mut(), cx, need, this.read_chunk)
            {
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(n)) => {
                    let chunk = if n >= this.read_chunk {
                        (this.read_chunk * 2).min(READ_MAX)
                    } else if n < this.read_chunk / 4 {
                        (this.read_chunk / 2).max(READ_MIN)
                    } else {
                        this.read_chunk
                    };
                    // Busy from the first whole-block read until reads have shrunk all the way.
                    if chunk != this.read_chunk && (chunk == READ_MAX || chunk == READ_MIN) {
                        this.read.set_busy(chunk == READ_MAX);
                    }
                    this.read_chunk = chunk;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite> Sink<Bytes> for StreamLink<S> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.queued >= WRITE_BUFFER {
            std::task::ready!(this.poll_write_queue(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, packet: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        let header = this.codec.encoder.header(&packet).map_err(frame_error)?;
        this.staging.extend_from_slice(&header);
        this.queued += HEADER_LEN + packet.len();
        if packet.len() <= SMALL_PACKET {
            this.staging.extend_from_slice(&packet);
        } else {
            this.push_staging();
            this.write_queue.push_back(packet);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_write_queue(cx))?;
        this.io.as_mut().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_write_queue(cx))?;
        this.io.as_mut().poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> PacketLink for StreamLink<S> {
    fn handshake_done(self: Pin<&mut Self>) {
        self.get_mut().codec.open_up();
    }

    fn charge_to(self: Pin<&mut Self>, budget: MemoryBudget) {
        let this = self.get_mut();
        if let Some((old, charged)) = this.charge.take() {
            old.release(charged);
        }
        this.charge = Some((budget, 0));
    }
}
