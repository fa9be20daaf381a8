//! Identifiers on the wire: the server id, the connection id and its masked form (spec §4).

use core::fmt;
use core::num::NonZeroU128;
use rand_core::Rng;

use crate::keys::ConnIdMask;

/// Identifies one accepting endpoint for its lifetime; sent in every Welcome (spec §4.1).
///
/// A different server id on a later link of a connection means the peer restarted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(NonZeroU128);

impl ServerId {
    /// Wraps a wire value; `None` for zero, which is not a valid server id.
    pub const fn new(value: u128) -> Option<Self> {
        match NonZeroU128::new(value) {
            Some(v) => Some(ServerId(v)),
            None => None,
        }
    }

    /// Draws a random, non-zero server id.
    pub fn random(rng: &mut (impl Rng + ?Sized)) -> Self {
        loop {
            let mut bytes = [0; 16];
            rng.fill_bytes(&mut bytes);
            if let Some(id) = ServerId::new(u128::from_be_bytes(bytes)) {
                return id;
            }
        }
    }

    /// The wire value.
    pub const fn get(self) -> u128 {
        self.0.get()
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({:032x})", self.0)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Identifies one connection; chosen at random by the side that opens it (spec §4.2).
///
/// Whoever knows it can add links to the connection, so it travels only masked
/// ([`MaskedConnId`]) and is kept out of logs: `Debug` and `Display` show a short prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u128);

impl ConnId {
    /// Wraps a raw value.
    pub const fn new(value: u128) -> Self {
        ConnId(value)
    }

    /// Draws a random connection id.
    pub fn random(rng: &mut (impl Rng + ?Sized)) -> Self {
        let mut bytes = [0; 16];
        rng.fill_bytes(&mut bytes);
        ConnId(u128::from_be_bytes(bytes))
    }

    /// The raw value.
    pub const fn get(self) -> u128 {
        self.0
    }

    /// The form sent in Connect on a link whose key agreement produced `mask` (spec §4.5).
    pub fn mask(self, mask: &ConnIdMask) -> MaskedConnId {
        MaskedConnId(self.0 ^ mask.as_u128())
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({self})")
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id is a bearer secret: show enough to tell connections apart, not to join them.
        write!(f, "{:08x}…", (self.0 >> 96) as u32)
    }
}

/// A connection id as it appears in Connect: XOR-ed with the link's [`ConnIdMask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskedConnId(u128);

impl MaskedConnId {
    /// Wraps a wire value.
    pub const fn new(value: u128) -> Self {
        MaskedConnId(value)
    }

    /// The wire value.
    pub const fn get(self) -> u128 {
        self.0
    }

    /// Recovers the connection id with the responder's side of the key agreement.
    pub fn unmask(self, mask: &ConnIdMask) -> ConnId {
        ConnId(self.0 ^ mask.as_u128())
    }
}
