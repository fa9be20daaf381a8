//! Bulk both ways at once over simulated links, in virtual time: the two ends of one
//! connection each write as fast as the other reads, over paths with 50 ms of queue at their
//! rate and a socket's 128 KiB each way (at 1 Mbit/s that is 1.1 s more), beside the same with
//! A writing alone. For each setting it prints, per seed, the share of each direction's links'
//! sum carried from 3 to 11 s, and the largest smoothed round trip of any link at either end
//! at 11.5 s (docs/performance.md, "Both ways at once").
//!
//! ```text
//! cargo run --release -p liag-core --features sim --example both_ways
//! ```

use liag_core::sim::{LinkSpec, Side, Sim};
use liag_core::{Config, Time};
use std::time::Duration;

/// Seeds per setting.
const SEEDS: u64 = 4;
/// The interval measured, in seconds from the start.
const FROM: f64 = 3.0;
const TO: f64 = 11.0;

fn at(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// One direction of a path: `mbit` Mbit/s with `delay` one way, 0.2 ms of jitter, and a
/// queue of 50 ms at its rate beside a socket's 128 KiB.
fn direction(mbit: f64, delay: Duration) -> LinkSpec {
    let mut spec = LinkSpec::mbit(mbit, 0);
    spec.delay = delay;
    spec.jitter = Duration::from_micros(200);
    spec.queue = (mbit * 1e6 / 8.0 * 0.05) as usize + (128 << 10);
    spec
}

/// A's and B's shares of what their directions carry (percent; B's is 0 when only A writes),
/// and the largest smoothed round trip of any link at either end at the end of the run (ms).
fn run(seed: u64, paths: &[(f64, f64)], delay: Duration, both: bool) -> (f64, f64, f64) {
    let mut sim = Sim::new(seed, Config::default());
    for &(a_to_b, b_to_a) in paths {
        sim.add_asymmetric_link(direction(a_to_b, delay), direction(b_to_a, delay));
    }
    sim.set_writer_waits(Side::A, true);
    sim.set_writer_waits(Side::B, true);
    sim.send(Side::A, 1 << 30);
    if both {
        sim.send(Side::B, 1 << 30);
    }
    sim.run_until(at(TO + 0.5), |_| false);
    let share = |receiver: Side, mbit: f64| {
        let got = sim.received(receiver);
        let bytes = got.bytes_at(at(TO)) - got.bytes_at(at(FROM));
        bytes as f64 / (TO - FROM) / (mbit * 1e6 / 8.0) * 100.0
    };
    let a = share(Side::B, paths.iter().map(|p| p.0).sum());
    let b = share(Side::A, paths.iter().map(|p| p.1).sum());
    let rtt = [Side::A, Side::B]
        .into_iter()
        .flat_map(|side| sim.connection(side).link_stats())
        .map(|s| s.rtt.as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    (a, if both { b } else { 0.0 }, rtt)
}

/// One setting: its name, each path's rates in Mbit/s from A to B and back, and the one-way
/// delay.
struct Setting {
    name: &'static str,
    paths: &'static [(f64, f64)],
    delay_us: u64,
}

const SETTINGS: [Setting; 5] = [
    Setting {
        name: "one path, 20 Mbit/s each way",
        paths: &[(20.0, 20.0)],
        delay_us: 100,
    },
    Setting {
        name: "40, 20 and 10 Mbit/s each way",
        paths: &[(40.0, 40.0), (20.0, 20.0), (10.0, 10.0)],
        delay_us: 100,
    },
    Setting {
        name: "one path, 20 Mbit/s each way, 10 ms one way",
        paths: &[(20.0, 20.0)],
        delay_us: 10_000,
    },
    Setting {
        name: "one path, 40 Mbit/s A to B, 1 back",
        paths: &[(40.0, 1.0)],
        delay_us: 100,
    },
    Setting {
        name: "one path, 40 Mbit/s A to B, 2 back, 5 ms one way",
        paths: &[(40.0, 2.0)],
        delay_us: 5_000,
    },
];

fn main() {
    println!("A to B % / B to A % @ largest round trip ms, seeds 1 to {SEEDS}");
    for setting in &SETTINGS {
        let delay = Duration::from_micros(setting.delay_us);
        for both in [false, true] {
            let runs: Vec<String> = (1..=SEEDS)
                .map(|seed| {
                    let (a, b, rtt) = run(seed, setting.paths, delay, both);
                    if both {
                        format!("{a:.0}/{b:.0} @{rtt:.0}")
                    } else {
                        format!("{a:.0} @{rtt:.0}")
                    }
                })
                .collect();
            let way = if both { "both ways" } else { "A to B only" };
            println!("{}, {way}: {}", setting.name, runs.join(", "));
        }
    }
}
