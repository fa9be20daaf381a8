//! The message API: each `Bytes` sent through the `Sink` up to a payload arrives whole and in
//! order from the peer's `Connection`; a larger one arrives in payload-sized parts.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use liag_tokio::UserData;
use liag_tokio::{EndpointConfig, Server, connect};
use std::time::Duration;

#[tokio::test]
async fn messages_arrive_whole_and_in_order() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let (mut client, outgoing) = connect(EndpointConfig::default());
    for i in 0..2 {
        let (a, b) = tokio::io::duplex(1 << 16);
        server.add_link(b, format!("pipe{i}"), UserData::empty());
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            outgoing
                .add_link(a, format!("pipe{i}"), UserData::empty())
                .await
        });
    }
    let max = EndpointConfig::default().config.max_payload;
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

/// `write_all_bytes` is a byte stream: with less room than one payload (a send buffer of
/// 8 KiB), writes of 20 KiB still go through, in parts, and arrive intact and in order.
#[tokio::test]
async fn shared_byte_writes_move_with_less_room_than_a_payload() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let mut config = EndpointConfig::default();
    config.config.send_buffer = 8 << 10;
    let (client, outgoing) = connect(config);
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe".to_string(), UserData::empty());
    tokio::spawn(async move {
        outgoing
            .add_link(a, "pipe".to_string(), UserData::empty())
            .await
    });
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Bytes> = data.chunks(20 << 10).map(Bytes::copy_from_slice).collect();
    let (_read, mut write) = client.into_split();
    let writer = tokio::spawn(async move {
        for c in chunks {
            write.write_all_bytes(c).await.unwrap();
        }
        tokio::io::AsyncWriteExt::shutdown(&mut write)
            .await
            .unwrap();
    });
    let mut server_end = listener.next().await.unwrap().accept();
    let mut got = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut server_end, &mut got);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got, data);
}
