//! One login: its PKCE verifier and S256 challenge, `state` and `nonce`, the path to return
//! to; the flow cookie that remembers them (one per flow, so that several tabs log in at once,
//! at most [`MAX_FLOWS`], the oldest going first); the authorization URL; the callback's
//! checks before the code is spent; and where logout sends the browser.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

use crate::config::schema::is_token;
use crate::oidc::config::OidcProvider;
use crate::oidc::cookies::{classify, clear_cookie, flow_cookie_name, set_cookie, Own};
use crate::oidc::random::{token, Random};
use crate::oidc::return_url;
use crate::oidc::seal::Purpose;
use crate::oidc::url::form;
use crate::request::extractor::{percent_decode, query_pairs};

/// A flow cookie lives this long (`Max-Age`), and a callback after it fails.
pub const FLOW_MAX_AGE_S: u64 = 600;
/// Flows one browser keeps at once; starting another clears the oldest.
pub const MAX_FLOWS: usize = 4;
/// `state` is 16 random bytes, base64url: 22 characters.
const STATE_LEN: usize = 22;
/// Callback parameters longer than this are refused unread.
const MAX_PARAM_LEN: usize = 4096;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636): 32 random bytes, 43 characters.
    #[serde(rename = "v")]
    pub verifier: String,
    /// Normalized: a same-host path and query.
    #[serde(rename = "r")]
    pub return_to: String,
    /// Unix seconds.
    #[serde(rename = "t")]
    pub created_at: u64,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("state", &self.state)
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Flow {
    /// A new flow returning to `path_and_query` (normalized). None when the random source
    /// fails.
    pub fn new(rng: &mut dyn Random, path_and_query: &str, now: u64) -> Option<Self> {
        Some(Self {
            state: token::<16>(rng)?,
            nonce: token::<16>(rng)?,
            verifier: token::<32>(rng)?,
            return_to: return_url::normalize(path_and_query).to_string(),
            created_at: now,
        })
    }

    /// `BASE64URL(SHA256(code_verifier))` (RFC 7636 §4.2, S256).
    pub fn code_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// The answer to a navigation that needs a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// The 302's `Location`.
    pub location: String,
    /// The new flow cookie, and clears for the flows it replaces.
    pub set_cookies: Vec<String>,
    pub flow: Flow,
}

/// Starts a login for a navigation to `path_and_query`: a new flow, its sealed cookie, the
/// clearing of flows past [`MAX_FLOWS`] (and of any that no longer opens or has expired), and
/// the authorization URL at `authorization_endpoint` (from discovery). None when the random
/// source fails.
pub fn start_login(
    provider: &OidcProvider,
    authorization_endpoint: &str,
    path_and_query: &str,
    cookies: &[(&str, &str)],
    now: u64,
    rng: &mut dyn Random,
) -> Option<LoginStart> {
    let attrs = &provider.session.cookie;
    let flow = Flow::new(rng, path_and_query, now)?;
    let name = flow_cookie_name(&attrs.name, &flow.state);
    let json = serde_json::to_vec(&flow).ok()?;
    let sealed = provider
        .session
        .keys
        .seal(Purpose::Flow, &provider.name, &name, &json, rng)?;
    // Live flows, newest first; those that do not open or have expired sort last (as oldest).
    let mut existing: Vec<(&str, Option<u64>)> = Vec::new();
    for (n, v) in cookies {
        // Only names that are tokens are echoed into a Set-Cookie.
        let is_flow = matches!(classify(&attrs.name, n), Some(Own::Flow(_))) && is_token(n);
        if !is_flow || existing.iter().any(|(e, _)| e == n) {
            continue;
        }
        let created = open_flow(provider, n, v)
            .map(|f| f.created_at)
            .filter(|&t| is_live(t, now));
        existing.push((n, created));
    }
    existing.sort_by_key(|e| std::cmp::Reverse(e.1));
    let mut set_cookies: Vec<String> = existing
        .iter()
        .enumerate()
        .filter(|(i, (_, created))| created.is_none() || *i + 1 >= MAX_FLOWS)
        .map(|(_, (n, _))| clear_cookie(attrs, n))
        .collect();
    set_cookies.push(set_cookie(attrs, &name, &sealed, FLOW_MAX_AGE_S));
    Some(LoginStart {
        location: authorization_url(provider, authorization_endpoint, &flow),
        set_cookies,
        flow,
    })
}

