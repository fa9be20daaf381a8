//! Shared helpers for the end-to-end tests: servers on loopback, data, digests.

#![allow(dead_code, clippy::unwrap_used)]

use bytes::BytesMut;
use liag_core::proto::frame::FrameDecoder;
use liag_transports::UserData;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Listener, Server};
use liag_transports::tcp::{TcpAcceptor, TcpConnector, TcpLinkFilter};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server listening on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (each on a port of its own).
pub(crate) async fn server(config: EndpointConfig) -> (Server, Listener, Vec<SocketAddr>) {
    let (server, listener) = Server::new(config);
    let mut addrs = Vec::new();
    let mut acceptors = Vec::new();
    for i in 1..=3u8 {
        let acceptor = TcpAcceptor::bind(&[SocketAddr::from(([127, 0, 0, i], 0))])
            .await
            .unwrap();
        addrs.extend(acceptor.local_addrs());
        acceptors.push(acceptor);
    }
    for acceptor in acceptors {
        tokio::spawn(acceptor.serve(server.clone()));
    }
    (server, listener, addrs)
}

/// A connector with one link per target address (all on `lo`).
pub(crate) fn connector(addrs: &[SocketAddr]) -> TcpConnector {
    let mut c = TcpConnector::new(addrs.iter().map(ToString::to_string), 0);
    c.set_filter(TcpLinkFilter::InterfaceIp);
    c
}

/// Deterministic test data: `len` bytes from a simple generator seeded with `seed`.
pub(crate) fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Writes `payload` into `stream` and closes its sending side, on a task of its own; the task
/// gives the stream back.
pub(crate) fn write_then_close(
    mut stream: Connection,
    payload: &[u8],
) -> tokio::task::JoinHandle<Connection> {
    let payload = payload.to_vec();
    tokio::spawn(async move {
        stream.write_all(&payload).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    })
}

/// Reads a stream to its end, hashing as it goes; returns (bytes, digest).
pub(crate) async fn drain(stream: &mut Connection) -> (u64, [u8; 32]) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (total, hasher.finalize().into())
}

/// Echo server application: every accepted connection gets its bytes back.
pub(crate) fn echo(mut listener: Listener) {
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            let stream = incoming.accept();
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
}

pub(crate) fn empty() -> UserData {
    UserData::empty()
}

/// Writes `payload` through `stream` and shuts its write side down, while reading back
/// everything the peer sends until it ends.
pub(crate) async fn roundtrip(stream: Connection, payload: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = stream.into_split();
    tokio::spawn(async move {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    back
}

/// The next framed packet from a raw socket (a hand-made peer's handshake, say).
pub(crate) async fn receive(
    socket: &mut TcpStream,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> bytes::Bytes {
    loop {
        if let Some(p) = decoder.decode(buf).unwrap() {
            return p;
        }
        let n = socket.read_buf(buf).await.unwrap();
        assert!(n > 0, "server closed during the handshake");
    }
}

/// A seeded generator for hand-made handshakes.
pub(crate) fn rand_rng(seed: u64) -> impl rand_core::CryptoRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(seed)
}
