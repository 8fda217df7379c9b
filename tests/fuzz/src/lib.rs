//! What the fuzz targets share: one configuration exercising every part of the pipeline
//! (several providers and token locations, claim headers, rules, CORS, authorization), and
//! the invariants every decision must keep whatever the input.

use std::sync::OnceLock;

use envoy_jwt_authz::authn::keystore::KeyStore;
use envoy_jwt_authz::config::{self, FilterConfig};
use envoy_jwt_authz::pipeline::Decision;
use envoy_jwt_authz::request::view::Request;
use serde_json::json;

/// The HMAC secret of the `hs` provider: lets a target sign arbitrary payloads.
pub const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-0123456789";

pub fn config() -> FilterConfig {
    let oct = base64url(SECRET);
    let hs = json!({"keys": [{"kty": "oct", "kid": "hs", "alg": "HS256", "k": oct}]}).to_string();
    // A real Ed25519 public key (RFC 8037 A.2): signatures by anyone else never verify.
    let ed = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})
    .to_string();
    let cfg = json!({
        "providers": {
            "hs": {"issuer": "https://hs.example", "audiences": ["api"],
                   "local_jwks": {"inline_string": hs},
                   "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                   "from_params": ["access_token"], "from_cookies": ["jwt"],
                   "forward_payload_header": "x-jwt-payload",
                   "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"},
                                        {"header_name": "x-tenant", "claim_name": "org.tenant.id"},
                                        {"header_name": "x-roles", "claim_name": "roles"},
                                        {"header_name": "x-obj", "claim_name": "org"}],
                   "max_lifetime": "86400s"},
            "ed": {"issuer": "https://ed.example", "local_jwks": {"inline_string": ed},
                   "from_headers": [{"name": "x-ed-token"}]}
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/opt"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "hs"}, {"allow_missing": {}}]}}},
            {"match": {"prefix": "/any"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"safe_regex": {"regex": "/both/[a-z]+"}}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "hs"}, {"provider_name": "ed"}]}}},
            {"match": {"prefix": "/", "hosts": ["*.example.com"]},
             "requires": {"provider_and_audiences": {"provider_name": "hs", "audiences": ["other"]}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "hs"}}
        ],
        "cors": {"allow_origin_string_match": [{"exact": "https://app.example"}, {"suffix": ".corp.test", "ignore_case": true},
                                               {"safe_regex": {"regex": "https://[a-z]+\\.re\\.test"}}],
                 "allow_methods": "*", "allow_headers": "*", "allow_credentials": true,
                 "expose_headers": "x-request-id", "max_age": "60", "allow_private_network_access": true},
        "authorization": {"policies": [
            {"name": "deny-banned", "action": "DENY", "rules": [{"when": [
                {"key": "request.auth.claims[banned]", "values": ["true"]}]}]},
            {"name": "audit", "action": "AUDIT", "rules": [{}]},
            {"name": "allow", "action": "ALLOW", "rules": [
                {"to": [{"operation": {"not_paths": ["/admin*"]}}]},
                {"from": [{"source": {"request_principals": ["https://hs.example/*"]}}],
                 "to": [{"operation": {"paths": ["/admin*"], "methods": ["GET"]}}],
                 "when": [{"key": "request.auth.claims[org][tier]", "values": ["gold", "plat*"]},
                          {"key": "request.auth.claims[scope]", "values": ["admin"]},
                          {"key": "request.headers[x-tenant-hint]", "not_values": ["evil*"]}]}]}
        ]}
    });
    match config::parse(cfg.to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("fuzz config is invalid: {e}"),
    }
}

/// The configuration and the keys (with their token cache) every target evaluates against,
/// built once per process.
pub struct State {
    pub cfg: FilterConfig,
    pub keys: KeyStore,
}
// libFuzzer runs a target on one thread; the core's types are not Sync by design.
unsafe impl Sync for State {}
unsafe impl Send for State {}

