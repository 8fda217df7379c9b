//! A login session: what the filter keeps of a login (compact), its lifetime checks, and its
//! storage in sealed, possibly split, cookies with trimming when it is too large.
//!
//! Kept: `iss`, `sub`, the ID token's claims (all of them when they are small, else those the
//! configuration reads), the access token and its expiry, the refresh token, the ID token (for
//! `id_token_hint` at logout) while it fits, the login time and the last use. Over the cap the
//! access token goes first, then the ID token (a refresh mints new ones), and the caller is
//! told so that it can log a warning.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::rc::Rc;

use crate::crypto::signature::Alg;
use crate::jwt::token::Jwt;

use crate::oidc::config::{OidcProvider, SessionConfig};
use crate::oidc::cookies::{assemble, store_session, MAX_SESSION_BYTES};
use crate::oidc::random::Random;
use crate::oidc::seal::Purpose;

/// Claims whose JSON is at most this long are all kept; past it only the needed ones.
pub const SMALL_CLAIMS_BYTES: usize = 1024;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    #[serde(rename = "i")]
    pub iss: String,
    #[serde(rename = "s")]
    pub sub: String,
    #[serde(rename = "c", default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Unix seconds.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<u64>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Unix seconds: the absolute lifetime counts from here.
    #[serde(rename = "l")]
    pub login_at: u64,
    /// Unix seconds: the idle timeout counts from here.
    #[serde(rename = "u")]
    pub last_use: u64,
}

/// Tokens stay out of logs: `Debug` says only whether each is there.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("iss", &self.iss)
            .field("sub", &self.sub)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .field("access_token", &self.access_token.is_some())
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("login_at", &self.login_at)
            .field("last_use", &self.last_use)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Past `absolute_lifetime` since the login.
    Absolute,
    /// Past `idle_timeout` since the last use.
    Idle,
}

/// Why a request has no session: each counts as none, the reason is for the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    Absent,
    /// Tampered, truncated, sealed under an unknown key or for another issuer.
    Unreadable,
    Expired(Expired),
}

/// What the caller drops from a session that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    AccessToken,
    IdToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `Set-Cookie` values: the chunks, and clears for stale session cookies.
    pub set_cookies: Vec<String>,
    /// What had to go to fit under the cap, in order.
    pub dropped: Vec<Dropped>,
    /// Length of the sealed session with everything kept, then as stored.
    pub full_bytes: usize,
    pub stored_bytes: usize,
}

