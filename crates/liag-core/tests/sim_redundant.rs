//! Redundant sending in the simulator, in virtual time: small messages both ways over two
//! links, the faster one dropping into 500 ms outages at random. The figures are printed
//! (`cargo test -p liag-core --test sim_redundant -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, LinkConfig, LinkState, Tier, Time};
use std::time::Duration;

/// The healthy link's one-way delay.
const STEADY_DELAY: Duration = Duration::from_millis(25);
/// One small message every 10 ms, 20 s long.
const MESSAGE: u64 = 64;
const INTERVAL: Duration = Duration::from_millis(10);
const MESSAGES: u64 = 2_000;
const START: Duration = Duration::from_secs(1);
const OUTAGE: Duration = Duration::from_millis(500);

/// What one run showed: each message's delay, sorted, and the bytes the links carried.
struct Run {
    delays: Vec<Duration>,
    outages: usize,
    link_data_bytes: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.delays.len() as f64 * p).ceil() as usize).clamp(1, self.delays.len());
        self.delays[i - 1]
    }
}

/// Link 0: 20 Mbit/s, 5 ms each way, into a 500 ms black hole every 1–3 s (drawn from
/// `seed`). Link 1: 20 Mbit/s, 25 ms each way, always working. Both sides write 64 bytes every
/// 10 ms (B 5 ms after A), as a call or a game does; the delay of each is from its write to
/// its arrival at the other side's application. Each side's reading makes it send Consumed
/// messages among its Data, in the same sequence.
fn run(seed: u64, redundant: bool) -> Run {
    let mut config = Config::default();
    config.redundant = redundant;
    let mut sim = Sim::new(seed, config);
    sim.add_link(LinkSpec::mbit(20.0, 5));
    sim.add_link(LinkSpec::mbit(20.0, 25));
    let mut rng = fastrand::Rng::with_seed(seed);
    let end = START + INTERVAL * MESSAGES as u32;
    let mut at = START + Duration::from_millis(rng.u64(1_000..3_000));
    let mut outages = 0;
    while at + OUTAGE < end {
        sim.fault_at(at, 0, Fault::BlackHole);
        sim.fault_at(at + OUTAGE, 0, Fault::Heal);
        outages += 1;
        at += OUTAGE + Duration::from_millis(rng.u64(1_000..3_000));
    }
    let offset = [Duration::ZERO, INTERVAL / 2];
    for i in 0..MESSAGES {
        for (side, offset) in [(Side::A, offset[0]), (Side::B, offset[1])] {
            sim.write_at(START + offset + INTERVAL * i as u32, side, MESSAGE);
        }
    }
    let deadline = Time::from(end + Duration::from_secs(30));
    let all = MESSAGE * MESSAGES;
    let both = |s: &Sim| s.received(Side::A).bytes >= all && s.received(Side::B).bytes >= all;
    assert!(sim.run_until(deadline, both));
    sim.send(Side::A, 0);
    sim.send(Side::B, 0);
    let ended = |s: &Sim| s.received(Side::A).finished && s.received(Side::B).finished;
    assert!(sim.run_until(deadline, ended));
    assert!(
        sim.verified(Side::A) && sim.verified(Side::B),
        "every byte, in order"
    );

    let mut delays = Vec::new();
    for (to, offset) in [(Side::B, offset[0]), (Side::A, offset[1])] {
        let progress = &sim.received(to).progress;
        delays.extend((0..MESSAGES).map(|i| {
            let written = Time::from(START + offset + INTERVAL * i as u32);
            let needed = MESSAGE * (i + 1);
            let k = progress.partition_point(|&(_, total)| total < needed);
            progress[k].0 - written
        }));
    }
    delays.sort();
    let link_data_bytes = [Side::A, Side::B]
        .iter()
        .flat_map(|&side| sim.connection(side).link_stats())
        .map(|l| l.data_bytes + l.resent_bytes + l.copied_bytes)
        .sum();
    Run {
        delays,
        outages,
        link_data_bytes,
    }
}

#[test]
fn redundant_sending_rides_out_a_links_outages() {
    for seed in [1, 2, 3] {
        let plain = run(seed, false);
        let redundant = run(seed, true);
        let app_bytes = (2 * MESSAGE * MESSAGES) as f64;
        println!(
            "seed {seed}, {} outages of 500 ms: default p50 {:?} p99 {:?} max {:?}, \
             {:.2} bytes on the links per byte sent; redundant p50 {:?} p99 {:?} max {:?}, \
             {:.2} bytes per byte",
            redundant.outages,
            plain.percentile(0.5),
            plain.percentile(0.99),
            plain.percentile(1.0),
            plain.link_data_bytes as f64 / app_bytes,
            redundant.percentile(0.5),
            redundant.percentile(0.99),
            redundant.percentile(1.0),
            redundant.link_data_bytes as f64 / app_bytes,
        );
        assert!(redundant.outages >= 5);
        assert!(
            redundant.percentile(0.99) <= 2 * STEADY_DELAY,
            "redundant p99 {:?} within twice the steady link's one-way delay",
            redundant.percentile(0.99)
        );
        assert!(
            plain.percentile(0.99) > 2 * STEADY_DELAY,
            "without redundancy the outages show in the p99 ({:?}): the scenario tests something",
            plain.percentile(0.99)
        );
        assert!(
            redundant.link_data_bytes as f64 <= 2.0 * app_bytes * 1.01,
            "at most one copy per message"
        );
    }
}

