//! The login callback: checked before the code is spent (`begin`), then, with the token
//! endpoint's answer, the ID token verified with the project's verifier and the discovered keys
//! against OIDC Core 3.1.3.7 and the session set (`finish`).

use std::rc::Rc;

use serde_json::Value;

use crate::authn::authenticator::Keys;
use crate::authn::verifier::{self, CheckBudget, VerifyInput};
use crate::config::{FilterConfig, OidcLogin};
use crate::jwt::error::AuthError;
use crate::jwt::token::{self, Jwt};
use crate::login::answer::{login_failed, redirect};
use crate::oidc::discovery::Discovery;
use crate::oidc::flow::{verify_callback, Flow};
use crate::oidc::random::Random;
use crate::oidc::session::{self, project_claims, Session};
use crate::oidc::token::{self as token_endpoint, TokenError, TokenRequest, TokenResponse};
use crate::reply::LocalReply;
use crate::stats::OidcCounter;

/// ID tokens with many claims are larger than API tokens; this bounds the work, not the IdP.
const MAX_ID_TOKEN_BYTES: usize = 64 * 1024;
/// Without `expires_in` or a JWT access token, the access token is refreshed this long after
/// it was issued.
pub const UNKNOWN_LIFETIME_S: u64 = 300;
/// Refresh this long before the access token expires.
pub const REFRESH_AHEAD_S: u64 = 60;

/// A callback that passed its checks: the host posts `request` to the token endpoint.
pub struct Exchange {
    pub oidc: usize,
    pub request: TokenRequest,
    pub flow: Flow,
    /// The `Set-Cookie` that clears this flow's cookie.
    pub clear_flow: String,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("oidc", &self.oidc)
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

pub enum Begin {
    Exchange(Box<Exchange>),
    /// Refused before any IdP call: 401 `Login failed`, the reason for the debug log.
    Refused(String),
    /// Discovery has not succeeded yet.
    NoDiscovery,
}

pub fn begin(
    login: &OidcLogin,
    oidc: usize,
    path_and_query: &str,
    discovery: Option<&Discovery>,
    cookies: &[(&str, &str)],
    now: u64,
) -> Begin {
    let p = &login.provider;
    let verified = match verify_callback(p, path_and_query, cookies, now) {
        Ok(v) => v,
        Err(f) => return Begin::Refused(format!("oidc {}: callback refused: {f:?}", p.name)),
    };
    let Some(d) = discovery else {
        return Begin::NoDiscovery;
    };
    Begin::Exchange(Box::new(Exchange {
        oidc,
        request: token_endpoint::code_request(
            p,
            &d.token_endpoint,
            &verified.code,
            &verified.flow.verifier,
        ),
        flow: verified.flow,
        clear_flow: verified.clear_flow,
    }))
}

/// Why an ID token was refused, for the debug log; `keys_missing` when no discovered key fits
/// it (the IdP may have rotated its keys: worth a refetch and another try).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenError {
    pub why: String,
    pub keys_missing: bool,
}

impl From<String> for IdTokenError {
    fn from(why: String) -> Self {
        Self {
            why,
            keys_missing: false,
        }
    }
}

impl From<&str> for IdTokenError {
    fn from(why: &str) -> Self {
        why.to_string().into()
    }
}

