//! `Control::link_rates` counts a link's bytes from the moment it joined, even when the link
//! carried its data before the driver's next regular sample. Runs in tokio's paused time.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use liag_tokio::UserData;
use liag_tokio::{EndpointConfig, Server, connect};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_burst_right_after_a_link_joins_shows_in_its_rates() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let (mut client, outgoing) = connect(EndpointConfig::default());
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe".to_string(), UserData::empty());
    let adding = outgoing.clone();
    tokio::spawn(async move {
        adding
            .add_link(a, "pipe".to_string(), UserData::empty())
            .await
    });

    // 4 MiB in one burst; in paused time it moves without the clock advancing, so no regular
    // sample falls between the link joining and the data being through. The server reads
    // as it comes: the client queues only milliseconds of it (`Config::send_queue_time`).
    let burst = Bytes::from(vec![7u8; 4 << 20]);
    let len = burst.len();
    let reading = tokio::spawn(async move {
        let mut server_end = listener.next().await.unwrap().accept();
        let mut received = 0;
        while received < len {
            received += server_end.next().await.unwrap().unwrap().len();
        }
    });
    client.send(burst.clone()).await.unwrap();
    reading.await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rates = outgoing.control().link_rates();
    assert_eq!(rates.len(), 1);
    let link = &rates[0];
    assert!(link.stats.sent_bytes >= burst.len() as u64, "{link:?}");
    // The whole burst went within the last second and the last ten.
    let least = burst.len() as f64 / 2.0 / 0.3;
    assert!(link.send_1s > least, "{link:?}");
    assert!(link.send_10s > least, "{link:?}");
}
