//! A memory budget shared by connections: together they hold no more than it allows, and a
//! connection that fills it stops no other.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{LinkSpec, Side, Sim};
use liag_core::{Config, MemoryBudget, Time};
use std::num::NonZeroU32;
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// Three links of 40, 20 and 10 Mbit/s; B, the server, is charged to `budget`.
fn sim(seed: u64, budget: &MemoryBudget) -> Sim {
    let mut client = Config::default();
    client.recv_buffer = NonZeroU32::new(16 << 20).unwrap();
    client.send_buffer = 16 << 20;
    let mut server = client.clone();
    server.memory_budget = Some(budget.clone());
    let mut sim = Sim::with_configs(seed, client, server);
    for spec in [
        LinkSpec::mbit(40.0, 10),
        LinkSpec::mbit(20.0, 20),
        LinkSpec::mbit(10.0, 30),
    ] {
        sim.add_link(spec);
    }
    sim
}

#[test]
fn connections_hold_no_more_than_their_budget() {
    let budget = MemoryBudget::new(2 << 20);
    let mut sim = sim(40, &budget);
    sim.set_reading(Side::B, false);
    sim.send(Side::A, 50_000_000);
    let mut peak = 0;
    sim.run_until(secs(10.0), |_| {
        peak = peak.max(budget.used());
        false
    });
    let buffered = sim.connection(Side::B).stats().receive_buffered;
    println!("budget of 2 MiB: at most {peak} bytes held, {buffered} of them received");
    // The receiver stores what fits, and the one payload it may always take.
    let max_payload = Config::default().max_payload;
    assert!(peak <= (2 << 20) + max_payload, "{peak}");
    assert!(buffered >= 1 << 20, "the budget was used: {buffered}");
    // Once the application reads, everything arrives, and every byte is given back.
    sim.set_reading(Side::B, true);
    assert!(sim.run_until(secs(300.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    drop(sim);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_connection_that_fills_the_budget_stops_no_other() {
    let budget = MemoryBudget::new(2 << 20);
    // A receiver that never reads holds all the budget it can get...
    let mut stuck = sim(41, &budget);
    stuck.set_reading(Side::B, false);
    stuck.send(Side::A, 50_000_000);
    stuck.run_until(secs(10.0), |_| false);
    let held = budget.used();
    let max_payload = Config::default().max_payload;
    assert!(held + max_payload > 2 << 20, "the budget is spent: {held}");
    // ... and another connection still carries its data, whole and in order, both ways:
    // the server writes within its floor of SEND_FLOOR, and takes in the next payload in
    // order whenever its application has read the rest.
    let squeezed = both_ways(42, &budget);
    // The same transfer with the budget to itself, for comparison.
    let alone = both_ways(42, &MemoryBudget::new(2 << 20));
    println!(
        "5 MB and 1 MB both ways took {squeezed:.1} s beside a spent budget, {alone:.1} s alone"
    );
}

/// 5 MB one way and 1 MB the other, charged to `budget`; the time they took, once both
/// arrived whole and in order.
fn both_ways(seed: u64, budget: &MemoryBudget) -> f64 {
    let mut other = sim(seed, budget);
    other.send(Side::A, 5_000_000);
    other.send(Side::B, 1_000_000);
    let done = other.run_until(secs(300.0), |s| {
        s.received(Side::B).finished && s.received(Side::A).finished
    });
    assert!(done, "the other connection finished");
    assert!(other.verified(Side::A) && other.verified(Side::B));
    other.now().since_epoch().as_secs_f64()
}
