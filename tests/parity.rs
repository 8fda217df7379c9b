//! Issue 22 on the pure core (the end-to-end tests are in `e2e_parity.rs`): multi-tenant
//! issuers through the whole pipeline, and what the configuration refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_jwt_authz::authn::keystore::KeyStore;
use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::config::{self, FilterConfig};
use envoy_jwt_authz::crypto::signature::Alg;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline::{self, Decision};
use envoy_jwt_authz::request::view::Request;
use serde_json::{json, Value};

const MS: &str = "https://login.example.com/{tenant}/v2.0";
const NOW: u64 = 1_700_000_000;

fn signer() -> &'static Signer {
    static S: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    S.get_or_init(|| Signer::generate(Alg::EdDSA).unwrap())
}

fn provider(extra: Value) -> Value {
    let mut p = json!({"issuer": MS,
        "local_jwks": {"inline_string": json!({"keys": [signer().jwk(Some("k"), false)]}).to_string()},
        "claim_to_headers": [{"header_name": "x-iss", "claim_name": "iss"}]});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn parse(cfg: Value) -> Result<FilterConfig, String> {
    config::parse(cfg.to_string().as_bytes()).map_err(|e| e.to_string())
}

fn token(claims: Value) -> String {
    let mut m = json!({"sub": "alice", "exp": NOW + 600});
    for (k, v) in claims.as_object().unwrap() {
        m[k] = v.clone();
    }
    signer().sign(Some("k"), m.as_object().unwrap()).unwrap()
}

/// Status and body (200 and the `x-iss` header set when forwarded).
fn run(cfg: &FilterConfig, token: &str) -> (u32, String) {
    let req = Request::new(vec![
        (":method".into(), "GET".into()),
        (":path".into(), "/x".into()),
        (":authority".into(), "svc".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ]);
    let keys = KeyStore::new(cfg);
    match pipeline::on_request_headers(cfg, &keys, &req, NOW, &mut HostRandom, true).decision {
        Decision::Reply(r) => (r.status, r.body),
        Decision::Continue(edits) => (
            200,
            edits
                .set
                .iter()
                .find(|(n, _)| n == "x-iss")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        ),
        d => panic!("no login is configured here: {d:?}"),
    }
}

fn iss(tenant: &str) -> String {
    MS.replace("{tenant}", tenant)
}

#[test]
fn tenants_share_one_key_set() {
    let cfg = parse(json!({"providers": {"ms": provider(json!({}))}})).unwrap();
    for t in ["t1", "9188040d-6c67-4c5b-b112-36a304b66dad"] {
        assert_eq!(run(&cfg, &token(json!({"iss": iss(t)}))), (200, iss(t)));
    }
    let unknown = (401, "Jwt issuer is not configured".to_string());
    for bad in [
        "https://login.example.com/a/b/v2.0",
        "https://login.example.com//v2.0",
        "https://login.example.com/{tenant}/v2.0",
        "https://login.example.com/t1/v2.0/",
        "https://other.example.com/t1/v2.0",
    ] {
        assert_eq!(run(&cfg, &token(json!({"iss": bad}))), unknown, "{bad}");
    }
    assert_eq!(run(&cfg, &token(json!({}))), unknown, "no iss");
}

#[test]
fn tenants_and_tenant_claim_restrict() {
    let cfg = parse(json!({"providers": {"ms": provider(json!({
        "tenants": ["t1", "t2"], "tenant_claim": "tid"}))}}))
    .unwrap();
    assert_eq!(
        run(&cfg, &token(json!({"iss": iss("t1"), "tid": "t1"}))),
        (200, iss("t1"))
    );
    assert_eq!(
        run(&cfg, &token(json!({"iss": iss("t2"), "tid": "t2"}))),
        (200, iss("t2"))
    );
    assert_eq!(
        run(&cfg, &token(json!({"iss": iss("t3"), "tid": "t3"}))),
        (401, "Jwt issuer is not configured".into())
    );
    let fails = (401, "Jwt verification fails".to_string());
    for tid in [json!("t2"), json!(null), json!(["t1"]), json!("T1")] {
        let mut claims = json!({"iss": iss("t1")});
        if !tid.is_null() {
            claims["tid"] = tid.clone();
        }
        assert_eq!(run(&cfg, &token(claims)), fails, "tid {tid}");
    }
    // Issuer first, as Envoy: an expired token of an unlisted tenant is an unknown issuer.
    assert_eq!(
        run(
            &cfg,
            &token(json!({"iss": iss("t3"), "tid": "t3", "exp": NOW - 3600}))
        ),
        (401, "Jwt issuer is not configured".into())
    );
}

#[test]
fn a_tenant_pattern_beside_exact_issuers() {
    // The pattern and an exact issuer that fits it: each token reaches both, in order.
    let cfg = parse(json!({"providers": {
        "a_exact": provider(json!({"issuer": iss("t1"), "claim_to_headers": []})),
        "b_ms": provider(json!({"tenants": ["t2"]}))}}))
    .unwrap();
    assert_eq!(run(&cfg, &token(json!({"iss": iss("t1")}))).0, 200);
    assert_eq!(
        run(&cfg, &token(json!({"iss": iss("t2")}))),
        (200, iss("t2"))
    );
    assert_eq!(run(&cfg, &token(json!({"iss": iss("t3")}))).0, 401);
}

#[test]
fn tenant_configuration_errors_name_the_field() {
    let cases = [
        (
            json!({"issuer": "https://x.example/{tenant}x/"}),
            "providers.ms.issuer:",
        ),
        (
            json!({"issuer": "https://x.example/{tid}/"}),
            "providers.ms.issuer:",
        ),
        (
            json!({"issuer": "https://x.example/", "tenants": ["a"]}),
            "providers.ms.tenants: needs an issuer with a {tenant} placeholder",
        ),
        (
            json!({"issuer": "https://x.example/", "tenant_claim": "tid"}),
            "providers.ms.tenant_claim: needs an issuer with a {tenant} placeholder",
        ),
        (json!({"tenants": ["a/b"]}), "providers.ms.tenants[0]:"),
        (json!({"tenants": ["ok", ""]}), "providers.ms.tenants[1]:"),
        (json!({"tenant_claim": ""}), "providers.ms.tenant_claim:"),
    ];
    for (extra, want) in cases {
        let Err(e) = parse(json!({"providers": {"ms": provider(extra.clone())}})) else {
            panic!("{extra} loaded");
        };
        assert!(e.starts_with(want), "{extra}: {e}");
    }
    // lowerCamelCase, as every field.
    assert!(parse(json!({"providers": {"ms": provider(json!({"tenantClaim": "tid"}))}})).is_ok());
}
