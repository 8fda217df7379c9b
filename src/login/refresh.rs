//! Renewing a session's tokens at the token endpoint before its access token expires, and
//! carrying the result into the request that waited for it (and the others of that session).

use sha2::{Digest, Sha256};

use crate::authn::authenticator::Keys;
use crate::config::{FilterConfig, OidcLogin};
use crate::login::callback::{access_expiry, check_id_token, REFRESH_AHEAD_S};
use crate::oidc::cookies::{classify, clear_session, request_cookies, Own};
use crate::oidc::discovery::Discovery;
use crate::oidc::random::Random;
use crate::oidc::session::{self, project_claims, Session};
use crate::oidc::token::{self as token_endpoint, TokenError, TokenRequest};
use crate::request::view::Request;

/// A refresh the host must make before the request goes on.
pub struct Refresh {
    pub oidc: usize,
    pub request: TokenRequest,
    pub session: Session,
    /// Names this session's refresh among the Envoy's workers (a hash of the refresh token):
    /// one refresh per session at a time.
    pub key: String,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("oidc", &self.oidc)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The access token expires within [`REFRESH_AHEAD_S`] and a refresh token is held.
pub fn due(s: &Session, now: u64) -> bool {
    s.refresh_token.is_some()
        && s.access_expires_at
            .is_some_and(|e| e <= now.saturating_add(REFRESH_AHEAD_S))
}

pub fn begin(
    login: &OidcLogin,
    oidc: usize,
    session: &Session,
    discovery: &Discovery,
) -> Option<Refresh> {
    let rt = session.refresh_token.as_deref()?;
    let digest = Sha256::digest(rt.as_bytes());
    let key: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(Refresh {
        oidc,
        request: token_endpoint::refresh_request(&login.provider, &discovery.token_endpoint, rt),
        session: session.clone(),
        key,
    })
}

#[derive(Debug)]
pub enum Renewal {
    /// New session cookies (`Set-Cookie` values).
    Renewed {
        set_cookies: Vec<String>,
        warning: Option<String>,
    },
    /// The IdP refused (or answered nonsense): the session ends. The reason is for the log.
    Refused(String),
    /// No answer, or a 5xx: the session goes on as it is.
    Unavailable(String),
}

/// The token endpoint answered the refresh (`status` 0: no answer at all). A new ID token is
/// checked as at login, but for `nonce`, and must name the same `iss` and `sub`.
#[allow(clippy::too_many_arguments)]
pub fn finish<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    r: &Refresh,
    status: u32,
    body: &[u8],
    cookies: &[(&str, &str)],
    now: u64,
    rng: &mut dyn Random,
) -> Renewal {
    let Some(login) = cfg.oidc.get(r.oidc) else {
        return Renewal::Refused("unknown oidc entry".into());
    };
    let name = &login.provider.name;
    let answer = match token_endpoint::parse_response(status, body) {
        Ok(a) => a,
        Err(e @ TokenError::Unavailable(_)) => {
            return Renewal::Unavailable(format!("oidc {name}: refresh failed: {e:?}"))
        }
        Err(TokenError::Unexpected(s)) if s == 0 || s >= 500 => {
            return Renewal::Unavailable(format!("oidc {name}: refresh got no answer ({s})"))
        }
        Err(e) => return Renewal::Refused(format!("oidc {name}: refresh refused: {e:?}")),
    };
    let mut s = r.session.clone();
    if let Some(id_token) = answer.id_token.as_deref() {
        let jwt = match check_id_token(cfg, keys, login, id_token, None, now) {
            Ok(j) => j,
            // The IdP's new key is not fetched yet: not the session's fault.
            Err(e) if e.keys_missing => {
                return Renewal::Unavailable(format!("oidc {name}: refresh: {}", e.why))
            }
            Err(e) => return Renewal::Refused(format!("oidc {name}: refresh: {}", e.why)),
        };
        if jwt.iss.as_deref() != Some(s.iss.as_str()) || jwt.sub.as_deref() != Some(&s.sub) {
            return Renewal::Refused(format!(
                "oidc {name}: refresh: the new ID token names another iss or sub"
            ));
        }
        s.claims = project_claims(&jwt.payload, &login.provider.needed_claims());
        s.id_token = Some(id_token.to_string());
    }
    s.access_expires_at = Some(access_expiry(&answer, now));
    s.access_token = Some(answer.access_token);
    if answer.refresh_token.is_some() {
        s.refresh_token = answer.refresh_token;
    }
    s.last_use = now;
    match session::store(&login.provider, &s, now, cookies, rng) {
        Ok(stored) => Renewal::Renewed {
            warning: stored.warning(name),
            set_cookies: stored.set_cookies,
        },
        Err(e) => Renewal::Refused(format!("oidc {name}: renewed session not stored: {e:?}")),
    }
}

