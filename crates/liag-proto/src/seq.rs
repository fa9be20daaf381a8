//! Reliable sequence numbers: wrapping 32-bit arithmetic, ordering and the send/receive window.
//!
//! Each direction of a connection numbers its reliable messages (Data, Consumed and the three
//! finish messages) from 0, adding 1 per message and wrapping at 2³² (spec §7.1). Because the
//! window keeps every live number within [`SEQ_WINDOW`] of the oldest one, the ordinary
//! serial-number comparison (the sign of the wrapping difference) orders them correctly.

use core::cmp::Ordering;
use core::fmt;

/// Largest distance between a new sequence number and the oldest unacknowledged one (spec §7.3).
///
/// A sender must not send a new seq `s` unless `s - oldest_unacked <= SEQ_WINDOW`; a receiver
/// treats a message more than `SEQ_WINDOW` ahead of the next seq it expects as a protocol error.
pub const SEQ_WINDOW: u32 = 65_536;

/// A reliable-message sequence number.
///
/// `Seq` deliberately has no `Ord`: wrapping numbers are not totally ordered. Compare with
/// [`Seq::serial_cmp`] (valid while both lie within 2³¹ of each other) or locate a number
/// relative to a receive base with [`Seq::position`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(u32);

/// Where a received sequence number lies relative to the next one expected, see [`Seq::position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Already delivered: this many numbers before the expected one (at least 1).
    Behind(u32),
    /// Inside the window: this many numbers after the expected one (0 means "the next one").
    Ahead(u32),
    /// Further ahead than the window allows: a protocol violation.
    BeyondWindow(u32),
}

impl Seq {
    /// The first sequence number of every direction.
    pub const ZERO: Seq = Seq(0);

    /// Wraps a raw wire value.
    pub const fn new(value: u32) -> Self {
        Seq(value)
    }

    /// The raw wire value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The number after this one, wrapping from `u32::MAX` to 0.
    #[must_use]
    pub const fn next(self) -> Seq {
        Seq(self.0.wrapping_add(1))
    }

    /// This number moved `n` forward, wrapping.
    #[must_use]
    pub const fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }

    /// How far `self` lies after `base`, counting forward modulo 2³².
    pub const fn distance_from(self, base: Seq) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    /// The serial difference `self - other` as a signed number (spec §7.2).
    pub const fn diff(self, other: Seq) -> i32 {
        self.distance_from(other) as i32
    }

    /// Serial-number order: `self` is less than `other` when the wrapping difference is negative.
    ///
    /// Agrees with the reference implementation's ordering whenever the two numbers lie within
    /// 2³⁰ of each other, which the window guarantees for every live number.
    pub fn serial_cmp(self, other: Seq) -> Ordering {
        self.diff(other).cmp(&0)
    }

    /// Whether `self` comes strictly before `other` in serial order.
    pub fn is_before(self, other: Seq) -> bool {
        self.diff(other) < 0
    }

    /// The ordering the reference implementation uses (spec §7.2), with the wrap region
    /// below `Q = 0x3FFF_FFFF` treated as following the region at or above `3Q`.
    ///
    /// Provided to document and test the equivalence with [`Seq::serial_cmp`]; liag itself
    /// uses the serial order.
    pub fn reference_cmp(self, other: Seq) -> Ordering {
        const Q: u32 = 0x3FFF_FFFF;
        const Q3: u32 = 3 * Q;
        let (a, b) = (self.0, other.0);
        if a < Q && b >= Q3 {
            Ordering::Greater
        } else if b < Q && a >= Q3 {
            Ordering::Less
        } else {
            a.cmp(&b)
        }
    }

    /// Locates a received number relative to `expected`, the next number to deliver in order,
    /// for a receive window of `window` numbers (normally [`SEQ_WINDOW`]).
    ///
    /// Numbers up to `window` ahead are [`Position::Ahead`]; numbers in the half of the space
    /// before `expected` are [`Position::Behind`] (duplicates of delivered messages); anything
    /// else is [`Position::BeyondWindow`].
    pub fn position(self, expected: Seq, window: u32) -> Position {
        let ahead = self.distance_from(expected);
        if ahead <= window {
            Position::Ahead(ahead)
        } else if self.diff(expected) < 0 {
            Position::Behind(expected.distance_from(self))
        } else {
            Position::BeyondWindow(ahead)
        }
    }

    /// Whether a sender whose oldest unacknowledged number is `oldest_unacked` may send `self`
    /// as a new message under the window rule of spec §7.3.
    pub fn fits_send_window(self, oldest_unacked: Seq, window: u32) -> bool {
        self.distance_from(oldest_unacked) <= window
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for Seq {
    fn from(value: u32) -> Self {
        Seq(value)
    }
}

impl From<Seq> for u32 {
    fn from(seq: Seq) -> Self {
        seq.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_wraps() {
        assert_eq!(Seq::new(u32::MAX).next(), Seq::ZERO);
        assert_eq!(Seq::new(7).add(3), Seq::new(10));
    }

    #[test]
    fn position_around_wrap() {
        let expected = Seq::new(u32::MAX - 1);
        assert_eq!(expected.position(expected, SEQ_WINDOW), Position::Ahead(0));
        assert_eq!(
            Seq::new(3).position(expected, SEQ_WINDOW),
            Position::Ahead(5)
        );
        assert_eq!(
            Seq::new(u32::MAX - 3).position(expected, SEQ_WINDOW),
            Position::Behind(2)
        );
        assert_eq!(
            expected.add(SEQ_WINDOW).position(expected, SEQ_WINDOW),
            Position::Ahead(SEQ_WINDOW)
        );
        assert_eq!(
            expected.add(SEQ_WINDOW + 1).position(expected, SEQ_WINDOW),
            Position::BeyondWindow(SEQ_WINDOW + 1)
        );
        // The message that aborts aggligator 0.9.11 (spec W1) is simply out of window.
        assert_eq!(
            expected.add(0x7FFF_FFFF).position(expected, SEQ_WINDOW),
            Position::BeyondWindow(0x7FFF_FFFF)
        );
    }

    #[test]
    fn reference_order_at_the_wrap() {
        assert_eq!(
            Seq::new(5).reference_cmp(Seq::new(u32::MAX)),
            Ordering::Greater
        );
        assert_eq!(
            Seq::new(u32::MAX).reference_cmp(Seq::new(5)),
            Ordering::Less
        );
        assert_eq!(
            Seq::new(5).serial_cmp(Seq::new(u32::MAX)),
            Ordering::Greater
        );
    }
}
