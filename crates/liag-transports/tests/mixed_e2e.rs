//! One connection over TCP, WebSocket and TLS-over-TCP links at once, on loopback; each kind
//! of link is killed mid-transfer (its TCP connection cut) and every byte still arrives.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;
mod kit;

use common::*;
use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::tcp::{TcpAcceptor, TcpConnector};
use liag_transports::tls::{TlsAcceptor, TlsConnector, ca_client_config};
use liag_transports::websocket::{WsAcceptor, WsConnector};
use liag_transports::{MultiConnector, connect_with, serve};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_websocket_and_tls_links_each_killed_mid_transfer() {
    let pki = kit::Pki::new();
    let pem = pki.write();
    let any = [SocketAddr::from((LOOPBACK, 0))];

    // The server: one acceptor per kind, all feeding one Server.
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let tcp = TcpAcceptor::bind(&any).await.unwrap();
    let ws = WsAcceptor::bind(&any, "/liag").await.unwrap();
    let tls_inner = TcpAcceptor::bind(&any).await.unwrap();
    let (tcp_addr, ws_addr, tls_addr) = (
        tcp.local_addrs()[0],
        ws.local_addrs()[0],
        tls_inner.local_addrs()[0],
    );
    tokio::spawn(serve(tcp, server.clone()));
    tokio::spawn(serve(ws, server.clone()));
    tokio::spawn(serve(
        TlsAcceptor::new(tls_inner, pki.server_config()),
        server.clone(),
    ));

    // Each kind runs through a relay that can cut its connections.
    let relays = [
        kit::Relay::start(tcp_addr).await,
        kit::Relay::start(ws_addr).await,
        kit::Relay::start(tls_addr).await,
    ];
    let tcp = TcpConnector::new([relays[0].addr.to_string()], 0);
    let ws = WsConnector::new([format!("ws://{}/liag", relays[1].addr)]).unwrap();
    let tls = TlsConnector::new(
        TcpConnector::new([relays[2].addr.to_string()], 0),
        ca_client_config(&pem.ca).unwrap(),
        "localhost",
    )
    .unwrap();
    let connector = MultiConnector::new().with(tcp).with(ws).with(tls);

    let received = Arc::new(AtomicU64::new(0));
    let progress = received.clone();
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            progress.fetch_add(n as u64, Ordering::Relaxed);
        }
        <[u8; 32]>::from(hasher.finalize())
    });

    let (mut stream, links) = connect_with(connector, EndpointConfig::default());
    let control = links.outgoing().control();
    // All three kinds up before the transfer starts (bounded wait).
    for _ in 0..1000 {
        if control.links().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut tags: Vec<String> = control.links().into_iter().map(|l| l.tag).collect();
    tags.sort();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags.iter().any(|t| t.contains("ws://")), "{tags:?}");
    assert!(tags.iter().any(|t| t.ends_with("(tls)")), "{tags:?}");

    let total = 96u64 << 20;
    let payload = data(21, total as usize);
    let expected = sha256(&payload);
    let writer = tokio::spawn(async move {
        for chunk in payload.chunks(256 << 10) {
            stream.write_all(chunk).await.unwrap();
        }
        stream.shutdown().await.unwrap();
        stream
    });

    // Kill TCP at a quarter, WebSocket at a half, TLS at three quarters of the data received.
    for (i, relay) in relays.iter().enumerate() {
        let mark = total * (i as u64 + 1) / 4;
        for _ in 0..12_000 {
            if received.load(Ordering::Relaxed) >= mark {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            received.load(Ordering::Relaxed) < total,
            "the transfer ended before link {i} was killed"
        );
        assert!(relay.cut() >= 1, "relay {i} had a link to kill");
    }

    let digest = tokio::time::timeout(Duration::from_secs(120), sink)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.load(Ordering::Relaxed), total);
    assert_eq!(digest, expected);
    drop(writer.await.unwrap());
}
