//! CPU cost of liag-core's state machine, driven through the simulator.
//!
//! Throughput here is payload bytes moved per second of CPU, both connections and the
//! simulated links included, on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use liag_core::Config;
use liag_core::sim::{LinkSpec, Side, Sim};
use std::time::Duration;

/// Moves `bytes` over `links` equal links of 1 Gbit/s and 1 ms.
fn transfer(links: usize, bytes: u64) -> u64 {
    let mut sim = Sim::new(1, Config::default());
    for _ in 0..links {
        sim.add_link(LinkSpec::mbit(1000.0, 1));
    }
    sim.send(Side::A, bytes);
    sim.run_until(liag_core::Time::from(Duration::from_secs(600)), |s| {
        s.received(Side::B).finished
    });
    assert!(sim.verified(Side::B));
    sim.received(Side::B).bytes
}

fn state_machine(c: &mut Criterion) {
    const BYTES: u64 = 64 << 20;
    let mut group = c.benchmark_group("core over the simulator");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(BYTES));
    for links in [1, 4] {
        group.bench_function(format!("{links} link(s), 64 MiB"), |b| {
            b.iter(|| transfer(links, BYTES))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("simulated minute");
    group.sample_size(10);
    group.bench_function("100 Mbit/s over 2 links, 60 s", |b| {
        b.iter(|| {
            let mut sim = Sim::new(5, Config::default());
            sim.add_link(LinkSpec::mbit(60.0, 10));
            sim.add_link(LinkSpec::mbit(40.0, 20));
            sim.send(Side::A, 100_000_000 / 8 * 61);
            sim.run_for(Duration::from_secs(60));
            sim.received(Side::B).bytes
        })
    });
    group.finish();
}

criterion_group!(benches, state_machine);
criterion_main!(benches);
