//! `cargo xtask fuzz`: runs a cargo-fuzz target on the stable toolchain.
//!
//! cargo-fuzz passes sanitizer flags that need nightly features; `RUSTC_BOOTSTRAP=1` lets the
//! stable compiler accept them. cargo-fuzz itself is installed on first use.

use std::path::Path;
use std::process::Command;

const DEFAULT_SECS: u64 = 60;

pub(crate) fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    let fuzz_dir = root.join("fuzz");
    let targets = targets(&fuzz_dir)?;
    let (target, rest) = match args {
        ["list"] => {
            targets.iter().for_each(|t| println!("{t}"));
            return Ok(());
        }
        [target, rest @ ..] => (*target, rest),
        [] => return Err(format!("name a fuzz target: {}", targets.join(", "))),
    };
    if !targets.iter().any(|t| t == target) {
        return Err(format!(
            "no fuzz target {target:?}; there are: {}",
            targets.join(", ")
        ));
    }
    let secs = match rest {
        [] => DEFAULT_SECS,
        ["--secs", n] => n
            .parse()
            .map_err(|_| format!("--secs wants a number, not {n:?}"))?,
        _ => {
            return Err(format!(
                "unexpected arguments {rest:?}; usage: fuzz <target> [--secs N]"
            ));
        }
    };
    ensure_cargo_fuzz()?;

    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    println!(
        "fuzzing {target} for {secs} s, corpus in {}",
        corpus.display()
    );
    // Seeds (captured traffic, say) are read as a second corpus; new inputs go to the first.
    let seeds = fuzz_dir.join("seeds").join(target);
    let status = Command::new("cargo")
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--release", target])
        .arg(&corpus)
        .args(seeds.is_dir().then_some(&seeds))
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "fuzz target {target} failed ({status}); the crashing input is under fuzz/artifacts/{target}/"
        ))
    }
}

/// The targets are the files in `fuzz/fuzz_targets/`.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    println!("installing cargo-fuzz (once)...");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo install cargo-fuzz failed".into())
    }
}
