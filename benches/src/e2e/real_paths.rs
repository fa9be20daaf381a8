//! Failover on real kernel paths: `liag tunnel` between two network namespaces joined by three
//! veth paths shaped with `tbf` to 40, 20 and 10 Mbit/s, and a verified stream through it while
//! the fastest path goes down and comes back, has its socket reset, or drops to 1 % of its rate
//! both ways or from the client only.
//!
//! Each fault runs several times; the report gives the median and the worst of each figure.

use serde_json::{Value, json};
use std::io;
use std::path::Path;

use super::{Received, median};
use crate::netpaths::{Fault, NetPaths};
use crate::tunnel_run::{self, Outcome, Plan, Tunnel};

/// The paths' rates in Mbit/s, the fastest first.
pub const RATES: [f64; 3] = [40.0, 20.0, 10.0];
/// Goodput windows are this long when looking for the time back to 80 %, in seconds.
const WINDOW: f64 = 0.2;
/// ... and the rate must hold this long from the window's start, in seconds: the data a
/// receiver held back behind a lost message comes out at once, one window's worth, and is no
/// sign of the paths carrying the sum again.
const HOLD: f64 = 1.0;
/// ... and when looking for the lowest rate after a heal. The stream arrives in bursts (a
/// slower link's message holds back what faster links brought after it), so even with no
/// fault a 200 ms window dips to about half the links' sum ([`steady`] measures it). Over
/// 500 ms a dip below what the surviving paths carry is a real one.
const LOW_WINDOW: f64 = 0.5;
/// How long after the fault the lowest rate during it is first looked at, in seconds.
const SETTLE: f64 = 0.5;

/// What the paths are, for the report: veths, or delay lines with `LIAG_PATH_DELAY_MS`.
fn links_label() -> String {
    match crate::netpaths::path_delay_ms() {
        Some(ms) => format!("3 paths of {ms} ms each way, tbf 40 + 20 + 10 Mbit/s"),
        None => "3 veth paths, tbf 40 + 20 + 10 Mbit/s".to_string(),
    }
}

/// The figures of one run.
struct Figures {
    intact: bool,
    lost: i64,
    stall_ms: f64,
    /// From the heal until a window reached 80 % of the sum and the rate held there for
    /// [`HOLD`]; `None` if none did.
    back_ms: Option<f64>,
    /// The lowest goodput of any [`LOW_WINDOW`] in the 3 s after the heal, in Mbit/s; `None`
    /// for a reset, which has no heal (its stall says what it cost).
    min_after_heal: Option<f64>,
    /// The lowest goodput of any [`LOW_WINDOW`] while the fault lasts, from [`SETTLE`] after
    /// it (the stall covers the first moments), in Mbit/s.
    min_during: f64,
}

fn figures(outcome: &Outcome, plan: &Plan, healed_at: Option<f64>) -> Figures {
    let healed_at_or_fault = healed_at.unwrap_or(plan.fault_at);
    let received = Received {
        reads: outcome.reads.clone(),
        total: outcome.received,
        crc: 0,
    };
    let sum: f64 = RATES.iter().sum();
    // Any silence while the fault lasts counts, not only the first: a degraded path that
    // holds the stream back again later costs the application as much. A reset has no
    // heal; its 2 s after cover the reconnection.
    let stall_until = healed_at.unwrap_or(plan.fault_at + 2.0);
    let back = received
        .reaches_and_holds(healed_at_or_fault, WINDOW, HOLD, plan.end, 0.8 * sum)
        .map(|t| (t - healed_at_or_fault) * 1e3);
    let min_after_heal = healed_at.map(|healed_at| {
        lowest(
            &received,
            healed_at,
            (healed_at + 3.0).min(plan.end),
            LOW_WINDOW,
        )
    });
    if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_some() {
        let from = plan.fault_at - 0.4;
        let bins: Vec<String> = (0..30)
            .map(|i| from + i as f64 * 0.2)
            .map(|t| format!("{:.0}", received.mbit(t, t + 0.2)))
            .collect();
        eprintln!(
            "    goodput in Mbit/s, 200 ms apart from 0.4 s before the fault: {}",
            bins.join(" ")
        );
    }
    Figures {
        intact: outcome.intact(),
        lost: outcome.sent as i64 - outcome.received as i64,
        stall_ms: received.longest_gap(plan.fault_at, stall_until) * 1e3,
        back_ms: back,
        min_after_heal,
        min_during: lowest(&received, plan.fault_at + SETTLE, stall_until, LOW_WINDOW),
    }
}

/// Who runs the two ends: `liag tunnel` or aggligator's `agg-tunnel` of some version.
#[derive(Debug, Clone)]
pub struct Ends {
    /// The server's tunnel program.
    pub server: Tunnel,
    /// The client's.
    pub client: Tunnel,
    /// How the report names them, such as "aggligator 0.9 server, liag client"; empty for liag
    /// at both ends.
    pub label: String,
    /// Neither end is liag: a figure to compare with, judged against no target.
    pub baseline: bool,
}

