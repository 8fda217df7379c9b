//! Issue 4: CORS answered before authentication, CORS headers on every response to an allowed
//! origin (the filter's own 401/403 included), against real Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{claims, keys, Checks, Env, Resp};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.example";

fn config(forward_not_matching: bool) -> Value {
    let k = keys();
    json!({
        "providers": {"main": {"issuer": ISS,
            "local_jwks": {"inline_string": json!({"keys": [k.rsa.jwk(Some("rsa1"), false)]}).to_string()}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}],
        "cors": {
            "allow_origin_string_match": [{"exact": "http://istio.io"}, {"suffix": ".example.com"},
                                          {"safe_regex": {"regex": "https://[a-z]+\\.corp\\.test"}}],
            "allow_methods": "GET", "allow_headers": "foo,bar", "max_age": "60",
            "allow_credentials": true, "expose_headers": "x-request-id",
            "allow_private_network_access": true,
            "forward_not_matching_preflights": forward_not_matching
        },
        "authorization": {"policies": [{"name": "nobody", "action": "DENY",
            "rules": [{"to": [{"operation": {"paths": ["/deny-all*"]}}]}]}]}
    })
}

fn cors_headers(r: &Resp) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.starts_with("access-control-") || n == "vary")
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

const PREFLIGHT: [&str; 4] = ["-X", "OPTIONS", "-H", "Access-Control-Request-Method: GET"];