/// An ID token verified for `login` (signature with the discovered keys, `iss` exact, `aud`
/// holding the client, `azp`, `exp`, `iat`, and `nonce` when given), OIDC Core 3.1.3.7.
pub fn check_id_token<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    login: &OidcLogin,
    id_token: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<Rc<Jwt>, IdTokenError> {
    let p = cfg
        .providers
        .get(login.keys)
        .ok_or("no key provider for this oidc entry")?;
    let jwt = verifier::decode(id_token, MAX_ID_TOKEN_BYTES)
        .map_err(|e| format!("ID token: {}", e.message()))?;
    let key_sets = keys.key_sets(cfg, login.keys);
    let input = VerifyInput {
        provider: p,
        audiences: None,
        key_sets: &key_sets,
        now,
    };
    let mut budget = CheckBudget::new(cfg.max_signature_checks_per_request);
    verifier::verify(&input, id_token, &jwt, &mut budget).map_err(|e| IdTokenError {
        why: format!("ID token: {}", e.message()),
        keys_missing: matches!(e, AuthError::JwksKidAlgMismatch | AuthError::JwksFetchFail),
    })?;
    let client = login.provider.client_id.as_str();
    // The verifier compares audiences as jwt_authn does (scheme and slash aside); OIDC wants
    // the client_id itself.
    if !jwt.audiences.iter().any(|a| a == client) {
        return Err("ID token: aud does not hold the client_id".into());
    }
    let azp = jwt.payload.get("azp");
    match azp {
        None if jwt.audiences.len() == 1 => {}
        Some(Value::String(a)) if a == client => {}
        _ => return Err("ID token: azp is not the client_id".into()),
    }
    match jwt.payload.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= now.saturating_add(p.clock_skew_seconds) => {}
        Some(_) => return Err("ID token: iat is in the future".into()),
        None => return Err("ID token: no iat".into()),
    }
    if jwt.sub.as_deref().is_none_or(str::is_empty) {
        return Err("ID token: no sub".into());
    }
    if let Some(n) = nonce {
        if jwt.payload.get("nonce").and_then(Value::as_str) != Some(n) {
            return Err("ID token: nonce is not the flow's".into());
        }
    }
    Ok(Rc::new(jwt))
}

/// When the access token stops being fresh (Unix seconds): `expires_in`, else its own `exp`
/// when it is a JWT, else [`UNKNOWN_LIFETIME_S`] after now, plus the refresh lead.
pub fn access_expiry(t: &TokenResponse, now: u64) -> u64 {
    match t.expires_in {
        Some(e) => now.saturating_add(e),
        None => token::parse(&t.access_token)
            .ok()
            .and_then(|j| j.exp)
            .unwrap_or(now + UNKNOWN_LIFETIME_S + REFRESH_AHEAD_S),
    }
}

/// How a token endpoint failure is answered: unreachable or 5xx is the IdP's fault (502);
/// anything else refuses the login (401).
fn failure_status(e: &TokenError) -> u32 {
    match e {
        TokenError::Unavailable(_) => 502,
        TokenError::Unexpected(s) if *s == 0 || *s >= 500 => 502,
        _ => 401,
    }
}

/// The end of a login, as one reply.
pub struct Finished {
    pub reply: LocalReply,
    pub event: OidcCounter,
    /// For the debug log (or a warning when the session had to be trimmed).
    pub reason: Option<String>,
    pub warning: Option<String>,
    /// Refused because no discovered key fits the ID token: the keys may be worth a refetch.
    pub keys_missing: bool,
}

