//! `cargo xtask bench`: runs the criterion benches and the end-to-end scenarios, then prints
//! a table and writes `target/liag-bench/`: `report.md`, `report.json` and SVG plots.
//!
//! Each end-to-end kind runs in a fresh process of the release-built `e2e` binary, so no
//! scenario inherits another's threads or freed memory.

mod plot;
mod report;
mod tunnel_rows;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The end-to-end kinds, in the order they run.
const KINDS: [&str; 13] = [
    "throughput",
    "round_trip",
    "efficiency",
    "failover",
    "real_paths",
    "tiers",
    "redundant",
    "responsive",
    "tunnel",
    "proxy",
    "to_aggligator",
    "idle",
    "busy",
];

const USAGE: &str = "bench [--quick] [--no-criterion] [--only KIND]";

struct Options {
    quick: bool,
    criterion: bool,
    only: Option<String>,
}

fn options(args: &[&str]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        criterion: true,
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--quick" => o.quick = true,
            "--no-criterion" => o.criterion = false,
            "--only" => {
                let kind = it.next().ok_or("--only needs a kind")?;
                if !KINDS.contains(kind) {
                    return Err(format!("unknown kind {kind}; kinds: {}", KINDS.join(", ")));
                }
                o.only = Some(kind.to_string());
            }
            other => return Err(format!("unknown argument {other:?}; usage: {USAGE}")),
        }
    }
    Ok(o)
}

pub(crate) fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

/// Runs everything and writes the report.
pub(crate) fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    let o = options(args)?;
    let out = root.join("target/liag-bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;

    if o.criterion && o.only.is_none() {
        let mut args = vec![
            "bench",
            "-p",
            "liag-benches",
            "--bench",
            "wire",
            "--bench",
            "sim",
        ];
        args.extend(["--", "--noplot"]);
        if o.quick {
            args.push("--quick");
        }
        cargo(root, &args)?;
    }
    cargo(
        root,
        // `delayline` for the real-path scenarios' paths with LIAG_PATH_DELAY_MS.
        &[
            "build",
            "--release",
            "-p",
            "liag-benches",
            "--bin",
            "e2e",
            "--bin",
            "delayline",
        ],
    )?;
    // The real-path scenarios run the `liag` command.
    cargo(root, &["build", "--release", "-p", "liag-cli"])?;
    let e2e = root.join("target/release/e2e");
    let mut scenarios = Vec::new();
    for kind in KINDS
        .iter()
        .filter(|k| o.only.as_deref().is_none_or(|o| o == **k))
    {
        eprintln!("== e2e: {kind}");
        scenarios.extend(e2e_kind(&e2e, &out, kind, o.quick, false)?);
        if *kind == "throughput" {
            eprintln!("== e2e: {kind}, glibc malloc told to keep its memory");
            scenarios.extend(e2e_kind(&e2e, &out, kind, o.quick, true)?);
        }
    }
    let criterion = if o.criterion {
        criterion_results(&root.join("target/criterion"))
    } else {
        Vec::new()
    };

    let rows = report::rows(&scenarios, &criterion);
    let table = report::table(&rows);
    println!("\n{table}");
    let stamp = stamp();
    let json = json!({
        "when": stamp,
        "quick": o.quick,
        "rows": rows.iter().map(report::Row::to_json).collect::<Vec<_>>(),
        "scenarios": scenarios,
        "criterion": criterion,
    });
    write(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    let plots = plot::all(&scenarios, &out)?;
    write(
        &out.join("report.md"),
        &report::markdown(&rows, &plots, &stamp, o.quick),
    )?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// glibc's malloc settings that stop it from handing memory back to the kernel (and faulting
/// it in again) at the pace of bulk data; see docs/performance.md.
const KEEP_MEMORY: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456";

/// Runs one kind of scenario in its own process and reads its JSON; `tuned` runs it with
/// [`KEEP_MEMORY`] and says so in the scenarios' names.
fn e2e_kind(
    e2e: &Path,
    out: &Path,
    kind: &str,
    quick: bool,
    tuned: bool,
) -> Result<Vec<Value>, String> {
    let suffix = if tuned { "-tuned" } else { "" };
    let file = out.join(format!("e2e-{kind}{suffix}.json"));
    let mut cmd = Command::new(e2e);
    cmd.args(["--only", kind, "--out"]).arg(&file);
    // The real-path scenarios run the `liag` command built beside the e2e binary.
    cmd.arg("--liag").arg(e2e.with_file_name("liag"));
    if quick {
        cmd.arg("--quick");
    }
    if tuned {
        cmd.env("GLIBC_TUNABLES", KEEP_MEMORY);
    } else {
        cmd.env_remove("GLIBC_TUNABLES");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", e2e.display()))?;
    if !status.success() {
        return Err(format!("e2e --only {kind} failed ({status})"));
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let report: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut scenarios = report["scenarios"].as_array().cloned().unwrap_or_default();
    if tuned {
        for s in &mut scenarios {
            let name = format!("{}, malloc tuned", s["scenario"].as_str().unwrap_or("?"));
            s["scenario"] = Value::from(name);
            s["malloc_tuned"] = Value::from(true);
        }
    }
    Ok(scenarios)
}

/// Every criterion benchmark's id, mean time per iteration and throughput, from its
/// `new/benchmark.json` and `new/estimates.json`.
fn criterion_results(dir: &Path) -> Vec<Value> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/benchmark.json") {
                let read = |p: &Path| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
                };
                let (Some(bench), Some(est)) =
                    (read(&p), read(&p.with_file_name("estimates.json")))
                else {
                    continue;
                };
                let ns = est["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
                let bytes = bench["throughput"]["Bytes"].as_f64();
                found.push(json!({
                    "id": bench["full_id"],
                    "mean_ns": ns,
                    "gib_s": bytes.map(|b| b / (ns / 1e9) / (1u64 << 30) as f64),
                }));
            }
        }
    }
    found.sort_by_key(|v| v["id"].as_str().unwrap_or("").to_string());
    found
}

/// When and where: the UTC time, the CPU model and the number of cores.
fn stamp() -> String {
    let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{when}, {cpu}, {cores} cores")
}
