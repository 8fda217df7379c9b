//! Arbitrary payloads in genuinely signed HS256 tokens: claim checks, claim-to-header
//! formatting (nested, lists, objects, odd bytes) and authorization on whatever claims arrive.
#![no_main]

use envoy_jwt_authz::cli::mint;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline;
use envoy_jwt_authz::request::view::Request;
use envoy_jwt_authz_fuzz::{check_decision, state, SECRET};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let token = mint::hs256_raw(SECRET, r#"{"alg":"HS256","kid":"hs"}"#, payload);
    let s = state();
    for path in ["/x", "/admin/panel", "/any", "/opt?access_token=1"] {
        let req = Request::new(vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "api.test".to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
            ("x-tenant-hint".to_string(), "t".to_string()),
        ]);
        // Twice: the second evaluation is served by the verified-token cache.
        for _ in 0..2 {
            let out = pipeline::on_request_headers(
                &s.cfg,
                &s.keys,
                &req,
                1_700_000_000,
                &mut HostRandom,
                true,
            );
            check_decision(&req, &out.decision);
        }
    }
});
