//! Cheap map keys for long values that are inserted only once proven: the verified-token
//! cache and the per-VM cache of opened session cookies.

use std::hash::Hasher;

/// Where a value lives in a map: its length and last 32 bytes. Both users insert only values
/// that proved themselves (a token that verified ends in signature bytes, a sealed session
/// that opened ends in its AEAD tag), so nobody can choose colliding keys; a lookup still
/// compares the whole value. A full hash (and the C library's byte-by-byte `memcmp`) over a
/// 700-byte RS256 token was a visible share of a cached request in the sandbox.
pub fn fingerprint(token: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let bytes = token.as_bytes();
    let tail = bytes.get(bytes.len().saturating_sub(32)..).unwrap_or(bytes);
    let mut h = mix(0, bytes.len() as u64);
    let mut words = tail.chunks_exact(8);
    for w in &mut words {
        h = mix(h, u64::from_le_bytes(w.try_into().unwrap_or_default()));
    }
    for b in words.remainder() {
        h = mix(h, u64::from(*b));
    }
    h
}

/// Compares eight bytes at a time.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
    (&mut x).zip(&mut y).all(|(p, q)| word(p) == word(q))
        && x.remainder().iter().zip(y.remainder()).all(|(p, q)| p == q)
}

/// The map's keys are already fingerprints.
#[derive(Default)]
pub struct Identity(u64);

impl Hasher for Identity {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
