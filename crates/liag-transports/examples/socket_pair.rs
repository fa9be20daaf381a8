//! A transport inside one process: each link is a Unix socket pair, one end for the client,
//! the other handed straight to the server. Handy for tests, and the smallest transport there
//! is: a `StreamConnector` whose `open_stream` makes the pair.
//!
//! `cargo run -p liag-transports --example socket_pair`

use liag_transports::{
    BoxFuture, BoxStream, EndpointConfig, Server, StreamConnector, UserData, box_stream,
    connect_with,
};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Paths `pair0`, `pair1`, ...; opening one makes a socket pair and gives the server its end.
struct PairConnector {
    server: Server,
    links: usize,
}

impl StreamConnector for PairConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let paths = (0..self.links).map(|i| format!("pair{i}")).collect();
        Box::pin(async move { Ok(paths) })
    }

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let (ours, theirs) = UnixStream::pair()?;
            self.server.add_link(theirs, path, UserData::empty());
            Ok((box_stream(ours), UserData::empty()))
        })
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    // The server's application, started first: a link's handshake ends only once the server
    // accepted its connection.
    let echo = tokio::spawn(async move {
        let mut stream = listener
            .next()
            .await
            .ok_or(io::ErrorKind::NotConnected)?
            .accept();
        let mut data = Vec::new();
        stream.read_to_end(&mut data).await?;
        stream.write_all(&data).await?;
        stream.shutdown().await?;
        io::Result::Ok(data.len())
    });

    let connector = PairConnector { server, links: 3 };
    let (mut stream, links) = connect_with(connector, EndpointConfig::default());
    links.wait_for_links(3, Duration::from_secs(5)).await?;
    let tags: Vec<String> = links
        .outgoing()
        .control()
        .links()
        .into_iter()
        .map(|l| l.tag)
        .collect();

    let message: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
    let exchange = async {
        stream.write_all(&message).await?;
        stream.shutdown().await?;
        let mut back = Vec::new();
        stream.read_to_end(&mut back).await?;
        io::Result::Ok(back)
    };
    let back = tokio::time::timeout(Duration::from_secs(30), exchange).await??;
    if back != message {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    let echoed = tokio::time::timeout(Duration::from_secs(5), echo)
        .await?
        .map_err(io::Error::other)??;
    println!("echoed {echoed} bytes over socket pairs {tags:?}");
    Ok(())
}
