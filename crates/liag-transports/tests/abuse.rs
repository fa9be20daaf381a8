//! Peers that follow the protocol and abuse it: too many links for one connection, offers the
//! application drops, configurations at their limits. The server keeps its bounds and serves
//! everyone else.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use bytes::BytesMut;
use common::*;
use liag_core::handshake::{Initiator, InitiatorParams, InitiatorStep};
use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
use liag_core::proto::ids::ConnId;
use liag_core::proto::message::{ExchangedConfig, Message, RefusedReason};
use liag_transports::liag_tokio::{EndpointConfig, Server};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How a raw handshake ended.
#[derive(Debug, PartialEq)]
enum Answer {
    Accepted,
    Refused(RefusedReason),
}

/// Runs the initiator's handshake for `conn_id` on a fresh socket to `addr`; returns the
/// answer and the socket, kept open.
async fn handshake(addr: SocketAddr, conn_id: u128, existing: bool) -> (Answer, TcpStream) {
    handshake_on(TcpStream::connect(addr).await.unwrap(), conn_id, existing).await
}

/// A socket to `addr` from the loopback address `from`, a source of its own.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// [`handshake`] on a socket already open.
async fn handshake_on(mut socket: TcpStream, conn_id: u128, existing: bool) -> (Answer, TcpStream) {
    let (mut encoder, mut decoder, mut buf) =
        (FrameEncoder::new(), FrameDecoder::new(), BytesMut::new());
    let cfg = ExchangedConfig {
        recv_buffer: NonZeroU32::new(1 << 20).unwrap(),
    };
    let params = InitiatorParams::new(ConnId::new(conn_id), existing, cfg);
    let mut initiator = Initiator::new(params, &mut rand_rng(conn_id as u64));
    let welcome = receive(&mut socket, &mut decoder, &mut buf).await;
    let InitiatorStep::SendConnect { connect, .. } = initiator.handle_packet(&welcome).unwrap()
    else {
        panic!("expected to send Connect");
    };
    let mut out = BytesMut::new();
    encoder.encode(&connect, &mut out).unwrap();
    socket.write_all(&out).await.unwrap();
    let reply = receive(&mut socket, &mut decoder, &mut buf).await;
    let answer = match Message::decode(&reply).unwrap() {
        Message::Accepted => Answer::Accepted,
        Message::Refused(reason) => Answer::Refused(reason),
        other => panic!("unexpected {other:?}"),
    };
    (answer, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_beyond_the_limit_are_refused() {
    let mut config = EndpointConfig::default();
    config.max_links_per_connection = 4;
    let (_server, listener, addrs) = server(config).await;
    echo(listener);

    let (first, _a) = handshake(addrs[0], 41, false).await;
    assert_eq!(first, Answer::Accepted);
    let mut held = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (answer, socket) = handshake(addrs[0], 41, true).await;
        answers.push(answer);
        held.push(socket);
    }
    let accepted = answers.iter().filter(|a| **a == Answer::Accepted).count();
    assert_eq!(accepted, 3, "{answers:?}");
    assert!(
        answers[3..]
            .iter()
            .all(|a| *a == Answer::Refused(RefusedReason::LinkRefused))
    );
    // Another connection is not affected.
    let (other, _b) = handshake(addrs[0], 42, false).await;
    assert_eq!(other, Answer::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_connection_takes_no_more_links_than_the_limit() {
    let mut config = EndpointConfig::default();
    config.max_links_per_connection = 3;
    // No one accepts: every link waits on the pending connection.
    let (_server, _listener, addrs) = server(config).await;
    let first = tokio::spawn(handshake(addrs[0], 43, false));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = vec![first];
    for _ in 0..2 {
        waiting.push(tokio::spawn(handshake(addrs[0], 43, true)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The fourth is refused at once, though the first three still wait.
    let (fourth, _s) = tokio::time::timeout(Duration::from_secs(5), handshake(addrs[0], 43, true))
        .await
        .expect("refused without waiting for the application");
    assert_eq!(fourth, Answer::Refused(RefusedReason::LinkRefused));
    assert!(waiting.iter().all(|w| !w.is_finished()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_waiting_on_an_accepted_connection_count_against_the_limit() {
    let mut config = EndpointConfig::default();
    config.max_links_per_connection = 3;
    let (_server, mut listener, addrs) = server(config).await;
    let mut links = vec![tokio::spawn(handshake(addrs[0], 45, false))];
    let offer = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..2 {
        links.push(tokio::spawn(handshake(addrs[0], 45, true)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // More links race the acceptance: the three waiting links are attached after it, and
    // none of the late ones may slip in before them.
    for _ in 0..4 {
        links.push(tokio::spawn(handshake(addrs[0], 45, true)));
    }
    let _stream = offer.accept();
    let mut answers = Vec::new();
    let mut held = Vec::new();
    for link in links {
        let (answer, socket) = tokio::time::timeout(Duration::from_secs(5), link)
            .await
            .expect("the link is answered")
            .unwrap();
        answers.push(answer);
        held.push(socket);
    }
    let accepted = answers.iter().filter(|a| **a == Answer::Accepted).count();
    assert_eq!(accepted, 3, "{answers:?}");
    assert!(
        answers[..3].iter().all(|a| *a == Answer::Accepted),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_more_paths_than_the_limit_does_not_keep_asking() {
    let mut config = EndpointConfig::default();
    config.max_links_per_connection = 1;
    let (server, listener, addrs) = server(config.clone()).await;
    echo(listener);
    let joins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = joins.clone();
    server.set_link_filter(std::sync::Arc::new(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }));
    let (stream, links) = connector(&addrs[..2]).connect(config).await.unwrap();
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    // Without a long wait after the refusal the second path would be retried after 0.25,
    // 0.75, 1.75 and 3.75 s. Refused for having too many links, it waits a minute.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The first path's link, and the second path's once.
    let asked = joins.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(asked, 2, "links asked for");
    assert_eq!(links.outgoing().control().links().len(), 1);
    drop(stream);
}

/// Whether the server closes `socket` without a word within a second.
async fn closed_at_once(socket: &mut TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), socket.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_holds_a_bounded_number_of_sockets() {
    let mut config = EndpointConfig::default();
    config.max_links_per_source = 4;
    let (_server, listener, addrs) = server(config).await;
    echo(listener);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect_from([127, 0, 0, 2], addrs[0]).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The server drops a fifth socket of one source unserved, which resets it: the reset may
    // come before the connect completes, or after.
    let fifth = tokio::net::TcpSocket::new_v4().unwrap();
    fifth.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
    let closed = match fifth.connect(addrs[0]).await {
        Ok(mut fifth) => closed_at_once(&mut fifth).await,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "a fifth socket of one source is closed");
    // The four still wait in their handshakes; another source is served.
    for socket in &mut idle {
        assert!(!closed_at_once(socket).await);
    }
    let (answer, _s) = handshake_on(connect_from([127, 0, 0, 3], addrs[0]).await, 60, false).await;
    assert_eq!(answer, Answer::Accepted);
    // A socket given back is a slot free again.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (answer, _t) = handshake_on(connect_from([127, 0, 0, 2], addrs[0]).await, 61, false).await;
    assert_eq!(answer, Answer::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_holds_a_bounded_number_of_connections() {
    let mut config = EndpointConfig::default();
    config.max_connections_per_source = 2;
    let (_server, listener, addrs) = server(config).await;
    echo(listener);
    let mut held = Vec::new();
    for id in 0..3 {
        let socket = connect_from([127, 0, 0, 2], addrs[0]).await;
        let (answer, socket) = handshake_on(socket, 70 + id, false).await;
        held.push((answer, socket));
    }
    let answers: Vec<&Answer> = held.iter().map(|(a, _)| a).collect();
    assert_eq!(
        answers,
        [
            &Answer::Accepted,
            &Answer::Accepted,
            &Answer::Refused(RefusedReason::NotListening)
        ]
    );
    // A second link of a connection it holds is no new connection.
    let (join, _j) = handshake_on(connect_from([127, 0, 0, 2], addrs[1]).await, 70, true).await;
    assert_eq!(join, Answer::Accepted);
    let (other, _o) = handshake_on(connect_from([127, 0, 0, 3], addrs[0]).await, 79, false).await;
    assert_eq!(other, Answer::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_source_evicts_only_its_own_handshakes() {
    let mut config = EndpointConfig::default();
    config.max_pending_handshakes = 4;
    let (_server, listener, addrs) = server(config).await;
    echo(listener);
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(connect_from([127, 0, 0, 2], addrs[0]).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A real client's socket, then a flood of silent ones from the other source: the oldest
    // handshake overall is abandoned no longer, the busiest source's oldest is.
    let real = connect_from([127, 0, 0, 3], addrs[0]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..12 {
        silent.push(connect_from([127, 0, 0, 2], addrs[0]).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (answer, _r) = tokio::time::timeout(Duration::from_secs(5), handshake_on(real, 80, false))
        .await
        .expect("the real client's handshake goes on");
    assert_eq!(answer, Answer::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_without_links_or_data_is_soon_forgotten() {
    let mut config = EndpointConfig::default();
    config.no_link_timeout_before_data = Duration::from_millis(500);
    let (server, listener, addrs) = server(config).await;
    echo(listener);
    let (answer, socket) = handshake(addrs[0], 90, false).await;
    assert_eq!(answer, Answer::Accepted);
    assert_eq!(server.connections(), 1);
    drop(socket);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        while server.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the connection outlived its short life");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_makes_room_by_ending_a_linkless_connection() {
    let mut config = EndpointConfig::default();
    config.max_connections = 2;
    let (server, listener, addrs) = server(config).await;
    echo(listener);
    let (first, socket) = handshake(addrs[0], 91, false).await;
    let (second, _held) = handshake(addrs[0], 92, false).await;
    assert_eq!((first, second), (Answer::Accepted, Answer::Accepted));
    // The first loses its only link; it would otherwise keep its slot for the no-link
    // timeout.
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.connections(), 2);
    let (third, _t) = handshake(addrs[0], 93, false).await;
    assert_eq!(third, Answer::Accepted);
    // Connections with links are not ended for a newcomer.
    let (fourth, _f) = handshake(addrs[0], 94, false).await;
    assert_eq!(fourth, Answer::Refused(RefusedReason::NotListening));
    let (join, _j) = handshake(addrs[1], 92, true).await;
    assert_eq!(join, Answer::Accepted, "the held connection still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_floods_stay_within_the_memory_budget() {
    use liag_core::proto::seq::Seq;
    let mut config = EndpointConfig::default();
    config.memory_budget = 4 << 20;
    let (server, listener, addrs) = server(config.clone()).await;
    echo(listener);
    // Four connections each send 6 MB of Data that can never be delivered: the message
    // before it never comes. Each alone is within its 64 MiB receive buffer.
    let mut floods = Vec::new();
    for id in 0..4u128 {
        let from = connect_from([127, 0, 0, 2], addrs[0]).await;
        let (answer, mut socket) = handshake_on(from, 100 + id, false).await;
        assert_eq!(answer, Answer::Accepted);
        floods.push(tokio::spawn(async move {
            // The handshake's Connect was frame 0 on this link.
            let mut encoder = FrameEncoder::new();
            encoder.encode(&[], &mut BytesMut::new()).unwrap();
            let payload = vec![7u8; 30_000];
            for seq in 1..=200u32 {
                let mut out = BytesMut::new();
                let header = Message::Data { seq: Seq::new(seq) }.to_bytes();
                encoder.encode(&header, &mut out).unwrap();
                encoder.encode(&payload, &mut out).unwrap();
                if socket.write_all(&out).await.is_err() {
                    break;
                }
            }
            socket
        }));
    }
    let mut held = Vec::new();
    for flood in floods {
        held.push(flood.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let used = server.memory_used();
    // The budget, and at most each connection's floor beside it.
    let floors = 5 * liag_core::RECV_FLOOR;
    assert!(used <= (4 << 20) + floors, "{used} bytes held");
    assert!(used >= 3 << 20, "the floods did fill the budget: {used}");
    // A real client is still served, whole and in order.
    let (stream, links) = connector(&addrs).connect(config).await.unwrap();
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    let payload = data(5, 2 << 20);
    let back = tokio::time::timeout(Duration::from_secs(60), roundtrip(stream, payload.clone()))
        .await
        .expect("echoed in time");
    assert!(back == payload);
    drop(held);
}

/// Sends one Data message numbered `seq` on a link whose handshake sent one frame (Connect).
async fn send_first_data(socket: &mut TcpStream, seq: u32, payload: &[u8]) {
    use liag_core::proto::seq::Seq;
    let mut encoder = FrameEncoder::new();
    encoder.encode(&[], &mut BytesMut::new()).unwrap();
    let mut out = BytesMut::new();
    let header = Message::Data { seq: Seq::new(seq) }.to_bytes();
    encoder.encode(&header, &mut out).unwrap();
    encoder.encode(payload, &mut out).unwrap();
    socket.write_all(&out).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_ends_a_connection_whose_links_never_carried_data() {
    let mut config = EndpointConfig::default();
    config.max_connections = 2;
    config.no_link_timeout_before_data = Duration::from_millis(300);
    let (_server, listener, addrs) = server(config).await;
    echo(listener);
    let (idle, _i) = handshake(addrs[0], 95, false).await;
    let (used, mut used_socket) = handshake(addrs[0], 96, false).await;
    assert_eq!((idle, used), (Answer::Accepted, Answer::Accepted));
    send_first_data(&mut used_socket, 0, b"hello").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Both hold a link; the one that never sent a byte in 300 ms gives way.
    let (third, _t) = handshake(addrs[0], 97, false).await;
    assert_eq!(third, Answer::Accepted);
    let (again, _a) = handshake(addrs[1], 95, true).await;
    assert_eq!(
        again,
        Answer::Refused(RefusedReason::Closed),
        "the idle one was ended"
    );
    let (joined, _j) = handshake(addrs[1], 96, true).await;
    assert_eq!(
        joined,
        Answer::Accepted,
        "the one that carried data runs on"
    );
    // The newcomer is young: nothing gives way for a fourth.
    let (fourth, _f) = handshake(addrs[0], 98, false).await;
    assert_eq!(fourth, Answer::Refused(RefusedReason::NotListening));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_in_progress_is_held_to_the_memory_budget() {
    use liag_core::proto::frame::FrameHeader;
    let mut config = EndpointConfig::default();
    config.memory_budget = 1 << 20;
    let (server, listener, addrs) = server(config).await;
    echo(listener);
    let (answer, mut socket) = handshake(addrs[0], 110, false).await;
    assert_eq!(answer, Answer::Accepted);
    // A frame announced at 8 MiB, after the handshake, and 3 MiB of it sent.
    let header = FrameHeader {
        len: 8 << 20,
        frame_seq: 1,
        checksum: 0,
    };
    socket.write_all(&header.to_bytes()).await.unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut peak = 0;
    let mut closed = false;
    for _ in 0..48 {
        if socket.write_all(&chunk).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        peak = peak.max(server.memory_used());
    }
    // The server may not have read the rest yet: give it time to fail the link.
    let mut byte = [0u8; 1];
    let eof = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        loop {
            match socket.read(&mut byte).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed || eof, "the link holding the frame was failed");
    assert!(peak <= 1 << 20, "{peak} bytes counted");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.memory_used(), 0, "given back with the link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_offer_is_refused() {
    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    let link = tokio::spawn(handshake(addrs[0], 44, false));
    let offer = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .unwrap()
        .unwrap();
    drop(offer);
    let (answer, _s) = tokio::time::timeout(Duration::from_secs(5), link)
        .await
        .expect("the link is answered")
        .unwrap();
    assert_eq!(answer, Answer::Refused(RefusedReason::ConnectionRefused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_listener_refuses_the_queued_offers() {
    let (_server, listener, addrs) = server(EndpointConfig::default()).await;
    let links: Vec<_> = (0..3)
        .map(|i| tokio::spawn(handshake(addrs[0], 50 + i, false)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(listener);
    for link in links {
        let (answer, _s) = tokio::time::timeout(Duration::from_secs(5), link)
            .await
            .expect("the link is answered")
            .unwrap();
        assert!(matches!(answer, Answer::Refused(_)), "{answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_of_duration_max_do_not_panic() {
    let mut config = EndpointConfig::default();
    let protocol = &mut config.config;
    protocol.ping_interval = Duration::MAX;
    protocol.ping_timeout = Duration::MAX;
    protocol.no_link_timeout = Duration::MAX;
    protocol.ack_timeout_max = Duration::MAX;
    config.handshake_timeout = Duration::MAX;
    let (_server, listener, addrs) = server(config.clone()).await;
    echo(listener);
    let (stream, links) = connector(&addrs).connect(config).await.unwrap();
    links.wait_for_link(Duration::MAX).await.unwrap();
    let payload = data(3, 1 << 20);
    let back = tokio::time::timeout(Duration::from_secs(30), roundtrip(stream, payload.clone()))
        .await
        .expect("echoed in time");
    assert!(back == payload);
    let _ = Server::new(EndpointConfig::default());
}