pub fn state() -> &'static State {
    static S: OnceLock<State> = OnceLock::new();
    S.get_or_init(|| {
        let cfg = config();
        let keys = KeyStore::new(&cfg);
        State { cfg, keys }
    })
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whatever the input, a value set from a token (claims, payload) never carries a byte that
/// could split or smuggle a header, and only the filter's own headers are set. `:path` and
/// `cookie` are rewritten from the client's own value (token removed): they may only carry
/// such bytes when the client's value did (Envoy's codecs refuse them before the filter).
pub fn check_decision(req: &Request, d: &Decision) {
    let unsafe_byte = |v: &str| v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    if let Decision::Continue(edits) = d {
        for (name, value) in &edits.set {
            match name.as_str() {
                ":path" | "cookie" => assert!(
                    !unsafe_byte(value) || req.header_values(name).any(unsafe_byte),
                    "{name} rewritten with an unsafe byte the client did not send: {value:?}"
                ),
                "x-jwt-payload" | "x-sub" | "x-tenant" | "x-roles" | "x-obj" => {
                    assert!(
                        !unsafe_byte(value),
                        "header {name} got an unsafe value {value:?}"
                    )
                }
                other => panic!("unexpected header set: {other}"),
            }
        }
    }
}

/// The `oidc` targets' provider: the contract's example entry `web` with inline secrets and a
/// cookie name without `__Host-` (so `secure: false` is allowed), sealing with `OIDC_KEY_NEW`
/// and opening with it and `OIDC_KEY_OLD`.
pub mod oidc {
    use envoy_jwt_authz::config::schema::RawOidc;
    use envoy_jwt_authz::oidc::config::{compile, OidcProvider};
    use envoy_jwt_authz::oidc::random::Random;
    use serde_json::json;

    pub const ISSUER: &str = "https://idp.example.com/realms/acme";
    pub const KEY_NEW: &str = "fuzz-key-new-0123456789abcdef-0123456789";
    pub const KEY_OLD: &str = "fuzz-key-old-0123456789abcdef-0123456789";
    pub const NOW: u64 = 1_700_000_000;

    pub fn provider_with_keys(keys: &[&str]) -> OidcProvider {
        let keys: Vec<_> = keys.iter().map(|k| json!({"inline": k})).collect();
        let raw = json!({
            "issuer": ISSUER,
            "cluster": "idp", "timeout": "5s",
            "client_id": "gateway",
            "client_secret": {"inline": "gateway-secret"},
            "redirect_uri": "https://app.example.com/oauth2/callback",
            "scopes": ["openid", "email", "offline_access"],
            "extra_auth_params": {"prompt": "consent"},
            "session": {"cookie_name": "web", "keys": keys, "idle_timeout": "3600s",
                        "secure": false},
            "logout": {"path": "/oauth2/logout", "post_logout_redirect_uri": "/"},
            "claim_to_headers": [{"header_name": "x-email", "claim_name": "email"}]
        });
        let raw: RawOidc = match serde_json::from_value(raw) {
            Ok(r) => r,
            Err(e) => panic!("fuzz oidc config does not deserialize: {e}"),
        };
        match compile("oidc", "web", raw, &|_| None) {
            Ok(p) => p,
            Err(e) => panic!("fuzz oidc config is invalid: {e}"),
        }
    }

    pub fn provider() -> OidcProvider {
        provider_with_keys(&[KEY_NEW, KEY_OLD])
    }

    /// Deterministic bytes (xorshift): nonces, state and verifiers in the targets. Never the
    /// host's: a run must replay from its input.
    pub struct Xorshift(pub u64);

    impl Random for Xorshift {
        fn fill(&mut self, buf: &mut [u8]) -> bool {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = self.0 as u8;
            }
            true
        }
    }

    /// A `Cookie` header value from `name=value` pairs.
    pub fn cookie_header(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `name=value` of a `Set-Cookie` line.
    pub fn set_cookie_pair(line: &str) -> (String, String) {
        let first = line.split(';').next().unwrap_or("");
        let (n, v) = first.split_once('=').unwrap_or((first, ""));
        (n.to_string(), v.to_string())
    }
}
