//! `EndpointConfig::scheduler` reaches every connection, the client's and the server's: a
//! scheduler of the test's own places the data both ways. Runs in tokio's paused time.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use liag_tokio::{
    EarliestArrival, EndpointConfig, Offer, Scheduler, SchedulerChoice, Server, UserData, connect,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// liag's default policy, counting the offers it is asked about.
#[derive(Debug)]
struct Counting(Arc<AtomicUsize>, EarliestArrival);

impl Scheduler for Counting {
    fn admit(&mut self, offer: &Offer<'_>) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        self.1.admit(offer)
    }
}

fn counting(count: &Arc<AtomicUsize>) -> EndpointConfig {
    let count = count.clone();
    let mut endpoint = EndpointConfig::default();
    endpoint.scheduler =
        SchedulerChoice::new(move || Box::new(Counting(count.clone(), EarliestArrival::new())));
    endpoint
}

#[tokio::test(start_paused = true)]
async fn each_end_asks_the_scheduler_its_endpoint_config_names() {
    let (client_offers, server_offers) = (Arc::default(), Arc::default());
    let (server, mut listener) = Server::new(counting(&server_offers));
    let (mut client, outgoing) = connect(counting(&client_offers));
    let (a, b) = tokio::io::duplex(1 << 16);
    server.add_link(b, "pipe".to_string(), UserData::empty());
    tokio::spawn(async move {
        outgoing
            .add_link(a, "pipe".to_string(), UserData::empty())
            .await
    });

    // The server takes the connection as the client writes: the client queues only
    // milliseconds of data (`Config::send_queue_time`), so its write waits for the link.
    let message = Bytes::from(vec![7u8; 100_000]);
    let echo = message.clone();
    let serving = tokio::spawn(async move {
        let mut server_end = listener.next().await.unwrap().accept();
        let mut received = 0;
        while received < echo.len() {
            received += server_end.next().await.unwrap().unwrap().len();
        }
        server_end.send(echo).await.unwrap();
        server_end
    });
    client.send(message.clone()).await.unwrap();
    let _server_end = serving.await.unwrap();
    let mut back = 0;
    while back < message.len() {
        back += client.next().await.unwrap().unwrap().len();
    }
    // Each payload is at most 32 KiB: at least four offers each way.
    assert!(client_offers.load(Ordering::Relaxed) >= 4);
    assert!(server_offers.load(Ordering::Relaxed) >= 4);
}
