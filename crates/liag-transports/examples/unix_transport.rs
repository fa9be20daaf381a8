//! A transport of your own: Unix domain sockets as liag links. The server listens on two
//! socket files; the client keeps one link to each, and the two carry one connection.
//!
//! A byte-stream transport implements `StreamConnector` and `StreamAcceptor`; liag frames the
//! streams for it, and wrappers such as TLS fit around it.
//!
//! `cargo run -p liag-transports --example unix_transport`

use liag_transports::{
    Accepted, BoxFuture, BoxStream, EndpointConfig, Server, StreamAcceptor, StreamConnector,
    UserData, box_stream, connect_with, serve,
};
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The client side: one path per socket file.
struct UnixConnector {
    sockets: Vec<PathBuf>,
}

impl StreamConnector for UnixConnector {
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

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let stream = UnixStream::connect(path).await?;
            Ok((box_stream(stream), UserData::empty()))
        })
    }
}

/// The server side: a listener on one socket file.
struct UnixAcceptor {
    listener: UnixListener,
    name: String,
}

impl StreamAcceptor for UnixAcceptor {
    // Cancel-safe, as a StreamAcceptor must be: `UnixListener::accept` is.
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>> {
        Box::pin(async move {
            let (stream, _) = self.listener.accept().await?;
            Ok(Accepted::new(
                box_stream(stream),
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
    let result = run(&dir).await;
    std::fs::remove_dir_all(&dir)?;
    result
}

async fn run(dir: &std::path::Path) -> io::Result<()> {
    let sockets: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("link{i}.sock"))).collect();

    // The server: one acceptor per socket file, all into one Server, and an application that
    // accepts the connection (in a task of its own, so it runs while the links come up).
    let (server, mut listener) = Server::new(EndpointConfig::default());
    for socket in &sockets {
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

    // The client: a link over each socket file.
    let (mut stream, links) = connect_with(UnixConnector { sockets }, EndpointConfig::default());
    links.wait_for_links(2, Duration::from_secs(5)).await?;
    let tags: Vec<String> = links
        .outgoing()
        .control()
        .links()
        .into_iter()
        .map(|l| l.tag)
        .collect();

    let message: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
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
    println!("echoed {echoed} bytes over links {tags:?}");
    Ok(())
}
