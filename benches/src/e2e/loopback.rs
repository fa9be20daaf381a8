//! Loopback TCP: bulk throughput over 1 and 3 links, and the round trip of a small message,
//! each beside one plain TCP connection.

use serde_json::{Value, json};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{CHUNK, accept, loopback_connection, median, quantile};

/// Writes `total` bytes to `w` in `CHUNK`s and closes it.
async fn send(mut w: impl AsyncWrite + Unpin, total: usize) -> io::Result<()> {
    let data = vec![0x5au8; CHUNK];
    for _ in 0..total / CHUNK {
        w.write_all(&data).await?;
    }
    w.shutdown().await
}

/// Reads `r` to its end; returns the byte count.
async fn sink(mut r: impl AsyncRead + Unpin) -> io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0;
    loop {
        match r.read(&mut buf).await? {
            0 => return Ok(n),
            got => n += got,
        }
    }
}

fn mb_per_s(bytes: usize, since: Instant) -> f64 {
    bytes as f64 / since.elapsed().as_secs_f64() / 1e6
}

/// One plain TCP connection: MB/s for `total` bytes.
async fn plain_tcp(total: usize) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move { sink(listener.accept().await?.0).await });
    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let start = Instant::now();
    send(socket, total).await?;
    let got = reader.await.map_err(io::Error::other)??;
    check(got, total)?;
    Ok(mb_per_s(total, start))
}

/// The least any endpoint of the protocol does to carry `total` bytes over `links` loopback
/// links: plain TCP connections carrying them in frames of the default payload size, each
/// frame's CRC-32 (spec §2) computed when it is written and when it is read, and nothing else
/// (no header, no acknowledgement, no copy in user space). MB/s.
async fn checked_tcp(links: usize, total: usize) -> io::Result<f64> {
    let frame = liag_core::Config::default().max_payload;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (mut writers, mut readers) = (Vec::new(), tokio::task::JoinSet::new());
    for _ in 0..links {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        writers.push(socket);
        let mut accepted = listener.accept().await?.0;
        readers.spawn(async move {
            let mut buf = vec![0u8; frame];
            let (mut got, mut sums) = (0, 0u32);
            loop {
                match accepted.read_exact(&mut buf).await {
                    Ok(_) => {
                        sums ^= liag_proto::frame::checksum(&buf);
                        got += frame;
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            std::hint::black_box(sums);
            io::Result::Ok(got)
        });
    }
    let data = bytes::Bytes::from(vec![0x5au8; frame]);
    let frames = total / frame / links;
    let start = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for mut socket in writers {
        let data = data.clone();
        sending.spawn(async move {
            let mut sums = 0u32;
            for _ in 0..frames {
                sums ^= liag_proto::frame::checksum(&data);
                socket.write_all(&data).await?;
            }
            std::hint::black_box(sums);
            socket.shutdown().await
        });
    }
    while let Some(sent) = sending.join_next().await {
        sent.map_err(io::Error::other)??;
    }
    let mut got = 0;
    while let Some(read) = readers.join_next().await {
        got += read.map_err(io::Error::other)??;
    }
    if got != frames * links * frame {
        return Err(io::Error::other(format!("received {got} of {total} bytes")));
    }
    Ok(mb_per_s(got, start))
}

/// One aggregated connection over `links` loopback links: MB/s for `total` bytes.
async fn aggregated(links: usize, total: usize) -> io::Result<f64> {
    let (stream, mut listener) = loopback_connection(links).await?;
    let reader = tokio::spawn(async move { sink(accept(&mut listener).await?).await });
    let start = Instant::now();
    send(stream, total).await?;
    let got = reader.await.map_err(io::Error::other)??;
    check(got, total)?;
    Ok(mb_per_s(total, start))
}

/// The same through the message API: the sender shares one buffer for every message, the
/// receiver counts the messages' bytes, so no byte is copied outside liag.
async fn aggregated_messages(links: usize, total: usize) -> io::Result<f64> {
    use futures::{SinkExt, StreamExt};
    let (mut stream, mut listener) = loopback_connection(links).await?;
    let reader = tokio::spawn(async move {
        let mut incoming = accept(&mut listener).await?;
        let mut n = 0;
        while let Some(msg) = incoming.next().await {
            n += msg?.len();
        }
        io::Result::Ok(n)
    });
    let data = bytes::Bytes::from(vec![0x5au8; CHUNK]);
    let start = Instant::now();
    for _ in 0..total / CHUNK {
        stream.feed(data.clone()).await?;
    }
    stream.close().await?;
    let got = reader.await.map_err(io::Error::other)??;
    check(got, total)?;
    Ok(mb_per_s(total, start))
}

fn check(got: usize, total: usize) -> io::Result<()> {
    if got == total / CHUNK * CHUNK {
        Ok(())
    } else {
        Err(io::Error::other(format!("received {got} of {total} bytes")))
    }
}

/// Bulk throughput over 1 and 3 links against plain TCP: `rounds` interleaved runs of `mib`
/// MiB each, medians reported.
pub async fn throughput(rounds: usize, mib: usize) -> io::Result<Vec<Value>> {
    let total = mib << 20;
    let (mut tcp, mut one, mut three, mut msgs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut floor_one, mut floor_three) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        tcp.push(plain_tcp(total).await?);
        floor_one.push(checked_tcp(1, total).await?);
        floor_three.push(checked_tcp(3, total).await?);
        one.push(aggregated(1, total).await?);
        three.push(aggregated(3, total).await?);
        msgs.push(aggregated_messages(3, total).await?);
    }
    let base = median(&tcp);
    let cases = [
        (1, "byte stream", one, &floor_one),
        (3, "byte stream", three, &floor_three),
        (3, "message API", msgs, &floor_three),
    ];
    Ok(cases
        .into_iter()
        .map(|(links, api, runs, floor)| {
            json!({
                "scenario": format!("throughput, {links} loopback link{}, {api}", if links > 1 { "s" } else { "" }),
                "kind": "throughput",
                "api": api,
                "links": links,
                "liag_mb_s": median(&runs),
                "tcp_mb_s": base,
                "ratio": median(&runs) / base,
                "runs_liag_mb_s": runs,
                "runs_tcp_mb_s": tcp,
                "floor_mb_s": median(floor),
                "runs_floor_mb_s": floor,
            })
        })
        .collect())
}

/// Times `samples` round trips of a 64-byte message after `warmup` more.
async fn ping_pong<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    warmup: usize,
    samples: usize,
) -> io::Result<Vec<Duration>> {
    let mut msg = [0u8; 64];
    let mut times = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let start = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut msg).await?;
        if i >= warmup {
            times.push(start.elapsed());
        }
    }
    Ok(times)
}

