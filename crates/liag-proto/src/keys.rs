//! Per-link X25519 key agreement and the connection-id mask it yields (spec §4.4–4.5).

use core::fmt;
use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

/// A fresh key pair for one link's handshake. Never reuse one across links.
///
/// [`LinkKeyPair::agree`] consumes the pair, so each secret is used exactly once.
pub struct LinkKeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl LinkKeyPair {
    /// Makes a key pair from the injected cryptographic RNG.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Self::from_secret(StaticSecret::random_from_rng(rng))
    }

    /// Makes a key pair from a known 32-byte scalar (clamped as X25519 prescribes).
    ///
    /// For test vectors; a real link uses [`LinkKeyPair::generate`].
    pub fn from_scalar(scalar: [u8; 32]) -> Self {
        Self::from_secret(StaticSecret::from(scalar))
    }

    fn from_secret(secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret);
        LinkKeyPair { secret, public }
    }

    /// The public key to send in Welcome or Connect.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Completes the agreement with the peer's public key.
    ///
    /// Refuses a peer key that makes the shared secret all zeros (a low-order point): it would
    /// send the connection id in the clear. Honest peers draw random keys and never hit this.
    pub fn agree(self, peer: &PublicKey) -> Result<ConnIdMask, KeyAgreementError> {
        let shared = self.secret.diffie_hellman(peer);
        if !shared.was_contributory() {
            return Err(KeyAgreementError::NonContributory);
        }
        let mut mask = [0; 16];
        mask.copy_from_slice(&shared.as_bytes()[..16]);
        Ok(ConnIdMask(mask))
    }
}

impl fmt::Debug for LinkKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The first 16 bytes of a link's shared secret, XOR-ed onto the connection id.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnIdMask([u8; 16]);

impl ConnIdMask {
    /// The mask read as a big-endian number, as it is applied to the id.
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// The raw mask bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for ConnIdMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnIdMask(..)")
    }
}

/// Why a link's key agreement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAgreementError {
    /// The peer's public key is a low-order point: the shared secret is all zeros.
    NonContributory,
}

impl fmt::Display for KeyAgreementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAgreementError::NonContributory => {
                f.write_str("peer's public key gives an all-zero shared secret")
            }
        }
    }
}

impl core::error::Error for KeyAgreementError {}
