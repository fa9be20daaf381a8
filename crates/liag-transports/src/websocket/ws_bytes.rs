//! A WebSocket as a byte stream (spec §11): each write is one Binary message, reads concatenate
//! Binary payloads, Text is ignored, Close or the end of the socket is the end of the stream.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Sink, Stream};
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::gate::Meter;

/// Turns a WebSocket (any `Stream` and `Sink` of tungstenite messages, such as
/// `tokio_tungstenite::WebSocketStream`) into an `AsyncRead + AsyncWrite` byte stream, which
/// [`liag_tokio::stream_link`] frames as a link.
///
/// A WebSocket of another library (axum's, say) fits after mapping its messages to
/// tungstenite's; `examples/websocket_axum.rs` shows how.
pub struct WsBytes<S> {
    ws: S,
    /// What is left of the last Binary message received.
    pending: Bytes,
    eof: bool,
    /// An acceptor's meter of what is held below the framing.
    meter: Option<Arc<Meter>>,
}

impl<S> std::fmt::Debug for WsBytes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsBytes")
            .field("pending", &self.pending.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<S> WsBytes<S> {
    /// Wraps a WebSocket whose handshake is done.
    pub fn new(ws: S) -> Self {
        WsBytes {
            ws,
            pending: Bytes::new(),
            eof: false,
            meter: None,
        }
    }

    /// An acceptor's WebSocket, telling `meter` what it keeps.
    pub(crate) fn metered(ws: S, meter: Arc<Meter>) -> Self {
        WsBytes {
            meter: Some(meter),
            ..WsBytes::new(ws)
        }
    }

    /// The WebSocket back.
    pub fn into_inner(self) -> S {
        self.ws
    }
}

/// A WebSocket error as an I/O error that says what went wrong.
fn ws_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => io::Error::new(e.kind(), format!("websocket: {e}")),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        other => io::Error::other(format!("websocket: {other}")),
    }
}

impl<S> AsyncRead for WsBytes<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pending.is_empty() {
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    if let Some(meter) = &this.meter {
                        meter.message_out(data.len());
                    }
                    this.pending = data;
                }
                // Text is ignored; Ping and Pong are answered by the library.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {
                    if let Some(meter) = &this.meter {
                        meter.message_out(this.pending.len());
                    }
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => this.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(ws_error(e))),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        if let Some(meter) = &this.meter {
            meter.taken(this.pending.len());
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> WsBytes<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    fn send(&mut self, cx: &mut Context<'_>, data: Bytes) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
        let len = data.len();
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(data))
            .map_err(ws_error)?;
        Poll::Ready(Ok(len))
    }
}

impl<S> AsyncWrite for WsBytes<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let buf = &buf[..buf.len().min(super::MAX_SENT_MESSAGE)];
        self.get_mut().send(cx, Bytes::copy_from_slice(buf))
    }

    /// The buffers go out as one Binary message, of at most [`super::MAX_SENT_MESSAGE`]
    /// bytes; what does not fit is left for the next write.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        // Wait for room before copying, so a pending write costs no copy.
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(ws_error)?;
        let len = len.min(super::MAX_SENT_MESSAGE);
        let mut data = BytesMut::with_capacity(len);
        for b in bufs {
            let room = len - data.len();
            if room == 0 {
                break;
            }
            data.extend_from_slice(&b[..b.len().min(room)]);
        }
        this.send(cx, data.freeze())
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(ws_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(ws_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A WebSocket stand-in: messages in from a channel, messages out to another.
    struct Fake {
        rx: mpsc::UnboundedReceiver<Result<Message, WsError>>,
        tx: mpsc::UnboundedSender<Message>,
    }

    impl Stream for Fake {
        type Item = Result<Message, WsError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.rx.poll_next_unpin(cx)
        }
    }

    impl Sink<Message> for Fake {
        type Error = WsError;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, m: Message) -> Result<(), WsError> {
            self.tx
                .unbounded_send(m)
                .map_err(|_| WsError::AlreadyClosed)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            self.tx.close_channel();
            Poll::Ready(Ok(()))
        }
    }

    fn fake() -> (
        WsBytes<Fake>,
        mpsc::UnboundedSender<Result<Message, WsError>>,
        mpsc::UnboundedReceiver<Message>,
    ) {
        let (in_tx, rx) = mpsc::unbounded();
        let (tx, out_rx) = mpsc::unbounded();
        (WsBytes::new(Fake { rx, tx }), in_tx, out_rx)
    }

    #[tokio::test]
    async fn reads_concatenate_binary_and_skip_text() {
        let (mut io, mut input, _out) = fake();
        for m in [
            Message::Binary(Bytes::from_static(b"ab")),
            Message::Text("ignored".into()),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Binary(Bytes::new()),
            Message::Binary(Bytes::from_static(b"cde")),
            Message::Close(None),
            Message::Binary(Bytes::from_static(b"after close")),
        ] {
            input.send(Ok(m)).await.unwrap();
        }
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"abcde");
    }

    #[tokio::test]
    async fn end_of_socket_is_end_of_stream_and_errors_say_websocket() {
        let (mut io, input, _out) = fake();
        drop(input);
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert!(all.is_empty());

        let (mut io, mut input, _out) = fake();
        input
            .send(Err(WsError::Io(io::ErrorKind::ConnectionReset.into())))
            .await
            .unwrap();
        let e = io.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(e.to_string().contains("websocket"), "{e}");
    }

    #[tokio::test]
    async fn each_write_is_one_binary_message() {
        let (mut io, _input, out) = fake();
        io.write_all(b"hello").await.unwrap();
        let parts = [IoSlice::new(b"head"), IoSlice::new(b"er+body")];
        let n = io.write_vectored(&parts).await.unwrap();
        assert_eq!(n, 11);
        io.shutdown().await.unwrap();
        let got: Vec<Message> = out.collect().await;
        assert_eq!(
            got,
            [
                Message::Binary(Bytes::from_static(b"hello")),
                Message::Binary(Bytes::from_static(b"header+body")),
            ]
        );
    }
}
