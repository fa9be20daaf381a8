//! End to end over real TCP sockets on loopback: several links to one server, verified data.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_transports::Links;
use liag_transports::liag_tokio::Connection;
use liag_transports::liag_tokio::EndpointConfig;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

/// A server on three loopback addresses whose application reads and hashes one connection,
/// and a client connected to all three.
async fn sink_and_client() -> (JoinHandle<(u64, [u8; 32])>, Connection, Links) {
    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        drain(&mut stream).await
    });
    let (stream, links) = connector(&addrs)
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    (sink, stream, links)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_megabytes_over_three_links() {
    let (sink, mut stream, links) = sink_and_client().await;
    let payload = data(1, 200 << 20);
    let started = std::time::Instant::now();
    for chunk in payload.chunks(1 << 20) {
        stream.write_all(chunk).await.unwrap();
    }
    stream.shutdown().await.unwrap();
    let (bytes, digest) = tokio::time::timeout(Duration::from_secs(120), sink)
        .await
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(bytes, payload.len() as u64);
    assert_eq!(digest, sha256(&payload));
    let stats = links.outgoing().control().links();
    println!(
        "200 MiB over {} TCP links in {:.2} s (debug or release as built); per link: {:?}",
        stats.len(),
        elapsed.as_secs_f64(),
        stats.iter().map(|l| l.data_bytes).collect::<Vec<_>>()
    );
    assert_eq!(stats.len(), 3, "one link per target");
    assert!(
        stats.iter().all(|l| l.data_bytes > 0),
        "every link carried data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_both_directions_with_half_close() {
    let (_server, listener, addrs) = server(EndpointConfig::default()).await;
    echo(listener);
    let (stream, _links) = connector(&addrs)
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    let payload = data(2, 5 << 20);
    let (mut r, mut w) = stream.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        // Half-close: the echo keeps flowing back after our write side ends.
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut r, &mut back)
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(back == payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_reports_user_data_and_rates() {
    let (sink, mut stream, links) = sink_and_client().await;
    // Links come up in the background; wait (bounded) for all three.
    for _ in 0..500 {
        if links.outgoing().control().links().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload = data(4, 20 << 20);
    stream.write_all(&payload).await.unwrap();
    // The write went into liag's send buffer; give the links time to carry some of it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rates = links.outgoing().control().link_rates();
    assert_eq!(rates.len(), 3);
    // The acceptor names the interface the link arrived on, or its address when no interface
    // has it (127.0.0.2 and .3 are routed to `lo` but not assigned to it); our side names its
    // own interface.
    let mut remote: Vec<Vec<u8>> = rates
        .iter()
        .map(|r| r.stats.remote_user_data.as_bytes().to_vec())
        .collect();
    remote.sort();
    assert_eq!(
        remote,
        [b"127.0.0.2".to_vec(), b"127.0.0.3".to_vec(), b"lo".to_vec()]
    );
    for r in &rates {
        assert_eq!(&r.stats.local_user_data.as_bytes()[..], b"lo");
    }
    assert!(
        rates.iter().map(|r| r.send_10s).sum::<f64>() > 0.0,
        "{rates:?}"
    );
    stream.shutdown().await.unwrap();
    let (bytes, _) = sink.await.unwrap();
    assert_eq!(bytes, payload.len() as u64);
}

/// How a link's end reaches the peer: a link dropped as failed resets its TCP connection at
/// once (its unsent bytes are not worth a slow path's time), a link removed cleanly says
/// Goodbye.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_resets_and_a_removed_one_says_goodbye() {
    use liag_transports::liag_tokio::LinkEvent;
    use liag_transports::liag_tokio::liag_core::LinkError;

    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    let (tx, mut removed) = tokio::sync::mpsc::unbounded_channel();
    let (listening, accepted) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let conn = listener.next().await.unwrap().accept();
        let mut events = conn.control().link_events();
        // The link is dropped only once the server follows its events.
        let _ = listening.send(());
        while let Ok(event) = events.recv().await {
            if let LinkEvent::Removed { error, .. } = event {
                if tx.send(error).is_err() {
                    break;
                }
            }
        }
        drop(conn);
    });
    let (conn, links) = connector(&addrs[..1])
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    links
        .wait_for_link(Duration::from_secs(5))
        .await
        .expect("a link within 5 s");
    tokio::time::timeout(Duration::from_secs(5), accepted)
        .await
        .expect("the server accepts the connection")
        .unwrap();
    let control = conn.control();
    let first = control.links()[0].id;
    let mut events = control.link_events();
    control.drop_link(first);
    let error = tokio::time::timeout(Duration::from_secs(5), removed.recv())
        .await
        .expect("the server learns of the dropped link")
        .unwrap();
    // A reset reads as one, or as a broken pipe if the server was writing then.
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    assert!(
        matches!(
            error,
            LinkError::Transport {
                kind: ConnectionReset | BrokenPipe,
                ..
            }
        ),
        "{error}"
    );
    // The connector opens a new link on the path; removing it is a clean end.
    let second = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let LinkEvent::Added { link } = events.recv().await.expect("link events") {
                break link;
            }
        }
    })
    .await
    .expect("a new link within 5 s");
    control.remove_link(second);
    let error = tokio::time::timeout(Duration::from_secs(5), removed.recv())
        .await
        .expect("the server learns of the removed link")
        .unwrap();
    assert_eq!(error, LinkError::Goodbye);
    drop(conn);
}
