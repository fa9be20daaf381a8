//! Each way adding a link fails comes back as its own [`AddLinkError`], with its cause: the
//! server's refusal and its reason, a server-id mismatch, this side's link filter, the
//! handshake's timeouts, a closed connection, a transport that ends, breaks the handshake or
//! fails. In tokio's paused time, over in-process pipes.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::BytesMut;
use liag_core::proto::frame::FrameEncoder;
use liag_core::proto::message::{Message, MessageKind};
use liag_tokio::{
    AddLinkError, ConnectionError, EndpointConfig, HandshakeError, LinkEvent, Listener, Outgoing,
    Refusal, RefusedReason, Server, UserData, connect, stream_link,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Accepts every new connection and keeps it open.
fn accept_all(mut listener: Listener) {
    tokio::spawn(async move {
        let mut streams = Vec::new();
        while let Some(incoming) = listener.next().await {
            streams.push(incoming.accept());
        }
    });
}

/// Adds a link over a fresh pipe whose other end `server` takes.
async fn add_to(server: &Server, outgoing: &Outgoing, tag: &str) -> Result<(), AddLinkError> {
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, tag, UserData::empty());
    outgoing.add_link(a, tag, UserData::empty()).await.map(drop)
}

#[tokio::test(start_paused = true)]
async fn a_link_to_another_server_is_a_server_id_mismatch() {
    let (first, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    let (second, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    let (mut client, outgoing) = connect(EndpointConfig::default());
    add_to(&first, &outgoing, "first").await.unwrap();
    let error = add_to(&second, &outgoing, "second").await.unwrap_err();
    assert!(matches!(error, AddLinkError::ServerIdMismatch), "{error}");
    assert_eq!(
        io::Error::from(error).kind(),
        io::ErrorKind::ConnectionRefused
    );

    // By default the connection ends too; its stream says why, as a reset, not a timeout.
    let mut buf = [0; 8];
    let read = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf))
        .await
        .expect("the read ended");
    let error = read.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    let inner = error.get_ref().unwrap().downcast_ref::<ConnectionError>();
    assert_eq!(inner, Some(&ConnectionError::ServerIdMismatch));
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_server_refuses_is_refused_with_its_reason() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            incoming.refuse();
        }
    });
    let (_client, outgoing) = connect(EndpointConfig::default());
    let mut events = outgoing.control().link_events();
    let error = add_to(&server, &outgoing, "pipe").await.unwrap_err();
    assert!(
        matches!(
            error,
            AddLinkError::Refused(RefusedReason::ConnectionRefused)
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "link refused: connection refused by the server's application"
    );
    let event = events.recv().await.unwrap();
    assert!(
        matches!(
            event,
            LinkEvent::Refused {
                refusal: Refusal::Server(RefusedReason::ConnectionRefused),
                ..
            }
        ),
        "{event:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_link_the_servers_filter_refuses_is_refused_as_such() {
    let (server, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    server.set_link_filter(Arc::new(|_| false));
    let (_client, outgoing) = connect(EndpointConfig::default());
    let error = add_to(&server, &outgoing, "pipe").await.unwrap_err();
    assert!(
        matches!(error, AddLinkError::Refused(RefusedReason::LinkRefused)),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_without_its_listener_is_not_listening() {
    let (server, listener) = Server::new(EndpointConfig::default());
    drop(listener);
    let (_client, outgoing) = connect(EndpointConfig::default());
    let error = add_to(&server, &outgoing, "pipe").await.unwrap_err();
    assert!(
        matches!(error, AddLinkError::Refused(RefusedReason::NotListening)),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_link_this_sides_filter_refuses_is_filtered() {
    let (server, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    let (_client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe", UserData::empty());
    let error = outgoing
        .add_packet_link(stream_link(a), "pipe", UserData::empty(), |_| false)
        .await
        .unwrap_err();
    assert!(matches!(error, AddLinkError::Filtered), "{error}");
    assert_eq!(error.to_string(), "link refused by the link filter");
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_the_handshake_out() {
    let (_client, outgoing) = connect(EndpointConfig::default());
    let (a, _silent) = tokio::io::duplex(1 << 16);
    let error = outgoing
        .add_link(a, "silent", UserData::empty())
        .await
        .unwrap_err();
    assert!(matches!(error, AddLinkError::Timeout), "{error}");
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_server_whose_application_does_not_accept_is_named() {
    let (server, _listener) = Server::new(EndpointConfig::default());
    let (_client, outgoing) = connect(EndpointConfig::default());
    let error = add_to(&server, &outgoing, "pipe").await.unwrap_err();
    assert!(matches!(error, AddLinkError::NotAccepted), "{error}");
    assert!(error.to_string().contains("Incoming::accept"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_takes_no_link() {
    let (server, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    let (_client, outgoing) = connect(EndpointConfig::default());
    add_to(&server, &outgoing, "first").await.unwrap();
    outgoing.control().terminate();
    while !outgoing.is_closed() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let error = add_to(&server, &outgoing, "late").await.unwrap_err();
    assert!(matches!(error, AddLinkError::Closed), "{error}");
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::NotConnected);
}

#[tokio::test(start_paused = true)]
async fn a_transport_that_ends_in_the_handshake_is_said_so() {
    let (_client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    drop(b);
    let error = outgoing
        .add_link(a, "gone", UserData::empty())
        .await
        .unwrap_err();
    assert!(matches!(error, AddLinkError::TransportClosed), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_skips_the_welcome_breaks_the_protocol() {
    let (_client, outgoing) = connect(EndpointConfig::default());
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut wire = BytesMut::new();
    FrameEncoder::new()
        .encode(&Message::Ping.to_bytes(), &mut wire)
        .unwrap();
    b.write_all(&wire).await.unwrap();
    let error = outgoing
        .add_link(a, "ping", UserData::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            AddLinkError::Protocol(HandshakeError::Unexpected(MessageKind::Ping))
        ),
        "{error}"
    );
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::InvalidData);
}

/// A transport whose reads fail with a reset and whose writes go nowhere.
struct Resets;

impl AsyncRead for Resets {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
    }
}

impl AsyncWrite for Resets {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_transport_is_an_io_error_of_its_kind() {
    let (_client, outgoing) = connect(EndpointConfig::default());
    let error = outgoing
        .add_link(Resets, "resets", UserData::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AddLinkError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "{error}"
    );
    assert_eq!(
        io::Error::from(error).kind(),
        io::ErrorKind::ConnectionReset
    );
}

#[tokio::test(start_paused = true)]
async fn the_server_counts_how_handshakes_end() {
    let (server, listener) = Server::new(EndpointConfig::default());
    accept_all(listener);
    let (_client, outgoing) = connect(EndpointConfig::default());
    add_to(&server, &outgoing, "first").await.unwrap();
    server.set_link_filter(Arc::new(|_| false));
    let error = add_to(&server, &outgoing, "second").await.unwrap_err();
    assert!(matches!(
        error,
        AddLinkError::Refused(RefusedReason::LinkRefused)
    ));
    // A socket that never speaks, and one that ends at once.
    let (_silent, far) = tokio::io::duplex(1 << 10);
    server.add_link(far, "silent", UserData::empty());
    let (gone, far) = tokio::io::duplex(1 << 10);
    drop(gone);
    server.add_link(far, "gone", UserData::empty());
    tokio::time::sleep(EndpointConfig::default().handshake_timeout + Duration::from_secs(1)).await;

    let stats = server.handshake_stats();
    assert_eq!(stats.accepted, 1, "{stats:?}");
    assert_eq!(stats.refused_link, 1, "{stats:?}");
    assert_eq!(stats.timed_out, 1, "{stats:?}");
    assert_eq!(stats.failed, 1, "{stats:?}");
    assert_eq!(stats.refused_not_listening + stats.refused_connection, 0);
}

/// A client's first links all say no link was accepted yet. One whose request reaches the
/// server only after the connection ended and was forgotten is refused as closed, not made a
/// second connection that the application accepts and nobody uses.
#[tokio::test(start_paused = true)]
async fn a_link_held_up_until_its_connection_ended_is_refused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let offered = Arc::new(AtomicUsize::new(0));
    let counted = offered.clone();
    tokio::spawn(async move {
        let mut streams = Vec::new();
        while let Some(incoming) = listener.next().await {
            counted.fetch_add(1, Ordering::SeqCst);
            streams.push(incoming.accept());
        }
    });
    let (_client, outgoing) = connect(EndpointConfig::default());

    // The held link: what the server sends reaches the client at once, what the client sends
    // waits behind a gate.
    let (held, client_side) = tokio::io::duplex(1 << 16);
    let (server_side, theirs) = tokio::io::duplex(1 << 16);
    server.add_link(theirs, "held", UserData::empty());
    let (mut from_client, mut to_client) = tokio::io::split(client_side);
    let (mut from_server, mut to_server) = tokio::io::split(server_side);
    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    tokio::spawn(async move {
        let _ = gate.await;
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    });
    let held = tokio::spawn({
        let outgoing = outgoing.clone();
        async move {
            outgoing
                .add_link(held, "held", UserData::empty())
                .await
                .map(drop)
        }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;

    // Another link makes the connection; it ends, and the server forgets it.
    add_to(&server, &outgoing, "first").await.unwrap();
    outgoing.control().terminate();
    for _ in 0..1_000 {
        if server.connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.connections(), 0);

    // Now the held link's request comes.
    open.send(()).unwrap();
    let error = held.await.unwrap().unwrap_err();
    assert!(
        matches!(error, AddLinkError::Refused(RefusedReason::Closed)),
        "{error}"
    );
    assert_eq!(offered.load(Ordering::SeqCst), 1);
}
