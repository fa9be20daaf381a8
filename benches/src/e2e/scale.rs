//! Many connections on one server: memory per idle connection, and the total throughput of
//! many busy ones beside as many plain TCP connections.

use serde_json::{Value, json};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use liag_transports::UserData;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Server, connect};

use super::resident_bytes;

/// A server on loopback whose connections are accepted into `tx`, and its address.
async fn liag_server(
    tx: tokio::sync::mpsc::UnboundedSender<Connection>,
) -> io::Result<std::net::SocketAddr> {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, peer)) = tcp.accept().await {
            let _ = socket.set_nodelay(true);
            server.add_link(socket, format!("tcp {peer}"), UserData::empty());
        }
    });
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            if tx.send(incoming.accept()).is_err() {
                break;
            }
        }
    });
    Ok(addr)
}

/// A client connection of one TCP link to `addr`.
async fn liag_client(addr: std::net::SocketAddr) -> io::Result<Connection> {
    let (stream, outgoing) = connect(EndpointConfig::default());
    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    outgoing.add_link(socket, "tcp", UserData::empty()).await?;
    Ok(stream)
}

/// Memory per idle connection (client and server end both in this process), with `n`
/// connections of one loopback link each: heap bytes in use as `heap` tells (the binary's
/// counting allocator), and resident memory. Run it in a fresh process: freed memory that
/// earlier scenarios leave to the allocator would hide part of the resident growth.
pub async fn idle(n: usize, heap: impl Fn() -> usize) -> io::Result<Value> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = liag_server(tx).await?;
    // One connection first, so the runtime's and the server's own start-up is not counted.
    let warm = liag_client(addr).await?;
    let warm_server = rx.recv().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = resident_bytes().unwrap_or(0);
    let heap_before = heap();
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(liag_client(addr).await?);
        servers.push(rx.recv().await.ok_or(io::ErrorKind::NotConnected)?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_bytes().unwrap_or(0);
    let per_pair = after.saturating_sub(before) as f64 / n as f64;
    let heap_per_pair = heap().saturating_sub(heap_before) as f64 / n as f64;
    drop((warm, warm_server, clients, servers));
    Ok(json!({
        "scenario": format!("{n} idle connections"),
        "kind": "idle",
        "connections": n,
        "resident_before_mib": before as f64 / (1 << 20) as f64,
        "resident_after_mib": after as f64 / (1 << 20) as f64,
        "resident_kib_per_endpoint": per_pair / 2048.0,
        "heap_kib_per_endpoint": heap_per_pair / 2048.0,
    }))
}

/// Counts what `r` delivers into `total` until it ends.
async fn count(mut r: impl AsyncRead + Unpin, total: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 256 << 10];
    while let Ok(n @ 1..) = r.read(&mut buf).await {
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Writes until `stop`, then closes.
async fn write_until(mut w: impl AsyncWrite + Unpin, stop: Arc<AtomicBool>) {
    let chunk = vec![0x33u8; 256 << 10];
    while !stop.load(Ordering::Relaxed) {
        if w.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Delivered MB/s of the connections behind `total` from `warmup` to `warmup + secs`.
async fn measure(total: &AtomicU64, warmup: f64, secs: f64) -> f64 {
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let a = total.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    (total.load(Ordering::Relaxed) - a) as f64 / secs / 1e6
}

/// The least a byte stream of protocol 4 does per byte over TCP beyond what plain TCP does,
/// as one plain TCP connection does it: the writer's bytes copied into a buffer the endpoint
/// keeps (`AsyncWrite` lends them for the call only, and a link that fails needs them sent
/// again), each frame of the default payload size checked with CRC-32 when written and when
/// read (spec §2), and what arrives copied once more, out of the buffer it was read and
/// checked in, into the reader's (frames from several links land in the endpoint's buffers
/// first). Each connection writes every copy into the same buffers, where liag's blocks hold
/// what is in flight until the peer acknowledges it: this is a floor, not a model.
async fn copy_and_check_until(mut w: TcpStream, stop: Arc<AtomicBool>) {
    let chunk = vec![0x33u8; 256 << 10];
    let mut kept = vec![0u8; chunk.len()];
    while !stop.load(Ordering::Relaxed) {
        kept.copy_from_slice(&chunk);
        check_frames(&kept);
        if w.write_all(&kept).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// The reading side of [`copy_and_check_until`], counting into `total`.
async fn check_and_copy(mut r: TcpStream, total: Arc<AtomicU64>) {
    let mut landed = vec![0u8; 128 << 10];
    let mut buf = vec![0u8; 256 << 10];
    while let Ok(n @ 1..) = r.read(&mut landed).await {
        check_frames(&landed[..n]);
        buf[..n].copy_from_slice(&landed[..n]);
        std::hint::black_box(&buf);
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Computes the CRC-32 of `data` in pieces of the default payload size, as the frames that
/// would carry it are checked.
fn check_frames(data: &[u8]) {
    let frame = liag_core::Config::default().max_payload;
    let sums = data
        .chunks(frame)
        .fold(0, |s, f| s ^ liag_proto::frame::checksum(f));
    std::hint::black_box(sums);
}

/// Total MB/s of `n` TCP connections on loopback over `secs` seconds after one second of
/// warm-up: plain, or each doing a byte stream's least work on top ([`copy_and_check_until`]).
async fn tcp_connections(n: usize, secs: f64, floor: bool) -> io::Result<f64> {
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let socket = TcpStream::connect(addr).await?;
        let (accepted, _) = listener.accept().await?;
        if floor {
            tasks.spawn(check_and_copy(accepted, total.clone()));
            tasks.spawn(copy_and_check_until(socket, stop.clone()));
        } else {
            tasks.spawn(count(accepted, total.clone()));
            tasks.spawn(write_until(socket, stop.clone()));
        }
    }
    let rate = measure(&total, 1.0, secs).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    Ok(rate)
}

/// Total throughput of `n` busy connections of one loopback link each, of `n` plain TCP
/// connections, and of `n` TCP connections doing a byte stream's least work on top
/// (`copy_and_check_until`), each measured over `secs` seconds after one second of warm-up.
pub async fn busy(n: usize, secs: f64) -> io::Result<Value> {
    let tcp = tcp_connections(n, secs, false).await?;
    let floor = tcp_connections(n, secs, true).await?;
    let mut tasks = tokio::task::JoinSet::new();

    // liag.
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = liag_server(tx).await?;
    for _ in 0..n {
        let client = liag_client(addr).await?;
        let server_end = rx.recv().await.ok_or(io::ErrorKind::NotConnected)?;
        tasks.spawn(count(server_end, total.clone()));
        tasks.spawn(write_until(client, stop.clone()));
    }
    let liag = measure(&total, 1.0, secs).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}

    Ok(json!({
        "scenario": format!("{n} busy connections"),
        "kind": "busy",
        "connections": n,
        "liag_mb_s": liag,
        "tcp_mb_s": tcp,
        "ratio": liag / tcp,
        "floor_mb_s": floor,
    }))
}
