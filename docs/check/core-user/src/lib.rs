//! The examples for users of `liag-proto` and `liag-core`, compiled and run as doctests.

#[doc = include_str!("../../../architecture.md")]
pub mod architecture {}
