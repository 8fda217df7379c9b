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
