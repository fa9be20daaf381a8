//! liag-tokio's crate example, compiled and run as a doctest of a crate that depends on
//! liag-tokio and tokio alone.

#[doc = include_str!("../../../../crates/liag-tokio/README.md")]
pub mod crate_example {}
