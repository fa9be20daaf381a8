//! The byte stream's writes are copied: a small one into a buffer of its own, a large one into
//! blocks of the process's write pool, which come back for later writes once acknowledged.
//! Whatever the sizes, and however the pool's blocks are reused, every byte arrives in order.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_tokio::UserData;
use liag_tokio::{EndpointConfig, Server, connect};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Byte `i` of the stream: a pattern that shows a misplaced or repeated block.
fn byte(i: usize) -> u8 {
    (i % 251) as u8 ^ (i >> 16) as u8
}

#[tokio::test]
async fn writes_of_every_size_around_the_pooled_blocks_arrive_intact() {
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
    // Below, at and around half a block and a block (64 KiB), and several blocks and a tail,
    // each many times so the pool's blocks are reused for later writes.
    let sizes = [
        1,
        32 << 10,
        (32 << 10) - 1,
        64 << 10,
        (64 << 10) + 1,
        300_007,
    ];
    let total: usize = sizes.iter().sum::<usize>() * 20;
    let stream: Vec<u8> = (0..total).map(byte).collect();
    let sent = stream.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for round in 0..20 {
            // The sizes in a different order each round.
            for k in 0..sizes.len() {
                let n = sizes[(k + round) % sizes.len()];
                client.write_all(&sent[at..at + n]).await.unwrap();
                at += n;
            }
        }
        assert_eq!(at, total);
        client.shutdown().await.unwrap();
    });
    let mut server_end = listener.next().await.unwrap().accept();
    let mut got = Vec::with_capacity(total);
    tokio::time::timeout(Duration::from_secs(60), server_end.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), total, "every byte arrives");
    assert!(got == stream, "in order, each where it was written");
}
