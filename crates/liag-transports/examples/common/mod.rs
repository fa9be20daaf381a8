//! Set-up shared by the loopback examples: one aggregated connection over N TCP links.

use liag_transports::UserData;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Listener, Server, connect};
use tokio::net::{TcpListener, TcpStream};

/// A client connection over `links` loopback TCP links to a server, and the server's listener,
/// whose first `Incoming` is this connection. The links' handshakes finish once the caller
/// accepts it.
pub(crate) async fn loopback_connection(links: usize) -> std::io::Result<(Connection, Listener)> {
    let (server, listener) = Server::new(EndpointConfig::default());
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let (conn, outgoing) = connect(EndpointConfig::default());
    for i in 0..links {
        let socket = TcpStream::connect(addr).await?;
        let (accepted, _) = tcp.accept().await?;
        socket.set_nodelay(true)?;
        accepted.set_nodelay(true)?;
        server.add_link(accepted, format!("tcp{i}"), UserData::empty());
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            let added = outgoing.add_link(socket, format!("tcp{i}"), UserData::empty());
            if let Err(e) = added.await {
                eprintln!("link tcp{i} did not join: {e}");
            }
        });
    }
    Ok((conn, listener))
}
