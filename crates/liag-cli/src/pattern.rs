//! A reproducible byte stream for verified transfers: both ends generate it from one seed.

/// Generates the stream in blocks; the reader side checks incoming bytes against it.
pub(crate) struct Pattern {
    rng: fastrand::Rng,
    block: Vec<u8>,
    /// Bytes of `block` already used.
    used: usize,
}

impl Pattern {
    pub(crate) fn new(seed: u64) -> Self {
        Pattern {
            rng: fastrand::Rng::with_seed(seed),
            block: Vec::new(),
            used: 0,
        }
    }

    fn refill(&mut self) {
        self.block.resize(64 << 10, 0);
        self.rng.fill(&mut self.block);
        self.used = 0;
    }

    /// The next `len` bytes of the stream.
    pub(crate) fn next_chunk(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            if self.used == self.block.len() {
                self.refill();
            }
            let n = (len - out.len()).min(self.block.len() - self.used);
            out.extend_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
        }
        out
    }

    /// Whether `data` is what comes next in the stream.
    pub(crate) fn verify(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.used == self.block.len() {
                self.refill();
            }
            let n = data.len().min(self.block.len() - self.used);
            if data[..n] != self.block[self.used..self.used + n] {
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

    #[test]
    fn verifies_in_any_split() {
        let mut w = Pattern::new(3);
        let stream: Vec<u8> = [10, 70_000, 1, 200_000]
            .iter()
            .flat_map(|&n| w.next_chunk(n))
            .collect();
        let mut r = Pattern::new(3);
        for piece in stream.chunks(4099) {
            assert!(r.verify(piece));
        }
        let mut bad = Pattern::new(3);
        let mut wrong = stream[..100].to_vec();
        wrong[50] ^= 1;
        assert!(!bad.verify(&wrong));
    }
}
