//! Arbitrary bytes as a token in every place the config reads one. No key the fuzzer knows
//! can sign for `ed`, and `hs` tokens must carry a valid HMAC: a route that requires a
//! token must never let a fuzzed one through unless it is a genuine HS256 token.
#![no_main]

use envoy_jwt_authz::jwt::token;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline::{self, Decision};
use envoy_jwt_authz::request::view::Request;
use envoy_jwt_authz_fuzz::{check_decision, state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = token::parse(&token);
    let s = state();
    let now = 1_700_000_000;
    for (path, headers) in [
        (
            "/x",
            vec![("authorization".to_string(), format!("Bearer {token}"))],
        ),
        (
            "/both/ab",
            vec![
                ("authorization".to_string(), format!("Bearer {token}")),
                ("x-ed-token".to_string(), token.to_string()),
            ],
        ),
        (
            "/opt",
            vec![("cookie".to_string(), format!("a=b; jwt={token}"))],
        ),
    ] {
        let mut h = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "api.test".to_string()),
        ];
        h.extend(headers);
        let req = Request::new(h);
        let out = pipeline::on_request_headers(&s.cfg, &s.keys, &req, now, &mut HostRandom, true);
        check_decision(&req, &out.decision);
        if path == "/both/ab" {
            // Needs an Ed25519 signature from a key nobody here holds.
            assert!(
                matches!(out.decision, Decision::Reply(_)),
                "forged token accepted: {token}"
            );
        }
    }
});
