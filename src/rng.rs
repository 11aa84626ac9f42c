//! Counter-based random numbers shared by the CPU and GPU backends.
//!
//! Dropout masks and sampling draws come from a pure function of
//! `(key, counter, stream, index)`, not from a stateful generator. That makes them
//! independent of thread scheduling, identical on the GPU (the same function is written in
//! `shaders/common.wgsl` with the same 32-bit integer operations), and trivially resumable:
//! a checkpoint only has to store the key and the step counter.
//!
//! The mixer is the 32-bit finaliser of MurmurHash3 (`fmix32`), applied in a chain; it only
//! uses wrapping 32-bit multiply, xor and shifts, which WGSL has.

/// MurmurHash3's 32-bit finaliser: a bijection on u32 with full avalanche.
#[inline(always)]
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// A 32-bit key made from a user's 64-bit seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// Low half, pre-mixed.
    pub k0: u32,
    /// High half, pre-mixed.
    pub k1: u32,
}

impl Key {
    /// Derives the key from a user-facing seed (`--rng-seed`).
    pub fn new(seed: u64) -> Self {
        let k0 = fmix32(seed as u32 ^ 0x9e37_79b9);
        let k1 = fmix32((seed >> 32) as u32 ^ k0 ^ 0x7f4a_7c15);
        Key { k0, k1 }
    }

    /// The random word for position `index` of stream `stream` at step `counter`.
    #[inline(always)]
    pub fn word(&self, counter: u32, stream: u32, index: u32) -> u32 {
        fmix32(self.base(counter, stream) ^ index)
    }

    /// The part of [`Key::word`] that does not depend on `index`: loops over many indices
    /// compute it once and call [`uniform_at`].
    #[inline(always)]
    pub fn base(&self, counter: u32, stream: u32) -> u32 {
        let h = fmix32(self.k0 ^ counter.wrapping_mul(0x9e37_79b9));
        fmix32(h ^ self.k1 ^ stream.wrapping_mul(0x85eb_ca6b))
    }

    /// A uniform number in [0, 1) with 24 random bits (exact in f32, so identical on every device).
    #[inline(always)]
    pub fn uniform(&self, counter: u32, stream: u32, index: u32) -> f32 {
        (self.word(counter, stream, index) >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}

/// [`Key::uniform`] from a precomputed [`Key::base`]: `uniform_at(k.base(c, s), i) == k.uniform(c, s, i)`.
#[inline(always)]
pub fn uniform_at(base: u32, index: u32) -> f32 {
    (fmix32(base ^ index) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Stream ids, so that dropout of layer l and sampling never reuse each other's numbers.
pub mod stream {
    /// Dropout mask of LSTM layer `l` uses stream `DROPOUT + l`.
    pub const DROPOUT: u32 = 0x1000;
    /// Weight drop of LSTM layer `l`'s recurrent weights uses stream `WEIGHT_DROP + l`.
    pub const WEIGHT_DROP: u32 = 0x1800;
    /// Sampling draws for tune `n` use stream `SAMPLE + n`.
    pub const SAMPLE: u32 = 0x2000_0000;
    /// Validation split of the corpus.
    pub const SPLIT: u32 = 0x7000_0000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_in_range_and_roughly_uniform() {
        let k = Key::new(42);
        let n = 100_000;
        let mut hist = [0u32; 10];
        for i in 0..n {
            let u = k.uniform(3, 7, i);
            assert!((0.0..1.0).contains(&u));
            hist[(u * 10.0) as usize] += 1;
        }
        // Each bin expects 10,000 with a standard deviation of sqrt(n p (1-p)) = 95; 6 sigma is 570.
        for h in hist {
            assert!((h as i64 - 10_000).abs() < 570, "{hist:?}");
        }
    }

    #[test]
    fn streams_counters_and_seeds_differ() {
        let k = Key::new(1);
        assert_ne!(k.word(0, 0, 0), k.word(1, 0, 0));
        assert_ne!(k.word(0, 0, 0), k.word(0, 1, 0));
        assert_ne!(k.word(0, 0, 0), k.word(0, 0, 1));
        assert_ne!(Key::new(1).word(0, 0, 0), Key::new(2).word(0, 0, 0));
        assert_ne!(Key::new(1), Key::new(1 << 32));
        assert_eq!(uniform_at(k.base(5, 6), 7), k.uniform(5, 6, 7));
    }
}
