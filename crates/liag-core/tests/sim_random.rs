//! Randomized runs: random links, faults and application behaviour, each exact about the bytes.
//!
//! 1,000 seeds run by default; set `LIAG_SIM_SEEDS=N` for more and `LIAG_SIM_SEED=S` to replay
//! one. A failure prints its seed.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, Time};
use std::time::Duration;

/// What one seed does, drawn from the seed itself.
fn scenario(seed: u64) -> Sim {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5EED_5EED);
    let mut config = Config::default();
    config.recv_buffer = std::num::NonZeroU32::new(rng.u32(64 << 10..=8 << 20)).unwrap();
    config.send_buffer = rng.usize(64 << 10..=8 << 20);
    config.max_payload = rng.usize(512..=64 << 10);
    let mut sim = Sim::new(seed, config);

    let spec = |rng: &mut fastrand::Rng| {
        LinkSpec::mbit(rng.f64() * 49.0 + 1.0, rng.u64(0..=100))
            .with_jitter(Duration::from_micros(rng.u64(0..=5_000)))
            .with_queue(rng.usize(16 << 10..=1 << 20))
    };
    let links = rng.usize(1..=4);
    for _ in 0..links {
        let s = spec(&mut rng);
        sim.add_link(s);
    }
    sim.send(Side::A, rng.u64(0..=2_000_000));
    sim.send(Side::B, rng.u64(0..=1_000_000));

    // Faults on any link but the first, which may only be silenced for a while, so the
    // connection always keeps a way through.
    for _ in 0..rng.usize(0..=6) {
        let at = Duration::from_millis(rng.u64(0..=5_000));
        let link = rng.usize(0..links);
        let fault = match rng.u8(0..7) {
            0 if link > 0 => Fault::Reset,
            1 if link > 0 => Fault::Corrupt,
            2 if link > 0 => {
                sim.remove_at(at, link);
                continue;
            }
            3 => {
                let until = at + Duration::from_millis(rng.u64(1..=2_000));
                sim.block_at(until, link, false);
                sim.block_at(at, link, true);
                continue;
            }
            4 => {
                let s = spec(&mut rng);
                sim.add_link_at(at, s);
                continue;
            }
            _ => {
                sim.fault_at(
                    at + Duration::from_millis(rng.u64(1..=3_000)),
                    link,
                    Fault::Heal,
                );
                Fault::BlackHole
            }
        };
        sim.fault_at(at, link, fault);
    }
    if rng.bool() {
        // An application that pauses reading for a while.
        sim.set_reading(Side::B, false);
        sim.write_at(Duration::ZERO, Side::A, 0);
    }
    sim
}

fn run(seed: u64) -> Result<(), String> {
    let mut sim = scenario(seed);
    sim.run_until(Time::from(Duration::from_secs(3)), |_| false);
    sim.set_reading(Side::B, true);
    let done = sim.run_until(Time::from(Duration::from_secs(600)), |s| {
        matches!(s.closed(Side::A), Some(Ok(()))) && matches!(s.closed(Side::B), Some(Ok(())))
    });
    let report = || {
        format!(
            "seed {seed}: closed {:?} / {:?}, B got {} of {} bytes, A got {} of {}, at {:?}\n  \
             A {:?}\n  B {:?}\n  links A {:?}\n  links B {:?}\n  removed {:?}",
            sim.closed(Side::A),
            sim.closed(Side::B),
            sim.received(Side::B).bytes,
            sim.bytes_written(Side::A),
            sim.received(Side::A).bytes,
            sim.bytes_written(Side::B),
            sim.now(),
            sim.connection(Side::A).stats(),
            sim.connection(Side::B).stats(),
            sim.connection(Side::A).link_stats(),
            sim.connection(Side::B).link_stats(),
            sim.removed_links(),
        )
    };
    if !done {
        return Err(format!("did not end gracefully: {}", report()));
    }
    if !sim.verified(Side::A) || !sim.verified(Side::B) {
        return Err(format!("bytes differ: {}", report()));
    }
    Ok(())
}

#[test]
fn random_scenarios() {
    if let Ok(seed) = std::env::var("LIAG_SIM_SEED") {
        let seed = seed.parse().expect("LIAG_SIM_SEED is a number");
        run(seed).unwrap();
        return;
    }
    let seeds: u64 = std::env::var("LIAG_SIM_SEEDS").map_or(1000, |n| n.parse().expect("a number"));
    let failures: Vec<String> = (0..seeds).filter_map(|seed| run(seed).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed; replay one with LIAG_SIM_SEED=<seed>:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
