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
use crate::jwt::issuer_map::insert_sorted;
use crate::jwt::token::Jwt;
use crate::oidc::cookies;
use crate::oidc::discovery::Discovery;
use crate::oidc::session::{self, NoSession, Opened};
use crate::policy::rules::{LeafIndex, Requirement};
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
    /// A token of this many bytes, over `max_token_size`.
    TokenSize(usize),
}

/// Supplies the key sets of a provider (local, plus remote once fetched) and remembers the
/// tokens they verified.
pub trait Keys {
    fn key_sets<'c>(&'c self, cfg: &'c FilterConfig, provider: usize) -> Vec<&'c KeySet>;
    /// A token some provider verified before and that has not expired: its decoded form and
    /// that provider. Consulted once per token.
    fn cached(&self, token: &str, now: u64) -> Option<(Rc<Jwt>, usize)>;
    /// Whether `provider` verified this token before (when another one is the cached answer).
    fn verified_by(&self, provider: usize, token: &str, now: u64) -> bool;
    fn remember(&self, provider: usize, token: &str, jwt: &Rc<Jwt>, now: u64, skew: u64);
    /// The discovery document of a provider whose remote set comes from discovery, once
    /// fetched.
    fn discovery(&self, provider: usize) -> Option<Rc<Discovery>>;
    /// A session value of `oidc` entry `oidc` opened before.
    fn cached_session(&self, oidc: usize, sealed: &str) -> Option<Rc<Opened>>;
    fn remember_session(&self, oidc: usize, sealed: &str, opened: &Rc<Opened>);
}

type MemoEntry<'a> = (
    usize,
    Option<&'a [String]>,
    Cow<'a, str>,
    Result<Rc<Jwt>, AuthError>,
);

/// A token of the request, decoded once for every provider that looks at it: taken from the
/// cache when a provider verified it before (`cached_for`), else parsed.
struct Decoded<'a> {
    token: Cow<'a, str>,
    jwt: Result<Rc<Jwt>, AuthError>,
    cached_for: Option<usize>,
}

pub struct Authenticator<'a, K: Keys> {
    cfg: &'a FilterConfig,
    req: &'a Request,
    keys: &'a K,
    now: u64,
    /// The tokens at each location group (`ProviderIndex::groups`), read once.
    extracted: Vec<Option<Vec<Extracted<'a>>>>,
    decoded: Vec<Decoded<'a>>,
    /// A token is verified at most once per provider and audience set in a request.
    memo: Vec<MemoEntry<'a>>,
    /// Remote providers whose key set could not serve a token (none yet, or unknown `kid`):
    /// the host may wait for a fetch and evaluate again.
    jwks_misses: Vec<(usize, AuthError)>,
    budget: CheckBudget,
    limit: Option<Limit>,
    /// The request's cookies, read once, for the `oidc` leaves.
    cookies: Option<Cow<'a, [(&'a str, &'a str)]>>,
    /// Each `oidc` entry's session, opened at most once.
    sessions: Vec<Option<Result<Rc<Opened>, NoSession>>>,
    /// The session that satisfied an `oidc` leaf: the request's identity when no token is.
    session_used: Option<usize>,
    /// The first `oidc` leaf that failed for want of a session.
    login_needed: Option<usize>,
}

/// The later (by child position) of two failures of a `requires_any`: Envoy reports the last.
fn later(a: Option<(usize, AuthError)>, b: (usize, AuthError)) -> Option<(usize, AuthError)> {
    match a {
        Some(x) if x.0 > b.0 => Some(x),
        _ => Some(b),
    }
}

impl<'a, K: Keys> Authenticator<'a, K> {
    pub fn new(cfg: &'a FilterConfig, req: &'a Request, keys: &'a K, now: u64) -> Self {
        Self {
            cfg,
            req,
            keys,
            now,
            extracted: Vec::new(),
            decoded: Vec::new(),
            memo: Vec::new(),
            jwks_misses: Vec::new(),
            budget: CheckBudget::new(cfg.max_signature_checks_per_request),
            limit: None,
            cookies: None,
            sessions: Vec::new(),
            session_used: None,
            login_needed: None,
        }
    }

