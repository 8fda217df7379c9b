//! The random source behind `state`, `nonce`, the PKCE verifier and AEAD nonces: the host's
//! (WASI `random_get` in Envoy) in production, a fixed one in tests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub trait Random {
    /// Fills `buf`; false when no randomness could be had (the caller must then give up).
    fn fill(&mut self, buf: &mut [u8]) -> bool;
}

/// `getrandom`: WASI `random_get` in wasm32-wasip1 (BoringSSL's `RAND_bytes` in Envoy), the
/// OS generator natively.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostRandom;

impl Random for HostRandom {
    fn fill(&mut self, buf: &mut [u8]) -> bool {
        getrandom::fill(buf).is_ok()
    }
}

/// `N` random bytes, base64url without padding (43 characters for 32 bytes).
pub fn token<const N: usize>(rng: &mut dyn Random) -> Option<String> {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes).then(|| URL_SAFE_NO_PAD.encode(bytes))
}

/// Sources for tests: a counter (distinct, reproducible bytes) and one that always fails.
#[cfg(test)]
pub mod testing {
    use super::Random;

    #[derive(Default)]
    pub struct Counter(pub u8);

    impl Random for Counter {
        fn fill(&mut self, buf: &mut [u8]) -> bool {
            for b in buf {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            true
        }
    }

    pub struct Broken;

    impl Random for Broken {
        fn fill(&mut self, _: &mut [u8]) -> bool {
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::testing::{Broken, Counter};
    use super::*;

    #[test]
    fn host_tokens_are_fresh_and_url_safe() {
        let a = token::<32>(&mut HostRandom).unwrap();
        let b = token::<32>(&mut HostRandom).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn a_broken_source_gives_nothing() {
        assert_eq!(token::<16>(&mut Broken), None);
        assert_eq!(token::<3>(&mut Counter(0)).unwrap(), "AQID");
    }
}
