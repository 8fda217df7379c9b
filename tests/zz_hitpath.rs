#![allow(clippy::unwrap_used)]
mod common;
use common::{claims, keys};
use envoy_jwt_authz::{config, keystore::KeyStore, pipeline, request::Request};
use serde_json::json;
#[test]
fn hitpath() {
    let k = keys();
    let jwks = json!({"keys": [k.rsa.jwk(Some("k"), false)]}).to_string();
    let cfg = json!({
        "providers": {"p": {"issuer": "https://i", "audiences": ["api"], "local_jwks": {"inline_string": jwks},
                            "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
        "cors": {"allow_origin_string_match": [{"exact": "http://app.bench"}], "allow_methods": "GET", "allow_credentials": true},
        "authorization": {"policies": [{"name": "b", "action": "ALLOW", "rules": [{"when": [{"key": "request.auth.claims[iss]", "values": ["https://i"]}]}]}]}
    });
    let cfg = config::parse(cfg.to_string().as_bytes()).unwrap();
    let store = KeyStore::new(&cfg);
    let tok = k.rsa.sign(Some("k"), &claims("https://i", json!({"aud": "api"}))).unwrap();
    let headers = vec![
        (":authority".to_string(), "127.0.0.1:10000".to_string()),
        (":path".to_string(), "/x".to_string()),
        (":method".to_string(), "GET".to_string()),
        (":scheme".to_string(), "http".to_string()),
        ("user-agent".to_string(), "wrk".to_string()),
        ("authorization".to_string(), format!("Bearer {tok}")),
        ("x-forwarded-proto".to_string(), "http".to_string()),
        ("x-request-id".to_string(), "0b3d8a0e-6d7a-4d1e-9d7e-3f0c0c7b1f2a".to_string()),
    ];
    let now = common::now();
    let n = 200_000;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        let req = Request::new(headers.clone());
        let out = pipeline::on_request_headers(&cfg, &store, &req, now);
        std::hint::black_box(out);
    }
    println!("hit path: {:.2} us/request", t0.elapsed().as_secs_f64() * 1e6 / n as f64);
}
