//! Links cut in the middle of a transfer, and not a byte lost: three TCP links on loopback
//! carry 96 MB; a third of the way through one link is removed with `Control::drop_link`, two
//! thirds of the way another one's socket is shut down under it. The connector opens fresh
//! links on both paths, and the receiver checks every byte.
//!
//! To shut a socket down from outside, the client's transport keeps a second handle to each
//! socket it opens: a `StreamConnector` over TCP in a few lines.
//!
//! `cargo run -p liag-transports --example cut_link`

use liag_transports::tcp::TcpAcceptor;
use liag_transports::{
    BoxFuture, BoxStream, EndpointConfig, LinkEvent, Server, StreamConnector, UserData, box_stream,
    connect_with, serve,
};
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOTAL: usize = 96 << 20;
const PIECE: usize = 256 << 10;

/// The byte at `offset` of the stream.
fn byte_at(offset: usize) -> u8 {
    (offset % 251) as u8
}

/// A second handle to the newest socket on each path, to shut it down from outside.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<HashMap<String, std::net::TcpStream>>>);

impl Sockets {
    /// Shuts down the socket of the newest link on `path`, as a failing network would.
    fn cut(&self, path: &str) -> io::Result<()> {
        let sockets = self.0.lock().expect("not poisoned");
        let socket = sockets.get(path).ok_or(io::ErrorKind::NotFound)?;
        socket.shutdown(Shutdown::Both)
    }
}

/// TCP links to each target, keeping a handle to every socket it opens.
struct CuttableTcp {
    targets: Vec<SocketAddr>,
    sockets: Sockets,
}

impl StreamConnector for CuttableTcp {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let paths = self.targets.iter().map(ToString::to_string).collect();
        Box::pin(async move { Ok(paths) })
    }

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let addr: SocketAddr = path.parse().map_err(io::Error::other)?;
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            // A second handle to the same socket, to shut it down later.
            let std = stream.into_std()?;
            let handle = std.try_clone()?;
            self.sockets
                .0
                .lock()
                .expect("not poisoned")
                .insert(path.to_string(), handle);
            Ok((box_stream(TcpStream::from_std(std)?), UserData::empty()))
        })
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    // The server: three loopback addresses, and an application that checks every byte.
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let local: Vec<SocketAddr> = (1..=3)
        .map(|i| SocketAddr::from(([127, 0, 0, i], 0)))
        .collect();
    let acceptor = TcpAcceptor::bind(&local).await?;
    let targets = acceptor.local_addrs();
    tokio::spawn(serve(acceptor, server));
    let checker = tokio::spawn(async move {
        let mut stream = listener
            .next()
            .await
            .ok_or(io::ErrorKind::NotConnected)?
            .accept();
        let (mut offset, mut buf) = (0, vec![0u8; 1 << 16]);
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return io::Result::Ok(offset);
            }
            if let Some(i) = (0..n).find(|&i| buf[i] != byte_at(offset + i)) {
                let at = offset + i;
                return Err(io::Error::other(format!("byte {at} differs")));
            }
            offset += n;
        }
    });

    // The client.
    let sockets = Sockets::default();
    let tcp = CuttableTcp {
        targets: targets.clone(),
        sockets: sockets.clone(),
    };
    let (mut stream, links) = connect_with(tcp, EndpointConfig::default());
    let control = links.outgoing().control();
    let mut events = control.link_events();
    links.wait_for_links(3, Duration::from_secs(5)).await?;

    // The pattern repeats every 251 bytes: each piece is a window of it.
    let pattern: Vec<u8> = (0..PIECE + 251).map(byte_at).collect();
    let send = async {
        for n in 0..TOTAL / PIECE {
            let start = byte_at(n * PIECE) as usize;
            stream.write_all(&pattern[start..start + PIECE]).await?;
            if n == TOTAL / PIECE / 3 {
                let path = targets[0].to_string();
                let links = control.links();
                let link = links.iter().find(|link| link.tag == path);
                let link = link.ok_or(io::ErrorKind::NotFound)?;
                println!(
                    "{:>9} bytes written: dropping {} on {path}",
                    n * PIECE,
                    link.id
                );
                control.drop_link(link.id);
            }
            if n == 2 * TOTAL / PIECE / 3 {
                let path = targets[2].to_string();
                println!(
                    "{:>9} bytes written: shutting the socket on {path} down",
                    n * PIECE
                );
                sockets.cut(&path)?;
            }
        }
        stream.shutdown().await
    };
    tokio::time::timeout(Duration::from_secs(60), send).await??;
    let checked = tokio::time::timeout(Duration::from_secs(60), checker)
        .await?
        .map_err(io::Error::other)??;

    while let Ok(event) = events.try_recv() {
        match event {
            LinkEvent::Added { link } => println!("{link} joined"),
            LinkEvent::Removed { link, error } => println!("{link} removed: {error}"),
            _ => {}
        }
    }
    for link in control.links() {
        println!("{} on {}: {:?}", link.id, link.tag, link.state);
    }
    if checked != TOTAL {
        return Err(io::Error::other(format!(
            "{checked} of {TOTAL} bytes arrived"
        )));
    }
    println!("all {checked} bytes arrived in order and intact");
    Ok(())
}
