//! Runs liag's end-to-end benchmark scenarios and writes their figures as JSON.
//!
//! `cargo run --release -p liag-benches --bin e2e -- [--out FILE] [--quick] [--only KIND]
//! [--fault F]... [--pair TEXT] [--runs N]` where KIND is throughput, round_trip, efficiency,
//! failover, real_paths, tiers, redundant, responsive, tunnel, proxy, to_aggligator, idle or
//! busy; real_paths, tiers, redundant, responsive, tunnel, proxy and to_aggligator need
//! `--liag PATH`, the `liag` binary to run. real_paths runs the faults named with `--fault` (down, reset,
//! degraded, degraded-up; all by default), `--pair TEXT` keeps only the pairings whose label has TEXT
//! (such as `liag client`, or `liag at both ends`), and `--runs N` runs each fault N times
//! instead of five. `cargo xtask bench` runs this and turns the JSON into a table, a report
//! and plots.

use liag_benches::e2e::emulated::{self, Failure};
use liag_benches::e2e::{
    loopback, proxy, real_paths, redundant, responsive, scale, tiers, to_aggligator, tunnel,
};
use liag_benches::netpaths::{self, NetPaths};
use liag_benches::tunnel_run::Tunnel;
use serde_json::{Value, json};
use std::io;

/// Counts the heap in use, for the memory per idle connection.
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

struct Args {
    out: Option<String>,
    liag: Option<std::path::PathBuf>,
    quick: bool,
    only: Option<String>,
    /// The real-path faults to run; all when none is named.
    faults: Vec<netpaths::Fault>,
    /// Only the pairings whose label has this text ("liag client", say).
    pair: Option<String>,
    /// How often each real-path fault runs, when not the default.
    runs: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        out: None,
        liag: None,
        quick: false,
        only: None,
        faults: Vec::new(),
        pair: None,
        runs: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => args.out = Some(it.next().ok_or("--out needs a file")?),
            "--liag" => args.liag = Some(it.next().ok_or("--liag needs a path")?.into()),
            "--only" => args.only = Some(it.next().ok_or("--only needs a kind")?),
            "--quick" => args.quick = true,
            "--pair" => args.pair = Some(it.next().ok_or("--pair needs a text")?),
            "--runs" => {
                let n = it.next().ok_or("--runs needs a count")?;
                let n = n.parse().ok().filter(|&n| n > 0);
                args.runs = Some(n.ok_or("--runs needs a count above 0")?);
            }
            "--fault" => {
                let word = it
                    .next()
                    .ok_or("--fault needs down, reset, degraded or degraded-up")?;
                let fault = netpaths::Fault::parse(&word).ok_or_else(|| {
                    format!("unknown fault {word:?}: down, reset, degraded or degraded-up")
                })?;
                args.faults.push(fault);
            }
            // `cargo bench` passes this to every target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

async fn run(args: &Args) -> io::Result<Vec<Value>> {
    let wanted = |kind: &str| args.only.as_deref().is_none_or(|k| k == kind);
    let q = args.quick;
    let mut out = Vec::new();
    let mut note = |v: Vec<Value>| {
        for v in v {
            // The figures without the time series.
            let mut brief = v.clone();
            if let Some(o) = brief.as_object_mut() {
                o.retain(|k, _| !k.starts_with("series"));
            }
            println!("{brief}");
            out.push(v);
        }
    };
    if wanted("throughput") {
        note(loopback::throughput(if q { 1 } else { 3 }, if q { 256 } else { 1024 }).await?);
    }
    if wanted("round_trip") {
        let samples = if q { 2_000 } else { 20_000 };
        note(vec![loopback::round_trip(1, samples).await?]);
        note(vec![loopback::round_trip(3, samples).await?]);
    }
    let (cold, warm) = if q { (3.0, 3.0) } else { (10.0, 10.0) };
    if wanted("efficiency") {
        let equal = emulated::equal_delays();
        let unequal = emulated::unequal_delays();
        note(vec![
            emulated::efficiency("equal delays", &equal, cold, warm).await?,
        ]);
        note(vec![
            emulated::efficiency("unequal delays", &unequal, cold, warm).await?,
        ]);
    }
    if wanted("failover") {
        let links = emulated::equal_delays();
        let (at, hole, secs) = if q { (2.0, 1.0, 5.0) } else { (4.0, 3.0, 12.0) };
        for fault in [Failure::Reset, Failure::BlackHole] {
            note(vec![
                emulated::failover(fault, &links, at, hole, secs).await?,
            ]);
        }
    }
    if wanted("real_paths") {
        note(real_paths(args)?);
    }
    if wanted("tiers") {
        note(tiers(args)?);
    }
    if wanted("redundant") {
        note(redundant(args)?);
    }
    if wanted("responsive") {
        note(responsive(args)?);
    }
    if wanted("tunnel") {
        note(tunnel(args)?);
    }
    if wanted("proxy") {
        note(proxy(args)?);
    }
    if wanted("to_aggligator") {
        note(to_aggligator(args)?);
    }
    if wanted("idle") {
        note(vec![
            scale::idle(if q { 200 } else { 1_000 }, || HEAP.allocated()).await?,
        ]);
    }
    if wanted("busy") {
        note(vec![scale::busy(100, if q { 2.0 } else { 5.0 }).await?]);
    }
    Ok(out)
}

/// The `liag` binary for a scenario of `kind` over kernel paths, if one was given and network
/// namespaces can be made here; else says why `kind` is skipped.
fn liag_in_namespaces<'a>(args: &'a Args, kind: &str) -> Option<&'a std::path::PathBuf> {
    let Some(liag) = &args.liag else {
        eprintln!("{kind} skipped: give the liag binary with --liag PATH");
        return None;
    };
    if let Err(why) = NetPaths::available() {
        eprintln!("{kind} skipped: cannot make network namespaces here: {why}");
        return None;
    }
    Some(liag)
}

