//! Benchmarks of liag: criterion benches of the hot paths (in `benches/`), and the end-to-end
//! scenarios of [`e2e`], which the `e2e` binary runs and `cargo xtask bench` reports.
//!
//! Benchmarks print figures; they never assert on time.

pub mod e2e;
pub mod hostile;
pub mod netpaths;
pub mod plain_tcp;
pub mod tunnel_run;
