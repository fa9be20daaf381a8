//! README.md and docs/transports.md, compiled and run as doctests of a crate that depends on
//! liag-transports (and, for the wire example, liag-proto); the liag-transports examples are
//! this crate's examples.

#[doc = include_str!("../../../../README.md")]
pub mod readme {}

#[doc = include_str!("../../../transports.md")]
pub mod transports {}
