//! Evaluation of a requirement tree against the tokens in a request, with Envoy `jwt_authn`
//! semantics: every token at a provider's locations must verify; `requires_any` reports the
//! last real failure, else an unknown issuer, else a missing token: "missing" is the weakest
//! answer, so a well-signed token from an issuer no provider knows is refused as such, with
//! `error="invalid_token"`, even when an `allow_missing` sits beside the provider.

use std::borrow::Cow;
use std::rc::Rc;

use crate::authn::verifier::{self, CheckBudget, VerifyInput};
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

/// A per-request bound that cut the work short: the token that met it failed unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// More distinct tokens than `max_tokens_per_request`.
    Tokens,
    /// No signature checks left of `max_signature_checks_per_request`.
    SignatureChecks,
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
    /// Distinct tokens looked at so far (verified, cached or failed).
    tokens_seen: usize,
    budget: CheckBudget,
    limit: Option<Limit>,
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
            tokens_seen: 0,
            budget: CheckBudget::new(cfg.max_signature_checks_per_request),
            limit: None,
        }
    }

    /// Signature checks made so far (cached tokens need none).
    pub fn signature_checks(&self) -> usize {
        self.cfg.max_signature_checks_per_request - self.budget.left
    }

    /// The first per-request bound that cut this evaluation short, if one did.
    pub fn limit(&self) -> Option<Limit> {
        self.limit
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
        if !self.memo.iter().any(|(_, _, t, _)| *t == token) {
            if self.tokens_seen == self.cfg.max_tokens_per_request {
                self.limit.get_or_insert(Limit::Tokens);
                return Err(AuthError::VerificationFail);
            }
            self.tokens_seen += 1;
        }
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
            None => verifier::verify(&input, &token, &mut self.budget).map(|jwt| {
                let jwt = Rc::new(jwt);
                self.keys
                    .remember(provider, &token, &jwt, self.now, p.clock_skew_seconds);
                jwt
            }),
        };
        if self.budget.spent && self.limit.is_none() {
            self.limit = Some(Limit::SignatureChecks);
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::authn::keystore::KeyStore;
    use crate::config::{self, Routing};

    const ISS: &str = "https://hs.example";

    fn secret(i: usize) -> Vec<u8> {
        format!("secret-number-{i:02}-of-the-test-key-set").into_bytes()
    }

    /// A provider with `keys` kid-less HMAC keys, tokens in `?t=`, under `requires`.
    fn config(keys: usize, requires: serde_json::Value, limits: serde_json::Value) -> FilterConfig {
        let set: Vec<_> = (0..keys)
            .map(|i| json!({"kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret(i))}))
            .collect();
        let mut cfg = json!({
            "providers": {"hs": {"issuer": ISS, "from_params": ["t"],
                "local_jwks": {"inline_string": json!({"keys": set}).to_string()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": requires}]
        });
        for (k, v) in limits.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        config::parse(cfg.to_string().as_bytes()).unwrap()
    }

    /// A kid-less HS256 token signed with key `key`; `n` makes it distinct.
    fn token(key: usize, n: usize) -> String {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let body = URL_SAFE_NO_PAD.encode(json!({"iss": ISS, "n": n}).to_string());
        let input = format!("{head}.{body}");
        let mac = hmac_sha256::HMAC::mac(input.as_bytes(), secret(key));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    fn request(tokens: &[String]) -> Request {
        let query: Vec<_> = tokens.iter().map(|t| format!("t={t}")).collect();
        Request::new(vec![
            (":method".into(), "GET".into()),
            (":path".into(), format!("/x?{}", query.join("&"))),
        ])
    }

    /// Evaluates the config's one rule: the result, the bound met, the checks made.
    fn run(cfg: &FilterConfig, req: &Request) -> (Result<usize, AuthError>, Option<Limit>, usize) {
        let keys = KeyStore::new(cfg);
        let Routing::Rules(rules) = &cfg.routing else {
            panic!("rules")
        };
        let requirement = rules[0].requires.as_ref().unwrap();
        let mut auth = Authenticator::new(cfg, req, &keys, 1_000);
        let result = auth.evaluate(requirement).map(|v| v.len());
        (result, auth.limit(), auth.signature_checks())
    }

    #[test]
    fn a_kid_less_token_stops_when_the_check_budget_is_spent() {
        let provider = json!({"provider_name": "hs"});
        let cfg = config(20, provider.clone(), json!({}));
        // Signed by the first key: one check, no bound met.
        assert_eq!(run(&cfg, &request(&[token(0, 0)])), (Ok(1), None, 1));
        // Signed by the 20th: the default budget of 16 runs out before its key is tried.
        let last = request(&[token(19, 0)]);
        assert_eq!(
            run(&cfg, &last),
            (
                Err(AuthError::VerificationFail),
                Some(Limit::SignatureChecks),
                16
            )
        );
        let roomy = config(
            20,
            provider,
            json!({"max_signature_checks_per_request": 20}),
        );
        assert_eq!(run(&roomy, &last), (Ok(1), None, 20));
    }

    #[test]
    fn tokens_past_the_cap_fail_unverified() {
        let valid: Vec<_> = (0..6).map(|n| token(0, n)).collect();
        // Every token at a provider's locations must verify: the fifth fails unverified.
        let cfg = config(1, json!({"provider_name": "hs"}), json!({}));
        assert_eq!(
            run(&cfg, &request(&valid)),
            (Err(AuthError::VerificationFail), Some(Limit::Tokens), 4)
        );
        assert_eq!(run(&cfg, &request(&valid[..4])), (Ok(4), None, 4));
        // Under allow_missing_or_failed the extra tokens are ignored.
        let lenient = config(1, json!({"allow_missing_or_failed": {}}), json!({}));
        assert_eq!(
            run(&lenient, &request(&valid)),
            (Ok(4), Some(Limit::Tokens), 4)
        );
        let one = config(
            1,
            json!({"allow_missing_or_failed": {}}),
            json!({"max_tokens_per_request": 1}),
        );
        assert_eq!(run(&one, &request(&valid)), (Ok(1), Some(Limit::Tokens), 1));
    }

    #[test]
    fn many_bad_kid_less_tokens_cost_at_most_the_budget() {
        // The review's F1 request: many distinct kid-less tokens with bad signatures under
        // allow_missing_or_failed, against a set of fitting keys.
        let bad: Vec<_> = (0..150).map(|n| token(99, n)).collect();
        let cfg = config(4, json!({"allow_missing_or_failed": {}}), json!({}));
        let (result, limit, checks) = run(&cfg, &request(&bad));
        assert_eq!(result, Ok(0));
        assert_eq!(limit, Some(Limit::Tokens));
        assert_eq!(checks, 16);
        let big = config(64, json!({"allow_missing_or_failed": {}}), json!({}));
        let (result, limit, checks) = run(&big, &request(&bad));
        assert_eq!(
            (result, limit, checks),
            (Ok(0), Some(Limit::SignatureChecks), 16)
        );
    }

    #[test]
    fn a_repeated_token_counts_once() {
        let same = vec![token(0, 7); 10];
        let cfg = config(
            1,
            json!({"provider_name": "hs"}),
            json!({"max_tokens_per_request": 1}),
        );
        assert_eq!(run(&cfg, &request(&same)), (Ok(10), None, 1));
    }
}
