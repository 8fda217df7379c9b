//! Cookies of the `oidc` section made outside the filter, with the configuration's own keys:
//! a session (the benchmark's session case, tests that need one without logging in) and a
//! login flow (the benchmark's callback case).

use serde_json::{Map, Value};

use crate::config::FilterConfig;
use crate::oidc::cookies::flow_cookie_name;
use crate::oidc::flow::Flow;
use crate::oidc::random::HostRandom;
use crate::oidc::seal::Purpose;
use crate::oidc::session::{self, Session};

fn entry<'a>(
    cfg: &'a FilterConfig,
    name: &str,
) -> Result<&'a crate::oidc::config::OidcProvider, String> {
    cfg.oidc
        .iter()
        .map(|o| &o.provider)
        .find(|p| p.name == name)
        .ok_or_else(|| format!("no oidc entry {name:?}"))
}

/// The tokens and times a made-up session holds.
pub struct SessionSpec {
    pub access_token: Option<String>,
    /// Unix seconds.
    pub access_expires_at: Option<u64>,
    pub refresh_token: Option<String>,
}

/// A `Cookie` header value carrying a session of entry `name` for `claims` (`iss` is the
/// entry's issuer, `sub` taken from the claims).
pub fn session(
    cfg: &FilterConfig,
    name: &str,
    claims: Map<String, Value>,
    spec: SessionSpec,
    now: u64,
) -> Result<String, String> {
    let p = entry(cfg, name)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("the claims need a sub")?
        .to_string();
    let mut s = Session::new(p.issuer.clone(), sub, claims, now);
    s.access_token = spec.access_token;
    s.access_expires_at = spec.access_expires_at;
    s.refresh_token = spec.refresh_token;
    let stored = session::store(p, &s, now, &[], &mut HostRandom)
        .map_err(|e| format!("session not stored: {e:?}"))?;
    let pairs: Vec<String> = stored
        .set_cookies
        .iter()
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect();
    Ok(pairs.join("; "))
}

/// A `Cookie` pair carrying a login flow of entry `name` with these `state` (22 base64url
/// characters) and `nonce`, returning to `/`.
pub fn flow(
    cfg: &FilterConfig,
    name: &str,
    state: &str,
    nonce: &str,
    now: u64,
) -> Result<String, String> {
    let p = entry(cfg, name)?;
    let flow = Flow {
        state: state.to_string(),
        nonce: nonce.to_string(),
        verifier: "v".repeat(43),
        return_to: "/".into(),
        created_at: now,
    };
    let cookie = flow_cookie_name(&p.session.cookie.name, state);
    let json = serde_json::to_vec(&flow).map_err(|e| e.to_string())?;
    let sealed = p
        .session
        .keys
        .seal(Purpose::Flow, &p.name, &cookie, &json, &mut HostRandom)
        .ok_or("no random source")?;
    Ok(format!("{cookie}={sealed}"))
}
