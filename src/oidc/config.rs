//! The `oidc` section compiled: one [`OidcProvider`] per entry, with every default of the
//! contract, secrets read from the VM's environment, and each refusal naming its JSON path
//! (`oidc.web.session.keys[0]: ...`). Secrets never reach `Debug` output or an error text.

use std::fmt;

use crate::config::schema::{
    claim_to_headers, is_token, ClaimToHeader, ConfigError, RawOidc, RawSecret,
};
use crate::oidc::cookies::{check_attrs, CookieAttrs, SameSite};
use crate::oidc::return_url;
use crate::oidc::seal::{KeyRing, MIN_SECRET_LEN};
use crate::oidc::url::{parse_absolute, HttpUrl};

pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_ABSOLUTE_LIFETIME_S: u64 = 86_400;
pub const DEFAULT_POST_LOGOUT_REDIRECT: &str = "/";
const MAX_COOKIE_NAME_LEN: usize = 64;
/// Parameters the filter writes itself: `extra_auth_params` may not replace them.
const RESERVED_AUTH_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// A secret from the configuration: shown as `Secret(..)`, read only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic`, id and secret form-encoded first.
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
}

#[derive(Debug)]
pub struct SessionConfig {
    /// Name (`cookie_name`, default `__Host-<provider>`), `SameSite` and `Secure`.
    pub cookie: CookieAttrs,
    pub keys: KeyRing,
    pub absolute_lifetime_s: u64,
    pub idle_timeout_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    pub path: String,
    /// A relative reference (`/…`) or an absolute `http(s)` URL.
    pub post_logout_redirect_uri: String,
}

#[derive(Debug)]
pub struct OidcProvider {
    pub name: String,
    pub issuer: String,
    /// `<issuer>/.well-known/openid-configuration`, fetched through `cluster`.
    pub discovery: HttpUrl,
    pub cluster: String,
    pub timeout_ms: u64,
    pub client_id: String,
    /// None: a public client (PKCE only).
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    /// Exactly as configured: sent to the IdP as is, never rebuilt from request headers.
    pub redirect_uri: String,
    /// `redirect_uri` split: its path is the callback path, its origin the site's own.
    pub redirect: HttpUrl,
    /// `openid` first, each scope once.
    pub scopes: Vec<String>,
    pub extra_auth_params: Vec<(String, String)>,
    pub session: SessionConfig,
    pub logout: Option<Logout>,
    pub forward_access_token: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
}

impl OidcProvider {
    /// The path of `redirect_uri`: the callback, answered by the filter, never forwarded.
    pub fn callback_path(&self) -> &str {
        self.redirect.path()
    }

    /// The `scope` parameter.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    /// Top-level claims the session must keep for this configuration: those `claim_to_headers`
    /// reads, and `aud` (policies see `request.auth.audiences`). Policies add theirs.
    pub fn needed_claims(&self) -> Vec<&str> {
        let mut out = vec!["aud"];
        for c in &self.claim_to_headers {
            if let Some(first) = c.path.first() {
                if !out.contains(&first.as_str()) {
                    out.push(first);
                }
            }
        }
        out
    }
}

