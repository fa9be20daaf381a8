//! Redundant sending through the whole stack: a client that sends redundantly asks a liag
//! server to do the same, and small messages from the server then ride out an outage of the
//! faster path. Emulated paths in tokio's virtual time.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use liag_transports::connect_with;
use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::mem::{Fault, LinkSpec, MemPaths};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const MESSAGES: usize = 150;
const INTERVAL: Duration = Duration::from_millis(10);

/// What the client saw: the longest wait between two reads while the server wrote, the bytes
/// read, and the copies the server sent.
struct Seen {
    longest_gap: Duration,
    bytes: usize,
    server_copies: u64,
}

/// The server writes 64 bytes every 10 ms to a client over a 10 ms and a 30 ms path (one way);
/// the faster path is silent from 0.5 s to 1 s into the writes. The client sends redundantly
/// if `redundant`, and the server does what it asks unless `refuse`.
async fn small_writes_through_an_outage(redundant: bool, refuse: bool) -> Seen {
    let mut server_config = EndpointConfig::default();
    server_config.redundant_on_request = !refuse;
    let (server, mut listener) = Server::new(server_config);
    let source = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        let control = stream.control();
        // The client's links are up before it reads; give its second link its test.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..MESSAGES {
            stream.write_all(&[7; 64]).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(INTERVAL).await;
        }
        let copies = control.links().iter().map(|l| l.copied_bytes).sum::<u64>();
        stream.shutdown().await.unwrap();
        copies
    });
    let specs = [LinkSpec::mbit(20.0, 10), LinkSpec::mbit(20.0, 30)];
    let paths = MemPaths::new(server.clone(), specs, 3);
    let mut endpoint = EndpointConfig::default();
    endpoint.config.redundant = redundant;
    let (mut stream, links) = connect_with(paths.clone(), endpoint);
    links
        .wait_for_links(2, Duration::from_secs(5))
        .await
        .unwrap();

    let started = Instant::now();
    let outage = {
        let paths = paths.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            paths.fault(0, Fault::BlackHole);
            tokio::time::sleep(Duration::from_millis(500)).await;
            paths.fault(0, Fault::Heal);
        })
    };
    let mut buf = [0; 4096];
    let (mut bytes, mut last, mut longest_gap) = (0, None::<Instant>, Duration::ZERO);
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        bytes += n;
        let now = Instant::now();
        // Gaps from the first message on; the writes end 2 s after the client started.
        if let Some(last) = last.filter(|_| now - started < Duration::from_secs(2)) {
            longest_gap = longest_gap.max(now - last);
        }
        last = Some(now);
    }
    outage.await.unwrap();
    Seen {
        longest_gap,
        bytes,
        server_copies: source.await.unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_redundant_client_gets_the_servers_small_messages_through_an_outage() {
    let plain = small_writes_through_an_outage(false, false).await;
    let redundant = small_writes_through_an_outage(true, false).await;
    let refused = small_writes_through_an_outage(true, true).await;
    println!(
        "longest wait between reads: {:?} without redundancy, {:?} with it ({} bytes of \
         copies from the server)",
        plain.longest_gap, redundant.longest_gap, redundant.server_copies
    );
    assert_eq!(plain.bytes, MESSAGES * 64);
    assert_eq!(redundant.bytes, MESSAGES * 64);
    assert_eq!(
        plain.server_copies, 0,
        "the server sends copies only when asked"
    );
    assert_eq!(refused.server_copies, 0, "a server may refuse to");
    assert_eq!(refused.bytes, MESSAGES * 64);
    assert!(redundant.server_copies >= (MESSAGES * 64 / 2) as u64);
    // The writes come every 10 ms; the slower path adds 20 ms to those the outage holds.
    assert!(
        redundant.longest_gap <= Duration::from_millis(40),
        "{:?}",
        redundant.longest_gap
    );
    assert!(
        plain.longest_gap > Duration::from_millis(80),
        "without copies the outage shows ({:?})",
        plain.longest_gap
    );
}
