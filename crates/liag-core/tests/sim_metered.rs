//! Metered links (`LinkConfig::meter`) in the simulator, in virtual time: the allowance holds
//! in both directions while another link works, the metered link takes over when none does
//! and goes quiet again after a heal, and a new period brings it back. The figures are
//! printed (`cargo test -p liag-core --test sim_metered -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, LinkConfig, LinkStats, Meter, Time};
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// `side`'s link number `index`, now.
fn link(sim: &Sim, side: Side, index: usize) -> LinkStats {
    sim.connection(side).link_stats()[index].clone()
}

/// Runs to `t` seconds.
fn run_to(sim: &mut Sim, t: f64) {
    sim.run_until(secs(t), |_| false);
}

/// Data both sides sent on link `index` so far.
fn data_on(sim: &Sim, index: usize) -> u64 {
    link(sim, Side::A, index).data_bytes + link(sim, Side::B, index).data_bytes
}

/// The most one message adds: a whole payload and its header.
const ONE_MESSAGE: u64 = (32 << 10) + 16;

/// A simulation over a 40 Mbit/s link, metered at `limit` bytes on side A, and a 20 Mbit/s
/// one (10 ms each way).
fn metered_sim(seed: u64, limit: u64) -> (Sim, Meter) {
    let mut sim = Sim::new(seed, Config::default());
    sim.add_link(LinkSpec::mbit(40.0, 10));
    sim.add_link(LinkSpec::mbit(20.0, 10));
    let meter = Meter::new(limit);
    let id = link(&sim, Side::A, 0).id;
    let config = LinkConfig::default().with_meter(meter.clone());
    sim.connection_mut(Side::A).set_link_config(id, config);
    (sim, meter)
}

#[test]
fn a_metered_link_keeps_its_allowance_and_is_the_backup_past_it() {
    // The metered link is the faster one: only its allowance keeps it from carrying most.
    let limit = 4_000_000;
    let (mut sim, meter) = metered_sim(1, limit);
    // Bulk both ways: the peer, which knows nothing of the meter, must stop too.
    let total = 120_000_000;
    sim.send(Side::A, total);
    sim.send(Side::B, total);
    // The other link goes silent from 8 to 12 s.
    sim.fault_at(Duration::from_secs(8), 1, Fault::BlackHole);
    sim.fault_at(Duration::from_secs(12), 1, Fault::Heal);

    // The allowance runs out within the first second or so.
    run_to(&mut sim, 4.0);
    let over_at_4 = link(&sim, Side::A, 0).over_allowance;
    let used_at_4 = meter.used();
    let data_4 = data_on(&sim, 0);
    run_to(&mut sim, 8.0);
    let used_at_8 = meter.used();
    let data_idle = data_on(&sim, 0) - data_4;

    // No other link works: the metered one takes over.
    run_to(&mut sim, 12.0);
    let b = sim.received(Side::B);
    let stall = b.longest_gap(secs(8.0), secs(9.0));
    let during = (b.bytes_at(secs(12.0)) - b.bytes_at(secs(9.0))) as f64
        / 3.0
        / LinkSpec::mbit(40.0, 10).bytes_per_sec();

    // The other link heals at 12 s: within a second the metered one carries no new data.
    run_to(&mut sim, 13.0);
    let data_13 = data_on(&sim, 0);
    let over_at_13 = link(&sim, Side::A, 0).over_allowance;
    run_to(&mut sim, 16.0);
    let data_after_heal = data_on(&sim, 0) - data_13;

    // A new period: the link carries data again by its next keep-alive.
    meter.reset();
    run_to(&mut sim, 35.0);
    let back = data_on(&sim, 0) - data_13 - data_after_heal;

    assert!(sim.run_until(secs(200.0), |s| s.received(Side::A).finished
        && s.received(Side::B).finished));
    assert!(
        sim.verified(Side::A) && sim.verified(Side::B),
        "every byte, in order"
    );
    println!(
        "allowance {limit} bytes: {used_at_4} counted at 4 s, {used_at_8} at 8 s (over by \
         {} bytes); {data_idle} bytes of data on it 4-8 s; stall {:.0} ms when the other link \
         went silent, then {:.1} % of its rate 9-12 s; {data_after_heal} bytes of data 13-16 s \
         after the heal; {back} bytes after a new period",
        used_at_8.saturating_sub(limit),
        stall.as_secs_f64() * 1000.0,
        during * 100.0,
    );
    assert!(over_at_4, "blocked once the allowance ran out");
    assert!(
        used_at_4 >= limit / 2,
        "the allowance was used: {used_at_4}"
    );
    assert!(
        used_at_8 <= limit + ONE_MESSAGE,
        "within one message of the allowance: {used_at_8}"
    );
    assert_eq!(
        data_idle, 0,
        "no data either way while the other link works"
    );
    assert!(stall < Duration::from_millis(500), "{stall:?}");
    assert!(during > 0.8, "the metered link carries the load: {during}");
    assert!(over_at_13, "blocked again within a second of the heal");
    assert_eq!(data_after_heal, 0, "quiet again after the heal");
    assert!(back > 1_000_000, "a new period brings it back: {back}");
}

