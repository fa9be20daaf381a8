//! The send queue's bound (`Config::send_queue_time`) through the tokio driver, in tokio's
//! virtual time: a writer that writes only when liag wakes it keeps two emulated paths full,
//! while the connection queues milliseconds of data rather than its 64 MiB send buffer.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_transports::connect_with;
use liag_transports::liag_tokio::{EndpointConfig, Server};
use liag_transports::mem::{LinkSpec, MemPaths};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_woken_writer_keeps_the_paths_full_behind_a_short_queue() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        drain(&mut stream).await
    });
    let specs = [LinkSpec::mbit(40.0, 10), LinkSpec::mbit(20.0, 10)];
    let sum: f64 = specs.iter().map(LinkSpec::bytes_per_sec).sum();
    let paths = MemPaths::new(server.clone(), specs, 3);
    let (stream, links) = connect_with(paths.clone(), EndpointConfig::default());
    links
        .wait_for_links(2, Duration::from_secs(5))
        .await
        .unwrap();
    let control = links.outgoing().control();

    // 30 MB at the paths' 7.5 MB/s: 4 s. The writer is `write_all`, woken by the driver.
    let payload = data(5, 30_000_000);
    let start = tokio::time::Instant::now();
    let writer = write_then_close(stream, &payload);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_by_1s = control
        .link_rates()
        .iter()
        .map(|l| l.stats.data_bytes)
        .sum::<u64>();
    let mut most = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        most = most.max(control.stats().queued);
    }
    let (len, digest) = sink.await.unwrap();
    let took = start.elapsed();
    let _stream = writer.await.unwrap();
    assert_eq!(len, payload.len() as u64);
    assert_eq!(digest, sha256(&payload));

    // From 1 s to the end, past the links' first round trips.
    let rest = (len - sent_by_1s.min(len)) as f64;
    let goodput = rest / (took.as_secs_f64() - 1.0) / sum;
    println!(
        "30 MB in {took:?}: {:.1} % of the paths' sum after the first second; queued at most \
         {most} bytes ({:.1} ms at that sum)",
        goodput * 100.0,
        most as f64 / sum * 1e3
    );
    assert!(goodput >= 0.95, "goodput {goodput}");
    // 2 ms at 7.5 MB/s is 15 kB, more than two of the 40 Mbit/s path's 5 kB payloads; allow
    // twice that for rate estimates that run ahead.
    assert!(most <= 30_000, "queued {most} bytes");
}
