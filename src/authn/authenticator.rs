//! Evaluation of a requirement tree against the tokens in a request, with Envoy `jwt_authn`
//! semantics: every token at a provider's locations must verify; `requires_any` reports the
//! last real failure, else an unknown issuer, else a missing token: "missing" is the weakest
//! answer, so a well-signed token from an issuer no provider knows is refused as such, with
//! `error="invalid_token"`, even when an `allow_missing` sits beside the provider.

use std::borrow::Cow;
use std::rc::Rc;

use crate::authn::verifier::{self, VerifyInput};
use crate::config::FilterConfig;
use crate::jwks::key_set::KeySet;
use crate::jwt::error::AuthError;
use crate::jwt::token::Jwt;
use crate::policy::rules::Requirement;
use crate::request::extractor::{self, Extracted, TokenLocation};
use crate::request::view::Request;

/// A token that verified, with the provider that verified it and where it was found.
#[derive(Debug, Clone)]
pub struct VerifiedToken<'a> {
    pub provider: usize,
    pub jwt: Rc<Jwt>,
    pub location: &'a TokenLocation,
}

/// Supplies the key sets of a provider (local, plus remote once fetched) and remembers the
/// tokens they verified.
pub trait Keys {
    fn key_sets<'c>(&'c self, cfg: &'c FilterConfig, provider: usize) -> Vec<&'c KeySet>;
    /// A token this provider verified before and that has not expired.
    fn cached(&self, provider: usize, token: &str, now: u64) -> Option<Rc<Jwt>>;
    fn remember(&self, provider: usize, token: &str, jwt: &Rc<Jwt>, now: u64, skew: u64);
}

type MemoEntry<'a> = (
    usize,
    Option<&'a [String]>,
    Cow<'a, str>,
    Result<Rc<Jwt>, AuthError>,
);

pub struct Authenticator<'a, K: Keys> {
    cfg: &'a FilterConfig,
    req: &'a Request,
    keys: &'a K,
    now: u64,
    /// A token is verified at most once per provider and audience set in a request.
    memo: Vec<MemoEntry<'a>>,
    /// Remote providers whose key set could not serve a token (none yet, or unknown `kid`):
    /// the host may wait for a fetch and evaluate again.
    jwks_misses: Vec<(usize, AuthError)>,
}

impl<'a, K: Keys> Authenticator<'a, K> {
    pub fn new(cfg: &'a FilterConfig, req: &'a Request, keys: &'a K, now: u64) -> Self {
        Self {
            cfg,
            req,
            keys,
            now,
            memo: Vec::new(),
            jwks_misses: Vec::new(),
        }
    }

    pub fn jwks_misses(&self) -> &[(usize, AuthError)] {
        &self.jwks_misses
    }

    fn verify(
        &mut self,
        provider: usize,
        audiences: Option<&'a [String]>,
        token: Cow<'a, str>,
    ) -> Result<Rc<Jwt>, AuthError> {
        if let Some((_, _, _, r)) = self
            .memo
            .iter()
            .find(|(p, a, t, _)| *p == provider && *a == audiences && *t == token)
        {
            return r.clone();
        }
        let Some(p) = self.cfg.providers.get(provider) else {
            return Err(AuthError::UnknownIssuer);
        };
        let key_sets = self.keys.key_sets(self.cfg, provider);
        let input = VerifyInput {
            provider: p,
            audiences,
            key_sets: &key_sets,
            max_token_size: self.cfg.max_token_size,
            now: self.now,
        };
        let result = match self.keys.cached(provider, &token, self.now) {
            // Verified before: only what depends on the request and the clock is checked.
            Some(jwt) => verifier::check_jwt(&input, &jwt).map(|()| jwt),
            None => verifier::verify(&input, &token).map(|jwt| {
                let jwt = Rc::new(jwt);
                self.keys
                    .remember(provider, &token, &jwt, self.now, p.clock_skew_seconds);
                jwt
            }),
        };
        if let Err(e @ (AuthError::JwksFetchFail | AuthError::JwksKidAlgMismatch)) = result {
            if p.remote.is_some() && !self.jwks_misses.contains(&(provider, e)) {
                self.jwks_misses.push((provider, e));
            }
        }
        self.memo.push((provider, audiences, token, result.clone()));
        result
    }

    pub fn evaluate(
        &mut self,
        requirement: &'a Requirement,
    ) -> Result<Vec<VerifiedToken<'a>>, AuthError> {
        match requirement {
            Requirement::Provider { index, audiences } => {
                let Some(p) = self.cfg.providers.get(*index) else {
                    return Err(AuthError::UnknownIssuer);
                };
                let tokens = extractor::extract(self.req, &p.locations);
                if tokens.is_empty() {
                    return Err(AuthError::Missing);
                }
                let mut out = Vec::with_capacity(tokens.len());
                for Extracted { token, location } in tokens {
                    let jwt = self.verify(*index, audiences.as_deref(), token)?;
                    out.push(VerifiedToken {
                        provider: *index,
                        jwt,
                        location,
                    });
                }
                Ok(out)
            }
            Requirement::Any(children) => {
                let mut last = AuthError::Missing;
                for child in children {
                    match self.evaluate(child) {
                        Ok(v) => return Ok(v),
                        Err(e) if !e.is_missing_like() => last = e,
                        Err(AuthError::UnknownIssuer) if last == AuthError::Missing => {
                            last = AuthError::UnknownIssuer;
                        }
                        Err(_) => {}
                    }
                }
                Err(last)
            }
            Requirement::All(children) => {
                let mut out = Vec::new();
                for child in children {
                    out.extend(self.evaluate(child)?);
                }
                Ok(out)
            }
            Requirement::AllowMissing => self.any_provider(false),
            Requirement::AllowMissingOrFailed => self.any_provider(true),
        }
    }

    /// Tokens at any provider's locations, each verified by a provider that reads that location
    /// and accepts its issuer. No token at all passes.
    fn any_provider(&mut self, failures_pass: bool) -> Result<Vec<VerifiedToken<'a>>, AuthError> {
        let mut seen: Vec<Extracted<'a>> = Vec::new();
        for p in &self.cfg.providers {
            for e in extractor::extract(self.req, &p.locations) {
                if !seen.contains(&e) {
                    seen.push(e);
                }
            }
        }
        let mut out = Vec::new();
        for Extracted { token, location } in seen {
            let readers: Vec<usize> = (0..self.cfg.providers.len())
                .filter(|i| {
                    self.cfg
                        .providers
                        .get(*i)
                        .is_some_and(|p| p.locations.contains(location))
                })
                .collect();
            let mut err = AuthError::UnknownIssuer;
            let mut ok = None;
            for i in readers {
                match self.verify(i, None, token.clone()) {
                    Ok(jwt) => {
                        ok = Some((i, jwt));
                        break;
                    }
                    Err(e) if !e.is_missing_like() => err = e,
                    Err(_) => {}
                }
            }
            match ok {
                Some((provider, jwt)) => out.push(VerifiedToken {
                    provider,
                    jwt,
                    location,
                }),
                None if failures_pass => {}
                None => return Err(err),
            }
        }
        Ok(out)
    }
}