#[test]
fn one_allowance_shared_by_two_links_holds_for_both() {
    let mut sim = Sim::new(2, Config::default());
    for _ in 0..3 {
        sim.add_link(LinkSpec::mbit(20.0, 10));
    }
    let limit = 3_000_000;
    let meter = Meter::new(limit);
    for index in [0, 1] {
        let id = link(&sim, Side::A, index).id;
        let config = LinkConfig::default().with_meter(meter.clone());
        sim.connection_mut(Side::A).set_link_config(id, config);
    }
    sim.send(Side::A, 60_000_000);
    sim.send(Side::B, 60_000_000);
    assert!(sim.run_until(secs(120.0), |s| s.received(Side::A).finished
        && s.received(Side::B).finished));
    assert!(
        sim.verified(Side::A) && sim.verified(Side::B),
        "every byte, in order"
    );
    let counted: u64 = [0, 1]
        .iter()
        .map(|&i| {
            let l = link(&sim, Side::A, i);
            l.sent_bytes + l.received_bytes
        })
        .sum();
    println!(
        "two links on one allowance of {limit} bytes: {} counted, {counted} on their stats",
        meter.used()
    );
    assert_eq!(meter.used(), counted, "the meter counts both links' bytes");
    assert!(
        meter.used() <= limit + 2 * ONE_MESSAGE,
        "within a message per link: {}",
        meter.used()
    );
}

#[test]
fn a_download_alone_stops_within_the_allowance_and_stays_blocked() {
    // Only the peer sends: this end's window stays small, so the reserve comes from what
    // arrives, and must not shrink back once the block quietens the link.
    let limit = 4_000_000;
    let (mut sim, meter) = metered_sim(3, limit);
    sim.send(Side::B, 60_000_000);
    sim.send(Side::A, 0);
    let mut flips = 0;
    let mut was = false;
    for step in 1..=100 {
        run_to(&mut sim, f64::from(step) * 0.1);
        let now = link(&sim, Side::A, 0).over_allowance;
        flips += usize::from(now != was);
        was = now;
    }
    let used_at_10 = meter.used();
    let data_10 = data_on(&sim, 0);
    run_to(&mut sim, 14.0);
    let data_after = data_on(&sim, 0) - data_10;
    assert!(sim.run_until(secs(120.0), |s| s.received(Side::A).finished
        && s.received(Side::B).finished));
    assert!(sim.verified(Side::A), "every byte, in order");
    println!(
        "download alone, allowance {limit} bytes: {used_at_10} counted at 10 s, blocked and \
         unblocked {flips} time(s), {data_after} bytes of data on it 10-14 s"
    );
    assert!(
        was && flips == 1,
        "blocked once and for good: {flips} changes"
    );
    assert!(used_at_10 <= limit + ONE_MESSAGE, "{used_at_10}");
    assert!(
        used_at_10 >= limit / 2,
        "the allowance was used: {used_at_10}"
    );
    assert_eq!(data_after, 0);
}
