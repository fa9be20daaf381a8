//! A link's rate cap (`LinkConfig::max_rate`) in the simulator, in virtual time: the capped
//! link carries its cap and no more, and the other links take the rest. The figures are
//! printed (`cargo test -p liag-core --test sim_max_rate -- --nocapture`).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_core::sim::{LinkSpec, Side, Sim};
use liag_core::{Config, LinkConfig, LinkStats, Time};
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

/// Side A's link number `index`, now.
fn link(sim: &Sim, index: usize) -> LinkStats {
    sim.connection(Side::A).link_stats()[index].clone()
}

/// Bulk data from A over links of `mbit` Mbit/s (10 ms each way), A's first link capped at
/// `cap` bytes per second: what the capped link and the whole connection carried from 2 to
/// 6 s, in bytes per second.
fn capped(seed: u64, mbit: &[f64], cap: u64) -> (f64, f64) {
    let mut sim = Sim::new(seed, Config::default());
    for &rate in mbit {
        sim.add_link(LinkSpec::mbit(rate, 10));
    }
    let id = sim.connection(Side::A).link_stats()[0].id;
    let config = LinkConfig::default().with_max_rate(cap);
    sim.connection_mut(Side::A).set_link_config(id, config);
    sim.send(Side::A, 200_000_000);
    sim.run_until(secs(2.0), |_| false);
    let (capped_2s, total_2s) = (link(&sim, 0).data_bytes, sim.received(Side::B).bytes);
    sim.run_until(secs(6.0), |_| false);
    let capped_rate = (link(&sim, 0).data_bytes - capped_2s) as f64 / 4.0;
    let total_rate = (sim.received(Side::B).bytes - total_2s) as f64 / 4.0;
    (capped_rate, total_rate)
}

#[test]
fn a_capped_link_carries_its_cap_and_the_others_the_rest() {
    // A 40 Mbit/s link capped at 10 Mbit/s beside a 20 Mbit/s one.
    let cap = 1_250_000;
    let (on_capped, total) = capped(1, &[40.0, 20.0], cap);
    let others = LinkSpec::mbit(20.0, 10).bytes_per_sec();
    println!(
        "capped at {:.1} Mbit/s: it carried {:.2} Mbit/s, the connection {:.2} Mbit/s of the \
         {:.1} Mbit/s the cap and the other link allow",
        cap as f64 * 8e-6,
        on_capped * 8e-6,
        total * 8e-6,
        (cap as f64 + others) * 8e-6
    );
    // Within one 32 KiB payload over the 4 s.
    assert!(on_capped <= cap as f64 + 32_768.0 / 4.0, "{on_capped}");
    assert!(
        on_capped >= cap as f64 * 0.95,
        "the cap is used: {on_capped}"
    );
    assert!(total >= (cap as f64 + others) * 0.95, "{total}");
}

#[test]
fn a_capped_link_alone_is_paced_by_its_own_timer() {
    // Nothing else sends, so only the pacing timer brings the next payload.
    let cap = 500_000;
    let (on_capped, total) = capped(2, &[40.0], cap);
    println!(
        "alone, capped at {:.1} Mbit/s: {:.2} Mbit/s",
        cap as f64 * 8e-6,
        total * 8e-6
    );
    assert!(on_capped <= cap as f64 + 32_768.0 / 4.0, "{on_capped}");
    assert!(total >= cap as f64 * 0.95, "{total}");
}
