//! The configuration contract: what loads, and the one error (with its JSON path) for what
//! does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::config::{self, Routing};
use envoy_jwt_authz::crypto::signature::Alg;
use serde_json::{json, Value};

fn jwks() -> String {
    let k = Signer::generate(Alg::EdDSA).unwrap();
    json!({"keys": [k.jwk(Some("k1"), false)]}).to_string()
}

/// The example of `shared/plugin-config.md`, with a real key set.
fn contract_example() -> Value {
    json!({
      "providers": {
        "auth0": {
          "issuer": "https://example.auth0.com/",
          "audiences": ["api://orders"],
          "remote_jwks": {
            "http_uri": {"uri": "https://example.auth0.com/.well-known/jwks.json",
                         "cluster": "auth0_jwks", "timeout": "5s"},
            "cache_duration": "600s",
            "kid_refetch_interval": "30s"
          },
          "local_jwks": {"inline_string": jwks()},
          "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
          "from_params": ["access_token"],
          "from_cookies": ["session_jwt"],
          "forward": false,
          "forward_payload_header": "x-jwt-payload",
          "pad_forward_payload_header": false,
          "claim_to_headers": [{"header_name": "x-email", "claim_name": "email"},
                               {"header_name": "x-tenant", "claim_name": "org.tenant.id"}],
          "space_delimited_claims": ["scope", "scp", "permission"],
          "clock_skew_seconds": 60,
          "require_expiration": false,
          "max_lifetime": "86400s"
        }
      },
      "jwks_unavailable_status": 401,
      "rules": [
        {"match": {"prefix": "/healthz"}},
        {"match": {"prefix": "/public", "methods": ["GET"]},
         "requires": {"requires_any": {"requirements": [{"provider_name": "auth0"}, {"allow_missing": {}}]}}},
        {"match": {"prefix": "/", "hosts": ["svc2.example.com"]},
         "requires": {"provider_and_audiences": {"provider_name": "auth0", "audiences": ["https://svc2.example.com"]}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "auth0"}}
      ],
      "cors": {
        "allow_origin_string_match": [{"exact": "http://istio.io"}, {"suffix": ".example.com"},
                                      {"safe_regex": {"regex": "https://[a-z]+\\.corp\\.test"}}],
        "allow_methods": "GET,POST",
        "allow_headers": "authorization,content-type,foo,bar",
        "expose_headers": "x-request-id",
        "max_age": "60",
        "allow_credentials": true,
        "allow_private_network_access": false,
        "forward_not_matching_preflights": true
      },
      "authorization": {
        "policies": [
          {"name": "deny-banned", "action": "DENY",
           "rules": [{"when": [{"key": "request.auth.claims[banned]", "values": ["true"]}]}]},
          {"name": "orders-read", "action": "ALLOW",
           "rules": [{"from": [{"source": {"request_principals": ["https://example.auth0.com//*"]}}],
                      "to": [{"operation": {"methods": ["GET"], "paths": ["/orders*"]}}],
                      "when": [{"key": "request.auth.claims[scope]", "values": ["orders:read"]},
                               {"key": "request.auth.claims[org][tier]", "not_values": ["free"]}]}]}
        ]
      }
    })
}

fn parse(v: &Value) -> Result<config::FilterConfig, String> {
    config::parse(v.to_string().as_bytes()).map_err(|e| e.to_string())
}

fn parse_err(v: &Value) -> String {
    match parse(v) {
        Ok(_) => panic!("accepted: {v}"),
        Err(e) => e,
    }
}

#[test]
fn contract_example_loads_with_its_defaults() {
    let cfg = parse(&contract_example()).unwrap();
    let p = &cfg.providers[0];
    assert_eq!(p.issuer.as_deref(), Some("https://example.auth0.com/"));
    let remote = p.remote.as_ref().unwrap();
    assert_eq!(remote.authority, "example.auth0.com");
    assert_eq!(remote.path, "/.well-known/jwks.json");
    assert_eq!(
        (
            remote.timeout_ms,
            remote.cache_duration_ms,
            remote.kid_refetch_interval_ms
        ),
        (5000, 600_000, 30_000)
    );
    assert_eq!(p.max_lifetime_seconds, Some(86400));
    assert_eq!(
        cfg.sanitized_headers,
        vec!["x-jwt-payload", "x-email", "x-tenant"]
    );
    assert!(matches!(&cfg.routing, Routing::Rules(r) if r.rules.len() == 4));
    assert_eq!(cfg.authorization.as_ref().unwrap().policies.len(), 2);
}

#[test]
fn defaults_when_fields_are_absent() {
    let cfg =
        parse(&json!({"providers": {"p": {"local_jwks": {"inline_string": jwks()}}}})).unwrap();
    let p = &cfg.providers[0];
    assert_eq!(p.clock_skew_seconds, 60);
    assert!(!p.forward && !p.require_expiration);
    assert_eq!(p.space_delimited_claims, vec!["scope", "scp", "permission"]);
    assert_eq!(
        p.locations,
        envoy_jwt_authz::request::extractor::default_locations()
    );
    assert_eq!(cfg.jwks_unavailable_status, 401);
    assert_eq!(cfg.max_token_size, 65536);
    assert_eq!(cfg.max_tokens_per_request, 4);
    assert_eq!(cfg.max_signature_checks_per_request, 16);
    assert!(matches!(cfg.routing, Routing::Everything(_)));
}

