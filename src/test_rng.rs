//! What the crate's randomized tests share.
#![allow(clippy::indexing_slicing, clippy::should_implement_trait)]

/// A xorshift generator for test inputs: fixed seeds, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A 32-bit limb: one of the patterns where carries, borrows and folds pile up, or
    /// (one time in ten) random.
    pub fn limb(&mut self) -> u32 {
        const PATTERNS: [u32; 9] = [
            0,
            1,
            2,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_fffe,
            0xffff_ffff,
            0xffff_0000,
            0x0000_ffff,
        ];
        PATTERNS
            .get(self.below(PATTERNS.len() + 1))
            .copied()
            .unwrap_or(self.next() as u32)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
