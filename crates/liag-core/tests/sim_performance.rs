//! Aggregation in the simulator, exact in virtual time: efficiency, failover and latency.
//!
//! Every test checks the bytes too: what arrived has the digest of what was sent, in order.
//! The figures are printed (`cargo test -p liag-core --test sim_performance -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, LinkState, Time};
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// Checks a share of the links' sum against the one docs/architecture.md gives for it. The
/// simulator is exact, so a share that moves by more than 0.1 point is a change of behaviour,
/// better or worse: look into it, then update the doc and the pin.
fn pinned_share(what: &str, share: f64, documented: f64) {
    println!("pin {what}: {share:.4}, documented {documented:.4}");
    assert!(
        (share - documented).abs() <= 0.001,
        "{what}: {:.2} %, documented {:.2} % (within 0.1 point)",
        share * 100.0,
        documented * 100.0
    );
}

/// The same for a gap in delivery, within 5 ms of the documented one.
fn pinned_gap(what: &str, gap: Duration, documented_ms: u64) {
    let documented = Duration::from_millis(documented_ms);
    println!("pin {what}: {gap:?}, documented {documented:?}");
    assert!(
        gap.abs_diff(documented) <= Duration::from_millis(5),
        "{what}: {gap:?}, documented {documented:?} (within 5 ms)"
    );
}

/// Goodput between `from` and `to` as a share of the links' summed capacity.
fn efficiency(sim: &Sim, links: &[LinkSpec], from: f64, to: f64) -> f64 {
    let r = sim.received(Side::B);
    let bytes = (r.bytes_at(secs(to)) - r.bytes_at(secs(from))) as f64;
    let capacity: f64 = links.iter().map(LinkSpec::bytes_per_sec).sum::<f64>() * (to - from);
    bytes / capacity
}

/// Sends more than the links can carry in 20 s and measures the share of their sum used.
fn bulk(links: &[LinkSpec]) -> (f64, f64) {
    let mut sim = Sim::new(1, Config::default());
    for &spec in links {
        sim.add_link(spec);
    }
    let capacity: f64 = links.iter().map(LinkSpec::bytes_per_sec).sum();
    let total = (capacity * 22.0) as u64;
    sim.send(Side::A, total);
    let done = sim.run_until(secs(60.0), |s| s.received(Side::B).finished);
    assert!(done, "transfer did not finish");
    assert!(
        sim.verified(Side::B),
        "received bytes differ from those sent"
    );
    (
        efficiency(&sim, links, 0.0, 10.0),
        efficiency(&sim, links, 2.0, 20.0),
    )
}

#[test]
fn efficiency_equal_delays() {
    let links = [
        LinkSpec::mbit(40.0, 10),
        LinkSpec::mbit(20.0, 10),
        LinkSpec::mbit(10.0, 10),
    ];
    let (cold, warm) = bulk(&links);
    println!(
        "40/20/10 Mbit/s, 10 ms each: first 10 s {:.2} %, 2-20 s {:.2} %",
        cold * 100.0,
        warm * 100.0
    );
    assert!(warm >= 0.98, "warm efficiency {warm}");
    pinned_share("equal delays, first 10 s", cold, 0.9822);
    pinned_share("equal delays, 2-20 s", warm, 0.9846);
}

#[test]
fn efficiency_unequal_delays() {
    let links = [
        LinkSpec::mbit(40.0, 5),
        LinkSpec::mbit(20.0, 40),
        LinkSpec::mbit(10.0, 150),
    ];
    let (cold, warm) = bulk(&links);
    println!(
        "40 Mbit/s 5 ms + 20 Mbit/s 40 ms + 10 Mbit/s 150 ms: first 10 s {:.2} %, 2-20 s {:.2} %",
        cold * 100.0,
        warm * 100.0
    );
    assert!(warm >= 0.95, "warm efficiency {warm}");
    pinned_share("unequal delays, first 10 s", cold, 0.9559);
    pinned_share("unequal delays, 2-20 s", warm, 0.9805);
}

/// 40 (`first`), 20 and 10 Mbit/s links of 20 ms RTT carrying 150 MB; at 5 s the first gets
/// `fault`, and at 10 s it heals.
fn faulted_at_5s(seed: u64, first: LinkSpec, fault: Fault) -> (Sim, [LinkSpec; 3]) {
    let links = [first, LinkSpec::mbit(20.0, 10), LinkSpec::mbit(10.0, 10)];
    (faulted_first_at_5s(seed, &links, 150_000_000, fault), links)
}