/// The token endpoint answered the code exchange (`status` 0: no answer at all).
#[allow(clippy::too_many_arguments)]
pub fn finish<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    ex: &Exchange,
    status: u32,
    body: &[u8],
    cookies: &[(&str, &str)],
    now: u64,
    rng: &mut dyn Random,
) -> Finished {
    let fail = |status: u32, why: String| Finished {
        reply: login_failed(status),
        event: OidcCounter::LoginFailed,
        reason: Some(why),
        warning: None,
        keys_missing: false,
    };
    let Some(login) = cfg.oidc.get(ex.oidc) else {
        return fail(401, "unknown oidc entry".into());
    };
    let name = &login.provider.name;
    let answer = match token_endpoint::parse_response(status, body) {
        Ok(a) => a,
        Err(e) => {
            return fail(
                failure_status(&e),
                format!("oidc {name}: code exchange failed: {e:?}"),
            )
        }
    };
    let Some(id_token) = answer.id_token.as_deref() else {
        return fail(
            401,
            format!("oidc {name}: the token answer has no id_token"),
        );
    };
    let jwt = match check_id_token(cfg, keys, login, id_token, Some(&ex.flow.nonce), now) {
        Ok(j) => j,
        Err(e) => {
            let mut f = fail(401, format!("oidc {name}: {}", e.why));
            f.keys_missing = e.keys_missing;
            return f;
        }
    };
    let mut session = Session::new(
        jwt.iss.clone().unwrap_or_default(),
        jwt.sub.clone().unwrap_or_default(),
        project_claims(&jwt.payload, &login.provider.needed_claims()),
        now,
    );
    session.access_expires_at = Some(access_expiry(&answer, now));
    session.access_token = Some(answer.access_token);
    session.refresh_token = answer.refresh_token;
    session.id_token = Some(id_token.to_string());
    let stored = match session::store(&login.provider, &session, now, cookies, rng) {
        Ok(s) => s,
        Err(e) => return fail(401, format!("oidc {name}: session not stored: {e:?}")),
    };
    let warning = stored.warning(name);
    let mut set = stored.set_cookies;
    set.push(ex.clear_flow.clone());
    Finished {
        reply: redirect(ex.flow.return_to.clone(), set, "jwt_authz_login_completed"),
        event: OidcCounter::LoginCompleted,
        reason: None,
        warning,
        keys_missing: false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::mint::Signer;
    use crate::crypto::signature::Alg;
    use crate::login::testing::{fixture, id_claims, CLIENT, NOW};
    use crate::oidc::random::HostRandom;

    fn check(f: &crate::login::testing::Fixture, token: &str) -> Result<Rc<Jwt>, String> {
        check_id_token(&f.cfg, &f.keys, &f.cfg.oidc[0], token, Some("n1"), NOW).map_err(|e| e.why)
    }

    #[test]
    fn id_token_checks_of_oidc_core_3_1_3_7() {
        let f = fixture(json!([]));
        let sign = |c: &serde_json::Map<String, Value>| f.signer.sign(Some("k1"), c).unwrap();
        assert!(check(&f, &sign(&id_claims("n1"))).is_ok());
        let mut cases: Vec<(&str, serde_json::Map<String, Value>)> = Vec::new();
        let mut c = id_claims("n2");
        cases.push(("nonce of another flow", c.clone()));
        c = id_claims("n1");
        c.remove("nonce");
        cases.push(("no nonce", c));
        c = id_claims("n1");
        c.insert("aud".into(), json!("someone-else"));
        cases.push(("aud without the client", c));
        c = id_claims("n1");
        c.insert("aud".into(), json!([CLIENT, "other"]));
        cases.push(("several audiences, no azp", c));
        c = id_claims("n1");
        c.insert("azp".into(), json!("other"));
        cases.push(("azp of another client", c));
        c = id_claims("n1");
        c.insert("iat".into(), json!(NOW + 3600));
        cases.push(("iat in the future", c));
        c = id_claims("n1");
        c.remove("iat");
        cases.push(("no iat", c));
        c = id_claims("n1");
        c.insert("exp".into(), json!(NOW - 3600));
        cases.push(("expired", c));
        c = id_claims("n1");
        c.remove("exp");
        cases.push(("no exp", c));
        c = id_claims("n1");
        c.insert("iss".into(), json!("https://evil.example"));
        cases.push(("another issuer", c));
        c = id_claims("n1");
        c.insert("sub".into(), json!(""));
        cases.push(("empty sub", c));
        for (what, claims) in cases {
            assert!(check(&f, &sign(&claims)).is_err(), "{what} passed");
        }
        let mut several = id_claims("n1");
        several.insert("aud".into(), json!([CLIENT, "other"]));
        several.insert("azp".into(), json!(CLIENT));
        assert!(check(&f, &sign(&several)).is_ok());
        let other = Signer::generate(Alg::RS256).unwrap();
        let forged = other.sign(Some("k1"), &id_claims("n1")).unwrap();
        assert!(
            check(&f, &forged).is_err(),
            "a token signed by another key passed"
        );
    }

    #[test]
    fn aud_must_hold_the_client_id_itself() {
        let f = fixture(json!([]));
        // The verifier takes these for the client (jwt_authn drops the scheme and a trailing
        // slash); OIDC Core 3.1.3.7 wants the client_id exactly.
        for aud in [
            json!("https://gateway"),
            json!("gateway/"),
            json!(["http://gateway/"]),
        ] {
            let mut c = id_claims("n1");
            c.insert("aud".into(), aud.clone());
            let token = f.signer.sign(Some("k1"), &c).unwrap();
            assert!(check(&f, &token).is_err(), "aud {aud} passed");
        }
    }

    #[test]
    fn begin_exchanges_the_code_with_the_flows_pkce_verifier() {
        use crate::oidc::flow::start_login;
        let f = fixture(json!([]));
        let login = &f.cfg.oidc[0];
        let d = f.keys.discovery(login.keys).unwrap();
        let start = start_login(
            &login.provider,
            &d.authorization_endpoint,
            "/orders",
            &[],
            NOW,
            &mut HostRandom,
        )
        .unwrap();
        let line = start.set_cookies.last().unwrap();
        let (name, value) = line.split(';').next().unwrap().split_once('=').unwrap();
        let path = format!("/oauth2/callback?code=c0de&state={}", start.flow.state);
        let Begin::Exchange(ex) = begin(login, 0, &path, Some(&d), &[(name, value)], NOW + 5)
        else {
            panic!("callback refused")
        };
        let fields: Vec<(String, String)> =
            crate::request::extractor::query_pairs(&format!("?{}", ex.request.body))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(field("code"), Some("c0de"));
        assert_eq!(field("code_verifier"), Some(start.flow.verifier.as_str()));
        assert_eq!(ex.flow, start.flow);
        assert!(matches!(
            begin(login, 0, &path, Some(&d), &[], NOW + 5),
            Begin::Refused(_)
        ));
        assert!(matches!(
            begin(login, 0, &path, None, &[(name, value)], NOW + 5),
            Begin::NoDiscovery
        ));
    }

    fn exchange(f: &crate::login::testing::Fixture) -> Exchange {
        let flow = Flow {
            state: "A".repeat(22),
            nonce: "n1".into(),
            verifier: "v".repeat(43),
            return_to: "/orders?page=2".into(),
            created_at: NOW - 10,
        };
        Exchange {
            oidc: 0,
            request: token_endpoint::code_request(
                &f.cfg.oidc[0].provider,
                &crate::oidc::url::parse_absolute("https://idp.example/token").unwrap(),
                "code",
                &flow.verifier,
            ),
            flow,
            clear_flow: "web.f-x=; Max-Age=0".into(),
        }
    }

    #[test]
    fn a_good_answer_sets_the_session_and_returns_to_the_path() {
        let f = fixture(json!([]));
        let id = f.signer.sign(Some("k1"), &id_claims("n1")).unwrap();
        let body = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                          "refresh_token": "rt", "id_token": id})
        .to_string();
        let done = finish(
            &f.cfg,
            &f.keys,
            &exchange(&f),
            200,
            body.as_bytes(),
            &[],
            NOW,
            &mut HostRandom,
        );
        assert_eq!(done.event, OidcCounter::LoginCompleted, "{:?}", done.reason);
        assert_eq!(done.reply.status, 302);
        let header = |n: &str| {
            done.reply
                .headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(header("location"), vec!["/orders?page=2".to_string()]);
        let cookies = header("set-cookie");
        assert!(
            cookies.iter().any(|c| c.starts_with("web=v1.")),
            "{cookies:?}"
        );
        assert!(
            cookies.iter().any(|c| c.starts_with("web.f-x=")),
            "flow not cleared"
        );
    }

    #[test]
    fn token_endpoint_failures_are_401_or_502() {
        let f = fixture(json!([]));
        let ex = exchange(&f);
        let run = |status: u32, body: &str| {
            finish(
                &f.cfg,
                &f.keys,
                &ex,
                status,
                body.as_bytes(),
                &[],
                NOW,
                &mut HostRandom,
            )
        };
        let refused = run(400, r#"{"error":"invalid_grant"}"#);
        assert_eq!(
            (refused.reply.status, refused.reply.body.as_str()),
            (401, "Login failed")
        );
        assert_eq!(run(503, "busy").reply.status, 502);
        assert_eq!(run(0, "").reply.status, 502, "no answer at all");
        let no_id = run(200, r#"{"access_token":"at","token_type":"Bearer"}"#);
        assert_eq!(no_id.reply.status, 401);
        assert_eq!(no_id.event, OidcCounter::LoginFailed);
    }
}