#[test]
fn cors_is_ordered_right() {
    let env = Env::start(&config(true));
    let mut c = Checks::default();
    let good = keys()
        .rsa
        .sign(Some("rsa1"), &claims(ISS, json!({})))
        .unwrap();
    let bearer = format!("Authorization: Bearer {good}");
    let istio = "Origin: http://istio.io";

    // Seed 000: the preflight, answered with no token.
    let pre = |origin: &str, path: &str, extra: &[&str]| {
        let mut args: Vec<&str> = PREFLIGHT.to_vec();
        args.extend(["-H", origin]);
        args.extend(extra);
        args.push(path);
        env.curl(&args)
    };
    let r = pre(istio, "/", &[]);
    c.eq("seed preflight status", r.status, 200);
    c.eq(
        "seed preflight headers",
        cors_headers(&r),
        vec![
            "access-control-allow-origin: http://istio.io",
            "access-control-allow-credentials: true",
            "access-control-allow-methods: GET",
            "access-control-allow-headers: foo,bar",
            "access-control-max-age: 60",
            "vary: Origin",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>(),
    );
    // Seed 000: the real request with a token (curl -I).
    let r = env.curl(&["-I", "-H", istio, "-H", "foo: bar", "-H", &bearer, "/"]);
    c.eq("seed real request status", r.status, 200);
    c.eq(
        "seed real request allow-origin",
        r.header("access-control-allow-origin"),
        Some("http://istio.io"),
    );
    c.eq(
        "seed real request credentials",
        r.header("access-control-allow-credentials"),
        Some("true"),
    );
    c.eq("seed real request vary", r.header("vary"), Some("Origin"));
    c.eq(
        "seed real request expose",
        r.header("access-control-expose-headers"),
        Some("x-request-id"),
    );
    // Seed 000: the 401 that Istio sends without CORS headers carries them here.
    let r = env.curl(&[
        "-I",
        "-H",
        istio,
        "-H",
        "Access-Control-Request-Method: GET",
        "-H",
        "Authorization: Bearer 12345",
        "/",
    ]);
    c.eq("seed 401 status", r.status, 401);
    c.eq(
        "seed 401 content-length",
        r.header("content-length"),
        Some("79"),
    );
    c.eq(
        "seed 401 allow-origin",
        r.header("access-control-allow-origin"),
        Some("http://istio.io"),
    );
    c.eq(
        "seed 401 credentials",
        r.header("access-control-allow-credentials"),
        Some("true"),
    );
    c.eq("seed 401 vary", r.header("vary"), Some("Origin"));
    // The filter's 403s carry them too.
    let r = env.curl(&["-H", istio, "-H", &bearer, "/deny-all"]);
    c.reply("RBAC 403 status", &r, 403, "RBAC: access denied");
    c.eq(
        "RBAC 403 allow-origin",
        r.header("access-control-allow-origin"),
        Some("http://istio.io"),
    );

    // Suffix and regex origins.
    for origin in ["https://app.example.com", "https://shop.corp.test"] {
        let r = pre(&format!("Origin: {origin}"), "/", &[]);
        c.eq(
            &format!("{origin} preflight"),
            (r.status, r.header("access-control-allow-origin")),
            (200, Some(origin)),
        );
    }
    // Disallowed origins: no CORS headers; the preflight goes on as a normal request.
    for origin in ["http://evil.io", "https://shop.corp.test.evil.io", "null"] {
        let r = pre(&format!("Origin: {origin}"), "/", &[]);
        c.reply(
            &format!("{origin} preflight forwarded"),
            &r,
            401,
            "Jwt is missing",
        );
        c.eq(
            &format!("{origin} preflight no CORS"),
            cors_headers(&r),
            Vec::<String>::new(),
        );
        let r = env.curl(&["-H", &format!("Origin: {origin}"), "-H", &bearer, "/"]);
        c.eq(
            &format!("{origin} request"),
            (r.status, cors_headers(&r)),
            (200, vec![]),
        );
    }
    // Vary is appended to the upstream's, and upstream CORS headers are left alone.
    let r = env.curl(&[
        "-H",
        istio,
        "-H",
        &bearer,
        "/?echo_header=vary:Accept-Encoding",
    ]);
    c.eq(
        "vary appended",
        r.header("vary"),
        Some("Accept-Encoding, Origin"),
    );
    let r = env.curl(&[
        "-H",
        istio,
        "-H",
        &bearer,
        "/?echo_header=access-control-allow-origin:https://upstream.example",
    ]);
    c.eq(
        "upstream allow-origin kept",
        r.header("access-control-allow-origin"),
        Some("https://upstream.example"),
    );
    c.eq(
        "upstream allow-origin single",
        r.header_count("access-control-allow-origin"),
        1,
    );
    // An upstream allow-origin that is not UTF-8 (Envoy passes bytes over 0x7F) is kept, and
    // reading it does not trap the VM.
    let r = env.curl(&[
        "-H",
        istio,
        "-H",
        &bearer,
        "/?echo_header=access-control-allow-origin:http://istio.io%FF",
    ]);
    c.eq(
        "upstream allow-origin not UTF-8",
        (
            r.status,
            r.header_count("access-control-allow-origin"),
            r.header("access-control-allow-credentials"),
            r.header("vary"),
        ),
        (200, 1, None, Some("Origin")),
    );
    // One CORS header of the upstream's without allow-origin: ours go on beside it, and its
    // own stays the only one of its name.
    let r = env.curl(&[
        "-H",
        istio,
        "-H",
        &bearer,
        "/?echo_header=access-control-allow-credentials:false",
    ]);
    c.eq(
        "upstream allow-credentials kept",
        (
            r.header("access-control-allow-origin"),
            r.header("access-control-allow-credentials"),
            r.header_count("access-control-allow-credentials"),
            r.header("access-control-expose-headers"),
            r.header("vary"),
        ),
        (
            Some("http://istio.io"),
            Some("false"),
            1,
            Some("x-request-id"),
            Some("Origin"),
        ),
    );
    // Private network access, when asked.
    let r = pre(
        istio,
        "/",
        &["-H", "Access-Control-Request-Private-Network: true"],
    );
    c.eq(
        "private network",
        r.header("access-control-allow-private-network"),
        Some("true"),
    );
    c.eq(
        "private network not asked",
        pre(istio, "/", &[]).header("access-control-allow-private-network"),
        None,
    );
    // A preflight to a route whose rule denies everything is still answered.
    let r = pre(istio, "/deny-all", &[]);
    c.eq(
        "preflight to deny-all route",
        (r.status, r.header("access-control-allow-origin")),
        (200, Some("http://istio.io")),
    );
    // OPTIONS without Access-Control-Request-Method is a normal request.
    let r = env.curl(&["-X", "OPTIONS", "-H", istio, "/"]);
    c.reply("non-preflight OPTIONS", &r, 401, "Jwt is missing");
    c.eq(
        "non-preflight OPTIONS carries CORS",
        r.header("access-control-allow-origin"),
        Some("http://istio.io"),
    );
    let r = env.curl(&["-X", "OPTIONS", "-H", istio, "-H", &bearer, "/"]);
    c.eq(
        "non-preflight OPTIONS with token reaches upstream",
        r.upstream()["method"].as_str(),
        Some("OPTIONS"),
    );
    c.finish(&env);
}

#[test]
fn unmatched_preflights_can_be_answered_without_allow_origin() {
    let env = Env::start(&config(false));
    let mut c = Checks::default();
    let mut args: Vec<&str> = PREFLIGHT.to_vec();
    args.extend(["-H", "Origin: http://evil.io", "/"]);
    let r = env.curl(&args);
    c.eq("status", r.status, 200);
    c.eq(
        "no allow-origin",
        r.header("access-control-allow-origin"),
        None,
    );
    c.eq(
        "methods still listed",
        r.header("access-control-allow-methods"),
        Some("GET"),
    );
    c.finish(&env);
}
