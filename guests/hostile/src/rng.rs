//! A small deterministic pseudo-random generator (xorshift64*), seeded with a constant so every
//! run tries the same values and a failure can be reproduced.

pub struct Rng(u64);

impl Rng {
    pub const fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (n > 0; slightly biased, which does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