/// Echoes 64-byte messages until the peer closes.
async fn echo(mut s: impl AsyncRead + AsyncWrite + Unpin) -> io::Result<()> {
    let mut msg = [0u8; 64];
    while s.read_exact(&mut msg).await.is_ok() {
        s.write_all(&msg).await?;
    }
    Ok(())
}

/// Round trip of a 64-byte message through a connection over `links` loopback links and
/// through plain TCP: p50 and p99 of `samples` each.
pub async fn round_trip(links: usize, samples: usize) -> io::Result<Value> {
    let warmup = samples / 10;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        echo(s).await
    });
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut plain = ping_pong(&mut tcp, warmup, samples).await?;
    drop(tcp);
    server.await.map_err(io::Error::other)??;

    let (mut stream, mut listener) = loopback_connection(links).await?;
    tokio::spawn(async move { echo(accept(&mut listener).await?).await });
    let mut liag = ping_pong(&mut stream, warmup, samples).await?;

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (t50, t99) = (quantile(&mut plain, 0.5), quantile(&mut plain, 0.99));
    let (l50, l99) = (quantile(&mut liag, 0.5), quantile(&mut liag, 0.99));
    Ok(json!({
        "scenario": format!("64-byte round trip, {links} loopback links"),
        "kind": "round_trip",
        "links": links,
        "samples": samples,
        "tcp_p50_us": us(t50), "tcp_p99_us": us(t99),
        "liag_p50_us": us(l50), "liag_p99_us": us(l99),
        "added_p50_us": us(l50) - us(t50), "added_p99_us": us(l99) - us(t99),
    }))
}
