//! Runs the hostile suite against `liag tunnel server` and prints what each attack did.
//!
//! `cargo run --release -p liag-benches --bin hostile -- --liag PATH [--quick] [--only NAME]...
//! [--out FILE] [--list]`; `cargo xtask hostile` builds liag and runs this. Linux only: the
//! attacks come from loopback addresses beyond 127.0.0.1, which Linux routes to `lo` without
//! set-up, and the server is measured through `/proc`.
//!
//! Exits with 0 when the server lived and served through every attack, 1 when it did not, 2
//! when the suite itself could not run.

use liag_benches::hostile::{self, attacks::ATTACKS};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut liag = None;
    let mut quick = false;
    let mut only = Vec::new();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--liag" => liag = args.next().map(PathBuf::from),
            "--quick" => quick = true,
            "--only" => only.extend(args.next()),
            "--out" => out = args.next(),
            "--list" => {
                for a in ATTACKS {
                    println!("{:14} {}", a.name, a.what);
                }
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("hostile: unknown argument {other}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(liag) = liag else {
        eprintln!("hostile: --liag PATH names the liag binary to attack");
        return ExitCode::FAILURE;
    };
    let reports = match hostile::run(&liag, quick, &only) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("hostile: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", hostile::table(&reports));
    if let Some(out) = out {
        let rows: Vec<_> = reports
            .iter()
            .map(|r| {
                json!({
                    "attack": r.attack, "what": r.what, "alive": r.alive,
                    "peak_rss_mib": r.peak_rss_mib, "hold_cpu_percent": r.hold_cpu_percent,
                    "sockets_opened": r.held, "round_trips_during": r.during.1,
                    "round_trips_worked": r.during.0, "slowest_during_ms": r.during_max_ms,
                    "served_after": r.served_after, "note": r.note,
                })
            })
            .collect();
        if let Err(e) = std::fs::write(
            &out,
            serde_json::to_string_pretty(&rows).unwrap_or_default(),
        ) {
            eprintln!("hostile: cannot write {out}: {e}");
            return ExitCode::from(2);
        }
    }
    let failed = reports
        .iter()
        .any(|r| !r.alive || !r.served_after || r.during.0 < r.during.1);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
