//! A server that runs out of file descriptors keeps accepting once some are free again.
//!
//! Alone in its test binary: it lowers the process's file limit, which every thread shares.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_transports::liag_tokio::EndpointConfig;
use std::time::Duration;
use tokio::net::TcpStream;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_goes_on_after_the_files_run_out() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    let (_server, listener, addrs) = server(EndpointConfig::default()).await;
    echo(listener);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(Resource::RLIMIT_NOFILE, open + 40, hard).unwrap();

    // Idle sockets until this process has no file left: the server's accepts fail with EMFILE
    // on the connections still queued in the kernel.
    let mut idle = Vec::new();
    for _ in 0..200 {
        match TcpStream::connect(addrs[0]).await {
            Ok(socket) => idle.push(socket),
            Err(_) => break,
        }
    }
    assert!(idle.len() < 200, "the file limit was never reached");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The attackers leave; their sockets close, and so do the server's ends as it finds them
    // closed. A real client on the same port is served again, under the same limit.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served = tokio::time::timeout(Duration::from_secs(20), async {
        let (stream, links) = connector(&addrs[..1])
            .connect(EndpointConfig::default())
            .await
            .unwrap();
        links.wait_for_link(Duration::from_secs(10)).await.unwrap();
        let payload = data(11, 1 << 20);
        roundtrip(stream, payload.clone()).await == payload
    })
    .await;
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    assert_eq!(served.ok(), Some(true), "the real client was served");
}
