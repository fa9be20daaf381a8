//! The `extensions` bit set of Welcome and Connect.
//!
//! Protocol 4 sends 0 and ignores the value on receipt (spec §3.3). liag keeps what the peer
//! sent so that its own future extensions can be negotiated as the intersection of both sets.

use core::fmt;

/// A set of protocol extensions, one bit each. No extension is defined yet, so liag sends
/// [`Extensions::NONE`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extensions(u32);

impl Extensions {
    /// The empty set: what protocol 4 peers send.
    pub const NONE: Extensions = Extensions(0);

    /// The set with exactly these bits, including bits liag does not know.
    pub const fn from_bits(bits: u32) -> Self {
        Extensions(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Extensions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The extensions both sets have: what two peers can use together.
    #[must_use]
    pub const fn intersection(self, other: Extensions) -> Self {
        Extensions(self.0 & other.0)
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({:#x})", self.0)
    }
}
