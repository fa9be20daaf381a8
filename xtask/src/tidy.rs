//! `cargo xtask tidy`: the crate stack and the source rules, checked from `cargo metadata`.

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

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

/// What the checks need of `cargo metadata`: each package's declared dependencies, and the
/// resolved graph's edges that are not dev-only.
#[derive(Debug, Default)]
struct Graph {
    /// Package name and the names of the packages it declares as dependencies (any kind).
    declared: Vec<(String, Vec<String>)>,
    /// Package id to name.
    names: HashMap<String, String>,
    /// Package id to the ids it needs outside of tests.
    normal: HashMap<String, Vec<String>>,
}

impl Graph {
    fn of(metadata: &Metadata) -> Graph {
        let declared = metadata
            .packages
            .iter()
            .map(|p| {
                let deps = p.dependencies.iter().map(|d| d.name.clone()).collect();
                (p.name.to_string(), deps)
            })
            .collect();
        let names = metadata
            .packages
            .iter()
            .map(|p| (p.id.repr.clone(), p.name.to_string()))
            .collect();
        let normal = metadata
            .resolve
            .iter()
            .flat_map(|r| &r.nodes)
            .map(|node| {
                let deps = node
                    .deps
                    .iter()
                    .filter(|d| {
                        d.dep_kinds
                            .iter()
                            .any(|k| k.kind != DependencyKind::Development)
                    })
                    .map(|d| d.pkg.repr.clone())
                    .collect();
                (node.id.repr.clone(), deps)
            })
            .collect();
        Graph {
            declared,
            names,
            normal,
        }
    }
}

fn cargo_metadata(root: &Path) -> Result<Graph, String> {
    let metadata = MetadataCommand::new()
        .current_dir(root)
        .other_options(vec!["--locked".to_string()])
        .exec()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    Ok(Graph::of(&metadata))
}

fn rank(name: &str) -> Option<usize> {
    STACK.iter().position(|&n| n == name)
}

/// Every dependency (of any kind) of a stack crate on another stack crate must point down the
/// stack. A crate may name itself as a dev-dependency, to test itself with features on.
fn check_stack(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for name in STACK {
        if !graph.declared.iter().any(|(n, _)| n == name) {
            problems.push(format!("crate {name} is missing from the workspace"));
        }
    }
    for (name, deps) in &graph.declared {
        let Some(own) = rank(name) else { continue };
        for dep in deps {
            if dep == name {
                continue;
            }
            if rank(dep).is_some_and(|r| r >= own) {
                problems.push(format!(
                    "{name} depends on {dep}, which is not below it in the stack {}",
                    STACK.join(" <- ")
                ));
            }
        }
    }
    problems
}

/// The normal (non-dev) dependency closure of proto and core holds no async runtime.
fn check_runtime_free(graph: &Graph) -> Vec<String> {
    if graph.normal.is_empty() {
        return vec!["cargo metadata has no dependency graph".into()];
    }
    let mut problems = Vec::new();
    for krate in RUNTIME_FREE {
        let Some((start, _)) = graph.names.iter().find(|(_, n)| *n == krate) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![(start.as_str(), vec![krate])];
        while let Some((id, path)) = stack.pop() {
            for dep in graph.normal.get(id).into_iter().flatten() {
                let dep_name = graph.names.get(dep).map_or(dep.as_str(), String::as_str);
                let mut dep_path = path.clone();
                dep_path.push(dep_name);
                if RUNTIMES.contains(&dep_name) {
                    problems.push(format!("{krate} depends on {}", dep_path.join(" -> ")));
                } else if seen.insert(dep.as_str()) {
                    stack.push((dep.as_str(), dep_path));
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

    /// The real repository passes: this is how CI runs the tidy checks.
    #[test]
    fn repository_is_tidy() {
        run(&crate::repo_root()).unwrap();
    }

    fn owned(items: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn upward_dependency_is_caught() {
        let graph = Graph {
            declared: owned(&[
                ("liag-proto", &[]),
                ("liag-core", &["liag-tokio", "liag-core"]),
                ("liag-tokio", &["liag-core"]),
                ("liag-transports", &[]),
                ("liag-cli", &[]),
            ]),
            ..Graph::default()
        };
        let problems = check_stack(&graph);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("liag-core depends on liag-tokio"));
    }

    #[test]
    fn transitive_runtime_is_caught() {
        let graph = Graph {
            names: [
                ("core", "liag-core"),
                ("helper", "helper"),
                ("tokio", "tokio"),
            ]
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .into(),
            normal: owned(&[
                ("core", &["helper"]),
                ("helper", &["tokio"]),
                ("tokio", &[]),
            ])
            .into_iter()
            .collect(),
            ..Graph::default()
        };
        assert_eq!(
            check_runtime_free(&graph),
            ["liag-core depends on liag-core -> helper -> tokio"]
        );
    }

    /// The graph read from the repository's own metadata has the stack and its edges.
    #[test]
    fn the_real_graph_is_read() {
        let graph = cargo_metadata(&crate::repo_root()).unwrap();
        let core = graph
            .declared
            .iter()
            .find(|(n, _)| n == "liag-core")
            .unwrap();
        assert!(core.1.iter().any(|d| d == "liag-proto"));
        assert!(!graph.normal.is_empty());
    }

    #[test]
    fn clock_reads_are_caught_outside_comments() {
        let text = "//! x\n// Instant::now is banned\nlet t = std::time::Instant::now();\n";
        let problems = nondeterminism("crates/liag-core/src/x.rs", text);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains(":3:"));
    }
}
