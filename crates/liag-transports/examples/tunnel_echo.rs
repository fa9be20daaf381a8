//! Speaks agg-tunnel's stream (a 2-byte port header, then the forwarded bytes) for interop
//! checks against aggligator's `agg-tunnel`:
//!
//! - `tunnel_echo client HOST:PORT[,HOST:PORT...] [MiB]`: connects with liag, sends the header for port 5401
//!   and MiB of data, and checks that the echo comes back intact;
//! - `tunnel_echo server PORT`: a liag server that reads the header and echoes the rest.

use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::tcp::{TcpAcceptor, TcpConnector, TcpLinkFilter};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

async fn client(target: String, mib: usize) -> std::io::Result<()> {
    let mut connector = TcpConnector::new(
        target.split(',').map(str::to_owned).collect::<Vec<_>>(),
        5800,
    );
    connector.set_filter(TcpLinkFilter::None);
    let targets = target.split(',').count();
    let (stream, links) = connector.connect(EndpointConfig::default()).await?;
    // A link before the data starts, and the others if they come soon (a name may stand for
    // several addresses, or two for one).
    links
        .wait_for_link(std::time::Duration::from_secs(10))
        .await?;
    let _ = links
        .wait_for_links(targets, std::time::Duration::from_secs(1))
        .await;
    let link_count = links.outgoing().control().links().len();
    let (mut r, mut w) = stream.into_split();
    let data = pattern(mib << 20);
    let sent = data.clone();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        w.write_all(&5401u16.to_be_bytes()).await?;
        w.write_all(&sent).await?;
        w.shutdown().await?;
        std::io::Result::Ok(w)
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await?;
    let _w = writer.await.map_err(std::io::Error::other)??;
    let ok = back == data;
    println!(
        "echo of {} bytes: {} in {:.2} s over {} link(s)",
        data.len(),
        if ok { "identical" } else { "DIFFERENT" },
        start.elapsed().as_secs_f64(),
        link_count
    );
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::other("echo differs"))
    }
}

async fn server(port: u16) -> std::io::Result<()> {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let acceptor = TcpAcceptor::bind(&[SocketAddr::from(([127, 0, 0, 1], port))]).await?;
    tokio::spawn(acceptor.serve(server));
    println!("liag echo server on 127.0.0.1:{port}");
    while let Some(incoming) = listener.next().await {
        println!("new connection from {}", incoming.tag());
        let mut stream = incoming.accept();
        tokio::spawn(async move {
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).await?;
            println!("port header {}", u16::from_be_bytes(header));
            let (mut r, mut w) = tokio::io::split(stream);
            let n = tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await?;
            println!("echoed {n} bytes");
            std::io::Result::Ok(())
        });
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["client", target, rest @ ..] => {
            client(
                target.to_string(),
                rest.first().and_then(|m| m.parse().ok()).unwrap_or(4),
            )
            .await
        }
        ["server", port] => server(port.parse().map_err(std::io::Error::other)?).await,
        _ => Err(std::io::Error::other(
            "usage: tunnel_echo client HOST:PORT [MiB] | server PORT",
        )),
    }
}
