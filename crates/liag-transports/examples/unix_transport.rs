//! Adding a transport: Unix domain sockets as liag links, through the [`Connector`] and
//! [`Acceptor`] traits. The server listens on two socket files; the client keeps one link to
//! each, and the two carry one connection.
//!
//! `cargo run -p liag-transports --example unix_transport`

use liag_transports::BoxFuture;
use liag_transports::UserData;
use liag_transports::liag_tokio::{BoxLink, Server, Settings, stream_link};
use liag_transports::{Accepted, Acceptor, Connector, connect_with, serve};
use std::io;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The client side: one path per socket file.
struct UnixConnector {
    sockets: Vec<PathBuf>,
}

impl Connector for UnixConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        // Only sockets that exist now; the connector asks again every second.
        let paths = self
            .sockets
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        Box::pin(async move { Ok(paths) })
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        Box::pin(async move {
            let stream = UnixStream::connect(path).await?;
            Ok((stream_link(stream), UserData::empty()))
        })
    }
}

/// The server side: a listener on one socket file.
struct UnixAcceptor {
    listener: UnixListener,
    name: String,
}

impl Acceptor for UnixAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxLink>>> {
        Box::pin(async move {
            let (stream, _) = self.listener.accept().await?;
            Ok(Accepted::new(
                stream_link(stream),
                self.name.clone(),
                UserData::empty(),
            ))
        })
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("liag-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sockets: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("link{i}.sock"))).collect();

    let (server, mut listener) = Server::new(Settings::default());
    for socket in &sockets {
        let _ = std::fs::remove_file(socket);
        let acceptor = UnixAcceptor {
            listener: UnixListener::bind(socket)?,
            name: socket.display().to_string(),
        };
        tokio::spawn(serve(acceptor, server.clone()));
    }
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

    let (mut stream, links) = connect_with(UnixConnector { sockets }, Settings::default());
    let message: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(&message).await?;
    // The links while the connection is open (they close with it).
    let during = links.outgoing().control().links();
    stream.shutdown().await?;
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await?;
    assert_eq!(back, message);
    println!(
        "echoed {} bytes; links while open: {:?}",
        echo.await.map_err(io::Error::other)??,
        during.iter().map(|l| &l.tag).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
