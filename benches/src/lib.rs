//! Benchmarks of liag's hot paths; run them with `cargo bench -p liag-benches`.
//!
//! The criterion benches live in `benches/`. This library holds nothing yet; later scenario
//! helpers shared between benches go here.