/// `links` carrying `total` bytes; at 5 s the first gets `fault`, and at 10 s it heals.
fn faulted_first_at_5s(seed: u64, links: &[LinkSpec], total: u64, fault: Fault) -> Sim {
    let mut sim = Sim::new(seed, Config::default());
    for &spec in links {
        sim.add_link(spec);
    }
    sim.send(Side::A, total);
    sim.fault_at(Duration::from_secs(5), 0, fault);
    sim.fault_at(Duration::from_secs(10), 0, Fault::Heal);
    sim
}

/// Links of 40, 20 and 10 Mbit/s (20 ms round trips) carrying 150 MB; at 5 s the first drops
/// to 1 % of its rate from sender to receiver only, the way back keeping its rate, and at
/// 10 s it gets its rate back.
fn degraded_one_way(seed: u64) -> (Sim, [LinkSpec; 3]) {
    let links = [
        LinkSpec::mbit(40.0, 10),
        LinkSpec::mbit(20.0, 10),
        LinkSpec::mbit(10.0, 10),
    ];
    let mut sim = Sim::new(seed, Config::default());
    for &spec in &links {
        sim.add_link(spec);
    }
    sim.send(Side::A, 150_000_000);
    sim.fault_from_at(Duration::from_secs(5), 0, Side::A, Fault::Rate(400_000));
    sim.fault_from_at(Duration::from_secs(10), 0, Side::A, Fault::Heal);
    (sim, links)
}