#[test]
fn lower_camel_case_is_accepted() {
    let v = json!({
        "providers": {"myProvider": {
            "localJwks": {"inlineString": jwks()},
            "fromHeaders": [{"name": "x-t", "valuePrefix": "T "}],
            "forwardPayloadHeader": "x-payload",
            "claimToHeaders": [{"headerName": "x-sub", "claimName": "sub"}],
            "clockSkewSeconds": 5, "maxLifetime": "1.5s"
        }},
        "jwksUnavailableStatus": 503,
        "maxTokensPerRequest": 2, "maxSignatureChecksPerRequest": 3,
        "rules": [{"match": {"safeRegex": {"regex": "/a.*"}}, "requires": {"requiresAny": {"requirements": [
            {"providerName": "myProvider"}, {"allowMissing": {}}]}}}],
        "cors": {"allowOriginStringMatch": [{"exact": "http://a", "ignoreCase": true}], "allowCredentials": true}
    });
    let cfg = parse(&v).unwrap();
    assert_eq!(
        cfg.providers[0].name, "myProvider",
        "user-chosen keys are never rewritten"
    );
    assert_eq!(cfg.providers[0].clock_skew_seconds, 5);
    assert_eq!(cfg.jwks_unavailable_status, 503);
    assert_eq!(
        (
            cfg.max_tokens_per_request,
            cfg.max_signature_checks_per_request
        ),
        (2, 3)
    );
}

#[test]
fn bad_configs_are_refused_naming_the_path() {
    let with = |patch: &dyn Fn(&mut Value)| {
        let mut v = contract_example();
        patch(&mut v);
        parse_err(&v)
    };
    let cases: Vec<(String, &str)> = vec![
        (with(&|v| { v["providers"]["auth0"]["remote_jwks"]["http_uri"].as_object_mut().unwrap().remove("cluster"); }),
         "providers.auth0.remote_jwks.http_uri: missing field \"cluster\""),
        (with(&|v| v["rules"][0]["match"]["prefx"] = json!("/")),
         "rules[0].match.prefx: unknown field \"prefx\""),
        (with(&|v| v["rules"][3]["requires"]["provider_name"] = json!("auth1")),
         "rules[3].requires.provider_name: unknown provider \"auth1\""),
        (with(&|v| v["providers"]["auth0"]["audiences"] = json!("api://orders")),
         "providers.auth0.audiences: invalid type: string \"api://orders\", expected a sequence"),
        (with(&|v| v["providers"]["auth0"]["clock_skew_seconds"] = json!("60")),
         "providers.auth0.clock_skew_seconds: invalid type: string \"60\", expected u64"),
        (with(&|v| v["providers"]["auth0"]["remote_jwks"]["cache_duration"] = json!("10m")),
         "providers.auth0.remote_jwks.cache_duration: invalid duration \"10m\""),
        (with(&|v| v["cors"]["allow_origin_string_match"][2]["safe_regex"]["regex"] = json!("(unclosed")),
         "cors.allow_origin_string_match[2].safe_regex.regex: invalid regex"),
        (with(&|v| v["rules"][1]["match"]["safe_regex"] = json!({"regex": "/x"})),
         "rules[1].match: exactly one of prefix, path, safe_regex is required"),
        (with(&|v| v["authorization"]["policies"][1]["rules"][0]["when"][0]["key"] = json!("request.auth.claimz[x]")),
         "authorization.policies[1].rules[0].when[0].key: unsupported key"),
        (with(&|v| v["authorization"]["policies"][0]["action"] = json!("CUSTOM")),
         "authorization.policies[0].action: \"CUSTOM\" is not ALLOW, DENY or AUDIT"),
        (with(&|v| v["jwks_unavailable_status"] = json!(500)),
         "jwks_unavailable_status: must be 401 or 503, got 500"),
        (with(&|v| v["providers"]["auth0"]["local_jwks"]["inline_string"] = json!("not json")),
         "providers.auth0.local_jwks.inline_string: Jwks is an invalid JSON"),
        (with(&|v| v["providers"]["auth0"]["claim_to_headers"][0]["header_name"] = json!("x bad")),
         "providers.auth0.claim_to_headers[0].header_name: invalid header name \"x bad\""),
        (with(&|v| v["providers"]["auth0"]["remote_jwks"]["http_uri"]["uri"] = json!("ftp://x/jwks")),
         "providers.auth0.remote_jwks.http_uri.uri: \"ftp://x/jwks\" is not an http:// or https:// URI"),
        (with(&|v| v["extra"] = json!(1)), "extra: unknown field \"extra\""),
        (with(&|v| v["max_tokens_per_request"] = json!(0)),
         "max_tokens_per_request: must be between 1 and 64"),
        (with(&|v| v["max_signature_checks_per_request"] = json!(257)),
         "max_signature_checks_per_request: must be between 1 and 256"),
        (with(&|v| v["rules"][1]["requires"] = json!({"provider_name": "auth0", "allow_missing": {}})),
         "rules[1].requires"),
    ];
    for (got, want) in cases {
        assert!(got.starts_with(want), "got  {got}\nwant {want}...");
    }
    assert!(parse(&json!([])).is_err());
    assert!(config::parse(b"{not json").is_err());
    let local_without_usable_key = json!({"providers": {"p": {"local_jwks": {"inline_string":
        r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#}}}});
    let e = parse_err(&local_without_usable_key);
    assert!(
        e.starts_with("providers.p.local_jwks.inline_string: no usable key"),
        "{e}"
    );
    let no_keys = json!({"providers": {"p": {"issuer": "x"}}});
    assert_eq!(
        parse_err(&no_keys),
        "providers.p: needs remote_jwks or local_jwks"
    );
}
