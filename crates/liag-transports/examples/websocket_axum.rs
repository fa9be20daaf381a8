//! WebSocket links through an HTTP server's route: an axum server upgrades `/liag` and hands
//! each socket to a liag [`Server`]; other routes stay ordinary HTTP. A liag client then
//! echoes data through it.
//!
//! `cargo run -p liag-transports --example websocket_axum`

use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::routing::get;
use bytes::Bytes;
use futures::{SinkExt, StreamExt, future};
use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::websocket::tungstenite::{Error as WsError, Message};
use liag_transports::websocket::{WsBytes, WsConnector, acceptor_user_data};
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// axum's message as tungstenite's, which [`WsBytes`] reads (only Binary carries data).
fn from_axum(m: AxumMessage) -> Message {
    match m {
        AxumMessage::Binary(b) => Message::Binary(b),
        AxumMessage::Text(t) => Message::Text(t.as_str().into()),
        AxumMessage::Ping(b) => Message::Ping(b),
        AxumMessage::Pong(b) => Message::Pong(b),
        AxumMessage::Close(_) => Message::Close(None),
    }
}

/// tungstenite's message as axum's; [`WsBytes`] only ever sends Binary.
fn to_axum(m: Message) -> AxumMessage {
    match m {
        Message::Binary(b) => AxumMessage::Binary(b),
        Message::Text(t) => AxumMessage::Text(t.as_str().into()),
        Message::Ping(b) => AxumMessage::Ping(b),
        Message::Pong(b) => AxumMessage::Pong(b),
        Message::Close(_) | Message::Frame(_) => AxumMessage::Close(None),
    }
}

/// An upgraded axum WebSocket as a byte stream for liag.
fn into_bytes(socket: WebSocket) -> impl tokio::io::AsyncRead + tokio::io::AsyncWrite {
    let (sink, stream) = socket.split();
    let stream = stream.map(|m| {
        m.map(from_axum)
            .map_err(|e| WsError::Io(io::Error::other(e)))
    });
    let sink = sink
        .sink_map_err(|e| WsError::Io(io::Error::other(e)))
        .with(|m: Message| future::ready(Ok::<_, WsError>(to_axum(m))));
    // Reading needs only the stream half and writing only the sink half.
    tokio::io::join(WsBytes::new(stream), WsBytes::new(Box::pin(sink)))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(server): State<Server>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> axum::response::Response {
    // Bound what one message may make the route hold before liag sees it.
    ws.max_message_size(liag_transports::websocket::MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            // As aggligator's default acceptor: the user data is the octets of `::`.
            let user_data = acceptor_user_data(Ipv6Addr::UNSPECIFIED.into());
            // With the peer's address, the server's per-source limits apply.
            let tag = format!("axum /liag <- {peer}");
            server.add_link_from(into_bytes(socket), tag, user_data, peer.ip());
        })
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { "an ordinary page beside the liag route\n" }),
        )
        .route("/liag", get(upgrade))
        .with_state(server);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = http.local_addr()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(http, app).await });

    // The liag application: echo each connection.
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            let stream = incoming.accept();
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });

    let connector = WsConnector::new([format!("ws://{addr}/liag")])?;
    let (stream, links) = connector.connect(EndpointConfig::default()).await?;
    links
        .wait_for_link(std::time::Duration::from_secs(10))
        .await?;
    let message: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = stream.into_split();
    let sent = Bytes::from(message.clone());
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await?;
        w.shutdown().await
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await?;
    writer.await.map_err(io::Error::other)??;
    assert_eq!(back, message);
    println!(
        "echoed {} bytes over {:?}",
        back.len(),
        links
            .outgoing()
            .control()
            .links()
            .iter()
            .map(|l| &l.tag)
            .collect::<Vec<_>>()
    );
    Ok(())
}
