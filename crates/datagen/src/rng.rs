//! Counter-based randomness: every random choice is a pure function of `(seed, stream, index)`.
//!
//! This is what makes the generator deterministic whatever the number of threads: no generator state
//! is ever shared or carried from one record to the next, so any record can be produced on its own, in
//! any order, on any thread, and comes out the same.

/// SplitMix64's finaliser: a fast bijective mixer with good avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable hash of three words. Stable across platforms and versions: it defines the data.
pub fn hash3(seed: u64, stream: u64, index: u64) -> u64 {
    mix64(mix64(mix64(seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(stream)).wrapping_add(index))
}

/// Independent streams of randomness, one per purpose, so that adding a draw for one purpose never
/// shifts the draws of another.
pub mod stream {
    pub const PERMUTATION: u64 = 1;
    pub const PERSON: u64 = 2;
    pub const POPULATION_RECORD: u64 = 3;
    pub const CIVIL_SERVANT_RECORD: u64 = 4;
    pub const DUPLICATE: u64 = 5;
    pub const SERIAL: u64 = 6;
    pub const COMMUNE_NAME: u64 = 7;
    pub const CIVIL_SERVANT_ORDER: u64 = 8;
    pub const CIVIL_SERVANT_SAMPLE: u64 = 9;
}

/// A small sequential generator for the draws of one record, seeded from `(seed, stream, index)`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64, index: u64) -> Self {
        Rng(hash3(seed, stream, index))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n` must be positive. Lemire's multiply-shift: unbiased enough for data
    /// generation and branch-free.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A discrete distribution over `0..n`, sampled by binary search over cumulative weights.
#[derive(Clone, Debug)]
pub struct Cdf {
    cumulative: Vec<f64>,
}

impl Cdf {
    /// Weights need not be normalised; zero weights are never drawn. At least one must be positive.
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect();
        assert!(total > 0.0, "a distribution needs a positive weight");
        Cdf {
            cumulative: cumulative.into_iter().map(|c| c / total).collect(),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// A pseudo-random permutation of `0..n`: a balanced Feistel network over the smallest even power of
/// two covering `n`, with cycle walking. It lets the generator spread any attribute assignment that is
/// stratified by slot (exact counts per stratum) randomly over record ids, in O(1) memory.
#[derive(Clone, Debug)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    pub fn new(n: u64, seed: u64, salt: u64) -> Self {
        let bits = 64 - n.max(2).saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let keys = std::array::from_fn(|i| hash3(seed, stream::PERMUTATION, salt * 8 + i as u64));
        Permutation { n, half_bits, keys }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let next = left ^ (mix64(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }

    /// The image of `i`, for `i < n`.
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = self.round(i);
        // The network permutes 0..4^half_bits; walking the cycle until we land inside 0..n keeps it a
        // permutation of 0..n. The domain is less than 4n, so this takes fewer than 4 steps on average.
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 10, 255, 256, 1000, 4097] {
            let p = Permutation::new(n, 42, 1);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.apply(i) as usize;
                assert!(!seen[j], "n={n}: {j} twice");
                seen[j] = true;
            }
        }
    }

    #[test]
    fn cdf_draws_follow_weights() {
        let cdf = Cdf::new([1.0, 0.0, 3.0]);
        let mut rng = Rng::new(1, 2, 3);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[cdf.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = f64::from(counts[2]) / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn streams_are_stable() {
        // The data a seed produces is a contract with users: these numbers must never change.
        assert_eq!(hash3(7, 1, 0), hash3(7, 1, 0));
        assert_ne!(hash3(7, 1, 0), hash3(7, 2, 0));
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
    }
}
