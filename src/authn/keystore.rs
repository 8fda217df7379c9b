//! The keys a VM verifies with, beyond the configuration's own: each provider's current remote
//! set (with its shared version) and the verified-token cache that depends on them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use crate::authn::authenticator::Keys;
use crate::authn::fingerprint::{fingerprint, same_token, Identity};
use crate::authn::token_cache::{TokenCache, MAX_CACHED_TOKEN_SIZE};
use crate::config::FilterConfig;
use crate::jwks::key_set::KeySet;
use crate::jwt::token::Jwt;
use crate::oidc::discovery::Discovery;
use crate::oidc::session::Opened;

#[derive(Default)]
struct RemoteSet {
    version: u64,
    keys: KeySet,
    discovery: Option<Rc<Discovery>>,
}

type SessionMap = HashMap<u64, (Box<str>, Rc<Opened>), BuildHasherDefault<Identity>>;

pub struct KeyStore {
    remote: Vec<RemoteSet>,
    cache: RefCell<TokenCache>,
    /// Opened session cookies per `oidc` entry, by the sealed value's fingerprint; at most
    /// `jwt_cache_size` each (emptied when full). A sealed value never changes meaning under
    /// one configuration.
    sessions: RefCell<Vec<SessionMap>>,
    session_cap: usize,
}

impl KeyStore {
    pub fn new(cfg: &FilterConfig) -> Self {
        Self {
            remote: cfg.providers.iter().map(|_| RemoteSet::default()).collect(),
            cache: RefCell::new(TokenCache::new(
                cfg.jwt_cache_size,
                MAX_CACHED_TOKEN_SIZE.min(cfg.max_token_size),
            )),
            sessions: RefCell::new(cfg.oidc.iter().map(|_| HashMap::default()).collect()),
            session_cap: cfg.jwt_cache_size,
        }
    }

    pub fn remote_version(&self, provider: usize) -> u64 {
        self.remote.get(provider).map_or(0, |r| r.version)
    }

    /// Installs a newer remote set; tokens cached for the provider are forgotten, so a key
    /// removed from the set stops verifying at once.
    pub fn set_remote(
        &mut self,
        provider: usize,
        version: u64,
        keys: KeySet,
        discovery: Option<Discovery>,
    ) {
        if let Some(r) = self.remote.get_mut(provider) {
            *r = RemoteSet {
                version,
                keys,
                discovery: discovery.map(Rc::new),
            };
            self.cache.borrow_mut().drop_provider(provider);
        }
    }

    /// (hits, misses) of the verified-token cache since the VM started.
    pub fn cache_counts(&self) -> (u64, u64) {
        let c = self.cache.borrow();
        (c.hits, c.misses)
    }
}

impl Keys for KeyStore {
    fn key_sets<'c>(&'c self, cfg: &'c FilterConfig, provider: usize) -> Vec<&'c KeySet> {
        let mut sets = Vec::with_capacity(2);
        if let Some(p) = cfg.providers.get(provider) {
            sets.push(&p.local_keys);
        }
        if let Some(r) = self.remote.get(provider) {
            sets.push(&r.keys);
        }
        sets
    }

    fn discovery(&self, provider: usize) -> Option<Rc<Discovery>> {
        self.remote.get(provider).and_then(|r| r.discovery.clone())
    }

    fn cached_session(&self, oidc: usize, sealed: &str) -> Option<Rc<Opened>> {
        let sessions = self.sessions.borrow();
        let (value, opened) = sessions.get(oidc)?.get(&fingerprint(sealed))?;
        same_token(value, sealed).then(|| opened.clone())
    }

    fn remember_session(&self, oidc: usize, sealed: &str, opened: &Rc<Opened>) {
        if self.session_cap == 0 {
            return;
        }
        if let Some(m) = self.sessions.borrow_mut().get_mut(oidc) {
            if m.len() >= self.session_cap {
                m.clear();
            }
            m.insert(fingerprint(sealed), (sealed.into(), opened.clone()));
        }
    }

    fn cached(&self, token: &str, now: u64) -> Option<(Rc<Jwt>, usize)> {
        self.cache.borrow_mut().get(token, now)
    }

    fn verified_by(&self, provider: usize, token: &str, now: u64) -> bool {
        self.cache.borrow().verified_by(provider, token, now)
    }

    fn remember(&self, provider: usize, token: &str, jwt: &Rc<Jwt>, now: u64, skew: u64) {
        self.cache
            .borrow_mut()
            .insert(provider, token, jwt.clone(), now, skew);
    }
}
