//! A TCP path that goes silent and heals carries data again, with no byte lost.
//!
//! The test runs in a private network namespace (`unshare --net`) so it can black-hole one
//! loopback address with the kernel's traffic control: an HTB root on `lo` with a class whose
//! queue holds zero packets, and `u32` filters sending everything from or to 127.0.0.2 into
//! it. Healing swaps that queue for an ordinary one. The kernel's TCP sees real silence: its
//! retransmissions back off and connection attempts lose their SYNs, which is what the
//! connector's stalled-path probing is for. Each path is limited to [`PATH_RATE`], so the
//! connection needs both: over unlimited loopback one link carries all a writer can produce,
//! and the scheduler rightly leaves a healed second link without data. Without the rights to make a namespace (not root,
//! no `unshare`, `ip` or `tc`) the test says so and does nothing else.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_core::{LinkState, LinkStats};
use liag_transports::liag_tokio::EndpointConfig;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const CHILD: &str = "LIAG_TEST_IN_NETNS";
const TEST: &str = "healed_path_carries_data_again";
/// The address whose path goes silent.
const SILENT: [u8; 4] = [127, 0, 0, 2];
/// The rate of each path, as `tc` reads it.
const PATH_RATE: &str = "400mbit";

#[test]
fn healed_path_carries_data_again() {
    if std::env::var_os(CHILD).is_some() {
        return in_namespace();
    }
    let setup = "ip link set lo up && tc qdisc add dev lo root handle 1: htb";
    let probe = Command::new("unshare")
        .args(["--net", "sh", "-c", setup])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            eprintln!(
                "skipped: cannot make a network namespace with tc: {}",
                why.trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return;
        }
    }
    let status = Command::new("unshare")
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the test inside the namespace failed");
}

/// Runs a command of iproute2, failing the test with its output if it fails.
fn run(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lets packets of the silent address through (`limit` 1000) or drops them all (`limit` 0).
fn silent_queue(limit: u32) {
    run(&format!(
        "tc qdisc replace dev lo parent 1:20 handle 20: pfifo limit {limit}"
    ));
}

fn in_namespace() {
    run("ip link set lo up");
    run("tc qdisc add dev lo root handle 1: htb default 10 r2q 100000");
    for class in ["1:10", "1:20"] {
        run(&format!(
            "tc class add dev lo parent 1: classid {class} htb rate {PATH_RATE} burst 1m quantum 65536"
        ));
    }
    silent_queue(1000);
    let ip = SILENT.map(|b| b.to_string()).join(".");
    for dir in ["src", "dst"] {
        run(&format!(
            "tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip {dir} {ip}/32 flowid 1:20"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(heal_scenario());
}

fn on_silent_path(link: &LinkStats, silent: SocketAddr) -> bool {
    link.tag.contains(&silent.to_string())
}

async fn heal_scenario() {
    let (_server, mut listener, addrs) = server(EndpointConfig::default()).await;
    let addrs = &addrs[..2];
    let silent = addrs[1];
    assert_eq!(silent.ip().to_string(), "127.0.0.2");
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        drain(&mut stream).await
    });
    let (mut stream, links) = connector(addrs)
        .connect(EndpointConfig::default())
        .await
        .unwrap();
    let control = links.outgoing().control();
    let limit = Instant::now() + Duration::from_secs(60);
    let wait = |what: &str| {
        let links = control.links();
        assert!(
            Instant::now() < limit,
            "gave up waiting for {what}: {links:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5))
    };
    while control.links().len() < 2 {
        wait("two links").await;
    }

    // Write for as long as the scenario runs, in distinct chunks.
    let payload = data(7, 4 << 20);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut sent = Vec::new();
        for round in 0u64..100_000 {
            if stop_rx.try_recv().is_ok() {
                break;
            }
            let chunk = &payload[(round as usize % 64) << 16..][..1 << 16];
            stream.write_all(chunk).await.unwrap();
            sent.extend_from_slice(chunk);
        }
        stream.shutdown().await.unwrap();
        sent
    });

    // Both paths carry data, then one goes silent.
    while !control
        .links()
        .iter()
        .any(|l| on_silent_path(l, silent) && l.data_bytes > 0)
    {
        wait("data on the second path").await;
    }
    silent_queue(0);
    let silenced = Instant::now();
    while !control
        .links()
        .iter()
        .any(|l| on_silent_path(l, silent) && l.state == LinkState::Stalled)
    {
        wait("the silent link to stall").await;
    }
    eprintln!("silent path stalled after {:?}", silenced.elapsed());
    // Long enough for TCP's retransmissions and SYN retries to back off.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let before: Vec<(_, u64)> = control
        .links()
        .iter()
        .filter(|l| on_silent_path(l, silent))
        .map(|l| (l.id, l.data_bytes))
        .collect();
    silent_queue(1000);
    let healed = Instant::now();
    loop {
        let carrying = control.links().into_iter().any(|l| {
            on_silent_path(&l, silent)
                && l.state == LinkState::Active
                && l.data_bytes > before.iter().find(|(id, _)| *id == l.id).map_or(0, |b| b.1)
        });
        if carrying {
            break;
        }
        wait("the healed path to carry data").await;
    }
    eprintln!(
        "healed path carried data again {:?} after healing",
        healed.elapsed()
    );

    stop_tx.send(()).unwrap();
    let sent = writer.await.unwrap();
    let (bytes, digest) = tokio::time::timeout(Duration::from_secs(60), sink)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, sent.len() as u64, "every byte arrived");
    assert_eq!(digest, sha256(&sent));
}
