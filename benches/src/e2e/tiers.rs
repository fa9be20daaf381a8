//! Link tiers on real kernel paths: `liag tunnel` between two network namespaces joined by a
//! 20 Mbit/s primary path and a 40 Mbit/s backup path (`--backup-interface`), or a metered one
//! (`--cap`), a verified stream through it while the primary goes down and comes back. Each
//! interface's bytes are sampled every 50 ms from the client namespace, so the figures show
//! what the second path carried.

use serde_json::{Value, json};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Received, median};
use crate::netpaths::{Fault, NetPaths, Side};
use crate::tunnel_run::{self, Plan, Tunnel};

/// The primary's and the backup's rates in Mbit/s: the backup is the faster one, so only its
/// tier keeps it idle.
const RATES: [f64; 2] = [20.0, 40.0];
/// How often the interfaces' counters are read.
const SAMPLE: Duration = Duration::from_millis(50);

/// The metered path's allowance in the metered plan, bytes: a few seconds of its rate.
const ALLOWANCE: u64 = 8_000_000;

/// Bytes each client interface sent and received, sampled over time: (seconds since sampling
/// began, [path 0 sent, path 1 sent, path 0 received, path 1 received]).
type Samples = Vec<(f64, [u64; 4])>;

/// Both client interfaces' transmitted and received bytes, now.
fn counters(paths: &NetPaths) -> io::Result<[u64; 4]> {
    let out = paths.ip(Side::Client, "-j -s link show")?;
    let all: Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let mut bytes = [0; 4];
    for (slot, (i, way)) in bytes
        .iter_mut()
        .zip([(0, "tx"), (1, "tx"), (0, "rx"), (1, "rx")])
    {
        let dev = NetPaths::dev(Side::Client, i);
        let entry = all.as_array().into_iter().flatten();
        let found = entry
            .filter(|l| l["ifname"] == dev.as_str())
            .find_map(|l| l["stats64"][way]["bytes"].as_u64());
        *slot = found.ok_or_else(|| io::Error::other(format!("no counters for {dev}")))?;
    }
    Ok(bytes)
}

/// What makes the second path special.
#[derive(Clone, Copy)]
enum Policy {
    /// `--backup-interface`.
    Backup,
    /// `--cap` of [`ALLOWANCE`] a day.
    Metered,
}

impl Policy {
    /// How the runs' lines name it.
    fn name(self) -> &'static str {
        match self {
            Policy::Backup => "backup",
            Policy::Metered => "metered",
        }
    }
}

/// The bytes counter `i` (see [`Samples`]) moved between `from` and `to` seconds of the
/// samples.
fn sent(samples: &Samples, i: usize, from: f64, to: f64) -> u64 {
    let at = |t: f64| {
        samples
            .iter()
            .take_while(|(s, _)| *s <= t)
            .last()
            .map_or(0, |(_, b)| b[i])
    };
    at(to).saturating_sub(at(from))
}

/// The figures of one run.
struct Figures {
    intact: bool,
    /// The backup's share of the bytes both interfaces sent while the primary worked.
    idle_share: f64,
    /// The longest time the sink got nothing after the primary went down, in ms.
    stall_ms: f64,
    /// What the stream moved while only the backup worked, in Mbit/s.
    during_mbit: f64,
    /// Bytes the backup sent from 1 s after the heal to the end.
    after_heal_bytes: u64,
    /// Bytes the second path sent and received, with TCP/IP headers, before the fault.
    before_fault_bytes: u64,
}

/// Runs the primary-down plan once with the second path under `policy`, sampling the
/// interfaces.
fn run_once(liag: &Path, plan: &Plan, policy: Policy) -> io::Result<Figures> {
    let paths = NetPaths::new(&RATES)?;
    let second = NetPaths::dev(Side::Client, 1);
    let state = std::env::temp_dir().join(format!("liag-e2e-allowance-{}", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let cap = format!("{second}={ALLOWANCE}B/day");
    let state_arg = state.display().to_string();
    let args: Vec<&str> = match policy {
        Policy::Backup => vec!["--backup-interface", &second],
        Policy::Metered => vec!["--cap", &cap, "--cap-state", &state_arg],
    };
    let tunnel = Tunnel::liag(liag);
    let done = AtomicBool::new(false);
    let (outcome, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let start = Instant::now();
            let mut samples = Samples::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(bytes) = counters(&paths) {
                    samples.push((start.elapsed().as_secs_f64(), bytes));
                }
                std::thread::sleep(SAMPLE);
            }
            samples
        });
        let outcome = tunnel_run::run(&paths, &tunnel, &tunnel, plan, &args);
        done.store(true, Ordering::Relaxed);
        (outcome, sampler.join().unwrap_or_default())
    });
    let _ = std::fs::remove_file(&state);
    let outcome = outcome?;
    // The samples' clock starts before the tunnel's: its first byte is where the interfaces
    // first moved 64 kB more than at the start.
    let first = samples.first().map_or([0; 4], |(_, b)| *b);
    let t0 = samples
        .iter()
        .find(|(_, b)| b[0] + b[1] > first[0] + first[1] + 65_536)
        .map_or(0.0, |(t, _)| *t);
    let shifted: Samples = samples.iter().map(|&(t, b)| (t - t0, b)).collect();
    if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_some() {
        let bins: Vec<String> = (0..(plan.end * 4.0) as usize)
            .map(|i| i as f64 * 0.25)
            .map(|t| {
                format!(
                    "{}/{}",
                    sent(&shifted, 0, t, t + 0.25) / 1000,
                    sent(&shifted, 1, t, t + 0.25) / 1000
                )
            })
            .collect();
        eprintln!("    kB sent per 250 ms, primary/backup: {}", bins.join(" "));
    }
    let (from, to) = (1.0, plan.fault_at - 0.1);
    let backup_idle = sent(&shifted, 1, from, to);
    let both = backup_idle + sent(&shifted, 0, from, to);
    let received = Received {
        reads: outcome.reads.clone(),
        total: outcome.received,
        crc: 0,
    };
    Ok(Figures {
        intact: outcome.intact(),
        idle_share: backup_idle as f64 / both.max(1) as f64,
        stall_ms: received.longest_gap(plan.fault_at, plan.fault_at + 2.0) * 1e3,
        during_mbit: received.mbit(plan.fault_at + 0.5, plan.heal_at),
        after_heal_bytes: sent(&shifted, 1, plan.heal_at + 1.0, plan.end - 0.1),
        before_fault_bytes: sent(&shifted, 1, -1.0, plan.fault_at - 0.1)
            + sent(&shifted, 3, -1.0, plan.fault_at - 0.1),
    })
}