#[test]
fn a_redundant_bulk_transfer_arrives_whole_through_a_link_reset() {
    let mut config = Config::default();
    config.redundant = true;
    let mut sim = Sim::new(4, config);
    sim.add_link(LinkSpec::mbit(40.0, 5));
    sim.add_link(LinkSpec::mbit(20.0, 25));
    let len = 20_000_000;
    sim.send(Side::A, len);
    sim.fault_at(Duration::from_secs(2), 0, Fault::Reset);
    assert!(sim.run_until(Time::from(Duration::from_secs(120)), |s| {
        s.received(Side::B).finished
    }));
    assert!(sim.verified(Side::B), "every byte, in order");
    let secs = (sim.received(Side::B).progress.last().unwrap().0 - Time::ZERO).as_secs_f64();
    let copied: u64 = sim
        .connection(Side::A)
        .link_stats()
        .iter()
        .map(|l| l.copied_bytes)
        .sum();
    let received = sim.received(Side::B);
    let before = (received.bytes_at(Time::from(Duration::from_secs(2)))
        - received.bytes_at(Time::from(Duration::from_secs(1)))) as f64;
    println!(
        "redundant bulk: {:.1} Mbit/s over 40 + 20 Mbit/s links from 1 to 2 s, {:.1} Mbit/s \
         on the whole (the 40 reset at 2 s); {copied} bytes of copies on the link left",
        before * 8.0 / 1e6,
        len as f64 * 8.0 / secs / 1e6
    );
    assert!(copied > 0);
}

/// Two 20 Mbit/s links (5 and 25 ms each way), side A sending redundantly, 64 bytes every
/// 10 ms from 1 s to 11 s.
fn small_messages(seed: u64) -> Sim {
    let mut config = Config::default();
    config.redundant = true;
    let mut sim = Sim::new(seed, config);
    sim.add_link(LinkSpec::mbit(20.0, 5));
    sim.add_link(LinkSpec::mbit(20.0, 25));
    for i in 0..1_000 {
        sim.write_at(START + INTERVAL * i, Side::A, MESSAGE);
    }
    sim
}

#[test]
fn a_silent_link_that_carries_only_copies_is_stalled_and_comes_back() {
    let mut sim = small_messages(5);
    // The slower link takes the copies; it goes silent from 3 to 6 s.
    sim.fault_at(Duration::from_secs(3), 1, Fault::BlackHole);
    sim.fault_at(Duration::from_secs(6), 1, Fault::Heal);
    sim.run_until(Time::from(Duration::from_secs(2)), |_| false);
    let slower = &sim.connection(Side::A).link_stats()[1];
    assert!(
        slower.copied_bytes > 0,
        "the slower link carries the copies"
    );
    assert_eq!(slower.data_bytes, 0, "and nothing of its own to time out");
    sim.run_until(Time::from(Duration::from_secs(4)), |_| false);
    let during = sim.connection(Side::A).link_stats()[1].state;
    assert_ne!(
        during,
        LinkState::Active,
        "its copies went unacknowledged: it stalled"
    );
    sim.run_until(Time::from(Duration::from_secs(9)), |_| false);
    let after = &sim.connection(Side::A).link_stats()[1];
    assert_eq!(after.state, LinkState::Active, "its test brought it back");
    let (copies_at_9s, at_9s) = (after.copied_bytes, Time::from(Duration::from_secs(10)));
    sim.run_until(at_9s, |_| false);
    assert!(sim.connection(Side::A).link_stats()[1].copied_bytes > copies_at_9s);
    sim.send(Side::A, 0);
    assert!(sim.run_until(Time::from(Duration::from_secs(60)), |s| {
        s.received(Side::B).finished
    }));
    assert!(sim.verified(Side::B), "every byte, in order");
}

#[test]
fn a_secondary_link_takes_copies_while_the_primary_carries_the_data() {
    let mut sim = small_messages(6);
    let id = sim.connection(Side::A).link_stats()[1].id;
    sim.connection_mut(Side::A)
        .set_link_config(id, LinkConfig::default().with_tier(Tier::Secondary));
    sim.run_until(Time::from(Duration::from_secs(5)), |_| false);
    let secondary = &sim.connection(Side::A).link_stats()[1];
    assert_eq!(secondary.data_bytes, 0, "no data of its own");
    assert!(
        secondary.copied_bytes >= 300 * MESSAGE,
        "{} bytes of copies",
        secondary.copied_bytes
    );
}

#[test]
fn a_slow_link_full_of_copies_is_not_taken_for_a_silent_one() {
    // A bulk transfer over a 40 Mbit/s primary and a 5 Mbit/s secondary of 1 ms each way and
    // a 256 KiB queue (a socket buffer and a bottleneck): the secondary's test measures a
    // round trip of milliseconds, its copies then queue for 400 ms, far beyond the 100 ms
    // ack timeout floor, yet its acknowledgements keep coming.
    let mut config = Config::default();
    config.redundant = true;
    let mut sim = Sim::new(7, config);
    sim.add_link(LinkSpec::mbit(40.0, 5));
    sim.add_link(LinkSpec::mbit(5.0, 1).with_queue(256 << 10));
    let id = sim.connection(Side::A).link_stats()[1].id;
    sim.connection_mut(Side::A)
        .set_link_config(id, LinkConfig::default().with_tier(Tier::Secondary));
    sim.send(Side::A, 20_000_000);
    let mut states = Vec::new();
    for step in 1..=100 {
        sim.run_until(Time::from(Duration::from_millis(50 * step)), |_| false);
        states.push(sim.connection(Side::A).link_stats()[1].state);
    }
    let copies = sim.connection(Side::A).link_stats()[1].copied_bytes;
    assert!(copies > 1_000_000, "{copies} bytes of copies");
    assert!(
        states.iter().skip(10).all(|s| *s == LinkState::Active),
        "the secondary never stalls: {states:?}"
    );
    assert!(sim.run_until(Time::from(Duration::from_secs(60)), |s| {
        s.received(Side::B).finished
    }));
    assert!(sim.verified(Side::B), "every byte, in order");
}
