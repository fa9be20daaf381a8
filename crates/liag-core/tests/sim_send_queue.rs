//! The send queue (`Config::send_queue_time`) in the simulator, in virtual time: a bulk writer
//! queues milliseconds of data in liag, not the whole send buffer, while the links stay full;
//! a writer blocked on the queue is woken as links take data, before any acknowledgement; and
//! secondary links still open on a backlog. The figures are printed
//! (`cargo test -p liag-core --test sim_send_queue -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use liag_core::sim::{LinkSpec, Side, Sim};
use liag_core::{Config, Tier, Time, WriteError};
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// Links of 40 and 20 Mbit/s, 10 ms each way: 7.5 MB/s together.
fn two_links(config: Config) -> (Sim, f64) {
    let mut sim = Sim::new(7, config);
    let specs = [LinkSpec::mbit(40.0, 10), LinkSpec::mbit(20.0, 10)];
    let sum = specs.iter().map(LinkSpec::bytes_per_sec).sum();
    for spec in specs {
        sim.add_link(spec);
    }
    (sim, sum)
}

/// The most A queued from 1 to 5 s of a bulk transfer, and the share of the links' sum B
/// received meanwhile.
fn bulk(config: Config) -> (usize, f64, f64) {
    let (mut sim, sum) = two_links(config);
    sim.send(Side::A, 200_000_000);
    sim.run_until(secs(1.0), |_| false);
    let mut most = 0;
    sim.run_until(secs(5.0), |sim| {
        most = most.max(sim.connection(Side::A).stats().queued);
        false
    });
    let b = sim.received(Side::B);
    let share = (b.bytes_at(secs(5.0)) - b.bytes_at(secs(1.0))) as f64 / 4.0 / sum;
    (most, share, sum)
}

#[test]
fn a_bulk_writer_queues_milliseconds_and_the_links_stay_full() {
    let (most, share, sum) = bulk(Config::default());
    let mut unbounded = Config::default();
    unbounded.send_queue_time = Duration::MAX;
    let (most_unbounded, share_unbounded, _) = bulk(unbounded);
    println!(
        "queued at most {most} bytes ({:.1} ms at the links' sum), goodput {:.1} % of the \
         links' sum; with only the send buffer: {most_unbounded} bytes, {:.1} %",
        most as f64 / sum * 1e3,
        share * 100.0,
        share_unbounded * 100.0
    );
    // 2 ms at 7.5 MB/s is 15 kB, more than two of the 40 Mbit/s link's 5 kB payloads; the
    // rate estimates may run ahead of the links for a while, so allow twice that.
    assert!(most <= 30_000, "queued {most} bytes");
    assert!(share >= 0.95, "goodput {share}");
    // Without the bound the writer fills the send buffer: the bound, not the links, is what
    // kept the queue short above.
    assert!(
        most_unbounded > 10 * most,
        "{most_unbounded} against {most}"
    );
}

#[test]
fn a_writer_blocked_on_the_queue_is_woken_when_links_take_data() {
    let (mut sim, _) = two_links(Config::default());
    // Links up and tested, no data yet.
    sim.run_until(secs(1.0), |_| false);
    let conn = sim.connection_mut(Side::A);
    let chunk = Bytes::from(vec![7u8; 16 << 10]);
    let mut written = 0;
    loop {
        match conn.write(chunk.clone()) {
            Ok(0) | Err(WriteError::Blocked) => break,
            Ok(n) => written += n,
            Err(e) => panic!("write failed: {e:?}"),
        }
        assert!(written < 1 << 20, "the queue took {written} bytes");
    }
    let before = sim.writable_events(Side::A);
    // Less than a round trip (20 ms): no acknowledgement of this data can have come.
    sim.run_until(secs(1.005), |_| false);
    let woken = sim.writable_events(Side::A) - before;
    let stats = sim.connection(Side::A).stats();
    let room = sim.connection(Side::A).send_capacity();
    println!(
        "queued {written} bytes; within 5 ms woken {woken} time(s), {} bytes sent, none \
         acknowledged, room {room} bytes",
        stats.unacked
    );
    // Nothing was acknowledged: all that was written is still queued or in flight.
    assert_eq!(stats.queued + stats.unacked, written);
    assert!(stats.unacked > 0);
    // Woken once, as the queue fell to half, not for each payload the links took.
    assert_eq!(woken, 1);
    assert!(room > 0);
    assert!(written < 128 << 10, "the queue took {written} bytes");
}