/// How far in the future a flow's creation may lie: another worker's or replica's clock (each
/// worker reads it every 0.1 s; replicas drift) may be a little behind the one that made it.
const FLOW_CLOCK_SKEW_S: u64 = 60;

fn is_live(created_at: u64, now: u64) -> bool {
    created_at <= now.saturating_add(FLOW_CLOCK_SKEW_S)
        && now.saturating_sub(created_at) < FLOW_MAX_AGE_S
}

fn open_flow(provider: &OidcProvider, name: &str, value: &str) -> Option<Flow> {
    let plain = provider
        .session
        .keys
        .open(Purpose::Flow, &provider.name, name, value)?;
    serde_json::from_slice(&plain).ok()
}

/// The authorization request (OIDC Core 3.1.2.1) at `endpoint`, whose own query is kept.
pub fn authorization_url(provider: &OidcProvider, endpoint: &str, flow: &Flow) -> String {
    let scope = provider.scope();
    let challenge = flow.code_challenge();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", provider.client_id.as_str()),
        ("redirect_uri", provider.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", flow.state.as_str()),
        ("nonce", flow.nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend(
        provider
            .extra_auth_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    with_query(endpoint, params)
}

/// `endpoint` with `params` form-encoded after its own query, if it has one.
fn with_query<'a>(endpoint: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let sep = match endpoint.rfind('?') {
        None => "?",
        Some(i) if i + 1 == endpoint.len() || endpoint.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{endpoint}{sep}{}", form(params))
}

/// The callback's query, RFC 6749 §4.1.2: a code and its state, or an error.
#[derive(Clone, PartialEq, Eq)]
pub enum CallbackParams {
    Code {
        code: String,
        state: String,
        /// RFC 9207's `iss`, when the IdP sends it.
        iss: Option<String>,
    },
    Error {
        /// Limited to RFC 6749's error characters and 128 of them: safe to log.
        error: String,
        state: Option<String>,
    },
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code { state, iss, .. } => f
                .debug_struct("Code")
                .field("state", state)
                .field("iss", iss)
                .finish_non_exhaustive(),
            Self::Error { error, state } => f
                .debug_struct("Error")
                .field("error", error)
                .field("state", state)
                .finish(),
        }
    }
}

/// Why a callback is refused (401 `Login failed`; the reason goes to the debug log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackFailure {
    /// A parameter missing, repeated or too long.
    Malformed(&'static str),
    /// The IdP answered `error=` (access_denied, login_required, ...).
    IdpError(String),
    /// No flow cookie for this `state` opens: forged, replayed, or from another browser.
    UnknownState,
    /// The flow is older than [`FLOW_MAX_AGE_S`].
    FlowExpired,
    /// `iss` is not the configured issuer (a mix-up attack, RFC 9207).
    IssuerMismatch,
}

/// Parses a callback's `path?query`. Parameters sent twice are refused (RFC 6749 §3.1).
pub fn parse_callback(path_and_query: &str) -> Result<CallbackParams, CallbackFailure> {
    let (mut code, mut state, mut iss, mut error) = (None, None, None, None);
    for (k, v) in query_pairs(path_and_query) {
        let slot = match percent_decode(k).as_str() {
            "code" => &mut code,
            "state" => &mut state,
            "iss" => &mut iss,
            "error" => &mut error,
            _ => continue,
        };
        if v.len() > MAX_PARAM_LEN {
            return Err(CallbackFailure::Malformed("a parameter is too long"));
        }
        if slot.replace(percent_decode(v)).is_some() {
            return Err(CallbackFailure::Malformed("a parameter is repeated"));
        }
    }
    if let Some(e) = error {
        let error: String = e
            .chars()
            .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
            .take(128)
            .collect();
        return Ok(CallbackParams::Error { error, state });
    }
    match (code, state) {
        (Some(code), Some(state)) if !code.is_empty() && !state.is_empty() => {
            Ok(CallbackParams::Code { code, state, iss })
        }
        _ => Err(CallbackFailure::Malformed("code or state is missing")),
    }
}

