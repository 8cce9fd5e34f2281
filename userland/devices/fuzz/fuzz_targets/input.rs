//! The fuzz input as a stream of operands, shared by this crate's fuzz targets (included with
//! `#[path]`; not a target itself).

/// Pulls bytes off the input; zeros once it is used up.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// `n` bytes, little-endian.
    pub fn u64(&mut self, n: usize) -> u64 {
        (0..n).fold(0, |acc, i| acc | u64::from(self.byte().unwrap_or(0)) << (8 * i))
    }

    /// Fills `buf` from the input (zeros once it is used up).
    #[allow(dead_code)] // not every target uses it
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.byte().unwrap_or(0);
        }
    }
}
