//! agg-speed's test stream (spec Appendix D.2): an 8-byte big-endian seed, then the output of
//! Xoshiro256++ seeded with `seed_from_u64(seed)`, produced in 8 KiB pieces. The demo's
//! verified stream is the same generator.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// Size of the pieces the stream is generated in. `fill_bytes` is only boundary-independent
/// for multiples of 8 bytes, so both ends must use the same piece size.
pub(crate) const PIECE: usize = 8192;

/// Generates the stream, piece by piece.
pub(crate) struct Generator {
    rng: Xoshiro256PlusPlus,
    piece: Vec<u8>,
    /// Bytes of `piece` already used (for the checker).
    used: usize,
}

impl Generator {
    pub(crate) fn new(seed: u64) -> Self {
        Generator {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            piece: vec![0; PIECE],
            used: PIECE,
        }
    }

    /// The next whole piece.
    pub(crate) fn next_piece(&mut self) -> &[u8] {
        self.rng.fill_bytes(&mut self.piece);
        self.used = PIECE;
        &self.piece
    }

    /// Whether `data` is what comes next, however the stream was split in transit.
    pub(crate) fn check(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.used == PIECE {
                self.rng.fill_bytes(&mut self.piece);
                self.used = 0;
            }
            let n = data.len().min(PIECE - self.used);
            if data[..n] != self.piece[self.used..self.used + n] {
                return false;
            }
            self.used += n;
            data = &data[n..];
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The test vectors of spec Appendix D.2.
    #[test]
    fn appendix_d2_vectors() {
        for (seed, first) in [
            (
                0x0000_0000_0000_0000u64,
                "df230b49615d175307d580c33d6fda61fc7b9aec91df0f5c1a5ebe3b8cbfee02",
            ),
            (
                0x0000_0000_0000_0001,
                "9bc2036f7fd0c5cf8de03f96324142bf20f5aa57577da319d656cd059f1108bf",
            ),
            (
                0x0123_4567_89ab_cdef,
                "c5d16be910a3f2b29304955b466240b5b0148866a9a4ac87fbcfa948242e3df1",
            ),
        ] {
            assert_eq!(
                &Generator::new(seed).next_piece()[..32],
                &hex(first)[..],
                "seed {seed:#x}"
            );
        }
    }

    #[test]
    fn checker_accepts_any_split_and_catches_a_flip() {
        let mut g = Generator::new(9);
        let stream: Vec<u8> = (0..3).flat_map(|_| g.next_piece().to_vec()).collect();
        let mut c = Generator::new(9);
        for piece in stream.chunks(1000) {
            assert!(c.check(piece));
        }
        let mut bad = stream.clone();
        bad[9000] ^= 0x40;
        let mut c = Generator::new(9);
        assert!(!c.check(&bad));
    }
}
