//! A peer's Terminate reaches the application as an error, not as an end of stream.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_tokio::liag_core::proto::message::UserData;
use liag_tokio::{Server, Settings, connect};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn terminate_is_an_error_for_the_peer() {
    let (server, mut listener) = Server::new(Settings::default());
    tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).await.unwrap();
        stream.control().terminate();
    });
    let (mut client, outgoing) = connect(Settings::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_incoming(b, "pipe", UserData::empty());
    outgoing
        .add_link(a, "pipe", UserData::empty())
        .await
        .unwrap();
    client.write_all(b"\x27\x0fhi").await.unwrap();
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let result = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}
