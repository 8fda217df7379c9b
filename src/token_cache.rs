//! Verified-token cache: a token that verified for a provider is remembered until it expires,
//! so a repeated token skips decoding and the signature (the whole cost in the sandbox).
//! Checks that depend on the request or the clock (time, audiences, lifetime) still run on a
//! hit; entries of a provider are dropped when its key set changes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::jwt::Jwt;

/// Entries without `exp` are kept at most this long.
const MAX_AGE_WITHOUT_EXP: u64 = 300;

/// Multiply-rotate over 8-byte words (the FxHash scheme). Only tokens that verified are ever
/// inserted, so nobody can choose colliding keys, and SipHash over a 500-byte token was a
/// visible share of a cached request in the sandbox.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.0 = mix(self.0, u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        for b in words.remainder() {
            self.0 = mix(self.0, u64::from(*b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Entry {
    provider: usize,
    jwt: Rc<Jwt>,
    /// Unix seconds after which the entry is useless.
    until: u64,
}

pub struct TokenCache {
    capacity: usize,
    max_token_size: usize,
    map: HashMap<String, Vec<Entry>, BuildHasherDefault<TokenHasher>>,
    len: usize,
    pub hits: u64,
    pub misses: u64,
}

impl TokenCache {
    pub fn new(capacity: usize, max_token_size: usize) -> Self {
        Self {
            capacity,
            max_token_size,
            map: HashMap::default(),
            len: 0,
            hits: 0,
            misses: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&mut self, provider: usize, token: &str, now: u64) -> Option<Rc<Jwt>> {
        let found = self
            .map
            .get(token)
            .and_then(|es| es.iter().find(|e| e.provider == provider && now <= e.until))
            .map(|e| e.jwt.clone());
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Remembers a verified token; `skew` extends validity as verification allows.
    pub fn insert(&mut self, provider: usize, token: &str, jwt: Rc<Jwt>, now: u64, skew: u64) {
        if self.capacity == 0 || token.len() > self.max_token_size {
            return;
        }
        let until = match jwt.exp {
            Some(exp) => exp.saturating_add(skew),
            None => now.saturating_add(MAX_AGE_WITHOUT_EXP),
        };
        if until < now {
            return;
        }
        if self.len >= self.capacity {
            self.evict(now);
        }
        let entries = self.map.entry(token.to_string()).or_default();
        let before = entries.len();
        entries.retain(|e| e.provider != provider);
        let replaced = before - entries.len();
        entries.push(Entry {
            provider,
            jwt,
            until,
        });
        self.len = (self.len + 1).saturating_sub(replaced);
    }

    /// Drops expired entries; if none were, the entries closest to expiry (a tenth of the
    /// cache), so that eviction cost is paid once per many misses.
    fn evict(&mut self, now: u64) {
        self.map.retain(|_, es| {
            es.retain(|e| now <= e.until);
            !es.is_empty()
        });
        self.len = self.map.values().map(Vec::len).sum();
        if self.len < self.capacity {
            return;
        }
        let mut untils: Vec<u64> = self.map.values().flatten().map(|e| e.until).collect();
        untils.sort_unstable();
        let cut = untils.get(self.capacity / 10).copied().unwrap_or(u64::MAX);
        self.map.retain(|_, es| {
            es.retain(|e| e.until > cut);
            !es.is_empty()
        });
        self.len = self.map.values().map(Vec::len).sum();
    }

    /// The provider's keys changed: what they verified may no longer hold.
    pub fn drop_provider(&mut self, provider: usize) {
        self.map.retain(|_, es| {
            es.retain(|e| e.provider != provider);
            !es.is_empty()
        });
        self.len = self.map.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jwt::Alg;

    fn jwt(exp: Option<u64>) -> Rc<Jwt> {
        Rc::new(Jwt {
            alg: Alg::EdDSA,
            kid: None,
            iss: None,
            sub: None,
            audiences: vec![],
            exp,
            nbf: None,
            payload: Default::default(),
            payload_b64: String::new(),
        })
    }

    #[test]
    fn hits_until_expiry_per_provider() {
        let mut c = TokenCache::new(10, 100);
        c.insert(0, "t", jwt(Some(1000)), 900, 60);
        assert!(c.get(0, "t", 1000).is_some());
        assert!(c.get(0, "t", 1060).is_some(), "within skew");
        assert!(c.get(0, "t", 1061).is_none());
        assert!(c.get(1, "t", 950).is_none(), "another provider");
        assert_eq!((c.hits, c.misses), (2, 2));
    }

    #[test]
    fn bounded_and_flushed_on_key_change() {
        let mut c = TokenCache::new(20, 100);
        for i in 0..100u64 {
            c.insert(0, &format!("t{i}"), jwt(Some(10_000 + i)), 0, 0);
            assert!(c.len() <= 20);
        }
        assert!(c.get(0, "t99", 0).is_some(), "newest kept");
        c.insert(1, "other", jwt(None), 0, 0);
        c.drop_provider(0);
        assert_eq!(c.len(), 1);
        assert!(c.get(1, "other", 299).is_some());
        assert!(c.get(1, "other", 301).is_none(), "no exp: bounded age");
    }

    #[test]
    fn refuses_oversized_and_disabled() {
        let mut c = TokenCache::new(10, 4);
        c.insert(0, "toolong", jwt(None), 0, 0);
        assert!(c.is_empty());
        let mut off = TokenCache::new(0, 100);
        off.insert(0, "t", jwt(None), 0, 0);
        assert!(off.is_empty());
    }
}
