//! The message API: each `Bytes` sent through the `Sink` up to a payload arrives whole and in
//! order from the peer's `Stream`; a larger one arrives in payload-sized parts.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use liag_tokio::liag_core::proto::message::UserData;
use liag_tokio::{Server, Settings, connect};
use std::time::Duration;

#[tokio::test]
async fn messages_arrive_whole_and_in_order() {
    let (server, mut listener) = Server::new(Settings::default());
    let (mut client, outgoing) = connect(Settings::default());
    for i in 0..2 {
        let (a, b) = tokio::io::duplex(1 << 16);
        server.add_incoming(b, format!("pipe{i}"), UserData::empty());
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            outgoing
                .add_link(a, format!("pipe{i}"), UserData::empty())
                .await
        });
    }
    let max = Settings::default().config.max_payload;
    // Sizes from one byte to a whole payload, then one of 40 payloads.
    let sizes: Vec<usize> = (0..200)
        .map(|i| 1 + i * 997 % max)
        .chain([max, 40 * max])
        .collect();
    let messages: Vec<Bytes> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
        .collect();
    let sent = messages.clone();
    let writer = tokio::spawn(async move {
        for m in sent {
            client.send(m).await.unwrap();
        }
        client.close().await.unwrap();
    });
    let mut server_end = listener.next().await.unwrap().accept();
    let mut got = Vec::new();
    let read_all = async {
        while let Some(m) = server_end.next().await {
            got.push(m.unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all)
        .await
        .unwrap();
    writer.await.unwrap();

    let (whole, big) = messages.split_at(messages.len() - 1);
    assert_eq!(
        &got[..whole.len()],
        whole,
        "every message up to a payload arrives whole"
    );
    let rest = &got[whole.len()..];
    assert!(
        rest.iter().all(|part| part.len() <= max),
        "parts fit a payload"
    );
    assert_eq!(
        rest.concat(),
        big[0],
        "the large message arrives in order, in parts"
    );
}