/// The `(name, value)` pairs a set of `Set-Cookie` values sets (clears left out).
pub fn cookie_pairs(set_cookies: &[String]) -> Vec<(String, String)> {
    set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .filter_map(|c| {
            let pair = c.split(';').next()?;
            let (n, v) = pair.split_once('=')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The request as it would be sent with `pairs` as its session cookies for the provider whose
/// cookie name is `base` (none: the session ended), other cookies unchanged.
pub fn with_session(req: &Request, base: &str, pairs: &[(String, String)]) -> Request {
    let mut kept: Vec<String> = request_cookies(req)
        .into_iter()
        .filter(|(n, _)| !matches!(classify(base, n), Some(Own::Session { .. })))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    kept.extend(pairs.iter().map(|(n, v)| format!("{n}={v}")));
    let mut headers: Vec<(String, String)> = req
        .headers
        .headers()
        .filter(|(n, _)| *n != "cookie")
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if !kept.is_empty() {
        headers.push(("cookie".into(), kept.join("; ")));
    }
    let mut out = Request::new(headers);
    out.connection = req.connection.clone();
    out
}

/// `Set-Cookie` values that end the session of `login` the request carried.
pub fn end(login: &OidcLogin, req: &Request) -> Vec<String> {
    clear_session(&login.provider.session.cookie, &request_cookies(req))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::login::testing::{fixture, id_claims, request, NOW};
    use crate::oidc::random::HostRandom;

    fn old_session() -> Session {
        let mut s = Session::new(
            "https://idp.example".into(),
            "alice".into(),
            Default::default(),
            NOW - 100,
        );
        s.access_token = Some("old".into());
        s.access_expires_at = Some(NOW + 30);
        s.refresh_token = Some("rt-1".into());
        s
    }

    #[test]
    fn due_within_a_minute_of_expiry_with_a_refresh_token() {
        let mut s = old_session();
        assert!(due(&s, NOW));
        s.access_expires_at = Some(NOW + 61);
        assert!(!due(&s, NOW));
        s.access_expires_at = Some(NOW);
        s.refresh_token = None;
        assert!(!due(&s, NOW));
    }

    #[test]
    fn answers_renew_end_or_keep_the_session() {
        let f = fixture(json!([]));
        let login = &f.cfg.oidc[0];
        let d = f.keys.discovery(login.keys).unwrap();
        let r = begin(login, 0, &old_session(), &d).unwrap();
        assert!(r.request.body.contains("grant_type=refresh_token"));
        let run = |status: u32, body: String| {
            finish(
                &f.cfg,
                &f.keys,
                &r,
                status,
                body.as_bytes(),
                &[],
                NOW,
                &mut HostRandom,
            )
        };
        let ok = json!({"access_token": "new", "token_type": "Bearer", "expires_in": 300,
                        "refresh_token": "rt-2"});
        let Renewal::Renewed { set_cookies, .. } = run(200, ok.to_string()) else {
            panic!("not renewed")
        };
        let pairs = cookie_pairs(&set_cookies);
        let req = with_session(
            &request("GET", "/", &[("cookie", "web=stale; a=1")]),
            "web",
            &pairs,
        );
        let cookie = req.header("cookie").unwrap();
        assert!(cookie.starts_with("a=1; web=v1."), "{cookie}");
        let renewed = session::load(&login.provider, &request_cookies(&req), NOW).unwrap();
        assert_eq!(renewed.access_token.as_deref(), Some("new"));
        assert_eq!(renewed.refresh_token.as_deref(), Some("rt-2"));
        assert!(matches!(
            run(400, r#"{"error":"invalid_grant"}"#.into()),
            Renewal::Refused(_)
        ));
        assert!(matches!(run(502, String::new()), Renewal::Unavailable(_)));
        // A new ID token must name the same subject.
        let mut other = id_claims("");
        other.insert("sub".into(), json!("mallory"));
        let id = f.signer.sign(Some("k1"), &other).unwrap();
        let swapped = json!({"access_token": "new", "token_type": "Bearer", "id_token": id});
        assert!(matches!(run(200, swapped.to_string()), Renewal::Refused(_)));
    }

    #[test]
    fn a_new_id_token_is_verified_and_names_the_sessions_issuer() {
        use crate::cli::mint::Signer;
        use crate::crypto::signature::Alg;
        let f = fixture(json!([]));
        let login = &f.cfg.oidc[0];
        let d = f.keys.discovery(login.keys).unwrap();
        let run = |session: &Session, id_token: String| {
            let r = begin(login, 0, session, &d).unwrap();
            let body = json!({"access_token": "new", "token_type": "Bearer",
                              "id_token": id_token});
            finish(
                &f.cfg,
                &f.keys,
                &r,
                200,
                body.to_string().as_bytes(),
                &[],
                NOW,
                &mut HostRandom,
            )
        };
        let good = f.signer.sign(Some("k1"), &id_claims("")).unwrap();
        assert!(matches!(
            run(&old_session(), good.clone()),
            Renewal::Renewed { .. }
        ));
        // Same iss and sub, signed by another key.
        let forged = Signer::generate(Alg::RS256)
            .unwrap()
            .sign(Some("k1"), &id_claims(""))
            .unwrap();
        assert!(matches!(run(&old_session(), forged), Renewal::Refused(_)));
        // A session of another issuer is not renewed by this one's ID token.
        let mut other = old_session();
        other.iss = "https://other.example".into();
        assert!(matches!(run(&other, good), Renewal::Refused(_)));
    }
}
