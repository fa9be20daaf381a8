//! A peer's Terminate reaches the application as an error, not as an end of stream.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_tokio::UserData;
use liag_tokio::{EndpointConfig, Server, connect};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn terminate_is_an_error_for_the_peer() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).await.unwrap();
        stream.control().terminate();
    });
    let (mut client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe", UserData::empty());
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

#[tokio::test]
async fn a_link_refused_as_closed_ends_the_connection() {
    use liag_core::ConnectionError;
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let stream = listener.next().await.unwrap().accept();
        let control = stream.control();
        // The client takes its only link away; the server then ends the connection, which
        // it can no longer tell the client.
        while !control.links().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        control.terminate();
        let _ = control.closed().await;
        let _ = ended_tx.send(());
        drop(stream);
    });
    let (_client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe", UserData::empty());
    let first = outgoing
        .add_link(a, "pipe", UserData::empty())
        .await
        .unwrap();
    outgoing.control().remove_link(first);
    ended_rx.await.unwrap();
    // Let the server forget the connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe 2", UserData::empty());
    let refused = outgoing.add_link(a, "pipe 2", UserData::empty()).await;
    assert!(refused.is_err());
    // At once, not after the no-link timeout.
    let control = outgoing.control();
    let result = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(result) = control.result() {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection ended");
    assert_eq!(result, Err(ConnectionError::AbortedByServer));
}
