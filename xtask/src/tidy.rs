//! `cargo xtask tidy`: the crate stack and the source rules, checked from `cargo metadata`.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// The stack, bottom first: each crate may depend only on crates before it.
const STACK: [&str; 5] = [
    "liag-proto",
    "liag-core",
    "liag-tokio",
    "liag-transports",
    "liag-cli",
];

/// Crates whose whole dependency tree must stay free of an async runtime.
const RUNTIME_FREE: [&str; 2] = ["liag-proto", "liag-core"];
const RUNTIMES: [&str; 4] = ["tokio", "async-std", "smol", "mio"];

/// Calls that read the clock or a global RNG, banned in the deterministic crates.
const NONDETERMINISTIC: [&str; 6] = [
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "rand::rng()",
    "OsRng",
    "getrandom",
];

/// Runs every check; the error lists every problem found.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let metadata = cargo_metadata(root)?;
    let mut problems = check_stack(&metadata);
    problems.extend(check_runtime_free(&metadata));
    problems.extend(check_sources(root));
    if problems.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

fn cargo_metadata(root: &Path) -> Result<Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

fn rank(name: &str) -> Option<usize> {
    STACK.iter().position(|&n| n == name)
}

/// Every dependency (of any kind) of a stack crate on a stack crate must point down the stack.
fn check_stack(metadata: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    for name in STACK {
        if !packages.iter().any(|p| p["name"] == name) {
            problems.push(format!("crate {name} is missing from the workspace"));
        }
    }
    for package in &packages {
        let Some(name) = package["name"].as_str() else {
            continue;
        };
        let Some(own) = rank(name) else { continue };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let Some(dep_name) = dep["name"].as_str() else {
                continue;
            };
            if let Some(dep_rank) = rank(dep_name) {
                if dep_rank >= own {
                    problems.push(format!(
                        "{name} depends on {dep_name}, which is not below it in the stack {}",
                        STACK.join(" <- ")
                    ));
                }
            }
        }
    }
    problems
}

/// The normal (non-dev) dependency closure of proto and core holds no async runtime.
fn check_runtime_free(metadata: &Value) -> Vec<String> {
    let Some(nodes) = metadata["resolve"]["nodes"].as_array() else {
        return vec!["cargo metadata has no dependency graph".into()];
    };
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let edges: HashMap<&str, Vec<&str>> = nodes
        .iter()
        .filter_map(|node| {
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["kind"].as_str() != Some("dev"))
                })
                .filter_map(|d| d["pkg"].as_str())
                .collect();
            Some((node["id"].as_str()?, deps))
        })
        .collect();

    let mut problems = Vec::new();
    for krate in RUNTIME_FREE {
        let Some((&start, _)) = names.iter().find(|(_, n)| **n == krate) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![(start, vec![krate])];
        while let Some((id, path)) = stack.pop() {
            for &dep in edges.get(id).into_iter().flatten() {
                let dep_name = names.get(dep).copied().unwrap_or(dep);
                let mut dep_path = path.clone();
                dep_path.push(dep_name);
                if RUNTIMES.contains(&dep_name) {
                    problems.push(format!("{krate} depends on {}", dep_path.join(" -> ")));
                } else if seen.insert(dep) {
                    stack.push((dep, dep_path));
                }
            }
        }
    }
    problems
}

/// Every Rust file opens with a `//!` line; proto and core read no clock and no global RNG.
fn check_sources(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in ["crates", "xtask", "benches", "fuzz"] {
        for file in rust_files(&root.join(dir)) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                problems.push(format!("{}: unreadable", file.display()));
                continue;
            };
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            if !text.starts_with("//!") {
                problems.push(format!(
                    "{shown}: does not open with a `//!` line saying what it is"
                ));
            }
            let deterministic =
                shown.starts_with("crates/liag-proto/") || shown.starts_with("crates/liag-core/");
            if deterministic {
                problems.extend(nondeterminism(&shown, &text));
            }
        }
    }
    problems
}

fn nondeterminism(file: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for call in NONDETERMINISTIC {
            if line.contains(call) {
                problems.push(format!(
                    "{file}:{}: uses `{call}`; proto and core take time and randomness as inputs",
                    i + 1
                ));
            }
        }
    }
    problems
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != "corpus" && name != "artifacts" {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The real repository passes: this is how CI runs the tidy checks.
    #[test]
    fn repository_is_tidy() {
        run(&crate::repo_root()).unwrap();
    }

    #[test]
    fn upward_dependency_is_caught() {
        let metadata = json!({"packages": [
            {"name": "liag-proto", "dependencies": []},
            {"name": "liag-core", "dependencies": [{"name": "liag-tokio"}]},
            {"name": "liag-tokio", "dependencies": [{"name": "liag-core"}]},
            {"name": "liag-transports", "dependencies": []},
            {"name": "liag-cli", "dependencies": []},
        ]});
        let problems = check_stack(&metadata);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("liag-core depends on liag-tokio"));
    }

    #[test]
    fn transitive_runtime_is_caught() {
        let metadata = json!({
            "packages": [
                {"id": "core", "name": "liag-core"},
                {"id": "helper", "name": "helper"},
                {"id": "tokio", "name": "tokio"},
            ],
            "resolve": {"nodes": [
                {"id": "core", "deps": [{"pkg": "helper", "dep_kinds": [{"kind": null}]}]},
                {"id": "helper", "deps": [{"pkg": "tokio", "dep_kinds": [{"kind": null}]}]},
                {"id": "tokio", "deps": []},
            ]}
        });
        assert_eq!(
            check_runtime_free(&metadata),
            ["liag-core depends on liag-core -> helper -> tokio"]
        );
    }

    #[test]
    fn clock_reads_are_caught_outside_comments() {
        let text = "//! x\n// Instant::now is banned\nlet t = std::time::Instant::now();\n";
        let problems = nondeterminism("crates/liag-core/src/x.rs", text);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains(":3:"));
    }
}