/// The plan of both policies: the primary down at 4 s, back at 8 s, the end at 12 s
/// (3, 5 and 8 s with `quick`).
fn plan(quick: bool) -> Plan {
    if quick {
        Plan {
            fault: Some((0, Fault::Down)),
            fault_at: 3.0,
            heal_at: 5.0,
            end: 8.0,
        }
    } else {
        Plan {
            fault: Some((0, Fault::Down)),
            fault_at: 4.0,
            heal_at: 8.0,
            end: 12.0,
        }
    }
}

/// Runs the plan `runs` times with `policy`, printing each run's figures with `say`.
fn repeat(
    liag: &Path,
    quick: bool,
    runs: usize,
    policy: Policy,
    say: fn(&Figures) -> String,
) -> io::Result<Vec<Figures>> {
    let plan = plan(quick);
    let mut all = Vec::new();
    for run in 0..runs {
        let f = run_once(liag, &plan, policy)?;
        eprintln!("  {} run {}: {}", policy.name(), run + 1, say(&f));
        all.push(f);
    }
    Ok(all)
}

/// One figure of every run.
fn pick(all: &[Figures], f: fn(&Figures) -> f64) -> Vec<f64> {
    all.iter().map(f).collect()
}

/// The largest of `v`.
fn worst(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The backup tier on real paths, `runs` times.
pub fn backup(liag: &Path, runs: usize, quick: bool) -> io::Result<Value> {
    let all = repeat(liag, quick, runs, Policy::Backup, |f| {
        format!(
            "intact {}, backup {:.3} % of the bytes while the primary worked, stall {:.0} ms \
             when it went down, {:.1} Mbit/s on the backup alone, {} bytes on the backup from \
             1 s after the heal",
            f.intact,
            f.idle_share * 100.0,
            f.stall_ms,
            f.during_mbit,
            f.after_heal_bytes
        )
    })?;
    let stall = pick(&all, |f| f.stall_ms);
    Ok(json!({
        "scenario": "real paths, backup link while the primary goes down",
        "kind": "tiers",
        "links": "veth 20 Mbit/s primary + veth 40 Mbit/s backup",
        "runs": runs,
        "intact": all.iter().all(|f| f.intact),
        "idle_share_worst": worst(&pick(&all, |f| f.idle_share)),
        "stall_ms_median": median(&stall),
        "stall_ms_worst": worst(&stall),
        "backup_alone_mbit_s_median": median(&pick(&all, |f| f.during_mbit)),
        "after_heal_bytes_worst": worst(&pick(&all, |f| f.after_heal_bytes as f64)),
    }))
}

/// A metered second path on real paths, `runs` times: it is the faster one, and its
/// allowance of 8 MB a day runs out before the primary goes down.
pub fn metered(liag: &Path, runs: usize, quick: bool) -> io::Result<Value> {
    let all = repeat(liag, quick, runs, Policy::Metered, |f| {
        format!(
            "intact {}, {} bytes on the metered path before the fault (allowance \
             {ALLOWANCE}), stall {:.0} ms when the primary went down, {:.1} Mbit/s on the \
             metered path alone, {} bytes sent on it from 1 s after the heal",
            f.intact, f.before_fault_bytes, f.stall_ms, f.during_mbit, f.after_heal_bytes
        )
    })?;
    let stall = pick(&all, |f| f.stall_ms);
    Ok(json!({
        "scenario": "real paths, metered link past its allowance while the primary goes down",
        "kind": "metered",
        "links": "veth 20 Mbit/s primary + veth 40 Mbit/s metered",
        "runs": runs,
        "intact": all.iter().all(|f| f.intact),
        "allowance_bytes": ALLOWANCE,
        "before_fault_bytes_worst": worst(&pick(&all, |f| f.before_fault_bytes as f64)),
        "stall_ms_median": median(&stall),
        "stall_ms_worst": worst(&stall),
        "metered_alone_mbit_s_median": median(&pick(&all, |f| f.during_mbit)),
        "after_heal_bytes_worst": worst(&pick(&all, |f| f.after_heal_bytes as f64)),
    }))
}
