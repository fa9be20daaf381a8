//! Link tiers in the simulator, in virtual time: a backup link idle while a primary works and
//! taking over when none does; a secondary link carrying only what the primaries cannot.
//! The figures are printed (`cargo test -p liag-core --test sim_tiers -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, LinkConfig, LinkStats, Tier, Time};
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// A simulation over links of `mbit` Mbit/s (10 ms each way), side A's link number `index`
/// of the tier `tier`.
fn tiered(seed: u64, mbit: [f64; 2], (index, tier): (usize, Tier)) -> Sim {
    let mut sim = Sim::new(seed, Config::default());
    for rate in mbit {
        sim.add_link(LinkSpec::mbit(rate, 10));
    }
    let id = sim.connection(Side::A).link_stats()[index].id;
    let config = LinkConfig::default().with_tier(tier);
    sim.connection_mut(Side::A).set_link_config(id, config);
    sim
}

/// Side A's link number `index`, now.
fn link(sim: &Sim, index: usize) -> LinkStats {
    sim.connection(Side::A).link_stats()[index].clone()
}

/// Runs to `t` seconds.
fn run_to(sim: &mut Sim, t: f64) {
    sim.run_until(secs(t), |_| false);
}

#[test]
fn a_backup_link_stays_idle_while_a_primary_works_and_takes_over_when_none_does() {
    // The backup is the faster link: its tier, not its speed, keeps it idle.
    let mut sim = tiered(1, [20.0, 40.0], (1, Tier::Backup));
    sim.send(Side::A, 60_000_000);
    // The primary's path goes silent at 5 s and comes back at 10 s.
    sim.fault_at(Duration::from_secs(5), 0, Fault::BlackHole);
    sim.fault_at(Duration::from_secs(10), 0, Fault::Heal);

    // Past the backup's link test (its filler and Pings), while the primary works.
    run_to(&mut sim, 1.0);
    let (backup_1s, total_1s) = (link(&sim, 1).sent_bytes, sim.received(Side::B).bytes);
    run_to(&mut sim, 5.0);
    let backup_idle = link(&sim, 1).sent_bytes - backup_1s;
    let moved = sim.received(Side::B).bytes - total_1s;
    let idle_share = backup_idle as f64 / moved as f64;
    assert_eq!(link(&sim, 1).data_bytes, 0, "no data on the backup");

    // The primary dies: the backup takes over within the failover target.
    run_to(&mut sim, 10.0);
    let stall = sim.received(Side::B).longest_gap(secs(5.0), secs(6.0));
    let backup_data_at_heal = link(&sim, 1).data_bytes;
    let during = (sim.received(Side::B).bytes_at(secs(10.0))
        - sim.received(Side::B).bytes_at(secs(6.0))) as f64
        / 4.0
        / LinkSpec::mbit(40.0, 10).bytes_per_sec();

    // The primary heals at 10 s: within a second the backup carries no new data.
    run_to(&mut sim, 11.0);
    let backup_data_11s = link(&sim, 1).data_bytes;
    let primary_data_11s = link(&sim, 0).data_bytes;
    run_to(&mut sim, 16.0);
    let backup_after = link(&sim, 1).data_bytes - backup_data_11s;
    let primary_after = link(&sim, 0).data_bytes - primary_data_11s;

    assert!(sim.run_until(secs(120.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B), "every byte, in order");
    println!(
        "backup: {:.3} % of the bytes 1-5 s while the primary works ({backup_idle} bytes of \
         keep-alives); stall {:.0} ms when the primary went silent, then {:.1} % of the \
         backup's rate 6-10 s; {} bytes of data on it 11-16 s after the heal, the primary {}",
        idle_share * 100.0,
        stall.as_secs_f64() * 1000.0,
        during * 100.0,
        backup_after,
        primary_after
    );
    assert!(idle_share < 0.001, "backup share {idle_share}");
    assert!(stall <= Duration::from_millis(300), "stall {stall:?}");
    assert!(
        backup_data_at_heal > 10_000_000,
        "the backup carried the outage"
    );
    assert!(during > 0.9, "backup used {during} meanwhile");
    assert_eq!(
        backup_after, 0,
        "the backup is idle again a second after the heal"
    );
    assert!(primary_after > 10_000_000, "the primary carries again");
}

#[test]
fn a_secondary_link_carries_only_what_the_primaries_cannot() {
    // The secondary is the faster link, and the first one the simulator offers data to: only
    // its tier keeps it idle.
    let mut sim = tiered(2, [40.0, 20.0], (0, Tier::Secondary));
    // 100 kB (several payloads) every 100 ms, 8 Mbit/s, from 0.5 s (once the primary's link
    // test is done: the first link, the secondary, carries data until then) to 5 s: the
    // primary takes it all.
    for i in 5..50 {
        sim.write_at(Duration::from_millis(100 * i), Side::A, 100_000);
    }
    run_to(&mut sim, 5.0);
    let light = link(&sim, 0).data_bytes;
    assert!(
        link(&sim, 1).data_bytes >= 4_500_000,
        "the primary carried it"
    );
    // Then a bulk transfer, more than the primary can carry.
    sim.send(Side::A, 80_000_000);
    let at = sim.received(Side::B).bytes;
    run_to(&mut sim, 13.0);
    let bulk = (sim.received(Side::B).bytes - at) as f64 / 8.0;
    let sum = LinkSpec::mbit(40.0, 10).bytes_per_sec() + LinkSpec::mbit(20.0, 10).bytes_per_sec();
    let secondary = link(&sim, 0).data_bytes;
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    println!(
        "secondary: {light} bytes of data under light load; under bulk load {:.1} % of both \
         links' sum moved, {secondary} bytes of it on the secondary",
        bulk / sum * 100.0
    );
    assert_eq!(light, 0, "light load stays on the primary");
    assert!(
        bulk / sum > 0.95,
        "both links used under bulk load: {}",
        bulk / sum
    );
    assert!(secondary > 20_000_000, "the secondary carried its share");
}
