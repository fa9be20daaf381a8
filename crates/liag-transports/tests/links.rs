//! Links coming and going, refusal, half-close, and many connections on one server, over
//! emulated and TCP links.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_transports::liag_tokio::{Connection, EndpointConfig, Server, connect};
use liag_transports::mem::{Fault, LinkSpec, MemPaths, pair};
use liag_transports::{Links, connect_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Three emulated links; one is cut mid-transfer and a new one added; every byte arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_killed_and_another_added() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        drain(&mut stream).await
    });
    let (mut stream, outgoing) = connect(EndpointConfig::default());
    let mut controls = Vec::new();
    let spec = LinkSpec::mbit(200.0, 2);
    for i in 0..3 {
        let (a, b, control) = pair(spec, i);
        server.add_packet_link(b.boxed(), format!("mem{i}"), empty());
        outgoing
            .add_packet_link(a.boxed(), format!("mem{i}"), empty(), |_| true)
            .await
            .unwrap();
        controls.push(control);
    }
    let payload = data(3, 60 << 20);
    let writer = {
        let payload = payload.clone();
        tokio::spawn(async move {
            for chunk in payload.chunks(256 << 10) {
                stream.write_all(chunk).await.unwrap();
            }
            stream.shutdown().await.unwrap();
            stream
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    controls[0].fault(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (a, b, _control) = pair(spec, 9);
    server.add_packet_link(b.boxed(), "mem-new", empty());
    outgoing
        .add_packet_link(a.boxed(), "mem-new", empty(), |_| true)
        .await
        .unwrap();

    let (bytes, digest) = tokio::time::timeout(Duration::from_secs(60), sink)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, payload.len() as u64);
    assert_eq!(digest, sha256(&payload));
    let links = outgoing.control().links();
    assert_eq!(
        links.len(),
        3,
        "the cut link left, the new one joined: {links:?}"
    );
    let new = links.iter().find(|l| l.tag == "mem-new").unwrap();
    assert!(new.data_bytes > 0, "the new link carried data");
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn refused_connection_reports_refusal() {
    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            incoming.refuse();
        }
    });
    let (_stream, outgoing) = connect(EndpointConfig::default());
    let socket = tokio::net::TcpStream::connect(addrs[0]).await.unwrap();
    let err = outgoing
        .add_link(socket, "refused", empty())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            liag_transports::AddLinkError::Refused(
                liag_transports::RefusedReason::ConnectionRefused
            )
        ),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_each_direction() {
    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    // The server sends first and shuts down its side, then reads until the client's end.
    let server_side = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        stream.write_all(b"from the server").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        got
    });
    let (mut stream, _links) = connector(&addrs)
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"from the server");
    // The client's write side is still open after the server's ended.
    stream.write_all(b"and from the client").await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(server_side.await.unwrap(), b"and from the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_connections() {
    let (server, listener, addrs) = server(EndpointConfig::default()).await;
    echo(listener);
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let addrs = addrs.clone();
        tasks.push(tokio::spawn(async move {
            let (stream, _links) = connector(&addrs[..1])
                .connect(EndpointConfig::default())
                .await
                .unwrap();
            let (mut r, mut w) = stream.into_split();
            let payload = data(i, 64 << 10);
            let sent = payload.clone();
            tokio::spawn(async move {
                w.write_all(&sent).await.unwrap();
                w.shutdown().await.unwrap();
            });
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.unwrap();
            back == payload
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 100);
    assert!(server.connections() <= 100);
}

/// A connection over emulated paths to a server that drains and checks it, with a payload
/// being written into it.
struct Transfer {
    links: Links,
    sink: tokio::task::JoinHandle<(u64, [u8; 32])>,
    writer: tokio::task::JoinHandle<Connection>,
    payload: Vec<u8>,
}

impl Transfer {
    /// Paths of `specs` (seeded with `seed`) to a fresh server, once one link is up, and
    /// `len` bytes of `data(payload_seed, ..)` being written; the server, to add paths to it.
    async fn start(
        specs: &[LinkSpec],
        seed: u64,
        (payload_seed, len): (u64, usize),
    ) -> (Server, MemPaths, Transfer) {
        let (server, mut listener) = Server::new(EndpointConfig::default());
        let sink = tokio::spawn(async move {
            let mut stream = listener.next().await.unwrap().accept();
            drain(&mut stream).await
        });
        let paths = MemPaths::new(server.clone(), specs.to_vec(), seed);
        let (stream, links) = connect_with(paths.clone(), EndpointConfig::default());
        links.wait_for_link(Duration::from_secs(5)).await.unwrap();
        let payload = data(payload_seed, len);
        let writer = write_then_close(stream, &payload);
        let transfer = Transfer {
            links,
            sink,
            writer,
            payload,
        };
        (server, paths, transfer)
    }

    /// Waits for the server to have read everything, and checks it.
    async fn arrives_whole(self) {
        let (bytes, digest) = self.sink.await.unwrap();
        assert_eq!(bytes, self.payload.len() as u64);
        assert_eq!(digest, sha256(&self.payload));
        drop(self.writer.await.unwrap());
    }
}

/// Emulated paths kept by the connector: a reset path reconnects, a black-holed one is
/// probed and carries data again once healed, and every byte arrives. In tokio's virtual time.
#[tokio::test(start_paused = true)]
async fn emulated_paths_reconnect_and_heal() {
    use liag_core::LinkState;

    let spec = LinkSpec::mbit(20.0, 10);
    let (_, paths, transfer) = Transfer::start(&[spec, spec], 1, (11, 40 << 20)).await;
    let links = &transfer.links;
    let control = links.outgoing().control();
    let on = |path: &str| {
        control
            .links()
            .into_iter()
            .filter(|l| l.tag == path)
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = on("path0")[0].id;
    paths.fault(0, Fault::Reset);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let now0 = on("path0");
    assert!(
        now0.iter()
            .any(|l| l.id != first && l.state == LinkState::Active),
        "path0 reconnected: {now0:?}"
    );

    paths.fault(1, Fault::BlackHole);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let silent = on("path1");
    assert!(
        silent.iter().all(|l| l.state == LinkState::Stalled),
        "path1 stalled: {silent:?}"
    );
    let before: u64 = silent.iter().map(|l| l.data_bytes).sum();
    paths.fault(1, Fault::Heal);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let healed = on("path1");
    assert!(
        healed
            .iter()
            .any(|l| l.state == LinkState::Active && l.data_bytes > 0),
        "path1 carries data again: {healed:?} (before: {before} bytes)"
    );

    transfer.arrives_whole().await;
}

/// A connection's one path slowed until its link stalls still delivers: the link keeps its
/// data, and its messages come back acknowledged, late. The keeper leaves that link alone,
/// where a probe's link would queue behind the same traffic and stall in turn, and every byte
/// arrives. In tokio's virtual time.
#[tokio::test(start_paused = true)]
async fn a_slow_path_that_still_delivers_keeps_its_link() {
    use liag_core::LinkState;

    let (_, paths, transfer) = Transfer::start(&[LinkSpec::mbit(20.0, 10)], 3, (12, 8 << 20)).await;
    let control = transfer.links.outgoing().control();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = control.links()[0].id;
    // 200 kbit/s: what the link has queued takes seconds to drain.
    paths.fault(0, Fault::Rate(200_000));
    let mut stalled = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = control.links();
        assert!(
            now.iter().all(|l| l.id == first),
            "the path kept its link: {now:?}"
        );
        stalled += usize::from(now.iter().any(|l| l.state == LinkState::Stalled));
    }
    assert!(stalled > 0, "the link never stalled");
    paths.fault(0, Fault::Heal);
    transfer.arrives_whole().await;
}

/// A new connector for a running connection (a reload): the path both name keeps its link,
/// the path the new one drops loses its link gracefully, new paths get links, and every byte
/// arrives. In tokio's virtual time.
#[tokio::test(start_paused = true)]
async fn a_new_connector_keeps_shared_paths_and_retires_the_others() {
    let spec = LinkSpec::mbit(20.0, 10);
    let (server, _, transfer) = Transfer::start(&[spec, spec], 1, (12, 20 << 20)).await;
    let links = &transfer.links;
    links
        .wait_for_links(2, Duration::from_secs(5))
        .await
        .unwrap();
    let control = links.outgoing().control();
    let tags = || {
        let mut tags: Vec<(String, u64)> = control
            .links()
            .into_iter()
            .map(|l| (l.tag, l.id.number()))
            .collect();
        tags.sort();
        tags
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = tags();
    assert_eq!(before.len(), 2, "{before:?}");

    links.set_connector(MemPaths::new(server.clone(), [spec], 2));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        tags(),
        before[..1],
        "path0 kept its link, path1 lost its own"
    );

    links.set_connector(MemPaths::new(server, [spec, spec, spec], 3));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = tags();
    let names: Vec<&str> = after.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["path0", "path1", "path2"], "{after:?}");
    assert_eq!(after[0], before[0], "path0's link is still the first one");

    transfer.arrives_whole().await;
}