/// Three links of 20 ms RTT; the fastest is black-holed at 5 s and healed at 10 s.
#[test]
fn failover_black_hole() {
    let (mut sim, links) = faulted_at_5s(2, LinkSpec::mbit(40.0, 10), Fault::BlackHole);

    sim.run_until(secs(10.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(6.0));
    let during = efficiency(&sim, &links[1..], 6.0, 10.0);
    let cut_link = sim.connection(Side::A).link_stats()[0].data_bytes;
    // What the cut link had in flight went again on the others, and is counted there.
    let resent: Vec<u64> = sim
        .connection(Side::A)
        .link_stats()
        .iter()
        .map(|l| l.resent_bytes)
        .collect();

    sim.run_until(secs(16.0), |_| false);
    let after = efficiency(&sim, &links, 11.0, 16.0);
    let healed_link = sim.connection(Side::A).link_stats()[0].data_bytes;

    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "black hole on the 40 Mbit/s link: stall {:.0} ms, remaining links {:.1} % used while cut, \
         all links {:.1} % used 1-6 s after healing",
        stall.as_secs_f64() * 1000.0,
        during * 100.0,
        after * 100.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(resent[1] + resent[2] > 0, "resent per link {resent:?}");
    assert!(
        healed_link > cut_link + 5_000_000,
        "healed link carries data again"
    );
    assert!(after > 0.9, "efficiency after healing {after}");
    pinned_gap("black hole, gap", stall, 94);
    pinned_share("black hole, the other two meanwhile", during, 0.9784);
    pinned_share("black hole, all after healing", after, 0.9841);
}

/// A black hole on a link whose queue takes writes all through it, as a kernel socket buffer
/// does: the stalled link's test goes into the queue during the outage, so its Pong measures
/// the outage, not the link. The healed link must still come back to full use.
#[test]
fn healed_link_with_a_deep_queue_comes_back() {
    let (mut sim, links) = faulted_at_5s(
        7,
        LinkSpec::mbit(40.0, 10).with_queue(4 << 20),
        Fault::BlackHole,
    );
    sim.run_until(secs(16.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(6.0));
    let after = efficiency(&sim, &links, 12.0, 16.0);
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "black hole on a 40 Mbit/s link with a 4 MiB queue: stall {:.0} ms, all links {:.1} % \
         used 2-6 s after healing",
        stall.as_secs_f64() * 1000.0,
        after * 100.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(after > 0.9, "efficiency after healing {after}");
    pinned_gap("deep queue, gap", stall, 95);
    pinned_share("deep queue, all after healing", after, 0.9844);
}

/// The lowest goodput over any `window` seconds between `from` and `to`, bytes per second.
fn lowest_rate(sim: &Sim, from: f64, to: f64, window: f64) -> f64 {
    let r = sim.received(Side::B);
    let steps = ((to - from - window) / 0.01) as usize;
    (0..=steps)
        .map(|i| from + i as f64 * 0.01)
        .map(|t| (r.bytes_at(secs(t + window)) - r.bytes_at(secs(t))) as f64 / window)
        .fold(f64::INFINITY, f64::min)
}

/// Three links of 20 ms RTT; the fastest drops to 1 % of its rate at 5 s (degraded, not dead:
/// it still acknowledges, slowly) and gets its rate back at 10 s.
#[test]
fn failover_degraded_link() {
    let (mut sim, links) = faulted_at_5s(6, LinkSpec::mbit(40.0, 10), Fault::Rate(400_000));

    sim.run_until(secs(16.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(10.0));
    let during = efficiency(&sim, &links[1..], 6.0, 10.0);
    let survivors: f64 = links[1..].iter().map(LinkSpec::bytes_per_sec).sum();
    let lowest_after = lowest_rate(&sim, 10.0, 16.0, 0.5);
    let after = efficiency(&sim, &links, 11.0, 16.0);

    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "40 Mbit/s link down to 1 %: longest stall {:.0} ms, remaining links {:.1} % used, \
         after the heal lowest 0.5 s {:.1} % of the survivors, all links {:.1} % used 1-6 s after",
        stall.as_secs_f64() * 1000.0,
        during * 100.0,
        lowest_after / survivors * 100.0,
        after * 100.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(during > 0.9, "efficiency while degraded {during}");
    assert!(
        lowest_after >= survivors * 0.95,
        "lowest after the heal {lowest_after}"
    );
    assert!(after > 0.9, "efficiency after healing {after}");
    pinned_gap("degraded, gap", stall, 50);
    pinned_share("degraded, the other two meanwhile", during, 0.9790);
    pinned_share("degraded, all after the restore", after, 0.9842);
}

/// The same on slow links, 4, 2 and 1 Mbit/s, whose payloads are small (about 1 KiB): the
/// fastest drops to 1 % of its rate at 5 s and gets it back at 10 s. The receiver reports
/// what it read every 4 KiB here, not at each payload, and the crawling link must still give
/// way to the others.
#[test]
fn failover_degraded_link_among_slow_links() {
    let links = [
        LinkSpec::mbit(4.0, 10),
        LinkSpec::mbit(2.0, 10),
        LinkSpec::mbit(1.0, 10),
    ];
    let mut sim = faulted_first_at_5s(6, &links, 20_000_000, Fault::Rate(40_000));
    sim.run_until(secs(16.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(10.0));
    let during = efficiency(&sim, &links[1..], 6.0, 10.0);
    let after = efficiency(&sim, &links, 11.0, 16.0);
    assert!(sim.run_until(secs(120.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "4 Mbit/s link of 4, 2 and 1 down to 1 %: longest stall {:.0} ms, remaining links {:.1} % \
         used, all links {:.1} % used 1-6 s after the restore",
        stall.as_secs_f64() * 1000.0,
        during * 100.0,
        after * 100.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(during > 0.9, "efficiency while degraded {during}");
    assert!(after > 0.9, "efficiency after healing {after}");
}

/// The fastest link is reset mid-transfer, and a new one appears later.
#[test]
fn failover_reset_and_new_link() {
    let mut sim = Sim::new(3, Config::default());
    for spec in [
        LinkSpec::mbit(40.0, 10),
        LinkSpec::mbit(20.0, 10),
        LinkSpec::mbit(10.0, 10),
    ] {
        sim.add_link(spec);
    }
    sim.send(Side::A, 60_000_000);
    sim.fault_at(Duration::from_secs(3), 0, Fault::Reset);
    sim.add_link_at(Duration::from_secs(5), LinkSpec::mbit(40.0, 10));
    sim.run_until(secs(6.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(3.0), secs(4.0));
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    let new_link = sim
        .connection(Side::A)
        .link_stats()
        .into_iter()
        .find(|l| l.tag == "sim3");
    println!(
        "reset of the 40 Mbit/s link: stall {:.0} ms",
        stall.as_secs_f64() * 1000.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(
        new_link.is_some_and(|l| l.data_bytes > 1_000_000),
        "the new link carries data"
    );
    pinned_gap("reset, gap", stall, 27);
}

/// A 64-byte write on an idle connection arrives one path delay (plus serialization) later.
#[test]
fn small_write_latency() {
    let mut sim = Sim::new(4, Config::default());
    for spec in [
        LinkSpec::mbit(40.0, 5),
        LinkSpec::mbit(20.0, 40),
        LinkSpec::mbit(10.0, 150),
    ] {
        sim.add_link(spec);
    }
    // Let the links settle: pings answered, nothing in flight.
    sim.run_for(Duration::from_secs(2));
    let mut worst = Duration::ZERO;
    for i in 0..20u64 {
        let at = Duration::from_secs(2) + Duration::from_millis(100 * i);
        sim.write_at(at, Side::A, 64);
        let expected = 64 * (i + 1);
        assert!(sim.run_until(Time::from(at + Duration::from_secs(1)), |s| {
            s.received(Side::B).bytes >= expected
        }));
        let arrived = sim
            .received(Side::B)
            .progress
            .last()
            .map(|&(t, _)| t)
            .unwrap_or_default();
        worst = worst.max(arrived - Time::from(at));
    }
    // One-way delay of the fastest link is 5 ms; serializing 64 bytes takes microseconds.
    let added = worst.saturating_sub(Duration::from_millis(5));
    println!(
        "64-byte write: worst of 20 arrived {:.3} ms after the write, {:.3} ms over the path delay",
        worst.as_secs_f64() * 1000.0,
        added.as_secs_f64() * 1000.0
    );
    assert!(added < Duration::from_millis(1), "added {added:?}");
    let documented = Duration::from_micros(5_018);
    assert!(
        worst.abs_diff(documented) < Duration::from_micros(10),
        "64-byte write: {worst:?}, documented {documented:?}"
    );
}

/// A simulated minute of a 100 Mbit/s transfer over two links. Its CPU cost is measured by
/// `cargo bench -p liag-benches --bench sim`; this test checks what it delivers.
#[test]
fn one_minute_at_100_mbit() {
    let mut sim = Sim::new(5, Config::default());
    sim.add_link(LinkSpec::mbit(60.0, 10));
    sim.add_link(LinkSpec::mbit(40.0, 20));
    sim.send(Side::A, 100_000_000 / 8 * 61);
    sim.run_for(Duration::from_secs(60));
    let bytes = sim.received(Side::B).bytes;
    println!("one simulated minute at 100 Mbit/s: {bytes} bytes delivered");
    assert!(bytes as f64 >= 100e6 / 8.0 * 60.0 * 0.95);
}

/// The fastest of three links drops to 1 % of its rate at 5 s in the sending direction only
/// (an uplink that degrades while its downlink does not) and gets it back at 10 s. Its
/// acknowledgements come paced by the crawl, each a little later than the last, but not
/// queued behind the receiver's own messages, since the way back keeps its rate: what the
/// link holds must move to the others once its acknowledgements fall far behind the rate it
/// was measured at, not seconds later when they come.
#[test]
fn failover_degraded_one_way() {
    let (mut sim, links) = degraded_one_way(6);
    sim.run_until(secs(16.0), |_| false);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(10.0));
    let survivors: f64 = links[1..].iter().map(LinkSpec::bytes_per_sec).sum();
    let lowest = lowest_rate(&sim, 5.0, 10.0, 0.5);
    let during = efficiency(&sim, &links[1..], 6.0, 10.0);
    let after = efficiency(&sim, &links, 11.0, 16.0);
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "40 Mbit/s link down to 1 % one way: longest stall {:.0} ms, lowest 0.5 s {:.1} % of \
         the other two, the other two {:.1} % used, all links {:.1} % used 1-6 s after",
        stall.as_secs_f64() * 1000.0,
        lowest / survivors * 100.0,
        during * 100.0,
        after * 100.0
    );
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(
        lowest >= survivors * 0.5,
        "lowest 0.5 s while degraded {lowest}"
    );
    assert!(during > 0.95, "efficiency while degraded {during}");
    assert!(after > 0.95, "efficiency after healing {after}");
    pinned_gap("degraded one way, gap", stall, 50);
    pinned_share("degraded one way, the other two meanwhile", during, 0.9801);
    pinned_share("degraded one way, all after the restore", after, 0.9851);
}

/// In the same scenario the crawling link's test, after its stall, finds it at the crawl
/// (about 50 kB/s, where it had about 5 MB/s): it is tested again a quarter second later,
/// and again while it crawls, so that a path that heals during or after a test is found by
/// the next. A test after the restore finds its rate again, and no more follow.
#[test]
fn a_link_tested_far_below_its_rate_is_tested_again() {
    let (mut sim, _) = degraded_one_way(6);
    // When the link came back from a test (Stalled or Testing to Active), and when it went
    // under test again while active, in ms.
    let (mut stalled, mut back, mut retested) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = LinkState::Active;
    for step in 0..3_000 {
        let ms = 4_000 + step * 5;
        sim.run_until(Time::from(Duration::from_millis(ms)), |_| false);
        let state = sim.connection(Side::A).link_stats()[0].state;
        match (last, state) {
            (_, LinkState::Stalled) if last != LinkState::Stalled => stalled.push(ms),
            (LinkState::Stalled | LinkState::Testing, LinkState::Active) => back.push(ms),
            (LinkState::Active, LinkState::Testing) => retested.push(ms),
            _ => {}
        }
        last = state;
    }
    println!(
        "stalled at {stalled:?} ms, back from a test at {back:?} ms, tested again at \
         {retested:?} ms"
    );
    let first_back = *back
        .first()
        .expect("the link came back from its first test");
    assert!(
        retested.first().is_some_and(|&t| t - first_back <= 300),
        "the first test found a crawl, so another follows within 300 ms: back {back:?}, \
         tested again {retested:?}"
    );
    // Gaps of 250 ms, 500 ms and 1 s fit between the first test's end and the restore.
    assert!(
        retested.len() >= 3,
        "tested again while it crawls: {retested:?}"
    );
    let last_back = *back.last().expect("came back");
    assert!(
        last_back > 10_000 && retested.iter().all(|&t| t < last_back),
        "the test after the restore is the last: back {back:?}, tested again {retested:?}"
    );
    let rate = sim.connection(Side::A).link_stats()[0].rate;
    assert!(rate > 3e6, "the restored link's rate {rate}");
}

/// Healthy links are not taken for crawling ones: two long links whose delay varies by up to
/// 400 ms a round trip (20 Mbit/s, 150 ms one way, up to 200 ms of jitter each way, order
/// kept), carrying small writes every 25 ms from A while B sends A a bulk transfer, so that
/// A's payloads are few and small, and their acknowledgements wait behind B's data. Neither
/// of A's links stalls once the first 2 s are past (the second link stalls once at 0.9 s,
/// with or without due times at measured rates: an ack timeout while the links start).
#[test]
fn small_writes_on_long_jittery_links_beside_bulk_the_other_way_stall_nothing() {
    let jittery = LinkSpec::mbit(20.0, 150).with_jitter(Duration::from_millis(200));
    let mut sim = Sim::new(3, Config::default());
    sim.add_link(jittery);
    sim.add_link(jittery);
    sim.send(Side::B, 100_000_000);
    for i in 0..800 {
        sim.write_at(Duration::from_millis(500 + i * 25), Side::A, 2_000);
    }
    let mut stalls = Vec::new();
    let mut last = [LinkState::Active; 2];
    for step in 0..4_400 {
        let ms = step * 5;
        sim.run_until(Time::from(Duration::from_millis(ms)), |_| false);
        for (i, stats) in sim
            .connection(Side::A)
            .link_stats()
            .iter()
            .enumerate()
            .take(2)
        {
            if stats.state == LinkState::Stalled && last[i] != LinkState::Stalled {
                stalls.push((i, ms));
            }
            last[i] = stats.state;
        }
    }
    let written = sim.bytes_written(Side::A);
    println!(
        "small writes beside bulk the other way: {written} bytes written, stalls (link, ms) {stalls:?}"
    );
    assert_eq!(written, 1_600_000, "every small write was taken");
    assert!(
        stalls.iter().all(|&(_, ms)| ms < 2_000),
        "a healthy link stalled: {stalls:?}"
    );
}
