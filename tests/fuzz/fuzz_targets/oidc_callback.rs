//! Arbitrary callbacks: the first input line is the callback's `path?query`, the others are
//! `Cookie` headers. `$STATE` stands for the state of a genuine flow, `$FLOW` for its cookie
//! (`name=value`), `$OTHER` for the cookie of a second flow (another tab), `$ISS` for the
//! issuer percent-encoded. A callback passes only with a flow cookie sealed here whose state
//! is the query's, an `iss` that is the issuer when present, and no `error`.
#![no_main]

use std::sync::OnceLock;

use envoy_jwt_authz::oidc::config::OidcProvider;
use envoy_jwt_authz::oidc::cookies;
use envoy_jwt_authz::oidc::flow::{self, CallbackFailure, CallbackParams, Flow};
use envoy_jwt_authz::oidc::return_url;
use envoy_jwt_authz::request::view::Request;
use envoy_jwt_authz_fuzz::oidc::{provider, set_cookie_pair, Xorshift, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    p: OidcProvider,
    flows: Vec<(Flow, String)>,
}
unsafe impl Sync for Fixture {}
unsafe impl Send for Fixture {}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let p = provider();
        let mut flows = Vec::new();
        for (seed, ret) in [(7u64, "/orders?id=1"), (8, "//evil.example")] {
            let start = flow::start_login(
                &p,
                "https://idp.example.com/auth",
                ret,
                &[],
                NOW - 5,
                &mut Xorshift(seed),
            )
            .unwrap_or_else(|| panic!("no login start"));
            let line = start.set_cookies.last().cloned().unwrap_or_default();
            let (n, v) = set_cookie_pair(&line);
            flows.push((start.flow, format!("{n}={v}")));
        }
        Fixture { p, flows }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (genuine, genuine_cookie) = &f.flows[0];
    let text = String::from_utf8_lossy(data)
        .replace("$STATE", &genuine.state)
        .replace("$FLOW", genuine_cookie)
        .replace("$OTHER", &f.flows[1].1)
        .replace("$ISS", "https%3A%2F%2Fidp.example.com%2Frealms%2Facme");
    let mut lines = text.split('\n');
    let pq = lines.next().unwrap_or("");
    let mut headers = vec![(":path".to_string(), pq.to_string())];
    for l in lines {
        headers.push(("cookie".to_string(), l.to_string()));
    }
    let req = Request::new(headers);
    let present = cookies::request_cookies(&req);

    let parsed = flow::parse_callback(pq);
    if let Ok(CallbackParams::Error { error, .. }) = &parsed {
        assert!(error.len() <= 128 && error.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }
    match flow::verify_callback(&f.p, pq, &present, NOW) {
        Ok(v) => {
            // Only the flows sealed here pass, each with its own state.
            let known = f.flows.iter().any(|(fl, _)| *fl == v.flow);
            assert!(known, "a flow nobody started passed: {:?}", v.flow);
            match parsed {
                Ok(CallbackParams::Code { code, state, iss }) => {
                    assert_eq!(state, v.flow.state);
                    assert_eq!(code, v.code);
                    assert!(
                        iss.is_none() || iss.as_deref() == Some(ISSUER),
                        "iss {iss:?} passed"
                    );
                }
                other => panic!("verified without a code and state: {other:?}"),
            }
            assert_eq!(return_url::normalize(&v.flow.return_to), v.flow.return_to);
            assert!(v.clear_flow.contains("Max-Age=0"));
            assert!(!v.clear_flow.bytes().any(|b| b < 0x20 || b == 0x7f));
        }
        Err(CallbackFailure::IdpError(e)) => {
            assert!(matches!(parsed, Ok(CallbackParams::Error { .. })), "{e}");
        }
        Err(_) => {}
    }
    // The flow expires: ten minutes later the same callback fails.
    assert!(flow::verify_callback(&f.p, pq, &present, NOW + 601).is_err());
});