/// Compiles the entry `name` of the section at `path_prefix` (`"oidc"`), reading `{"env": …}`
/// secrets through `env` (in Envoy, the VM's `environment_variables`). Configuration-time code,
/// kept out of `config::compile` for V8's compile memory (see there).
#[inline(never)]
pub fn compile(
    path_prefix: &str,
    name: &str,
    raw: RawOidc,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<OidcProvider, ConfigError> {
    let base = format!("{path_prefix}.{name}");
    let at = |field: &str| format!("{base}.{field}");
    let refuse = |field: &str, why: String| Err(ConfigError::at(at(field), why));

    if name.is_empty() {
        return Err(ConfigError::at(base, "the name must not be empty"));
    }
    let issuer_url = parse_absolute(&raw.issuer)
        .map_err(|e| ConfigError::at(at("issuer"), format!("{:?} {e}", raw.issuer)))?;
    if issuer_url.path_and_query.contains('?') {
        return refuse("issuer", format!("{:?} has a query", raw.issuer));
    }
    // OpenID Connect Discovery §4: a terminating `/` goes before the well-known suffix.
    let discovery = parse_absolute(&format!(
        "{}/.well-known/openid-configuration",
        raw.issuer.trim_end_matches('/')
    ))
    .map_err(|e| ConfigError::at(at("issuer"), e))?;
    if raw.cluster.is_empty() {
        return refuse("cluster", "must not be empty".into());
    }
    let timeout_ms = raw.timeout.map_or(DEFAULT_TIMEOUT_MS, |m| m.0);
    if timeout_ms == 0 {
        return refuse("timeout", "must be more than 0s".into());
    }
    if raw.client_id.is_empty() {
        return refuse("client_id", "must not be empty".into());
    }
    let client_secret = match raw.client_secret {
        None => None,
        Some(s) => Some(read_secret(&at("client_secret"), s, env)?),
    };
    let client_auth = match raw.client_auth.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::SecretBasic,
        Some("client_secret_post") => ClientAuth::SecretPost,
        Some(other) => {
            return refuse(
                "client_auth",
                format!("{other:?} is not client_secret_basic or client_secret_post"),
            )
        }
    };
    if raw.client_auth.is_some() && client_secret.is_none() {
        return refuse(
            "client_auth",
            "needs client_secret (without one the client is public and uses PKCE only)".into(),
        );
    }
    let redirect = parse_absolute(&raw.redirect_uri)
        .map_err(|e| ConfigError::at(at("redirect_uri"), format!("{:?} {e}", raw.redirect_uri)))?;
    if redirect.path() == "/" {
        return refuse(
            "redirect_uri",
            "needs a path of its own: every request to it is taken as a login callback".into(),
        );
    }
    let scopes = compile_scopes(&at("scopes"), raw.scopes.unwrap_or_default())?;
    let mut extra_auth_params = Vec::with_capacity(raw.extra_auth_params.len());
    for (k, v) in raw.extra_auth_params {
        if k.is_empty() || RESERVED_AUTH_PARAMS.contains(&k.as_str()) {
            return refuse(
                &format!("extra_auth_params.{k}"),
                "is empty or a parameter the filter sets itself".into(),
            );
        }
        extra_auth_params.push((k, v));
    }
    let session = compile_session(&at("session"), name, raw.session, env)?;
    let logout = match raw.logout {
        None => None,
        Some(l) => {
            let path_ok = l.path.starts_with('/')
                && l.path
                    .bytes()
                    .all(|b| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#');
            if !path_ok {
                return refuse("logout.path", format!("{:?} is not a path", l.path));
            }
            if l.path == redirect.path() {
                return refuse("logout.path", "is the callback path".into());
            }
            let target = l
                .post_logout_redirect_uri
                .unwrap_or_else(|| DEFAULT_POST_LOGOUT_REDIRECT.to_string());
            let valid = if target.starts_with('/') {
                return_url::normalize(&target) == target
            } else {
                parse_absolute(&target).is_ok()
            };
            if !valid {
                return refuse(
                    "logout.post_logout_redirect_uri",
                    format!("{target:?} is neither a path like /bye nor an http(s) URL"),
                );
            }
            Some(Logout {
                path: l.path,
                post_logout_redirect_uri: target,
            })
        }
    };
    Ok(OidcProvider {
        name: name.to_string(),
        issuer: raw.issuer,
        discovery,
        cluster: raw.cluster,
        timeout_ms,
        client_id: raw.client_id,
        client_secret,
        client_auth,
        redirect_uri: raw.redirect_uri,
        redirect,
        scopes,
        extra_auth_params,
        session,
        logout,
        forward_access_token: raw.forward_access_token.unwrap_or(true),
        claim_to_headers: claim_to_headers(&at("claim_to_headers"), raw.claim_to_headers)?,
    })
}

/// Reads a secret; the error names the variable, never a value.
fn read_secret(
    at: &str,
    raw: RawSecret,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    let value = match raw {
        RawSecret::Inline(v) => v,
        RawSecret::Env(var) => {
            if var.is_empty() {
                return Err(ConfigError::at(at, "names no environment variable"));
            }
            env(&var).ok_or_else(|| {
                ConfigError::at(at, format!("environment variable {var} is not set"))
            })?
        }
    };
    if value.is_empty() {
        return Err(ConfigError::at(at, "is empty"));
    }
    Ok(Secret(value))
}

fn compile_scopes(at: &str, raw: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut scopes = vec!["openid".to_string()];
    for (i, s) in raw.into_iter().enumerate() {
        // RFC 6749 §3.3 scope-token: printable ASCII but space, `"` and `\`.
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !valid {
            return Err(ConfigError::at(
                format!("{at}[{i}]"),
                format!("{s:?} is not a scope"),
            ));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    Ok(scopes)
}

#[inline(never)]
fn compile_session(
    at: &str,
    provider: &str,
    raw: crate::config::schema::RawOidcSession,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SessionConfig, ConfigError> {
    let field = |f: &str| format!("{at}.{f}");
    let name = raw
        .cookie_name
        .unwrap_or_else(|| format!("__Host-{provider}"));
    // RFC 6265 cookie-name: a token (no separators, spaces or controls).
    if !is_token(&name) || name.len() > MAX_COOKIE_NAME_LEN {
        return Err(ConfigError::at(
            field("cookie_name"),
            format!("{name:?} is not a cookie name of at most {MAX_COOKIE_NAME_LEN} characters"),
        ));
    }
    let same_site = match raw.same_site.as_deref() {
        None => SameSite::Lax,
        Some(s) if s.eq_ignore_ascii_case("lax") => SameSite::Lax,
        Some(s) if s.eq_ignore_ascii_case("strict") => SameSite::Strict,
        Some(s) if s.eq_ignore_ascii_case("none") => SameSite::None,
        Some(s) => {
            return Err(ConfigError::at(
                field("same_site"),
                format!("{s:?} is not Lax, Strict or None"),
            ))
        }
    };
    let cookie = CookieAttrs {
        name,
        same_site,
        secure: raw.secure.unwrap_or(true),
    };
    check_attrs(&cookie).map_err(|e| ConfigError::at(field("cookie_name"), e))?;
    if raw.keys.is_empty() {
        return Err(ConfigError::at(field("keys"), "at least one key is needed"));
    }
    let mut secrets = Vec::with_capacity(raw.keys.len());
    for (i, k) in raw.keys.into_iter().enumerate() {
        let path = format!("{at}.keys[{i}]");
        let secret = read_secret(&path, k, env)?;
        let len = secret.expose().len();
        if len < MIN_SECRET_LEN {
            return Err(ConfigError::at(
                path,
                format!("is {len} bytes, at least {MIN_SECRET_LEN} are needed"),
            ));
        }
        secrets.push(secret.0);
    }
    let keys = KeyRing::new(&secrets)
        .ok_or_else(|| ConfigError::at(field("keys"), "no key could be derived"))?;
    let seconds = |f: &str, m: crate::config::schema::Millis| {
        let s = m.0 / 1000;
        if s == 0 {
            Err(ConfigError::at(field(f), "must be at least 1s"))
        } else {
            Ok(s)
        }
    };
    let absolute_lifetime_s = match raw.absolute_lifetime {
        None => DEFAULT_ABSOLUTE_LIFETIME_S,
        Some(m) => seconds("absolute_lifetime", m)?,
    };
    let idle_timeout_s = match raw.idle_timeout {
        None => None,
        Some(m) => Some(seconds("idle_timeout", m)?),
    };
    Ok(SessionConfig {
        cookie,
        keys,
        absolute_lifetime_s,
        idle_timeout_s,
    })
}

/// Providers for the other modules' tests, compiled from JSON with a fixed environment.
#[cfg(test)]
pub mod testing {
    use super::*;

    pub const KEY_NEW: &str = "0123456789abcdef0123456789abcdef-new";
    pub const KEY_OLD: &str = "0123456789abcdef0123456789abcdef-old";
    pub const CLIENT_SECRET: &str = "s3cret:with&odd chars";

    pub fn env(var: &str) -> Option<String> {
        match var {
            "OIDC_CLIENT_SECRET" => Some(CLIENT_SECRET.into()),
            "OIDC_KEY_NEW" => Some(KEY_NEW.into()),
            "OIDC_KEY_OLD" => Some(KEY_OLD.into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// The contract's example entry `web`.
    pub fn example() -> serde_json::Value {
        serde_json::json!({
            "issuer": "https://idp.example.com/realms/acme",
            "cluster": "idp", "timeout": "5s",
            "client_id": "gateway",
            "client_secret": {"env": "OIDC_CLIENT_SECRET"},
            "client_auth": "client_secret_basic",
            "redirect_uri": "https://app.example.com/oauth2/callback",
            "scopes": ["openid", "email", "offline_access"],
            "extra_auth_params": {"prompt": "consent"},
            "session": {"cookie_name": "__Host-web",
                        "keys": [{"env": "OIDC_KEY_NEW"}, {"env": "OIDC_KEY_OLD"}],
                        "absolute_lifetime": "86400s", "idle_timeout": "3600s",
                        "same_site": "Lax", "secure": true},
            "logout": {"path": "/oauth2/logout",
                       "post_logout_redirect_uri": "https://app.example.com/"},
            "forward_access_token": true,
            "claim_to_headers": [{"header_name": "x-email", "claim_name": "email"}]
        })
    }

    pub fn compile_json(json: serde_json::Value) -> Result<OidcProvider, ConfigError> {
        let raw: RawOidc =
            serde_json::from_value(json).map_err(|e| ConfigError::at("", e.to_string()))?;
        compile("oidc", "web", raw, &env)
    }

    pub fn provider() -> OidcProvider {
        compile_json(example()).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_contract_example_compiles() {
        let p = provider();
        assert_eq!(p.name, "web");
        assert_eq!(p.issuer, "https://idp.example.com/realms/acme");
        assert_eq!(p.discovery.authority, "idp.example.com");
        assert_eq!(
            p.discovery.path_and_query,
            "/realms/acme/.well-known/openid-configuration"
        );
        assert_eq!(p.cluster, "idp");
        assert_eq!(p.client_secret.as_ref().unwrap().expose(), CLIENT_SECRET);
        assert_eq!(p.client_auth, ClientAuth::SecretBasic);
        assert_eq!(p.callback_path(), "/oauth2/callback");
        assert_eq!(p.redirect.origin(), "https://app.example.com");
        assert_eq!(p.scope(), "openid email offline_access");
        assert_eq!(
            p.extra_auth_params,
            vec![("prompt".into(), "consent".into())]
        );
        assert_eq!(p.session.cookie.name, "__Host-web");
        assert_eq!(p.session.idle_timeout_s, Some(3600));
        assert_eq!(
            p.logout,
            Some(Logout {
                path: "/oauth2/logout".into(),
                post_logout_redirect_uri: "https://app.example.com/".into()
            })
        );
        assert_eq!(p.claim_to_headers[0].header, "x-email");
        assert_eq!(p.needed_claims(), vec!["aud", "email"]);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let p = compile_json(json!({
            "issuer": "http://127.0.0.1:4010/", "cluster": "idp", "client_id": "c",
            "redirect_uri": "http://127.0.0.1:8080/cb",
            "scopes": ["email", "openid", "email"],
            "session": {"keys": [{"inline": KEY_NEW}]}
        }))
        .unwrap();
        assert_eq!(p.timeout_ms, 5000);
        assert_eq!(
            p.discovery.path_and_query,
            "/.well-known/openid-configuration"
        );
        assert!(p.client_secret.is_none());
        assert_eq!(p.client_auth, ClientAuth::SecretBasic);
        assert_eq!(p.scopes, vec!["openid", "email"]);
        assert_eq!(p.session.cookie.name, "__Host-web");
        assert_eq!(p.session.cookie.same_site, SameSite::Lax);
        assert!(p.session.cookie.secure);
        assert_eq!(p.session.absolute_lifetime_s, 86_400);
        assert_eq!(p.session.idle_timeout_s, None);
        assert!(p.logout.is_none());
        assert!(p.forward_access_token);
        assert!(p.claim_to_headers.is_empty());
        let mut j = example();
        j["logout"] = json!({"path": "/bye"});
        j["client_auth"] = json!("client_secret_post");
        j["session"]["same_site"] = json!("strict");
        let p = compile_json(j).unwrap();
        assert_eq!(p.logout.unwrap().post_logout_redirect_uri, "/");
        assert_eq!(p.client_auth, ClientAuth::SecretPost);
        assert_eq!(p.session.cookie.same_site, SameSite::Strict);
    }

    #[test]
    fn lower_camel_case_spellings_are_accepted() {
        let p = compile_json(json!({
            "issuer": "https://idp.example.com", "cluster": "idp", "clientId": "c",
            "clientSecret": {"inline": "x"}, "clientAuth": "client_secret_post",
            "redirectUri": "https://app.example.com/cb", "extraAuthParams": {"a": "b"},
            "forwardAccessToken": false,
            "claimToHeaders": [{"headerName": "X-Sub", "claimName": "sub"}],
            "session": {"cookieName": "sid", "secure": false, "sameSite": "Lax",
                        "keys": [{"inline": KEY_NEW}], "absoluteLifetime": "60s",
                        "idleTimeout": "1.5s"},
            "logout": {"path": "/out", "postLogoutRedirectUri": "/bye"}
        }))
        .unwrap();
        assert!(!p.forward_access_token);
        assert_eq!(p.session.absolute_lifetime_s, 60);
        assert_eq!(p.session.idle_timeout_s, Some(1));
        assert_eq!(p.claim_to_headers[0].header, "x-sub");
        assert_eq!(p.logout.unwrap().post_logout_redirect_uri, "/bye");
    }

    type Refusal<'a> = (&'a str, serde_json::Value, &'a str, &'a str);

    /// Sets each field (under `section`) of the example and checks the refusal's path and text.
    fn assert_refusals(section: &[&str], cases: Vec<Refusal>) {
        for (field, value, path, message) in cases {
            let mut j = example();
            let target = section.iter().fold(&mut j, |v, s| &mut v[*s]);
            target[field] = value;
            let err = compile_json(j)
                .err()
                .unwrap_or_else(|| panic!("{field} accepted"));
            assert_eq!(err.path, path, "{field}: {err}");
            assert!(err.message.contains(message), "{field}: {err}");
        }
    }

    #[test]
    fn refusals_name_the_json_path() {
        let cases: Vec<Refusal> = vec![
            (
                "client_secret",
                json!({"env": "NOPE"}),
                "oidc.web.client_secret",
                "NOPE is not set",
            ),
            (
                "client_secret",
                json!({"env": "EMPTY"}),
                "oidc.web.client_secret",
                "is empty",
            ),
            (
                "client_secret",
                json!({"env": ""}),
                "oidc.web.client_secret",
                "no environment",
            ),
            (
                "issuer",
                json!("idp.example.com"),
                "oidc.web.issuer",
                "not an http",
            ),
            (
                "issuer",
                json!("https://idp.example.com/?x=1"),
                "oidc.web.issuer",
                "query",
            ),
            ("cluster", json!(""), "oidc.web.cluster", "empty"),
            ("timeout", json!("0s"), "oidc.web.timeout", "more than 0s"),
            ("client_id", json!(""), "oidc.web.client_id", "empty"),
            (
                "client_auth",
                json!("private_key_jwt"),
                "oidc.web.client_auth",
                "not client_secret_basic",
            ),
            (
                "redirect_uri",
                json!("/oauth2/callback"),
                "oidc.web.redirect_uri",
                "not an http",
            ),
            (
                "redirect_uri",
                json!("https://u@app.example.com/cb"),
                "oidc.web.redirect_uri",
                "user information",
            ),
            (
                "redirect_uri",
                json!("https://app.example.com"),
                "oidc.web.redirect_uri",
                "path of its own",
            ),
            (
                "redirect_uri",
                json!("https://app.example.com/cb#x"),
                "oidc.web.redirect_uri",
                "fragment",
            ),
            (
                "scopes",
                json!(["openid", "a b"]),
                "oidc.web.scopes[1]",
                "not a scope",
            ),
            ("scopes", json!([""]), "oidc.web.scopes[0]", "not a scope"),
            (
                "extra_auth_params",
                json!({"state": "x"}),
                "oidc.web.extra_auth_params.state",
                "sets itself",
            ),
            (
                "extra_auth_params",
                json!({"redirect_uri": "x"}),
                "oidc.web.extra_auth_params.redirect_uri",
                "sets itself",
            ),
            (
                "logout",
                json!({"path": "logout"}),
                "oidc.web.logout.path",
                "not a path",
            ),
            (
                "logout",
                json!({"path": "/a b"}),
                "oidc.web.logout.path",
                "not a path",
            ),
            (
                "logout",
                json!({"path": "/oauth2/callback"}),
                "oidc.web.logout.path",
                "callback path",
            ),
            (
                "logout",
                json!({"path": "/out", "post_logout_redirect_uri": "//evil.example"}),
                "oidc.web.logout.post_logout_redirect_uri",
                "neither",
            ),
            (
                "logout",
                json!({"path": "/out", "post_logout_redirect_uri": "javascript:x"}),
                "oidc.web.logout.post_logout_redirect_uri",
                "neither",
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "bad header", "claim_name": "a"}]),
                "oidc.web.claim_to_headers[0].header_name",
                "invalid header name",
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "Host", "claim_name": "a"}]),
                "oidc.web.claim_to_headers[0].header_name",
                "pseudo-header",
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "x", "claim_name": "a..b"}]),
                "oidc.web.claim_to_headers[0].claim_name",
                "invalid claim path",
            ),
        ];
        assert_refusals(&[], cases);
    }

    #[test]
    fn session_refusals_name_the_json_path() {
        let cases: Vec<Refusal> = vec![
            (
                "keys",
                json!([]),
                "oidc.web.session.keys",
                "at least one key",
            ),
            (
                "keys",
                json!([{"env": "OIDC_KEY_NEW"}, {"inline": "twelve bytes"}]),
                "oidc.web.session.keys[1]",
                "is 12 bytes, at least 32",
            ),
            (
                "keys",
                json!([{"env": "MISSING_KEY"}]),
                "oidc.web.session.keys[0]",
                "MISSING_KEY is not set",
            ),
            (
                "cookie_name",
                json!("a;b"),
                "oidc.web.session.cookie_name",
                "not a cookie name",
            ),
            (
                "cookie_name",
                json!(""),
                "oidc.web.session.cookie_name",
                "not a cookie name",
            ),
            (
                "cookie_name",
                json!("x".repeat(65)),
                "oidc.web.session.cookie_name",
                "not a cookie name",
            ),
            (
                "same_site",
                json!("Relaxed"),
                "oidc.web.session.same_site",
                "not Lax, Strict or None",
            ),
            (
                "absolute_lifetime",
                json!("0.5s"),
                "oidc.web.session.absolute_lifetime",
                "at least 1s",
            ),
            (
                "idle_timeout",
                json!("0s"),
                "oidc.web.session.idle_timeout",
                "at least 1s",
            ),
        ];
        assert_refusals(&["session"], cases);
        // Prefixed names and SameSite=None need Secure.
        for (name, same_site, why) in [
            ("__Host-web", "Lax", "__Host-"),
            ("__Secure-web", "Lax", "__Secure-"),
            ("web", "None", "None needs secure"),
        ] {
            let mut j = example();
            j["session"]["secure"] = json!(false);
            j["session"]["cookie_name"] = json!(name);
            j["session"]["same_site"] = json!(same_site);
            let err = compile_json(j).err().unwrap();
            assert_eq!(err.path, "oidc.web.session.cookie_name");
            assert!(err.message.contains(why), "{err}");
        }
        // The default name carries __Host-: secure false needs a name of its own.
        let mut j = example();
        j["session"]["secure"] = json!(false);
        j["session"].as_object_mut().unwrap().remove("cookie_name");
        assert!(compile_json(j).is_err());
    }

    #[test]
    fn client_auth_needs_a_secret() {
        let mut j = example();
        j.as_object_mut().unwrap().remove("client_secret");
        let err = compile_json(j.clone()).err().unwrap();
        assert_eq!(err.path, "oidc.web.client_auth");
        j.as_object_mut().unwrap().remove("client_auth");
        assert!(compile_json(j).unwrap().client_secret.is_none());
    }

    #[test]
    fn unknown_fields_and_secret_shapes_are_refused() {
        let mut j = example();
        j["sesion"] = json!({});
        assert!(compile_json(j).is_err());
        let mut j = example();
        j["session"]["cookie"] = json!("x");
        assert!(compile_json(j).is_err());
        for shape in [
            json!({"env": "A", "inline": "b"}),
            json!({"file": "/x"}),
            json!({}),
            json!({"inline": 5}),
            json!(["x"]),
        ] {
            let mut j = example();
            j["client_secret"] = shape.clone();
            let err = compile_json(j).err().unwrap();
            assert!(err.message.contains("expected {\"env\""), "{shape}: {err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let secret = "do-not-print-me-0123456789abcdef0123";
        let mut j = example();
        j["client_secret"] = json!({"inline": secret});
        j["session"]["keys"] = json!([{"inline": secret}]);
        let p = compile_json(j).unwrap();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains(secret) && !shown.contains(CLIENT_SECRET),
            "{shown}"
        );
        assert!(shown.contains("Secret(..)") && shown.contains("KeyRing(1 keys)"));
        // A secret written where an object belongs is not quoted back.
        for bare in [json!(secret), json!(1234567890), json!(true)] {
            let mut j = example();
            j["client_secret"] = bare.clone();
            let err = compile_json(j.clone()).err().unwrap().to_string();
            assert!(
                !err.contains(secret) && !err.contains("1234567890"),
                "{err}"
            );
            let mut j = example();
            j["session"]["keys"] = json!([bare]);
            let err = compile_json(j).err().unwrap().to_string();
            assert!(
                !err.contains(secret) && !err.contains("1234567890"),
                "{err}"
            );
        }
        // A short key's error says its length, not its value.
        let mut j = example();
        j["session"]["keys"] = json!([{"inline": "tiny-secret"}]);
        let err = compile_json(j).err().unwrap().to_string();
        assert!(!err.contains("tiny-secret"), "{err}");
    }

    #[test]
    fn the_process_environment_is_read() {
        // A variable set by the test process itself (Cargo sets it for every test binary).
        let mut j = example();
        j["client_secret"] = json!({"env": "CARGO_PKG_NAME"});
        j["session"]["keys"] = json!([{"inline": KEY_NEW}]);
        let whole = |entry| json!({"oidc": {"web": entry}, "rules": []}).to_string();
        let cfg = crate::config::parse(whole(j).as_bytes()).unwrap();
        let p = &cfg.oidc[0].provider;
        assert_eq!(
            p.client_secret.as_ref().unwrap().expose(),
            env!("CARGO_PKG_NAME")
        );
        let mut j = example();
        j["client_secret"] = json!({"env": "ENVOY_JWT_AUTHZ_SURELY_UNSET_VARIABLE"});
        j["session"]["keys"] = json!([{"inline": KEY_NEW}]);
        let err = crate::config::parse(whole(j.clone()).as_bytes())
            .err()
            .unwrap();
        assert_eq!(err.path, "oidc.web.client_secret");
        // The checker, away from the VM, warns instead.
        let checked = crate::config::parse_for_check(whole(j).as_bytes()).unwrap();
        assert!(checked
            .warnings
            .iter()
            .any(|w| w.contains("ENVOY_JWT_AUTHZ_SURELY_UNSET")));
    }
}
