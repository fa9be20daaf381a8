//! `cargo xtask hostile [--quick] [--only NAME]... [--list]`: the hostile suite against a
//! release-built `liag tunnel server` on loopback (Linux), its table printed and its figures
//! written to `target/liag-hostile/hostile.json`.

use std::path::Path;
use std::process::Command;

use crate::bench::cargo;

pub(crate) fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    let mut pass: Vec<String> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--quick" | "--list" => pass.push(arg.to_string()),
            "--only" => {
                let name = rest.next().ok_or("--only needs an attack's name")?;
                pass.extend(["--only".to_string(), name.to_string()]);
            }
            other => return Err(format!("unknown argument {other:?} for hostile")),
        }
    }
    cargo(
        root,
        &[
            "build",
            "--release",
            "-p",
            "liag-cli",
            "-p",
            "liag-benches",
            "--bin",
            "liag",
            "--bin",
            "hostile",
        ],
    )?;
    let out = root.join("target/liag-hostile");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let status = Command::new(root.join("target/release/hostile"))
        .arg("--liag")
        .arg(root.join("target/release/liag"))
        .arg("--out")
        .arg(out.join("hostile.json"))
        .args(&pass)
        .status()
        .map_err(|e| format!("cannot run the hostile suite: {e}"))?;
    match status.code() {
        Some(0) => {
            if !pass.iter().any(|a| a == "--list") {
                eprintln!("figures in {}", out.join("hostile.json").display());
            }
            Ok(())
        }
        Some(1) => Err("the server died or stopped serving under an attack (see the table)".into()),
        _ => Err(format!("the hostile suite could not run ({status})")),
    }
}
