//! The link lifecycle as the driver runs it, in tokio's paused time: every transport failure
//! reaches the core with its cause (a framing error as such, an I/O error with its kind), a
//! link whose transport takes nothing is failed, the driver never sleeps
//! on work it already has, a closed connection takes no links, and the end is known at once.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use futures::SinkExt;
use liag_core::proto::frame::FrameHeader;
use liag_core::{ConnectionError, Direction, LinkError, LinkId, LinkInfo};
use liag_tokio::UserData;
use liag_tokio::{
    Connection, Control, EndpointConfig, FrameError, LinkEvent, Outgoing, Server, connect,
    stream_link,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// What a [`Faulty`] pipe does with writes.
const WORKS: u8 = 0;
/// Writes fail with a broken pipe.
const FAILS: u8 = 1;
/// Writes never complete, as on a socket whose peer stopped reading.
const BLOCKS: u8 = 2;

/// One end of a pipe whose writes can be made to fail or block, while reads go on; `dropped`
/// is set when the transport is gone.
struct Faulty {
    io: DuplexStream,
    mode: Arc<AtomicU8>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::Relaxed);
    }
}

impl Faulty {
    fn new(io: DuplexStream) -> (Faulty, Arc<AtomicU8>, Arc<AtomicBool>) {
        let (mode, dropped) = (
            Arc::new(AtomicU8::new(WORKS)),
            Arc::new(AtomicBool::new(false)),
        );
        let faulty = Faulty {
            io,
            mode: mode.clone(),
            dropped: dropped.clone(),
        };
        (faulty, mode, dropped)
    }
}