    /// The request's cookies, when the caller has parsed them already.
    pub fn use_cookies(&mut self, cookies: &'a [(&'a str, &'a str)]) {
        self.cookies = Some(Cow::Borrowed(cookies));
    }

    /// The session of `oidc` entry `i`, opened from the request's cookies once.
    pub fn session(&mut self, i: usize) -> Result<Rc<Opened>, NoSession> {
        if self.sessions.len() <= i {
            self.sessions.resize(i + 1, None);
        }
        if let Some(Some(s)) = self.sessions.get(i) {
            return s.clone();
        }
        let Some(login) = self.cfg.oidc.get(i) else {
            return Err(NoSession::Absent);
        };
        let req = self.req;
        let cookies = self
            .cookies
            .get_or_insert_with(|| Cow::Owned(cookies::request_cookies(req)));
        let keys = self.keys;
        let provider = &login.provider;
        // Sessions opened before come from the VM's cache: no AEAD and no JSON per request.
        let opened = session::load_with(provider, cookies, self.now, &mut |v| {
            if let Some(o) = keys.cached_session(i, v) {
                return Some(o);
            }
            let o = Rc::new(session::open(provider, v)?);
            keys.remember_session(i, v, &o);
            Some(o)
        });
        if let Some(slot) = self.sessions.get_mut(i) {
            *slot = Some(opened.clone());
        }
        opened
    }

    /// The `oidc` entry whose session satisfied the requirement, if one did.
    pub fn session_used(&self) -> Option<usize> {
        self.session_used
    }

    /// The `oidc` entry whose leaf failed for want of a session: when the whole requirement
    /// fails as "missing", its answer (a login or `Login required`) is the reply.
    pub fn login_needed(&self) -> Option<usize> {
        self.login_needed
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

    /// The tokens at a location group's locations, in order.
    fn tokens(&mut self, group: usize) -> Vec<Extracted<'a>> {
        if self.extracted.len() <= group {
            self.extracted.resize(group + 1, None);
        }
        let (cfg, req) = (self.cfg, self.req);
        let Some(slot) = self.extracted.get_mut(group) else {
            return Vec::new();
        };
        slot.get_or_insert_with(|| match cfg.index.groups.get(group) {
            Some(locations) => extractor::extract(req, locations),
            None => Vec::new(),
        })
        .clone()
    }