/// The backup tier and a metered link over real kernel paths, three times each (once with
/// `--quick`); skipped with a message where namespaces cannot be made or no `liag` binary was
/// given.
fn tiers(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = liag_in_namespaces(args, "tiers") else {
        return Ok(Vec::new());
    };
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    Ok(vec![
        tiers::backup(liag, runs, args.quick)?,
        tiers::metered(liag, runs, args.quick)?,
    ])
}

/// Redundant sending through 500 ms outages over real kernel paths, with and without, three
/// times (once with `--quick`); skipped like [`tiers()`].
fn redundant(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = liag_in_namespaces(args, "redundant") else {
        return Ok(Vec::new());
    };
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let aggligators = aggligator_tunnels();
    Ok(vec![redundant::outages(
        liag,
        &aggligators,
        runs,
        args.quick,
    )?])
}

/// Round trips while a bulk transfer fills shaped kernel paths, three times (once with
/// `--quick`); skipped like [`tiers()`].
fn responsive(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = liag_in_namespaces(args, "responsive") else {
        return Ok(Vec::new());
    };
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let crossings = responsive::crossings(liag, &aggligator_tunnels());
    Ok(vec![responsive::run(&crossings, runs, args.quick)?])
}

/// Failover over real kernel paths, each fault five times (twice with `--quick`); skipped
/// with a message where namespaces cannot be made or no `liag` binary was given.
fn real_paths(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = liag_in_namespaces(args, "real_paths") else {
        return Ok(Vec::new());
    };
    let runs = args.runs.unwrap_or(if args.quick { 2 } else { 5 });
    let wanted = |label: &str| args.pair.as_deref().is_none_or(|p| label.contains(p));
    let faults = if args.faults.is_empty() {
        netpaths::Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let mut out = Vec::new();
    if wanted("liag at both ends") {
        let ends = real_paths::Ends::liag(liag);
        out.push(real_paths::steady(&ends, args.quick)?);
        for &fault in &faults {
            out.push(real_paths::failover(&ends, fault, runs, args.quick)?);
        }
    }
    // aggligator's tunnel, where its binaries are named: each fault against itself and
    // against liag in both roles.
    for (version, path) in aggligator_tunnels() {
        let agg = Tunnel::aggligator(&path);
        let liag = Tunnel::liag(liag);
        let pairs = [
            (
                agg.clone(),
                agg.clone(),
                format!(", aggligator {version} at both ends"),
                true,
            ),
            (
                agg.clone(),
                liag.clone(),
                format!(", aggligator {version} server, liag client"),
                false,
            ),
            (
                liag,
                agg,
                format!(", liag server, aggligator {version} client"),
                false,
            ),
        ];
        for (server, client, label, baseline) in pairs.into_iter().filter(|p| wanted(&p.2)) {
            let ends = real_paths::Ends {
                server,
                client,
                label,
                baseline,
            };
            for &fault in &faults {
                out.push(real_paths::failover(&ends, fault, runs, args.quick)?);
            }
        }
    }
    Ok(out)
}

/// The operator's tunnel on loopback and, where namespaces can be made, over veth paths,
/// with aggligator's tunnel beside liag's there when LIAG_AGG_TUNNELS names it; skipped
/// with a message where no `liag` binary was given.
fn tunnel(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = &args.liag else {
        eprintln!("tunnel skipped: give the liag binary with --liag PATH");
        return Ok(Vec::new());
    };
    let len = if args.quick {
        tunnel::Lengths {
            warm: 0.5,
            secs: 2.0,
            samples: 1_000,
            round_trip_secs: 2.0,
        }
    } else {
        tunnel::Lengths {
            warm: 1.0,
            secs: 5.0,
            samples: 20_000,
            round_trip_secs: 10.0,
        }
    };
    let liag = || tunnel::Program {
        name: "liag tunnel, 3 links".into(),
        path: liag.clone(),
        prefix: vec!["tunnel".into()],
    };
    let mut out = vec![tunnel::run(&tunnel::Place::Loopback, &[liag()], len)?];
    let place = match tunnel::Place::veth() {
        Ok(place) => place,
        Err(why) => {
            eprintln!("tunnel over veth paths skipped: cannot make network namespaces: {why}");
            return Ok(out);
        }
    };
    let mut programs = vec![liag()];
    for (version, path) in aggligator_tunnels() {
        programs.push(tunnel::Program {
            name: format!("aggligator {version} tunnel, 3 links"),
            path,
            prefix: Vec::new(),
        });
    }
    out.push(tunnel::run(&place, &programs, len)?);
    Ok(out)
}

/// `liag proxy` on loopback: first bytes of new connections and parallel downloads; skipped
/// with a message where no `liag` binary was given.
fn proxy(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = &args.liag else {
        eprintln!("proxy skipped: give the liag binary with --liag PATH");
        return Ok(Vec::new());
    };
    let len = proxy::Lengths {
        samples: if args.quick { 200 } else { 1_000 },
        tunnel_samples: if args.quick { 20 } else { 100 },
        downloads: 100,
        download_bytes: if args.quick { 2 << 20 } else { 8 << 20 },
    };
    Ok(vec![proxy::run(liag, len)?])
}

/// liag and agg-speed sending to agg-speed's server over veth paths, for each aggligator
/// version whose `agg-tunnel` LIAG_AGG_TUNNELS names (`agg-speed` is installed beside it);
/// skipped with a message where namespaces cannot be made or no `liag` binary was given.
fn to_aggligator(args: &Args) -> io::Result<Vec<Value>> {
    let Some(liag) = &args.liag else {
        eprintln!("to_aggligator skipped: give the liag binary with --liag PATH");
        return Ok(Vec::new());
    };
    if let Err(why) = NetPaths::available() {
        eprintln!("to_aggligator skipped: cannot make network namespaces here: {why}");
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (version, tunnel) in aggligator_tunnels() {
        let speed = tunnel.with_file_name("agg-speed");
        if !speed.exists() {
            eprintln!("to_aggligator {version} skipped: no agg-speed beside {tunnel:?}");
            continue;
        }
        let rounds = if args.quick { 1 } else { 3 };
        out.extend(to_aggligator::run(liag, &version, &speed, rounds)?);
    }
    Ok(out)
}

/// `LIAG_AGG_TUNNELS=0.9=/path/agg-tunnel,0.10=/other/agg-tunnel`: aggligator's tunnel
/// programs by version, built by hand (`cargo install aggligator-util`).
fn aggligator_tunnels() -> Vec<(String, std::path::PathBuf)> {
    let Ok(list) = std::env::var("LIAG_AGG_TUNNELS") else {
        eprintln!("runs against aggligator skipped: set LIAG_AGG_TUNNELS to run them");
        return Vec::new();
    };
    list.split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(version, path)| (version.to_string(), path.into()))
        .collect()
}

fn main() -> std::process::ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("e2e: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(&args)) {
        Ok(scenarios) => {
            let report = json!({
                "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "quick": args.quick,
                "scenarios": scenarios,
            });
            if let Some(path) = &args.out {
                let text = serde_json::to_string_pretty(&report).expect("JSON values serialize");
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("e2e: cannot write {path}: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e: a scenario failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
