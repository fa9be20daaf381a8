//! [`ResetOnDrop`]: a link's TCP stream that resets its connection when dropped before a clean
//! shutdown, so that a failed link's unsent bytes do not keep its path busy.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that, dropped without a completed `poll_shutdown`, closes with `SO_LINGER` 0:
/// the kernel sends a reset and discards its send buffer instead of transmitting it first.
///
/// liag closes a link's transport cleanly when the link ends cleanly (Goodbye, the peer's
/// end, the connection's end, a refusal). It drops it unclosed when the link failed (see
/// `liag_tokio`'s driver: a path that slowed to a crawl or went silent, a peer that broke the
/// protocol), when a handshake times out or a socket is turned away before it, and when a
/// clean close cannot flush within its grace time. The data in a failed link's send buffer
/// is queued again for the other links, and transmitting it anyway would hold the path for
/// seconds on a slow one, starving a new link opened on the same path.
#[derive(Debug)]
pub(crate) struct ResetOnDrop {
    stream: TcpStream,
    shut_down: bool,
}

impl ResetOnDrop {
    pub(crate) fn new(stream: TcpStream) -> Self {
        ResetOnDrop {
            stream,
            shut_down: false,
        }
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if !self.shut_down {
            // Best effort: a socket that cannot take the option closes as usual.
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
        self.shut_down |= result.is_ok();
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (ResetOnDrop, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (ResetOnDrop::new(client.unwrap()), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn dropped_without_shutdown_the_peer_sees_a_reset() {
        let (mut link, mut peer) = pair().await;
        link.write_all(b"abc").await.unwrap();
        drop(link);
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        let end = loop {
            match peer.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e.kind()),
            }
        };
        assert_eq!(end, Err(io::ErrorKind::ConnectionReset), "read {got:?}");
    }

    #[tokio::test]
    async fn shut_down_first_the_peer_reads_everything_and_the_end() {
        let (mut link, mut peer) = pair().await;
        link.write_all(b"abc").await.unwrap();
        link.shutdown().await.unwrap();
        drop(link);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abc");
    }
}
