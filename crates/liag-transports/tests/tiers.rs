//! Link tiers through a connector: a backup path idle while the primary works, carrying the
//! connection while the primary is silent, idle again once it heals, and a reload that changes
//! a path's tier. Emulated paths in tokio's virtual time.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::*;
use liag_transports::liag_tokio::{BoxFuture, BoxLink, Connection, EndpointConfig, Server};
use liag_transports::mem::{Fault, LinkSpec, MemPaths};
use liag_transports::{Connector, LinkConfig, Links, Tier, UserData, Welcome, connect_with};
use std::io;
use std::time::Duration;

/// Emulated paths where the one named `backup` is a backup link.
struct BackupOn(MemPaths, &'static str);

impl Connector for BackupOn {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        self.0.paths()
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        self.0.open(path)
    }

    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        self.0.keep(path, welcome, others)
    }

    fn link_config(&self, path: &str) -> LinkConfig {
        let tier = if path == self.1 {
            Tier::Backup
        } else {
            Tier::Primary
        };
        LinkConfig::default().with_tier(tier)
    }
}

/// A connection to `server` over a 20 Mbit/s primary path and a 40 Mbit/s backup path (the
/// faster one: its tier, not its speed, keeps it idle), once both links are up.
async fn primary_and_backup(server: &Server, seed: u64) -> (MemPaths, Connection, Links) {
    let specs = [LinkSpec::mbit(20.0, 10), LinkSpec::mbit(40.0, 10)];
    let paths = MemPaths::new(server.clone(), specs, seed);
    let (stream, links) = connect_with(BackupOn(paths.clone(), "path1"), EndpointConfig::default());
    links
        .wait_for_links(2, Duration::from_secs(5))
        .await
        .unwrap();
    (paths, stream, links)
}

#[tokio::test(start_paused = true)]
async fn a_backup_path_carries_data_only_while_the_primary_cannot() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let sink = tokio::spawn(async move {
        let mut stream = listener.next().await.unwrap().accept();
        drain(&mut stream).await
    });
    let (paths, stream, links) = primary_and_backup(&server, 1).await;
    let payload = data(21, 40 << 20);
    let writer = write_then_close(stream, &payload);
    let control = links.outgoing().control();
    let on = |path: &str| {
        let all = control.links();
        let link = all.into_iter().find(|l| l.tag == path).unwrap();
        (link.tier, link.data_bytes)
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        on("path1"),
        (Tier::Backup, 0),
        "idle while the primary works"
    );
    assert!(on("path0").1 > 2_000_000);

    paths.fault(0, Fault::BlackHole);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let carried = on("path1").1;
    assert!(carried > 5_000_000, "the backup took over: {carried} bytes");

    paths.fault(0, Fault::Heal);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_heal = on("path1").1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        on("path1").1,
        after_heal,
        "idle again a second after the heal"
    );

    // A reload that makes the backup primary: it carries data at once.
    links.set_connector(BackupOn(paths.clone(), "none"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (tier, now) = on("path1");
    assert_eq!(tier, Tier::Primary);
    // A second at 40 of the paths' 60 Mbit/s is 5 MB: the former backup takes a real share.
    assert!(
        now > after_heal + 2_000_000,
        "a primary now: {} bytes",
        now - after_heal
    );

    let (bytes, digest) = sink.await.unwrap();
    assert_eq!(bytes, payload.len() as u64);
    assert_eq!(digest, sha256(&payload));
    drop(writer.await.unwrap());
}

/// The server learns the tier from the link's handshake: its data keeps off the backup path
/// while the primary works, and takes the backup when the primary goes silent.
#[tokio::test(start_paused = true)]
async fn the_server_keeps_its_data_off_a_backup_path_too() {
    let (server, mut listener) = Server::new(EndpointConfig::default());
    let payload = data(22, 40 << 20);
    let source = {
        let payload = payload.clone();
        tokio::spawn(async move {
            let stream = listener.next().await.unwrap().accept();
            write_then_close(stream, &payload).await.unwrap()
        })
    };
    let (paths, mut stream, links) = primary_and_backup(&server, 2).await;
    let sink = tokio::spawn(async move { drain(&mut stream).await });
    let control = links.outgoing().control();
    let received = |path: &str| {
        let all = control.links();
        all.into_iter()
            .find(|l| l.tag == path)
            .unwrap()
            .received_bytes
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (primary, backup) = (received("path0"), received("path1"));
    // The backup's own link test (16 KiB of filler each way) and keep-alives, no data.
    assert!(primary > 2_000_000, "{primary}");
    assert!(backup < 40_000, "the backup received {backup} bytes");

    paths.fault(0, Fault::BlackHole);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        received("path1") > backup + 5_000_000,
        "the server's data took the backup"
    );
    paths.fault(0, Fault::Heal);

    let (bytes, digest) = sink.await.unwrap();
    assert_eq!(bytes, payload.len() as u64);
    assert_eq!(digest, sha256(&payload));
    drop(source.await.unwrap());
}
