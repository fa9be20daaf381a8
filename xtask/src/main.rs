//! Repository tasks for liag, run as `cargo xtask <task>`.
//!
//! - `tidy`: checks the crate stack and source rules (also run by `cargo test`);
//! - `fuzz <target> [--secs N]`: runs one cargo-fuzz target on the stable toolchain;
//! - `fuzz list`: names the targets;
//! - `bench [--quick] [--no-criterion] [--only KIND]`: runs the benchmarks and writes the
//!   report to `target/liag-bench/`;
//! - `hostile [--quick] [--only NAME] [--list]`: attacks a real `liag tunnel server` on loopback and
//!   reports, per attack, whether it lives and serves, its memory and its CPU.

mod bench;
mod fuzz;
mod hostile;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  tidy                        check the crate stack and the source rules
  fuzz list                   list the fuzz targets
  fuzz <target> [--secs N]    run one fuzz target for N seconds (default 60)
  bench [--quick] [--no-criterion] [--only KIND]
                              run the benchmarks; report in target/liag-bench/
  hostile [--quick] [--only NAME] [--list]
                              attack a liag tunnel server on loopback; figures in
                              target/liag-hostile/
";

/// The repository's root: the parent of this crate's directory.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["tidy"] => tidy::run(&repo_root()),
        ["fuzz", rest @ ..] => fuzz::run(&repo_root(), rest),
        ["bench", rest @ ..] => bench::run(&repo_root(), rest),
        ["hostile", rest @ ..] => hostile::run(&repo_root(), rest),
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown task {args:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}
