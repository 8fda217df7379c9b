//! Verified-token cache: a token that verified for a provider is remembered until it expires,
//! so a repeated token skips decoding and the signature (the whole cost in the sandbox).
//! Checks that depend on the request or the clock (time, audiences, lifetime) still run on a
//! hit; entries of a provider are dropped when its key set changes.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use crate::authn::fingerprint::{fingerprint, same_token, Identity};

use crate::jwt::token::Jwt;

/// Larger tokens are verified every time: with the default `jwt_cache_size` this keeps the
/// cache's memory where it was when tokens were limited to 8 KiB, whatever `max_token_size` is.
pub const MAX_CACHED_TOKEN_SIZE: usize = 8 * 1024;

/// Entries without `exp` are kept at most this long.
const MAX_AGE_WITHOUT_EXP: u64 = 300;

struct Entry {
    token: Box<str>,
    provider: usize,
    jwt: Rc<Jwt>,
    /// Unix seconds after which the entry is useless.
    until: u64,
}

pub struct TokenCache {
    capacity: usize,
    max_token_size: usize,
    /// Entries by token fingerprint.
    map: HashMap<u64, Vec<Entry>, BuildHasherDefault<Identity>>,
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

    fn live<'s>(&'s self, token: &'s str, now: u64) -> impl Iterator<Item = &'s Entry> + 's {
        self.map
            .get(&fingerprint(token))
            .into_iter()
            .flatten()
            .filter(move |e| now <= e.until && same_token(&e.token, token))
    }

    /// The token as some provider verified it, and that provider: one lookup per token,
    /// counted as a hit or a miss.
    pub fn get(&mut self, token: &str, now: u64) -> Option<(Rc<Jwt>, usize)> {
        let found = self
            .live(token, now)
            .next()
            .map(|e| (e.jwt.clone(), e.provider));
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Whether `provider` verified this token (a token several providers accept).
    pub fn verified_by(&self, provider: usize, token: &str, now: u64) -> bool {
        self.live(token, now).any(|e| e.provider == provider)
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
        let entries = self.map.entry(fingerprint(token)).or_default();
        let before = entries.len();
        entries.retain(|e| e.provider != provider || !same_token(&e.token, token));
        let replaced = before - entries.len();
        entries.push(Entry {
            token: token.into(),
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
    use crate::crypto::signature::Alg;

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
        assert_eq!(c.get("t", 1000).map(|(_, p)| p), Some(0));
        assert!(c.get("t", 1060).is_some(), "within skew");
        assert!(c.get("t", 1061).is_none());
        assert!(c.verified_by(0, "t", 950));
        assert!(!c.verified_by(1, "t", 950), "another provider");
        assert_eq!((c.hits, c.misses), (2, 1));
    }

    #[test]
    fn bounded_and_flushed_on_key_change() {
        let mut c = TokenCache::new(20, 100);
        for i in 0..100u64 {
            c.insert(0, &format!("t{i}"), jwt(Some(10_000 + i)), 0, 0);
            assert!(c.len() <= 20);
        }
        assert!(c.get("t99", 0).is_some(), "newest kept");
        c.insert(1, "other", jwt(None), 0, 0);
        c.drop_provider(0);
        assert_eq!(c.len(), 1);
        assert!(c.get("other", 299).is_some());
        assert!(c.get("other", 301).is_none(), "no exp: bounded age");
    }

    #[test]
    fn tokens_sharing_a_fingerprint_stay_apart() {
        let tail = "x".repeat(40);
        let (a, b) = (format!("a{tail}"), format!("b{tail}"));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = TokenCache::new(10, 100);
        c.insert(0, &a, jwt(Some(1000)), 0, 0);
        assert!(c.get(&b, 0).is_none(), "same fingerprint, other token");
        c.insert(0, &b, jwt(Some(2000)), 0, 0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&a, 0).unwrap().0.exp, Some(1000));
        assert_eq!(c.get(&b, 0).unwrap().0.exp, Some(2000));
        c.insert(0, &a, jwt(Some(3000)), 0, 0);
        assert_eq!(c.len(), 2, "a re-insert replaces");
        assert_eq!(c.get(&a, 0).unwrap().0.exp, Some(3000));
        for (x, y) in [
            ("abcdefghij", "abcdefghiJ"),
            ("abcdefgh", "abcdefgX"),
            ("", "a"),
        ] {
            assert!(!same_token(x, y) && same_token(x, x));
        }
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
