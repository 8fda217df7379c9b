//! Arbitrary request heads: lines of `name: value` (the first three become method, path and
//! authority). Exercises CORS decisions, rule matching, token extraction from headers, query
//! and cookies, removal of spoofed headers, and authorization on paths, hosts and headers.
#![no_main]

use std::sync::OnceLock;

use envoy_jwt_authz::cli::mint;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline::{self, Decision};
use envoy_jwt_authz::request::view::Request;
use envoy_jwt_authz_fuzz::{check_decision, state, SECRET};
use libfuzzer_sys::fuzz_target;

/// A genuine token for `$TOKEN`, signed once.
fn token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        mint::hs256_raw(
            SECRET,
            r#"{"alg":"HS256","kid":"hs"}"#,
            r#"{"iss":"https://hs.example","sub":"s","aud":"api","exp":1700003600,"org":{"tier":"gold","tenant":{"id":"t"}},"scope":"admin read"}"#,
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = state();
    let mut lines = text.split('\n');
    let mut headers = vec![
        (
            ":method".to_string(),
            lines.next().unwrap_or("GET").to_string(),
        ),
        (":path".to_string(), lines.next().unwrap_or("/").to_string()),
        (
            ":authority".to_string(),
            lines.next().unwrap_or("api.test").to_string(),
        ),
    ];
    for line in lines {
        if let Some((n, v)) = line.split_once(':') {
            // `$TOKEN` lets the fuzzer place a valid token anywhere.
            headers.push((
                n.to_ascii_lowercase(),
                v.trim_start().replace("$TOKEN", token()),
            ));
        }
    }
    let req = Request::new(headers);
    let out =
        pipeline::on_request_headers(&s.cfg, &s.keys, &req, 1_700_000_000, &mut HostRandom, true);
    check_decision(&req, &out.decision);
    // A client-sent claim header never survives a forwarded request.
    if let Decision::Continue(edits) = &out.decision {
        for spoofable in ["x-jwt-payload", "x-sub", "x-tenant", "x-roles", "x-obj"] {
            if req.header(spoofable).is_some() {
                assert!(
                    edits.remove.iter().any(|r| r == spoofable)
                        || edits.set.iter().any(|(n, _)| n == spoofable),
                    "client-sent {spoofable} forwarded"
                );
            }
        }
    }
});
