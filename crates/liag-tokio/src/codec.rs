//! The stream framing as a tokio-util codec, and boxed links of both kinds.

use bytes::{Bytes, BytesMut};
use futures::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

use liag_core::proto::frame::{FrameDecoder, FrameEncoder, FrameError, HEADER_LEN};
use liag_core::proto::message::MAX_HANDSHAKE_LEN;

/// How much a stream link buffers before it writes: frames are coalesced up to this size.
const WRITE_BUFFER: usize = 256 << 10;

/// liag's frame codec (spec §2) for `tokio_util::codec::Framed`.
///
/// It starts with the payload limit lowered to the largest handshake message, so an
/// unauthenticated peer cannot make it buffer 8 MiB; [`LinkCodec::open_up`] lifts it.
#[derive(Debug)]
pub struct LinkCodec {
    encoder: FrameEncoder,
    decoder: FrameDecoder,
}

impl Default for LinkCodec {
    fn default() -> Self {
        LinkCodec {
            encoder: FrameEncoder::new(),
            decoder: FrameDecoder::with_max_payload_len(MAX_HANDSHAKE_LEN),
        }
    }
}

impl LinkCodec {
    /// Allows full-size frames, once the handshake is done.
    pub fn open_up(&mut self) {
        self.decoder
            .set_max_payload_len(liag_core::proto::frame::MAX_PAYLOAD_LEN);
    }
}

fn frame_error(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Decoder for LinkCodec {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let packet = self.decoder.decode(src).map_err(frame_error)?;
        if packet.is_none() {
            // Reserve what the frame in progress needs; bounded by the checked limit.
            src.reserve(self.decoder.bytes_needed(src.len()));
        }
        Ok(packet)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        self.decoder.decode_eof(src).map_err(frame_error)
    }
}

impl Encoder<Bytes> for LinkCodec {
    type Error = io::Error;

    fn encode(&mut self, packet: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        dst.reserve(HEADER_LEN + packet.len());
        self.encoder.encode(&packet, dst).map_err(frame_error)
    }
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
}

/// A boxed link.
pub type BoxLink = Pin<Box<dyn PacketLink>>;

/// A stream transport (TCP, TLS, WebSocket stream, RFCOMM, a pipe) framed as a link.
pub struct StreamLink<S> {
    // The stream is boxed so the link is `Unpin` whatever `S` is.
    framed: Framed<Pin<Box<S>>, LinkCodec>,
}

impl<S> std::fmt::Debug for StreamLink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLink").finish_non_exhaustive()
    }
}

/// Frames a byte stream as a link.
pub fn stream_link<S>(io: S) -> BoxLink
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut framed = Framed::with_capacity(Box::pin(io), LinkCodec::default(), 64 << 10);
    framed.set_backpressure_boundary(WRITE_BUFFER);
    Box::pin(StreamLink { framed })
}

type Cx<'a, 'b> = &'a mut Context<'b>;

impl<S: AsyncRead + AsyncWrite> Stream for StreamLink<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().framed).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite> Sink<Bytes> for StreamLink<S> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().framed).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, packet: Bytes) -> io::Result<()> {
        Pin::new(&mut self.get_mut().framed).start_send(packet)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().framed).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: Cx<'_, '_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().framed).poll_close(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> PacketLink for StreamLink<S> {
    fn handshake_done(self: Pin<&mut Self>) {
        self.get_mut().framed.codec_mut().open_up();
    }
}
