//! WebSocket links on loopback: ws and wss on their own, with verified data, and the error a
//! wrong URL path gives.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;
mod kit;

use common::*;
use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::tls::ca_client_config;
use liag_transports::websocket::{WsAcceptor, WsConnector};
use liag_transports::{IpVersion, serve};
use std::net::SocketAddr;
use std::time::Duration;

/// An echo server with a WebSocket acceptor on 127.0.0.1 at `/liag`, with TLS if `tls`.
async fn ws_server(tls: Option<&kit::Pki>) -> SocketAddr {
    let (server, listener) = Server::new(EndpointConfig::default());
    let mut acceptor = WsAcceptor::bind(&[SocketAddr::from(([127, 0, 0, 1], 0))], "/liag")
        .await
        .unwrap();
    if let Some(pki) = tls {
        acceptor.set_tls(pki.server_config());
    }
    let addr = acceptor.local_addrs()[0];
    tokio::spawn(serve(acceptor, server));
    echo(listener);
    addr
}

/// Writes, straight onto `socket` below any WebSocket library, one Binary frame announced at
/// 15 MiB (masked with a zero key), 64 KiB at a time, calling `each` after every write, until
/// a write fails. Returns whether one did (the acceptor closed); fails the test if the
/// acceptor neither read it all nor closed within 10 s.
async fn endless_message(socket: &mut tokio::net::TcpStream, mut each: impl FnMut()) -> bool {
    use tokio::io::AsyncWriteExt;
    let len: u64 = 15 << 20;
    let mut frame = vec![0x82u8, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    socket.write_all(&frame).await.unwrap();
    let chunk = vec![0u8; 64 << 10];
    tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..(len / chunk.len() as u64) {
            if socket.write_all(&chunk).await.is_err() {
                return true;
            }
            each();
        }
        false
    })
    .await
    .expect("the acceptor neither read nor closed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_with_spec_user_data() {
    let addr = ws_server(None).await;
    let connector = WsConnector::new([format!("ws://127.0.0.1:{}/liag", addr.port())]).unwrap();
    let (stream, links) = connector.connect(EndpointConfig::default()).await.unwrap();
    links.wait_for_link(Duration::from_secs(10)).await.unwrap();
    let rates = links.outgoing().control().links();
    assert_eq!(rates.len(), 1);
    // The acceptor sends the octets of its local IP, `::` by default; we send our interface.
    assert_eq!(rates[0].remote_user_data.as_bytes().as_ref(), &[0u8; 16]);
    assert_eq!(rates[0].local_user_data.as_bytes().as_ref(), b"lo");
    assert!(rates[0].tag.contains("ws://127.0.0.1"), "{}", rates[0].tag);

    let payload = data(11, 6 << 20);
    let back = tokio::time::timeout(Duration::from_secs(60), roundtrip(stream, payload.clone()))
        .await
        .unwrap();
    assert_eq!(back.len(), payload.len());
    assert_eq!(sha256(&back), sha256(&payload));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_echo_checked_against_a_private_ca() {
    let pki = kit::Pki::new();
    let pem = pki.write();
    let addr = ws_server(Some(&pki)).await;
    let mut connector =
        WsConnector::new([format!("wss://localhost:{}/liag", addr.port())]).unwrap();
    connector.set_ip_version(IpVersion::V4);
    connector.set_tls_config(ca_client_config(&pem.ca).unwrap());
    let (stream, links) = connector.connect(EndpointConfig::default()).await.unwrap();
    links.wait_for_link(Duration::from_secs(10)).await.unwrap();
    let payload = data(12, 4 << 20);
    let back = tokio::time::timeout(Duration::from_secs(60), roundtrip(stream, payload.clone()))
        .await
        .unwrap();
    assert_eq!(sha256(&back), sha256(&payload));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_and_untrusted_certificate_are_reported() {
    let addr = ws_server(None).await;
    let url = format!("ws://127.0.0.1:{}/elsewhere", addr.port());
    let (_stream, links) = WsConnector::new([&url])
        .unwrap()
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    let e = links
        .wait_for_link(Duration::from_secs(2))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("websocket upgrade to {url} failed: HTTP 404")),
        "{text}"
    );

    // wss against the WebPKI roots: our test CA is not among them.
    let pki = kit::Pki::new();
    let addr = ws_server(Some(&pki)).await;
    let mut connector =
        WsConnector::new([format!("wss://localhost:{}/liag", addr.port())]).unwrap();
    connector.set_ip_version(IpVersion::V4);
    let (_stream, links) = connector.connect(EndpointConfig::default()).await.unwrap();
    let e = links
        .wait_for_link(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS with wss://localhost"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_message_before_the_link_handshake_is_refused_unread() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = ws_server(None).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /liag HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = [0u8; 4096];
    let n = socket.read(&mut response).await.unwrap();
    assert!(response[..n].starts_with(b"HTTP/1.1 101"));
    // One masked (with a zero key) Binary frame of 15 MiB, within tungstenite's message
    // limit, sent before any link handshake: the acceptor stops reading it after
    // PRE_HANDSHAKE_READ bytes and closes, so the write cannot complete.
    let mut sent = 0;
    let refused = endless_message(&mut socket, || sent += 64 << 10).await;
    assert!(refused, "the acceptor read all 15 MiB");
    println!("the acceptor closed after {sent} bytes were written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_upgrades_from_one_host_do_not_shut_out_a_client() {
    use tokio::io::AsyncWriteExt;
    let addr = ws_server(None).await;
    // More half-sent upgrades than the acceptor runs at once, all from 127.0.0.2, held open.
    let mut silent = Vec::new();
    for _ in 0..liag_transports::websocket::MAX_UPGRADES + 6 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        let mut socket = socket.connect(addr).await.unwrap();
        socket.write_all(b"GET /liag HTTP/1.1\r\n").await.unwrap();
        silent.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A client from another host gets its upgrade at once, not after theirs time out (10 s).
    let connector = WsConnector::new([format!("ws://127.0.0.1:{}/liag", addr.port())]).unwrap();
    let (stream, links) = connector.connect(EndpointConfig::default()).await.unwrap();
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    let payload = data(12, 1 << 20);
    let back = tokio::time::timeout(Duration::from_secs(30), roundtrip(stream, payload.clone()))
        .await
        .unwrap();
    assert!(back == payload);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_inside_a_websocket_keeps_the_gate_shut_until_the_link_handshake() {
    use liag_transports::tls::{TlsAcceptor, insecure_client_config};
    use liag_transports::websocket::WsBytes;
    use tokio_rustls::rustls::pki_types::ServerName;
    // As `liag tunnel server --websocket --tls`: TLS runs inside the WebSocket.
    let pki = kit::Pki::new();
    let (server, listener) = Server::new(EndpointConfig::default());
    let acceptor = WsAcceptor::bind(&[SocketAddr::from(([127, 0, 0, 1], 0))], "/liag")
        .await
        .unwrap();
    let addr = acceptor.local_addrs()[0];
    tokio::spawn(serve(
        TlsAcceptor::new(acceptor, pki.server_config()),
        server,
    ));
    echo(listener);
    // The client upgrades and completes TLS, which takes the server's reads and writes...
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/liag"), tcp)
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(insecure_client_config());
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, WsBytes::new(ws)).await.unwrap();
    // ... then, below TLS, starts a 15 MiB WebSocket message before any link handshake.
    let (ws_bytes, _) = tls.into_inner();
    let mut ws = ws_bytes.into_inner();
    let socket = ws.get_mut();
    assert!(
        endless_message(socket, || {}).await,
        "the acceptor read all 15 MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_message_after_the_link_handshake_is_held_to_the_budget() {
    use bytes::BytesMut;
    use liag_core::handshake::{Initiator, InitiatorParams, InitiatorStep};
    use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
    use liag_core::proto::ids::ConnId;
    use liag_core::proto::message::{ExchangedConfig, Message};
    use liag_transports::websocket::WsBytes;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

    async fn next_packet(io: &mut (impl AsyncRead + Unpin), d: &mut FrameDecoder) -> bytes::Bytes {
        let mut buf = BytesMut::new();
        loop {
            if let Some(p) = d.decode(&mut buf).unwrap() {
                return p;
            }
            assert!(
                io.read_buf(&mut buf).await.unwrap() > 0,
                "closed in the handshake"
            );
        }
    }

    let mut config = EndpointConfig::default();
    config.memory_budget = 1 << 20;
    let (server, listener) = Server::new(config);
    let acceptor = WsAcceptor::bind(&[SocketAddr::from(([127, 0, 0, 1], 0))], "/liag")
        .await
        .unwrap();
    let addr = acceptor.local_addrs()[0];
    tokio::spawn(serve(acceptor, server.clone()));
    echo(listener);
    // A link handshake done by hand over the WebSocket...
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/liag"), tcp)
        .await
        .unwrap();
    let mut io = WsBytes::new(ws);
    let mut decoder = FrameDecoder::new();
    let cfg = ExchangedConfig {
        recv_buffer: std::num::NonZeroU32::new(1 << 20).unwrap(),
    };
    let params = InitiatorParams::new(ConnId::new(120), false, cfg);
    let mut initiator = Initiator::new(params, &mut rand_rng(120));
    let welcome = next_packet(&mut io, &mut decoder).await;
    let InitiatorStep::SendConnect { connect, .. } = initiator.handle_packet(&welcome).unwrap()
    else {
        panic!("expected to send Connect");
    };
    let mut out = BytesMut::new();
    FrameEncoder::new().encode(&connect, &mut out).unwrap();
    io.write_all(&out).await.unwrap();
    io.flush().await.unwrap();
    let answer = next_packet(&mut io, &mut decoder).await;
    assert_eq!(Message::decode(&answer).unwrap(), Message::Accepted);
    // ... then, below it, a 15 MiB WebSocket message that never ends.
    let mut ws = io.into_inner();
    let socket = ws.get_mut();
    let mut peak = 0;
    let failed = endless_message(socket, || peak = peak.max(server.memory_used())).await;
    assert!(failed, "the acceptor took all 15 MiB");
    assert!(peak <= 1 << 20, "{peak} bytes counted");
}