    /// The token decoded, at most once per request; past `max_tokens_per_request` distinct
    /// tokens it fails unverified.
    fn decode(&mut self, token: Cow<'a, str>) -> (Result<Rc<Jwt>, AuthError>, Option<usize>) {
        if let Some(d) = self.decoded.iter().find(|d| d.token == token) {
            return (d.jwt.clone(), d.cached_for);
        }
        if self.decoded.len() == self.cfg.max_tokens_per_request {
            self.limit.get_or_insert(Limit::Tokens);
            return (Err(AuthError::VerificationFail), None);
        }
        let (jwt, cached_for) = match self.keys.cached(&token, self.now) {
            Some((jwt, provider)) => (Ok(jwt), Some(provider)),
            None => {
                if token.len() > self.cfg.max_token_size {
                    self.limit.get_or_insert(Limit::TokenSize(token.len()));
                }
                (
                    verifier::decode(&token, self.cfg.max_token_size).map(Rc::new),
                    None,
                )
            }
        };
        self.decoded.push(Decoded {
            token,
            jwt: jwt.clone(),
            cached_for,
        });
        (jwt, cached_for)
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
        let (decoded, cached_for) = self.decode(token.clone());
        let result = decoded.and_then(|jwt| {
            let mut input = VerifyInput {
                provider: p,
                audiences,
                key_sets: &[],
                now: self.now,
            };
            if cached_for == Some(provider) || self.keys.verified_by(provider, &token, self.now) {
                // Verified before: only what depends on the request and the clock is checked
                // (no keys needed).
                verifier::check_jwt(&input, &jwt).map(|()| jwt)
            } else {
                let key_sets = self.keys.key_sets(self.cfg, provider);
                input.key_sets = &key_sets;
                verifier::verify(&input, &token, &jwt, &mut self.budget).map(|()| {
                    self.keys
                        .remember(provider, &token, &jwt, self.now, p.clock_skew_seconds);
                    jwt
                })
            }
        });
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
                if self.cfg.providers.get(*index).is_none() {
                    return Err(AuthError::UnknownIssuer);
                }
                let group = self.cfg.index.group_of.get(*index).copied();
                let tokens = group.map(|g| self.tokens(g)).unwrap_or_default();
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
            Requirement::Any { children, leaves } => self.any(children, leaves),
            Requirement::All(children) => {
                let mut out = Vec::new();
                for child in children {
                    out.extend(self.evaluate(child)?);
                }
                Ok(out)
            }
            Requirement::AllowMissing => self.any_provider(false),
            Requirement::AllowMissingOrFailed => self.any_provider(true),
            Requirement::Oidc(i) => match self.session(*i) {
                Ok(_) => {
                    self.session_used.get_or_insert(*i);
                    Ok(Vec::new())
                }
                Err(_) => {
                    self.login_needed.get_or_insert(*i);
                    Err(AuthError::Missing)
                }
            },
        }
    }

    /// `requires_any`: the first child that passes. A provider leaf fails at its first token
    /// whose issuer is not its provider's, so only the leaves that could accept the first
    /// token at their locations are evaluated, in order; the others answer "unknown issuer"
    /// (or the token's format error) without being visited.
    fn any(
        &mut self,
        children: &'a [Requirement],
        leaves: &LeafIndex,
    ) -> Result<Vec<VerifiedToken<'a>>, AuthError> {
        let mut todo = leaves.others.clone();
        let mut real = None;
        let mut unknown_issuer = false;
        // A request carrying a token is judged by the providers alone, never by a session.
        let mut token_seen = false;
        for g in &leaves.groups {
            let Some(first) = self.tokens(g.group).into_iter().next() else {
                continue;
            };
            token_seen = true;
            match self.decode(first.token).0 {
                // Every leaf of the group fails the same way; the last one is the one reported.
                Err(e) => real = later(real, (g.all.last().copied().unwrap_or(0), e)),
                Ok(jwt) => {
                    let accepting = g.issuers.accepting(jwt.iss.as_deref());
                    unknown_issuer |= accepting.len() < g.all.len();
                    for pos in accepting {
                        insert_sorted(&mut todo, pos);
                    }
                }
            }
        }
        for pos in todo {
            let Some(child) = children.get(pos) else {
                continue;
            };
            if token_seen && matches!(child, Requirement::Oidc(_)) {
                continue;
            }
            match self.evaluate(child) {
                Ok(v) => return Ok(v),
                Err(AuthError::UnknownIssuer) => unknown_issuer = true,
                Err(AuthError::Missing) => {}
                Err(e) => real = later(real, (pos, e)),
            }
        }
        Err(match real {
            Some((_, e)) => e,
            None if unknown_issuer => AuthError::UnknownIssuer,
            None => AuthError::Missing,
        })
    }

    /// Tokens at any provider's locations, each verified by a provider that reads that location
    /// and accepts its issuer. No token at all passes.
    fn any_provider(&mut self, failures_pass: bool) -> Result<Vec<VerifiedToken<'a>>, AuthError> {
        let mut seen: Vec<Extracted<'a>> = Vec::new();
        let mut out = Vec::new();
        for (location, readers) in &self.cfg.index.locations {
            for e in extractor::extract(self.req, std::slice::from_ref(location)) {
                if seen.contains(&e) {
                    continue;
                }
                seen.push(e.clone());
                let Extracted { token, location } = e;
                let (candidates, mut err) = match self.decode(token.clone()).0 {
                    // Every reader would fail the same way.
                    Err(e) => (Vec::new(), e),
                    Ok(jwt) => (
                        self.cfg
                            .index
                            .accepting(jwt.iss.as_deref())
                            .into_iter()
                            .filter(|i| readers.binary_search(i).is_ok())
                            .collect(),
                        AuthError::UnknownIssuer,
                    ),
                };
                let mut ok = None;
                for i in candidates {
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
        let requirement = rules.rules[0].requires.as_ref().unwrap();
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

    /// The evaluation as it was before the issuer index: every provider leaf visited in order,
    /// every token decoded per provider. The indexed evaluation must answer the same.
    fn linear<'a>(
        cfg: &'a FilterConfig,
        req: &'a Request,
        r: &'a Requirement,
    ) -> Result<Vec<usize>, AuthError> {
        let verify = |i: usize, aud: Option<&[String]>, token: &str| {
            let p = &cfg.providers[i];
            let jwt = verifier::decode(token, cfg.max_token_size)?;
            let sets = [&p.local_keys];
            let input = VerifyInput {
                provider: p,
                audiences: aud,
                key_sets: &sets,
                now: 1_000,
            };
            verifier::verify(&input, token, &jwt, &mut CheckBudget::new(usize::MAX))
        };
        match r {
            Requirement::Provider { index, audiences } => {
                let tokens = extractor::extract(req, &cfg.providers[*index].locations);
                if tokens.is_empty() {
                    return Err(AuthError::Missing);
                }
                for t in &tokens {
                    verify(*index, audiences.as_deref(), &t.token)?;
                }
                Ok(vec![*index; tokens.len()])
            }
            Requirement::Any { children, .. } => {
                let mut last = AuthError::Missing;
                for c in children {
                    match linear(cfg, req, c) {
                        Ok(v) => return Ok(v),
                        Err(e) if !e.is_missing_like() => last = e,
                        Err(AuthError::UnknownIssuer) if last == AuthError::Missing => {
                            last = AuthError::UnknownIssuer
                        }
                        Err(_) => {}
                    }
                }
                Err(last)
            }
            Requirement::All(children) => {
                let mut out = Vec::new();
                for c in children {
                    out.extend(linear(cfg, req, c)?);
                }
                Ok(out)
            }
            // The randomized trees hold no sessions.
            Requirement::Oidc(_) => Err(AuthError::Missing),
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
                let mut seen = Vec::new();
                for p in &cfg.providers {
                    for e in extractor::extract(req, &p.locations) {
                        if !seen.contains(&e) {
                            seen.push(e);
                        }
                    }
                }
                let mut out = Vec::new();
                for e in seen {
                    let mut err = AuthError::UnknownIssuer;
                    let mut ok = None;
                    for (i, p) in cfg.providers.iter().enumerate() {
                        if !p.locations.contains(e.location) {
                            continue;
                        }
                        match verify(i, None, &e.token) {
                            Ok(()) => {
                                ok = Some(i);
                                break;
                            }
                            Err(x) if !x.is_missing_like() => err = x,
                            Err(_) => {}
                        }
                    }
                    match ok {
                        Some(i) => out.push(i),
                        None if *r == Requirement::AllowMissingOrFailed => {}
                        None => return Err(err),
                    }
                }
                Ok(out)
            }
        }
    }

    #[test]
    fn the_issuer_index_answers_as_the_linear_walk() {
        use crate::policy::path_index::testing::Rng;
        let issuers = ["https://a", "https://b", "https://c"];
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        let mut outcomes = std::collections::HashMap::new();
        for round in 0..400 {
            // Providers: an issuer (or none), one oct key each, default or custom locations.
            let count = 1 + rng.below(5);
            let mut providers = serde_json::Map::new();
            let mut names = Vec::new();
            for i in 0..count {
                let key = json!({"kty": "oct", "alg": "HS256",
                    "k": URL_SAFE_NO_PAD.encode(secret(i % 3))});
                let mut p =
                    json!({"local_jwks": {"inline_string": json!({"keys": [key]}).to_string()}});
                if rng.below(5) != 0 {
                    p["issuer"] = json!(issuers[rng.below(3)]);
                }
                match rng.below(3) {
                    0 => p["from_headers"] = json!([{"name": "x-t"}]),
                    1 => p["from_params"] = json!(["t"]),
                    _ => {}
                }
                names.push(format!("p{i}"));
                providers.insert(format!("p{i}"), p);
            }
            let leaf = |rng: &mut Rng| match rng.below(3) {
                0 => json!({"provider_and_audiences": {"provider_name": names[rng.below(count)],
                                                       "audiences": ["api"]}}),
                _ => json!({"provider_name": names[rng.below(count)]}),
            };
            let mut any: Vec<_> = (0..1 + rng.below(5)).map(|_| leaf(&mut rng)).collect();
            // Children that are not provider leaves, anywhere in the list.
            for other in [
                json!({"allow_missing": {}}),
                json!({"allow_missing_or_failed": {}}),
                json!({"requires_all": {"requirements": [leaf(&mut rng), leaf(&mut rng)]}}),
            ] {
                if rng.below(4) == 0 {
                    let at = rng.below(any.len() + 1);
                    any.insert(at, other);
                }
            }
            let requires = match rng.below(5) {
                0 => json!({"allow_missing": {}}),
                1 => json!({"allow_missing_or_failed": {}}),
                2 => leaf(&mut rng),
                _ => json!({"requires_any": {"requirements": any}}),
            };
            let cfg = config::parse(
                json!({"providers": providers,
                       "rules": [{"match": {"prefix": "/"}, "requires": requires}]})
                .to_string()
                .as_bytes(),
            )
            .unwrap();
            let keys = KeyStore::new(&cfg);
            let Routing::Rules(rules) = &cfg.routing else {
                panic!("rules")
            };
            let requirement = rules.rules[0].requires.as_ref().unwrap();
            for _ in 0..10 {
                let token = |rng: &mut Rng| {
                    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
                    let mut claims = json!({"n": round});
                    match rng.below(4) {
                        0 => claims["aud"] = json!("api"),
                        1 => claims["exp"] = json!(500),
                        _ => {}
                    }
                    if rng.below(6) != 0 {
                        claims["iss"] = json!(
                            ["https://a", "https://b", "https://c", "https://z"][rng.below(4)]
                        );
                    }
                    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
                    let input = format!("{head}.{body}");
                    match rng.below(6) {
                        0 => "not-a-token".to_string(),
                        _ => {
                            let mac =
                                hmac_sha256::HMAC::mac(input.as_bytes(), secret(rng.below(4)));
                            format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
                        }
                    }
                };
                let mut headers = vec![(":method".into(), "GET".into())];
                let mut path = "/x".to_string();
                for _ in 0..rng.below(3) {
                    match rng.below(3) {
                        0 => headers.push((
                            "authorization".into(),
                            format!("Bearer {}", token(&mut rng)),
                        )),
                        1 => headers.push(("x-t".into(), token(&mut rng))),
                        _ => {
                            path = format!(
                                "{path}{}t={}",
                                if path.contains('?') { '&' } else { '?' },
                                token(&mut rng)
                            )
                        }
                    }
                }
                headers.push((":path".into(), path));
                let req = Request::new(headers);
                let want = linear(&cfg, &req, requirement);
                // Twice: the second run answers from the verified-token cache.
                for pass in 0..2 {
                    let mut auth = Authenticator::new(&cfg, &req, &keys, 1_000);
                    let got = auth
                        .evaluate(requirement)
                        .map(|v| v.iter().map(|t| t.provider).collect::<Vec<_>>());
                    assert_eq!(got, want, "pass {pass}: {requirement:?} {req:?}");
                }
                *outcomes
                    .entry(format!("{want:?}").chars().take(14).collect::<String>())
                    .or_insert(0) += 1;
            }
        }
        // The comparison covered passes, each kind of refusal and "no token".
        for kind in [
            "Ok([])",
            "Ok([",
            "Err(Missing)",
            "Err(UnknownIs",
            "Err(Verificat",
            "Err(BadFormat",
            "Err(Expired)",
            "Err(AudienceN",
        ] {
            assert!(
                outcomes.keys().any(|k| k.starts_with(kind)),
                "{kind} never seen: {outcomes:?}"
            );
        }
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