#[test]
fn secondary_links_still_open_on_a_backlog() {
    let (mut sim, _) = two_links(Config::default());
    let second = sim.connection(Side::A).link_stats()[1].id;
    sim.connection_mut(Side::A)
        .set_link_tier(second, Tier::Secondary);
    sim.send(Side::A, 200_000_000);
    sim.run_until(secs(4.0), |_| false);
    let data = sim.connection(Side::A).link_stats()[1].data_bytes;
    println!("the secondary link carried {data} bytes of data in 4 s");
    // The 20 Mbit/s secondary link carries about 2.5 MB/s once open.
    assert!(data > 4_000_000, "{data}");
}

/// A simulation of `seed` over `specs` whose writer at A writes 2 GB, only when woken, as an
/// application on liag-tokio does; and the links' sum in bytes per second.
fn waiting_writer(seed: u64, specs: &[LinkSpec]) -> (Sim, f64) {
    let mut sim = Sim::new(seed, Config::default());
    for &spec in specs {
        sim.add_link(spec);
    }
    sim.set_writer_waits(Side::A, true);
    sim.send(Side::A, 2_000_000_000);
    (sim, specs.iter().map(LinkSpec::bytes_per_sec).sum())
}

#[test]
fn a_writer_that_waits_to_be_woken_keeps_fast_links_full_and_is_woken_per_half_queue() {
    // Links of 400 and 200 Mbit/s: 2 ms of their 75 MB/s is 150 kB, four and a half payloads. The
    // writer writes only when woken, as an application on liag-tokio does.
    let specs = [LinkSpec::mbit(400.0, 10), LinkSpec::mbit(200.0, 10)];
    let (mut sim, sum) = waiting_writer(11, &specs);
    sim.run_until(secs(1.0), |_| false);
    let (woken, sent) = (sim.writable_events(Side::A), sim.bytes_written(Side::A));
    sim.run_until(secs(3.0), |_| false);
    let woken = sim.writable_events(Side::A) - woken;
    let written = sim.bytes_written(Side::A) - sent;
    let b = sim.received(Side::B);
    let share = (b.bytes_at(secs(3.0)) - b.bytes_at(secs(1.0))) as f64 / 2.0 / sum;
    let payloads = written / (32 << 10);
    println!(
        "from 1 to 3 s: {:.1} % of the links' sum, {payloads} payloads written, the writer \
         woken {woken} times",
        share * 100.0
    );
    assert!(share >= 0.95, "goodput {share}");
    // Each wake finds half the queue free, several payloads: a writer woken for every
    // payload or acknowledgement would be woken about as often as payloads go.
    assert!(woken > 0);
    assert!(
        woken * 3 < payloads,
        "woken {woken} times for {payloads} payloads"
    );
}

#[test]
fn a_writer_that_waits_to_be_woken_keeps_a_far_link_in_use() {
    // Paths of 5, 40 and 150 ms: the 150 ms link is used only while the backlog is more than
    // the nearer links deliver before its data would arrive, about 400 ms of it. The queue's
    // bound holds that much; a writer woken only once the queue was half empty left it half
    // the time below that, and the far link idle.
    let specs = [
        LinkSpec::mbit(40.0, 5),
        LinkSpec::mbit(20.0, 40),
        LinkSpec::mbit(10.0, 150),
    ];
    let (mut sim, sum) = waiting_writer(5, &specs);
    sim.run_until(secs(12.0), |_| false);
    let b = sim.received(Side::B);
    let share = (b.bytes_at(secs(12.0)) - b.bytes_at(secs(2.0))) as f64 / 10.0 / sum;
    let far = sim.connection(Side::A).link_stats()[2].data_bytes;
    println!(
        "from 2 to 12 s: {:.1} % of the links' sum; the 150 ms link carried {far} bytes of data",
        share * 100.0
    );
    assert!(share >= 0.95, "goodput {share}");
    // The far link's share is what the wake point keeps: about 7 MB of data in 12 s without
    // it, 14 MB with it.
    assert!(far > 11_000_000, "the 150 ms link carried {far} bytes");
}