/// A callback that passed every check made before the code is spent.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    pub code: String,
    pub flow: Flow,
    /// The `Set-Cookie` that clears this flow's cookie.
    pub clear_flow: String,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

/// Checks a callback before the code is exchanged: no `error`, a `state` whose flow cookie
/// opens and is younger than [`FLOW_MAX_AGE_S`], and `iss`, when sent, equal to the issuer.
pub fn verify_callback(
    provider: &OidcProvider,
    path_and_query: &str,
    cookies: &[(&str, &str)],
    now: u64,
) -> Result<Verified, CallbackFailure> {
    let (code, state, iss) = match parse_callback(path_and_query)? {
        CallbackParams::Error { error, .. } => return Err(CallbackFailure::IdpError(error)),
        CallbackParams::Code { code, state, iss } => (code, state, iss),
    };
    // Only the filter's own state shape may become part of a cookie name.
    let well_formed = state.len() == STATE_LEN
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(CallbackFailure::UnknownState);
    }
    let attrs = &provider.session.cookie;
    let name = flow_cookie_name(&attrs.name, &state);
    let flow = cookies
        .iter()
        .filter(|(n, _)| *n == name)
        .find_map(|(_, v)| open_flow(provider, &name, v))
        .filter(|f| f.state == state)
        .ok_or(CallbackFailure::UnknownState)?;
    if !is_live(flow.created_at, now) {
        return Err(CallbackFailure::FlowExpired);
    }
    if iss.is_some_and(|i| i != provider.issuer) {
        return Err(CallbackFailure::IssuerMismatch);
    }
    Ok(Verified {
        code,
        flow,
        clear_flow: clear_cookie(attrs, &name),
    })
}