impl Ends {
    /// `liag tunnel` at both ends, `liag` being the binary.
    pub fn liag(liag: &Path) -> Ends {
        Ends {
            server: Tunnel::liag(liag),
            client: Tunnel::liag(liag),
            label: String::new(),
            baseline: false,
        }
    }
}

/// Runs `fault` on the fastest path `runs` times between `ends`.
pub fn failover(ends: &Ends, fault: Fault, runs: usize, quick: bool) -> io::Result<Value> {
    let plan = if quick {
        Plan {
            fault: Some((0, fault)),
            fault_at: 3.0,
            heal_at: 5.0,
            end: 8.0,
        }
    } else {
        Plan {
            fault: Some((0, fault)),
            fault_at: 4.0,
            heal_at: 8.0,
            end: 12.0,
        }
    };
    // A reset needs no healing: the client reconnects on the same path at once, and the time
    // back to 80 % counts from the reset.
    let healed_at = (fault != Fault::Reset).then_some(plan.heal_at);
    let mut all = Vec::new();
    for run in 0..runs {
        let paths = NetPaths::new(&RATES)?;
        let outcome = tunnel_run::run(&paths, &ends.server, &ends.client, &plan, &[])?;
        let f = figures(&outcome, &plan, healed_at);
        eprintln!(
            "  {}{} run {}: intact {}, stall {:.0} ms, lowest during {:.1} Mbit/s, back to 80 % {} \
             after the heal, lowest after {}",
            fault.name(),
            ends.label,
            run + 1,
            f.intact,
            f.stall_ms,
            f.min_during,
            f.back_ms
                .map_or("never".to_string(), |ms| format!("{ms:.0} ms")),
            f.min_after_heal
                .map_or("-".to_string(), |m| format!("{m:.1} Mbit/s")),
        );
        all.push(f);
    }
    let stall: Vec<f64> = all.iter().map(|f| f.stall_ms).collect();
    // A run that never got back counts as infinitely slow.
    let back: Vec<f64> = all
        .iter()
        .map(|f| f.back_ms.unwrap_or(f64::INFINITY))
        .collect();
    let lowest = all.iter().filter_map(|f| f.min_after_heal).reduce(f64::min);
    let lowest_during = all.iter().map(|f| f.min_during).reduce(f64::min);
    let worst = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let survivors: f64 = RATES[1..].iter().sum();
    Ok(json!({
        "scenario": format!("real paths, fastest {}{}", fault.name(), ends.label),
        "baseline": ends.baseline,
        "kind": "real_paths",
        "fault": fault.name(),
        "links": links_label(),
        "runs": runs,
        "sum_mbit_s": RATES.iter().sum::<f64>(),
        "survivors_mbit_s": survivors,
        "intact": all.iter().all(|f| f.intact),
        "lost_bytes": all.iter().map(|f| f.lost).max().unwrap_or(0),
        "stall_ms_median": median(&stall),
        "stall_ms_worst": worst(&stall),
        "back_ms_median": finite(median(&back)),
        "back_ms_worst": finite(worst(&back)),
        "lowest_after_heal_mbit_s": lowest,
        "lowest_during_fault_mbit_s": lowest_during,
        "lowest_window_s": LOW_WINDOW,
    }))
}

/// The lowest goodput in Mbit/s of any `window` seconds in `[from, until)`, the windows 50 ms
/// apart.
fn lowest(received: &Received, from: f64, until: f64, window: f64) -> f64 {
    (0..)
        .map(|i| from + i as f64 * 0.05)
        .take_while(|&start| start + window <= until)
        .map(|start| received.mbit(start, start + window))
        .fold(f64::INFINITY, f64::min)
}

/// The paths with no fault, once: the mean goodput after the first second, and the lowest of
/// any 200 ms and any 500 ms window, the baseline for the rates after a heal.
pub fn steady(ends: &Ends, quick: bool) -> io::Result<Value> {
    let end = if quick { 5.0 } else { 10.0 };
    let plan = Plan {
        fault: None,
        fault_at: end,
        heal_at: end,
        end,
    };
    let paths = NetPaths::new(&RATES)?;
    let outcome = tunnel_run::run(&paths, &ends.server, &ends.client, &plan, &[])?;
    let received = Received {
        reads: outcome.reads.clone(),
        total: outcome.received,
        crc: 0,
    };
    let (mean, low200, low500) = (
        received.mbit(1.0, end),
        lowest(&received, 1.0, end, WINDOW),
        lowest(&received, 1.0, end, LOW_WINDOW),
    );
    eprintln!(
        "  no fault{}: {mean:.1} Mbit/s from 1 s to {end} s, lowest 200 ms {low200:.1}, lowest 500 ms {low500:.1}",
        ends.label
    );
    Ok(json!({
        "scenario": format!("real paths, no fault{}", ends.label),
        "kind": "real_paths_steady",
        "links": links_label(),
        "sum_mbit_s": RATES.iter().sum::<f64>(),
        "mean_mbit_s": mean,
        "lowest_200ms_mbit_s": low200,
        "lowest_500ms_mbit_s": low500,
        "intact": outcome.intact(),
    }))
}

/// `None` for a figure that was never reached.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