impl AsyncRead for Faulty {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Faulty {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.mode.load(Ordering::Relaxed) {
            FAILS => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            BLOCKS => Poll::Pending,
            _ => Pin::new(&mut self.io).poll_write(cx, data),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.mode.load(Ordering::Relaxed) {
            FAILS => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            BLOCKS => Poll::Pending,
            _ => Pin::new(&mut self.io).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A client and an accepted server connection over one pipe whose client end is [`Faulty`],
/// and the client's handle for more links (while it lives, a client that loses its links
/// waits for new ones).
async fn pair() -> (
    Connection,
    Connection,
    Control,
    Arc<AtomicU8>,
    Arc<AtomicBool>,
    Outgoing,
) {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let (client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(64 << 10);
    let (a, mode, dropped) = Faulty::new(a);
    server.add_link(b, "pipe", UserData::empty());
    let adding = outgoing.clone();
    tokio::spawn(async move { adding.add_link(a, "pipe", UserData::empty()).await });
    let accepted = listener.next().await.unwrap().accept();
    let control = outgoing.control();
    while control.links().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (client, accepted, control, mode, dropped, outgoing)
}

/// Waits up to `limit` of virtual time for `flag`.
async fn set_within(flag: &AtomicBool, limit: Duration) -> bool {
    let start = tokio::time::Instant::now();
    while !flag.load(Ordering::Relaxed) && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flag.load(Ordering::Relaxed)
}

/// Waits up to `limit` of virtual time for a link to be removed; returns which and why.
async fn removed(
    events: &mut tokio::sync::broadcast::Receiver<LinkEvent>,
    limit: Duration,
) -> Option<(LinkId, LinkError)> {
    tokio::time::timeout(limit, async {
        loop {
            if let LinkEvent::Removed { link, error } = events.recv().await.unwrap() {
                return (link, error);
            }
        }
    })
    .await
    .ok()
}

/// Attaches `io` as a link of `control`'s connection; whether the connection let it go at once
/// (Removed with ConnectionClosed within a second).
async fn attach_is_refused<S>(control: &Control, io: S) -> bool
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut events = control.link_events();
    let info = LinkInfo::new(Direction::Outgoing, "late", Duration::from_millis(1));
    let id = control.attach_link(stream_link(io), info, 1 << 20);
    removed(&mut events, Duration::from_secs(1)).await == Some((id, LinkError::ConnectionClosed))
}

#[tokio::test(start_paused = true)]
async fn a_failed_flush_removes_the_link() {
    let (mut client, _server, control, mode, _dropped, _outgoing) = pair().await;
    let mut events = control.link_events();
    mode.store(FAILS, Ordering::Relaxed);
    client
        .send(bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let removed = removed(&mut events, Duration::from_secs(1)).await;
    assert!(
        matches!(
            removed,
            Some((
                _,
                LinkError::Transport {
                    kind: io::ErrorKind::BrokenPipe,
                    ..
                }
            ))
        ),
        "{removed:?}"
    );
    assert!(control.links().is_empty(), "{:?}", control.links());
}

#[tokio::test(start_paused = true)]
async fn a_bad_frame_removes_the_link_with_the_framing_error() {
    use tokio::io::AsyncWriteExt;
    let (_client, outgoing) = connect(EndpointConfig::default());
    let control = outgoing.control();
    let mut events = control.link_events();
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let info = LinkInfo::new(Direction::Outgoing, "pipe", Duration::from_millis(1));
    control.attach_link(stream_link(a), info, 1 << 20);
    // A whole frame whose checksum is wrong.
    let header = FrameHeader {
        len: 4,
        frame_seq: 0,
        checksum: 0,
    };
    b.write_all(&header.to_bytes()).await.unwrap();
    b.write_all(b"liag").await.unwrap();
    let removed = removed(&mut events, Duration::from_secs(1)).await;
    assert!(
        matches!(
            removed,
            Some((
                _,
                LinkError::Frame(FrameError::ChecksumMismatch { expected: 0, .. })
            ))
        ),
        "{removed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_link_the_application_drops_leaves_as_dropped() {
    let (_client, _server, control, _mode, _dropped, _outgoing) = pair().await;
    let mut events = control.link_events();
    let link = control.links()[0].id;
    control.drop_link(link);
    let removed = removed(&mut events, Duration::from_secs(1)).await;
    assert_eq!(removed, Some((link, LinkError::Dropped)));
}

#[tokio::test(start_paused = true)]
async fn a_link_whose_writes_block_is_failed_after_the_ping_timeout() {
    let (mut client, _server, control, mode, dropped, _outgoing) = pair().await;
    let mut events = control.link_events();
    mode.store(BLOCKS, Ordering::Relaxed);
    // Data the link can never send: it stalls, its Ping cannot go out either.
    client
        .send(bytes::Bytes::from(vec![1u8; 256 << 10]))
        .await
        .unwrap();
    let timeout = EndpointConfig::default().config.ping_timeout;
    let removed = removed(&mut events, timeout + Duration::from_secs(5)).await;
    assert_eq!(
        removed.map(|(_, error)| error),
        Some(LinkError::SendTimeout)
    );
    // Its transport cannot even flush: it is dropped after the close grace, while the
    // connection goes on.
    assert!(set_within(&dropped, Duration::from_secs(10)).await);
    assert!(control.result().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_burst_larger_than_the_turn_budget_arrives_without_waiting_for_a_timer() {
    let (mut client, server, _control, _mode, _dropped, _outgoing) = pair().await;
    // Far more one-byte messages than the drivers move in the turns of one poll. Nobody reads
    // at the server, so no read wakes its driver: only the driver itself can see to the rest.
    let messages = 20_000;
    for i in 0..messages {
        let byte = [(i % 256) as u8];
        client
            .feed(bytes::Bytes::copy_from_slice(&byte))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let start = tokio::time::Instant::now();
    let server = server.control();
    for _ in 0..1000 {
        if server.stats().receive_buffered >= messages {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(server.stats().receive_buffered, messages);
    // Paused time moves only when every task waits for a timer: had a driver slept on work it
    // already held, the clock would have jumped to its next timer (100 ms at least).
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_takes_no_link_and_its_driver_ends() {
    let (_stream, outgoing) = connect(EndpointConfig::default());
    let control = outgoing.control();
    control.terminate();
    let (a, _b) = tokio::io::duplex(1 << 10);
    assert!(attach_is_refused(&control, a).await);
    let closed = tokio::time::timeout(Duration::from_secs(30), control.closed()).await;
    assert_eq!(closed, Ok(Err(ConnectionError::TerminatedLocally)));
}

#[tokio::test(start_paused = true)]
async fn the_end_is_known_as_soon_as_the_connection_ends() {
    let (_stream, outgoing) = connect(EndpointConfig::default());
    let control = outgoing.control();
    control.terminate();
    assert_eq!(
        control.result(),
        Some(Err(ConnectionError::TerminatedLocally))
    );
    assert!(outgoing.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_link_for_a_connection_whose_driver_ended_is_closed() {
    let (_stream, outgoing) = connect(EndpointConfig::default());
    let control = outgoing.control();
    control.terminate();
    assert!(control.closed().await.is_err());
    let (a, _b) = tokio::io::duplex(1 << 10);
    let (a, _mode, dropped) = Faulty::new(a);
    assert!(attach_is_refused(&control, a).await);
    assert!(set_within(&dropped, Duration::from_secs(10)).await);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_until_the_peer_acknowledged_every_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, mut server, _control, mode, _dropped, _outgoing) = pair().await;
    // The peer gets nothing for now: the client's link blocks.
    mode.store(BLOCKS, Ordering::Relaxed);
    client.write_all(b"hello").await.unwrap();
    let early = tokio::time::timeout(Duration::from_secs(5), client.shutdown()).await;
    assert!(
        early.is_err(),
        "shutdown returned before the data was acknowledged"
    );
    // The link works again: the data arrives, is acknowledged, and shutdown completes.
    mode.store(WORKS, Ordering::Relaxed);
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(60), server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"hello");
    tokio::time::timeout(Duration::from_secs(60), client.shutdown())
        .await
        .expect("shutdown completes once everything is acknowledged")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn losing_the_last_link_with_data_unacknowledged_is_no_clean_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, mut server, control, mode, _dropped, _outgoing) = pair().await;
    // The server finishes first, and the client reads its end of stream.
    server.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    // The client's last data never gets through: its only link fails.
    mode.store(BLOCKS, Ordering::Relaxed);
    client.write_all(b"lost").await.unwrap();
    let shutdown = tokio::spawn(async move { client.shutdown().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    mode.store(FAILS, Ordering::Relaxed);
    let result = tokio::time::timeout(Duration::from_secs(200), shutdown)
        .await
        .expect("shutdown ends")
        .unwrap();
    assert!(result.is_err(), "shutdown reported success for lost data");
    // And the connection itself ends in an error, not a clean end.
    let _ = tokio::time::timeout(Duration::from_secs(200), control.closed()).await;
    assert!(
        matches!(control.result(), Some(Err(_))),
        "{:?}",
        control.result()
    );
}

#[tokio::test(start_paused = true)]
async fn links_and_events_show_each_link_once() {
    let (_client, outgoing) = connect(EndpointConfig::default());
    let control = outgoing.control();
    let (first, _far) = tokio::io::duplex(1 << 16);
    let info = LinkInfo::new(Direction::Outgoing, "first", Duration::from_millis(1));
    let first = control.attach_link(stream_link(first), info, 1 << 20);
    // Attached, not yet announced: in `links`, but for `links_and_events` it is still to come.
    assert!(control.links().iter().any(|l| l.id == first));
    let (listed, mut events) = control.links_and_events();
    assert!(listed.is_empty(), "{listed:?}");
    let event = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, LinkEvent::Added { link: first });

    // Announced: listed, and no event for it follows.
    let (listed, mut events) = control.links_and_events();
    assert_eq!(listed.iter().map(|l| l.id).collect::<Vec<_>>(), [first]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !matches!(events.try_recv(), Ok(LinkEvent::Added { link }) if link == first),
        "the listed link came again"
    );
}