impl Stored {
    /// The warning to log when something was dropped.
    pub fn warning(&self, provider: &str) -> Option<String> {
        if self.dropped.is_empty() {
            return None;
        }
        let what: Vec<&str> = self
            .dropped
            .iter()
            .map(|d| match d {
                Dropped::AccessToken => "the access token",
                Dropped::IdToken => "the ID token",
            })
            .collect();
        Some(format!(
            "oidc {provider}: session of {} bytes is over the {MAX_SESSION_BYTES}-byte cap; \
             stored without {} ({} bytes)",
            self.full_bytes,
            what.join(" and "),
            self.stored_bytes
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Still over the cap with both tokens dropped (claims or refresh token too large).
    TooLarge { bytes: usize },
    /// The random source failed.
    NoRandom,
    /// The session's absolute lifetime is over: nothing to store.
    Expired,
}

/// The claims a session keeps: all when their JSON is small, else the `needed` ones.
pub fn project_claims(all: &Map<String, Value>, needed: &[&str]) -> Map<String, Value> {
    let small = serde_json::to_vec(all).is_ok_and(|j| j.len() <= SMALL_CLAIMS_BYTES);
    all.iter()
        .filter(|(k, _)| small || needed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Session {
    pub fn new(iss: String, sub: String, claims: Map<String, Value>, now: u64) -> Self {
        Self {
            iss,
            sub,
            claims,
            access_token: None,
            access_expires_at: None,
            refresh_token: None,
            id_token: None,
            login_at: now,
            last_use: now,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The session's claims as a verified token's, for authorization: `request.auth.principal`
    /// is `<iss>/<sub>` and `request.auth.audiences` the ID token's `aud`.
    pub fn identity(&self) -> Jwt {
        let mut payload = self.claims.clone();
        payload.insert("iss".into(), Value::String(self.iss.clone()));
        payload.insert("sub".into(), Value::String(self.sub.clone()));
        let audiences = match payload.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Jwt {
            // Never checked again: the ID token was verified at login, with its key's algorithm.
            alg: Alg::RS256,
            kid: None,
            iss: Some(self.iss.clone()),
            sub: Some(self.sub.clone()),
            audiences,
            exp: None,
            nbf: None,
            payload,
            payload_b64: String::new(),
        }
    }

    /// When the absolute lifetime ends (Unix seconds).
    pub fn expires_at(&self, cfg: &SessionConfig) -> u64 {
        self.login_at.saturating_add(cfg.absolute_lifetime_s)
    }

    pub fn check(&self, cfg: &SessionConfig, now: u64) -> Result<(), Expired> {
        if now >= self.expires_at(cfg) {
            return Err(Expired::Absolute);
        }
        match cfg.idle_timeout_s {
            Some(idle) if now >= self.last_use.saturating_add(idle) => Err(Expired::Idle),
            _ => Ok(()),
        }
    }

    /// Whether to write the session again to move its idle deadline: at most once a quarter
    /// of `idle_timeout`, so that busy pages do not set cookies on every response.
    pub fn should_slide(&self, cfg: &SessionConfig, now: u64) -> bool {
        cfg.idle_timeout_s
            .is_some_and(|idle| now.saturating_sub(self.last_use) >= (idle / 4).max(1))
    }
}

/// A session opened from its sealed value, with its identity in the form authorization reads.
#[derive(Debug)]
pub struct Opened {
    pub session: Session,
    pub jwt: Jwt,
}

/// Opens one sealed session value of `provider` (no lifetime check: that depends on the time).
pub fn open(provider: &OidcProvider, value: &str) -> Option<Opened> {
    let plain = provider.session.keys.open(
        Purpose::Session,
        &provider.name,
        &provider.session.cookie.name,
        value,
    )?;
    let session = Session::from_bytes(&plain).filter(|s| s.iss == provider.issuer)?;
    let jwt = session.identity();
    Some(Opened { session, jwt })
}

/// The session a request carries, its cookies reassembled and each candidate value given to
/// `open` (which may remember what it opened), then checked against the time.
pub fn load_with(
    provider: &OidcProvider,
    cookies: &[(&str, &str)],
    now: u64,
    open: &mut dyn FnMut(&str) -> Option<Rc<Opened>>,
) -> Result<Rc<Opened>, NoSession> {
    let candidates = assemble(&provider.session.cookie.name, cookies);
    if candidates.is_empty() {
        return Err(NoSession::Absent);
    }
    let opened = candidates
        .iter()
        .find_map(|v| open(v))
        .ok_or(NoSession::Unreadable)?;
    opened
        .session
        .check(&provider.session, now)
        .map_err(NoSession::Expired)?;
    Ok(opened)
}

/// [`load_with`] opening every value afresh.
pub fn load(
    provider: &OidcProvider,
    cookies: &[(&str, &str)],
    now: u64,
) -> Result<Session, NoSession> {
    let opened = load_with(provider, cookies, now, &mut |v| {
        open(provider, v).map(Rc::new)
    })?;
    Ok(Rc::try_unwrap(opened).map_or_else(|o| o.session.clone(), |o| o.session))
}

/// Seals `session` into `Set-Cookie` values (clearing stale session cookies the request had
/// in `present`), trimming it under the cap: without the access token, then without the ID
/// token too.
pub fn store(
    provider: &OidcProvider,
    session: &Session,
    now: u64,
    present: &[(&str, &str)],
    rng: &mut dyn Random,
) -> Result<Stored, StoreError> {
    let cfg = &provider.session;
    let max_age = session.expires_at(cfg).saturating_sub(now);
    if max_age == 0 {
        return Err(StoreError::Expired);
    }
    let mut trimmed = session.clone();
    let mut dropped = Vec::new();
    let mut full_bytes = None;
    loop {
        let sealed = cfg
            .keys
            .seal(
                Purpose::Session,
                &provider.name,
                &cfg.cookie.name,
                &trimmed.to_bytes(),
                rng,
            )
            .ok_or(StoreError::NoRandom)?;
        let full = *full_bytes.get_or_insert(sealed.len());
        if let Some(set_cookies) = store_session(&cfg.cookie, &sealed, max_age, present) {
            return Ok(Stored {
                set_cookies,
                dropped,
                full_bytes: full,
                stored_bytes: sealed.len(),
            });
        }
        if trimmed.access_token.is_some() {
            trimmed.access_token = None;
            trimmed.access_expires_at = None;
            dropped.push(Dropped::AccessToken);
        } else if trimmed.id_token.is_some() {
            trimmed.id_token = None;
            dropped.push(Dropped::IdToken);
        } else {
            return Err(StoreError::TooLarge {
                bytes: sealed.len(),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::oidc::config::testing::{compile_json, example, provider, KEY_NEW, KEY_OLD};
    use crate::oidc::random::testing::Broken;
    use crate::oidc::random::HostRandom;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn session() -> Session {
        let claims = json!({"email": "a@example.com", "aud": "gateway"});
        let mut s = Session::new(
            "https://idp.example.com/realms/acme".into(),
            "alice".into(),
            claims.as_object().unwrap().clone(),
            NOW,
        );
        s.access_token = Some("at-123".into());
        s.access_expires_at = Some(NOW + 300);
        s.refresh_token = Some("rt-456".into());
        s.id_token = Some("h.p.s".into());
        s
    }

    /// What the browser sends back: the set (not cleared) cookies of `Set-Cookie` lines.
    fn sent_back(lines: &[String]) -> Vec<(String, String)> {
        lines
            .iter()
            .filter(|l| !l.contains("Max-Age=0"))
            .map(|l| {
                let (n, v) = l.split(';').next().unwrap().split_once('=').unwrap();
                (n.to_string(), v.to_string())
            })
            .collect()
    }

    fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    fn with_keys(keys: serde_json::Value) -> OidcProvider {
        let mut j = example();
        j["session"]["keys"] = keys;
        compile_json(j).unwrap()
    }

    #[test]
    fn stores_and_loads_compactly() {
        let p = provider();
        let s = session();
        let json = String::from_utf8(s.to_bytes()).unwrap();
        assert!(
            json.starts_with("{\"i\":\"https://idp.example.com/realms/acme\",\"s\":\"alice\""),
            "{json}"
        );
        let bare = Session::new("i".into(), "s".into(), Map::new(), 5);
        assert_eq!(
            String::from_utf8(bare.to_bytes()).unwrap(),
            r#"{"i":"i","s":"s","l":5,"u":5}"#
        );
        let stored = store(&p, &s, NOW, &[], &mut HostRandom).unwrap();
        assert!(stored.dropped.is_empty() && stored.warning("web").is_none());
        assert_eq!(stored.set_cookies.len(), 1);
        assert!(stored.set_cookies[0].contains("Max-Age=86400"));
        let back = sent_back(&stored.set_cookies);
        assert_eq!(load(&p, &pairs(&back), NOW + 10).unwrap(), s);
        assert!(
            !stored.set_cookies[0].contains("at-123"),
            "sealed, not readable"
        );
    }

    #[test]
    fn no_tampered_foreign_or_absent_session_loads() {
        let p = provider();
        assert_eq!(load(&p, &[("other", "1")], NOW), Err(NoSession::Absent));
        let stored = store(&p, &session(), NOW, &[], &mut HostRandom).unwrap();
        let mut back = sent_back(&stored.set_cookies);
        let v = &mut back[0].1;
        let last = v.pop().unwrap();
        v.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(load(&p, &pairs(&back), NOW), Err(NoSession::Unreadable));
        assert_eq!(
            load(&p, &[("__Host-web", "garbage")], NOW),
            Err(NoSession::Unreadable)
        );
        // A session sealed for another issuer under the same keys and name is not this one's.
        let mut other = session();
        other.iss = "https://other.example".into();
        let stored = store(&p, &other, NOW, &[], &mut HostRandom).unwrap();
        let back = sent_back(&stored.set_cookies);
        assert_eq!(load(&p, &pairs(&back), NOW), Err(NoSession::Unreadable));
    }

    #[test]
    fn key_rotation_keeps_sessions() {
        let old = with_keys(json!([{"inline": KEY_OLD}]));
        let rotated = with_keys(json!([{"inline": KEY_NEW}, {"inline": KEY_OLD}]));
        let new_only = with_keys(json!([{"inline": KEY_NEW}]));
        let s = session();
        let before = sent_back(
            &store(&old, &s, NOW, &[], &mut HostRandom)
                .unwrap()
                .set_cookies,
        );
        assert_eq!(load(&rotated, &pairs(&before), NOW).unwrap(), s);
        let after = sent_back(
            &store(&rotated, &s, NOW, &[], &mut HostRandom)
                .unwrap()
                .set_cookies,
        );
        assert_eq!(load(&new_only, &pairs(&after), NOW).unwrap(), s);
        assert_eq!(load(&old, &pairs(&after), NOW), Err(NoSession::Unreadable));
    }

    #[test]
    fn lifetimes() {
        let p = provider();
        let s = session();
        let cfg = &p.session;
        assert_eq!(s.check(cfg, NOW + 3599), Ok(()));
        assert_eq!(s.check(cfg, NOW + 3600), Err(Expired::Idle));
        let mut used = s.clone();
        used.last_use = NOW + 86_000;
        assert_eq!(used.check(cfg, NOW + 86_399), Ok(()));
        assert_eq!(used.check(cfg, NOW + 86_400), Err(Expired::Absolute));
        let back = sent_back(
            &store(&p, &s, NOW, &[], &mut HostRandom)
                .unwrap()
                .set_cookies,
        );
        assert_eq!(
            load(&p, &pairs(&back), NOW + 4000),
            Err(NoSession::Expired(Expired::Idle))
        );
        assert!(!s.should_slide(cfg, NOW + 899));
        assert!(s.should_slide(cfg, NOW + 900));
        let mut j = example();
        j["session"].as_object_mut().unwrap().remove("idle_timeout");
        let no_idle = compile_json(j).unwrap();
        assert_eq!(s.check(&no_idle.session, NOW + 86_399), Ok(()));
        assert!(!s.should_slide(&no_idle.session, NOW + 80_000));
        // Max-Age counts down to the absolute end; an ended session is not stored.
        let late = store(&p, &used, NOW + 86_000, &[], &mut HostRandom).unwrap();
        assert!(late.set_cookies[0].contains("Max-Age=400"));
        assert_eq!(
            store(&p, &s, NOW + 86_400, &[], &mut HostRandom),
            Err(StoreError::Expired)
        );
        assert_eq!(
            store(&p, &s, NOW, &[], &mut Broken),
            Err(StoreError::NoRandom)
        );
    }

    #[test]
    fn large_sessions_split_then_trim_in_order() {
        let p = provider();
        // A 6 KB ID token (8.3 KB sealed): three cookies, nothing dropped.
        let mut s = session();
        s.id_token = Some("i".repeat(6000));
        let stored = store(&p, &s, NOW, &[], &mut HostRandom).unwrap();
        assert_eq!(stored.set_cookies.len(), 3);
        assert!(stored.set_cookies[0].starts_with("__Host-web.0-3="));
        assert!(stored.set_cookies[2].starts_with("__Host-web.2-3="));
        let back = sent_back(&stored.set_cookies);
        assert_eq!(load(&p, &pairs(&back), NOW).unwrap(), s);
        // Writing a one-cookie session over it clears the three chunks.
        let small = store(&p, &session(), NOW, &pairs(&back), &mut HostRandom).unwrap();
        assert_eq!(small.set_cookies.len(), 4);
        assert!(small.set_cookies[1..]
            .iter()
            .all(|l| l.contains("Max-Age=0")));
        // Over the cap: the access token goes first.
        s.access_token = Some("a".repeat(10_000));
        let stored = store(&p, &s, NOW, &[], &mut HostRandom).unwrap();
        assert_eq!(stored.dropped, vec![Dropped::AccessToken]);
        let loaded = load(&p, &pairs(&sent_back(&stored.set_cookies)), NOW).unwrap();
        assert_eq!(
            (loaded.access_token, loaded.access_expires_at),
            (None, None)
        );
        assert_eq!(loaded.id_token, s.id_token);
        assert_eq!(loaded.refresh_token, s.refresh_token);
        let warning = stored.warning("web").unwrap();
        assert!(warning.contains("without the access token"), "{warning}");
        assert!(warning.contains(&stored.full_bytes.to_string()));
        assert!(stored.full_bytes > MAX_SESSION_BYTES && stored.stored_bytes <= MAX_SESSION_BYTES);
        // Then the ID token.
        s.id_token = Some("i".repeat(12_000));
        let stored = store(&p, &s, NOW, &[], &mut HostRandom).unwrap();
        assert_eq!(stored.dropped, vec![Dropped::AccessToken, Dropped::IdToken]);
        assert!(stored
            .warning("web")
            .unwrap()
            .contains("the access token and the ID token"));
        assert_eq!(stored.set_cookies.len(), 1);
        // What cannot be dropped and is still too large is refused.
        s.refresh_token = Some("r".repeat(MAX_SESSION_BYTES));
        assert!(matches!(
            store(&p, &s, NOW, &[], &mut HostRandom),
            Err(StoreError::TooLarge { bytes }) if bytes > MAX_SESSION_BYTES
        ));
    }

    #[test]
    fn claims_are_projected_when_large() {
        let small = json!({"email": "a@b", "groups": ["x"], "aud": "c"});
        let small = small.as_object().unwrap();
        assert_eq!(project_claims(small, &["email"]), small.clone());
        let large = json!({"email": "a@b", "aud": "c", "blob": "x".repeat(SMALL_CLAIMS_BYTES)});
        let kept = project_claims(large.as_object().unwrap(), &provider().needed_claims());
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["aud", "email"]);
    }

    #[test]
    fn debug_hides_tokens() {
        let shown = format!("{:?}", session());
        for secret in ["at-123", "rt-456", "h.p.s"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("alice") && shown.contains("email"));
    }
}
