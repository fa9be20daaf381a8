//! A server under hostile or broken peers keeps serving everyone else.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use bytes::BytesMut;
use common::*;
use liag_core::handshake::{Initiator, InitiatorParams, InitiatorStep};
use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
use liag_core::proto::ids::ConnId;
use liag_core::proto::message::{ExchangedConfig, Message};
use liag_core::proto::seq::Seq;
use liag_transports::liag_tokio::EndpointConfig;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A real client moves 4 MiB through the echo server and checks it.
async fn real_client_works(addrs: &[SocketAddr]) {
    let (stream, _links) = connector(addrs)
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    let payload = data(7, 4 << 20);
    let back = tokio::time::timeout(Duration::from_secs(30), roundtrip(stream, payload.clone()))
        .await
        .expect("the real client was served in time");
    assert!(back == payload);
}

/// Waits until the server closes `socket` (EOF or reset), within `limit`.
async fn closed_by_server(socket: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_a_huge_frame_header_fail_only_their_socket() {
    let (_server, listener, addrs) = server(EndpointConfig::default()).await;
    echo(listener);

    let mut garbage = TcpStream::connect(addrs[0]).await.unwrap();
    garbage.write_all(&data(9, 100_000)).await.unwrap();

    // A frame header claiming 4 GiB, in place of the Connect.
    let mut huge = TcpStream::connect(addrs[1]).await.unwrap();
    huge.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();

    real_client_works(&addrs).await;
    assert!(closed_by_server(&mut garbage, Duration::from_secs(5)).await);
    assert!(closed_by_server(&mut huge, Duration::from_secs(5)).await);
}

/// Sends `msg` (and a payload packet for Data) as frames.
async fn send(socket: &mut TcpStream, encoder: &mut FrameEncoder, packets: &[bytes::Bytes]) {
    let mut out = BytesMut::new();
    for p in packets {
        encoder.encode(p, &mut out).unwrap();
    }
    socket.write_all(&out).await.unwrap();
}

/// The message that aborts aggligator 0.9.11's server, after a real handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_two_to_the_thirty_one_ahead_fails_only_that_link() {
    let (_server, listener, addrs) = server(EndpointConfig::default()).await;
    echo(listener);

    let mut socket = TcpStream::connect(addrs[0]).await.unwrap();
    let (mut encoder, mut decoder, mut buf) =
        (FrameEncoder::new(), FrameDecoder::new(), BytesMut::new());
    let cfg = ExchangedConfig {
        recv_buffer: NonZeroU32::new(1 << 20).unwrap(),
    };
    let mut initiator = Initiator::new(
        InitiatorParams::new(ConnId::new(77), false, cfg),
        &mut rand_rng(5),
    );
    let welcome = receive(&mut socket, &mut decoder, &mut buf).await;
    let InitiatorStep::SendConnect { connect, .. } = initiator.handle_packet(&welcome).unwrap()
    else {
        panic!("expected to send Connect");
    };
    send(&mut socket, &mut encoder, &[connect]).await;
    let accepted = receive(&mut socket, &mut decoder, &mut buf).await;
    assert!(matches!(
        initiator.handle_packet(&accepted),
        Ok(InitiatorStep::Accepted(_))
    ));

    let data_msg = Message::Data {
        seq: Seq::new(0x7FFF_FFFF),
    }
    .to_bytes();
    send(
        &mut socket,
        &mut encoder,
        &[data_msg, bytes::Bytes::from_static(b"boom")],
    )
    .await;

    assert!(
        closed_by_server(&mut socket, Duration::from_secs(5)).await,
        "the bad link is closed"
    );
    real_client_works(&addrs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_bounded_and_time_out() {
    let mut config = EndpointConfig::default();
    config.max_pending_handshakes = 64;
    config.handshake_timeout = Duration::from_millis(800);
    let (server, listener, addrs) = server(config).await;
    echo(listener);

    // 300 sockets that never say a word.
    let mut idle = Vec::new();
    for i in 0..300 {
        idle.push(TcpStream::connect(addrs[i % 3]).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        server.pending_handshakes() <= 64,
        "{} pending",
        server.pending_handshakes()
    );

    // A real client still gets through.
    real_client_works(&addrs).await;

    // And the idle ones are all dropped once the handshake time is up.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(server.pending_handshakes(), 0);
    let mut closed = 0;
    for socket in &mut idle {
        if closed_by_server(socket, Duration::from_millis(50)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 300);
}
