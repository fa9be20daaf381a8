//! Throughput of one aggregated connection over N TCP links on loopback, against one plain
//! TCP connection: `cargo run --release -p liag-transports --example loopback_throughput -- 3 2048`
//! (links, MiB). Prints MB/s for both.

mod common;

use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 1 << 20;

async fn plain(total: usize) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; CHUNK];
        while s.read(&mut buf).await? > 0 {}
        std::io::Result::Ok(())
    });
    let mut s = TcpStream::connect(addr).await?;
    let data = vec![7u8; CHUNK];
    let start = Instant::now();
    for _ in 0..total / CHUNK {
        s.write_all(&data).await?;
    }
    s.shutdown().await?;
    reader.await.map_err(std::io::Error::other)??;
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

async fn aggregated(links: usize, total: usize) -> std::io::Result<f64> {
    let (mut stream, mut listener) = common::loopback_connection(links).await?;
    let reader = tokio::spawn(async move {
        let mut stream = listener
            .next()
            .await
            .ok_or(std::io::ErrorKind::NotConnected)?
            .accept();
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        loop {
            let r = stream.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            n += r;
        }
        std::io::Result::Ok(n)
    });
    let data = vec![7u8; CHUNK];
    let start = Instant::now();
    for _ in 0..total / CHUNK {
        stream.write_all(&data).await?;
    }
    stream.shutdown().await?;
    let got = reader.await.map_err(std::io::Error::other)??;
    assert_eq!(got, total / CHUNK * CHUNK);
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let links = args.first().copied().unwrap_or(3);
    let total = args.get(1).copied().unwrap_or(1024) << 20;
    println!("plain TCP:             {:8.0} MB/s", plain(total).await?);
    println!(
        "liag over {links} link(s):   {:8.0} MB/s",
        aggregated(links, total).await?
    );
    Ok(())
}