/// Where logout sends the browser: the IdP's `end_session_endpoint` (RP-initiated logout) with
/// `id_token_hint`, `client_id` and `post_logout_redirect_uri` when discovery lists one and a
/// session was present, else `post_logout_redirect_uri` itself.
pub fn logout_location(
    provider: &OidcProvider,
    end_session_endpoint: Option<&str>,
    session_present: bool,
    id_token_hint: Option<&str>,
) -> String {
    let target = provider
        .logout
        .as_ref()
        .map_or("/", |l| l.post_logout_redirect_uri.as_str());
    let Some(endpoint) = end_session_endpoint.filter(|_| session_present) else {
        return target.to_string();
    };
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(3);
    if let Some(hint) = id_token_hint {
        params.push(("id_token_hint", hint));
    }
    params.push(("client_id", &provider.client_id));
    // The IdP needs an absolute URL; a relative target is taken on the redirect_uri's origin.
    let absolute;
    let post_logout = if target.starts_with('/') {
        absolute = format!("{}{target}", provider.redirect.origin());
        absolute.as_str()
    } else {
        target
    };
    params.push(("post_logout_redirect_uri", post_logout));
    with_query(endpoint, params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::oidc::config::testing::{compile_json, example, provider};
    use crate::oidc::random::testing::{Broken, Counter};
    use crate::oidc::random::HostRandom;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;
    const AUTHZ: &str = "https://idp.example.com/realms/acme/protocol/openid-connect/auth";

    fn params(url: &str) -> Vec<(String, String)> {
        query_pairs(url)
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect()
    }

    fn cookie_of(line: &str) -> (String, String) {
        let (n, v) = line.split(';').next().unwrap().split_once('=').unwrap();
        (n.to_string(), v.to_string())
    }

    fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    /// A login started at `now`, and the cookie the browser keeps from it.
    fn login(now: u64) -> (LoginStart, (String, String)) {
        let start = start_login(&provider(), AUTHZ, "/app?x=1", &[], now, &mut HostRandom).unwrap();
        let cookie = cookie_of(start.set_cookies.last().unwrap());
        (start, cookie)
    }

    fn callback(state: &str) -> String {
        format!("/oauth2/callback?code=c0de&state={state}&iss=https%3A%2F%2Fidp.example.com%2Frealms%2Facme")
    }

    #[test]
    fn flows_are_random_and_pkce_is_s256() {
        let a = Flow::new(&mut HostRandom, "//evil.example", NOW).unwrap();
        let b = Flow::new(&mut HostRandom, "/ok?q=1", NOW).unwrap();
        assert_eq!(
            (a.state.len(), a.nonce.len(), a.verifier.len()),
            (22, 22, 43)
        );
        assert_ne!(a.state, b.state);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.return_to, "/");
        assert_eq!(b.return_to, "/ok?q=1");
        assert!(Flow::new(&mut Broken, "/", NOW).is_none());
        // RFC 7636 appendix B.
        let rfc = Flow {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..a.clone()
        };
        assert_eq!(
            rfc.code_challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let shown = format!("{a:?}");
        assert!(
            !shown.contains(&a.verifier) && !shown.contains(&a.nonce),
            "{shown}"
        );
    }

    #[test]
    fn the_authorization_url_carries_every_parameter_encoded() {
        let p = provider();
        let flow = Flow::new(&mut Counter(0), "/", NOW).unwrap();
        let url = authorization_url(&p, AUTHZ, &flow);
        assert!(url.starts_with(&format!("{AUTHZ}?response_type=code&client_id=gateway&redirect_uri=https%3A%2F%2Fapp.example.com%2Foauth2%2Fcallback&scope=openid+email+offline_access&state=")), "{url}");
        let got = params(&url);
        let want: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "gateway"),
            ("redirect_uri", "https://app.example.com/oauth2/callback"),
            ("scope", "openid email offline_access"),
            ("state", flow.state.as_str()),
            ("nonce", flow.nonce.as_str()),
            ("code_challenge", flow.code_challenge().as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        // The endpoint's own query is kept; odd values are encoded.
        let mut j = example();
        j["extra_auth_params"] = json!({"login_hint": "a b&c=d@x"});
        let p = compile_json(j).unwrap();
        let url = authorization_url(&p, "https://idp/auth?tenant=t", &flow);
        assert!(
            url.starts_with("https://idp/auth?tenant=t&response_type=code&"),
            "{url}"
        );
        assert!(url.ends_with("&login_hint=a+b%26c%3Dd%40x"), "{url}");
        assert!(authorization_url(&p, "https://idp/auth?", &flow)
            .starts_with("https://idp/auth?response_type="));
    }

    #[test]
    fn a_login_round_trips_through_its_callback() {
        let p = provider();
        let (start, cookie) = login(NOW);
        assert!(start.location.starts_with(AUTHZ));
        assert_eq!(cookie.0, format!("__Host-web.f-{}", start.flow.state));
        let line = start.set_cookies.last().unwrap();
        assert!(
            line.contains("Max-Age=600; HttpOnly; Secure; SameSite=Lax"),
            "{line}"
        );
        assert!(!line.contains(&start.flow.verifier), "sealed");
        let cookies = [("a", "1"), (cookie.0.as_str(), cookie.1.as_str())];
        let v = verify_callback(&p, &callback(&start.flow.state), &cookies, NOW + 30).unwrap();
        assert_eq!(v.code, "c0de");
        assert_eq!(v.flow, start.flow);
        assert_eq!(v.flow.return_to, "/app?x=1");
        assert_eq!(
            v.clear_flow,
            format!(
                "{}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
                cookie.0
            )
        );
        assert!(!format!("{v:?}").contains("c0de"));
        // Without iss (IdPs before RFC 9207) it passes too.
        let no_iss = format!("/oauth2/callback?state={}&code=x", start.flow.state);
        assert!(verify_callback(&p, &no_iss, &cookies, NOW).is_ok());
    }

    #[test]
    fn callbacks_that_must_fail() {
        let p = provider();
        let (start, cookie) = login(NOW);
        let (other, other_cookie) = login(NOW);
        let state = start.flow.state.clone();
        let cookies = [(cookie.0.as_str(), cookie.1.as_str())];
        let fail =
            |q: &str, c: &[(&str, &str)], now: u64| verify_callback(&p, q, c, now).unwrap_err();
        use CallbackFailure::*;
        // No flow cookie: forged state, or a replay after the flow was cleared.
        assert_eq!(fail(&callback(&state), &[], NOW), UnknownState);
        assert_eq!(
            fail(&callback(&other.flow.state), &cookies, NOW),
            UnknownState
        );
        // One flow's sealed value under another flow's name does not open.
        let swapped = [(cookie.0.as_str(), other_cookie.1.as_str())];
        assert_eq!(fail(&callback(&state), &swapped, NOW), UnknownState);
        for bad in [
            "short",
            "../../x",
            &format!("{state}x"),
            "a;b=c-aaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(fail(&callback(bad), &cookies, NOW), UnknownState, "{bad}");
        }
        assert_eq!(
            fail(&callback(&state), &cookies, NOW + FLOW_MAX_AGE_S),
            FlowExpired
        );
        // Made on a clock a little ahead (another worker, a replica): still live; far ahead: not.
        assert!(verify_callback(&p, &callback(&state), &cookies, NOW - 59).is_ok());
        assert_eq!(
            fail(&callback(&state), &cookies, NOW - FLOW_CLOCK_SKEW_S - 1),
            FlowExpired
        );
        let wrong_iss = format!("/cb?code=c&state={state}&iss=https%3A%2F%2Fevil.example");
        assert_eq!(fail(&wrong_iss, &cookies, NOW), IssuerMismatch);
        let denied = format!("/cb?error=access_denied&error_description=no&state={state}");
        assert_eq!(
            fail(&denied, &cookies, NOW),
            IdpError("access_denied".into())
        );
        let twice = format!("/cb?code=a&code=b&state={state}");
        assert_eq!(
            fail(&twice, &cookies, NOW),
            Malformed("a parameter is repeated")
        );
        assert_eq!(
            fail("/cb?state=x", &cookies, NOW),
            Malformed("code or state is missing")
        );
        assert_eq!(
            fail("/cb?code=&state=x", &cookies, NOW),
            Malformed("code or state is missing")
        );
        assert_eq!(
            fail("/cb", &cookies, NOW),
            Malformed("code or state is missing")
        );
        let long = format!("/cb?code={}&state={state}", "c".repeat(MAX_PARAM_LEN + 1));
        assert_eq!(
            fail(&long, &cookies, NOW),
            Malformed("a parameter is too long")
        );
    }

    #[test]
    fn a_flow_cookie_opens_only_for_its_own_well_formed_state() {
        let p = provider();
        // A sealed flow under the cookie name of one state, holding another state.
        let sealed_under = |state: &str, inside: &str| {
            let name = flow_cookie_name(&p.session.cookie.name, state);
            let flow = Flow {
                state: inside.into(),
                ..Flow::new(&mut HostRandom, "/", NOW).unwrap()
            };
            let json = serde_json::to_vec(&flow).unwrap();
            let value = p
                .session
                .keys
                .seal(Purpose::Flow, &p.name, &name, &json, &mut HostRandom)
                .unwrap();
            (name, value)
        };
        let (s1, s2) = ("B".repeat(STATE_LEN), "C".repeat(STATE_LEN));
        let (n, v) = sealed_under(&s1, &s1);
        assert!(verify_callback(&p, &callback(&s1), &[(&n, &v)], NOW).is_ok());
        let (n, v) = sealed_under(&s1, &s2);
        for state in [&s1, &s2] {
            assert_eq!(
                verify_callback(&p, &callback(state), &[(&n, &v)], NOW),
                Err(CallbackFailure::UnknownState),
                "{state}"
            );
        }
        // Only the filter's state shape names a cookie, even one that would open.
        let (n, v) = sealed_under("short", "short");
        assert_eq!(
            verify_callback(&p, &callback("short"), &[(&n, &v)], NOW),
            Err(CallbackFailure::UnknownState)
        );
    }

    #[test]
    fn idp_errors_are_made_safe_to_log() {
        let got = parse_callback("/cb?error=bad%0Aline%22%5C%00x&state=s").unwrap();
        assert_eq!(
            got,
            CallbackParams::Error {
                error: "badlinex".into(),
                state: Some("s".into())
            }
        );
        let long = format!("/cb?error={}", "e".repeat(500));
        let CallbackParams::Error { error, .. } = parse_callback(&long).unwrap() else {
            panic!()
        };
        assert_eq!(error.len(), 128);
    }

    #[test]
    fn at_most_four_flows_the_oldest_going_first() {
        let p = provider();
        let mut jar: Vec<(String, String)> = Vec::new();
        let mut states = Vec::new();
        for i in 0..6u64 {
            let start =
                start_login(&p, AUTHZ, "/", &pairs(&jar), NOW + i, &mut HostRandom).unwrap();
            for line in &start.set_cookies {
                let (n, v) = cookie_of(line);
                jar.retain(|(m, _)| *m != n);
                if !line.contains("Max-Age=0") {
                    jar.push((n, v));
                }
            }
            states.push(start.flow.state);
            assert!(jar.len() <= MAX_FLOWS, "{}", jar.len());
        }
        let kept: Vec<String> = jar
            .iter()
            .map(|(n, _)| n.rsplit("f-").next().unwrap().to_string())
            .collect();
        assert_eq!(kept, states[2..].to_vec());
        // Each kept flow still completes: tabs do not disturb each other.
        for s in &states[2..] {
            assert!(verify_callback(&p, &callback(s), &pairs(&jar), NOW + 10).is_ok());
        }
        // Flows that do not open or have expired go first, whatever their number.
        let (old, old_cookie) = login(NOW - FLOW_MAX_AGE_S);
        let junk = ("__Host-web.f-junk".to_string(), "v1.xx".to_string());
        let jar = vec![old_cookie.clone(), junk.clone(), jar[0].clone()];
        let start = start_login(&p, AUTHZ, "/", &pairs(&jar), NOW + 10, &mut HostRandom).unwrap();
        let cleared: Vec<String> = start
            .set_cookies
            .iter()
            .filter(|l| l.contains("Max-Age=0"))
            .map(|l| cookie_of(l).0)
            .collect();
        assert_eq!(cleared.len(), 2);
        assert!(
            cleared.contains(&old_cookie.0) && cleared.contains(&junk.0),
            "{cleared:?} {}",
            old.flow.state
        );
    }

    #[test]
    fn logout_goes_to_the_idp_only_with_a_session() {
        let p = provider();
        let end = "https://idp.example.com/realms/acme/logout";
        let url = logout_location(&p, Some(end), true, Some("h.p.s"));
        assert_eq!(
            url,
            format!("{end}?id_token_hint=h.p.s&client_id=gateway&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F")
        );
        assert_eq!(
            logout_location(&p, Some(end), false, None),
            "https://app.example.com/"
        );
        assert_eq!(
            logout_location(&p, None, true, Some("t")),
            "https://app.example.com/"
        );
        let mut j = example();
        j["logout"] = json!({"path": "/out"});
        let p = compile_json(j).unwrap();
        let url = logout_location(&p, Some("https://idp/end?x=1"), true, None);
        assert_eq!(url, "https://idp/end?x=1&client_id=gateway&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F");
        assert_eq!(logout_location(&p, None, true, None), "/");
    }
}
