//! Round trip of a 64-byte message through one aggregated connection over N loopback TCP
//! links, against a plain TCP connection: `cargo run --release -p liag-transports --example
//! loopback_latency -- 3 2000` (links, round trips). Prints p50 and p99 for both.

mod common;

use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        if s.read_exact(&mut buf).await.is_err() {
            return Ok(());
        }
        s.write_all(&buf).await?;
    }
}

async fn measure<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    rounds: usize,
) -> std::io::Result<Vec<Duration>> {
    let msg = [5u8; 64];
    let mut buf = [0u8; 64];
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds + 100 {
        let start = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut buf).await?;
        if i >= 100 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    Ok(times)
}

fn pct(times: &[Duration], p: f64) -> f64 {
    times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let links = args.first().copied().unwrap_or(3);
    let rounds = args.get(1).copied().unwrap_or(2000);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let _ = echo(s).await;
        }
    });
    let mut plain = TcpStream::connect(addr).await?;
    plain.set_nodelay(true)?;
    let tcp = measure(&mut plain, rounds).await?;

    let (mut stream, mut incoming) = common::loopback_connection(links).await?;
    tokio::spawn(async move {
        if let Some(i) = incoming.next().await {
            let _ = echo(i.accept()).await;
        }
    });
    let liag = measure(&mut stream, rounds).await?;
    println!("64-byte round trip, {rounds} rounds   p50 µs   p99 µs");
    println!(
        "plain TCP                         {:7.1}  {:7.1}",
        pct(&tcp, 0.5),
        pct(&tcp, 0.99)
    );
    println!(
        "liag over {links} link(s)               {:7.1}  {:7.1}",
        pct(&liag, 0.5),
        pct(&liag, 0.99)
    );
    println!(
        "added by liag                     {:7.1}  {:7.1}",
        pct(&liag, 0.5) - pct(&tcp, 0.5),
        pct(&liag, 0.99) - pct(&tcp, 0.99)
    );
    Ok(())
}
