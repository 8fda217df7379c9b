//! Issue 5: claims into headers and the payload header, spoof-proof, against real Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{claims, keys, Checks, Env};
use serde_json::{json, Value};

const GLOO: &str = "https://gloo.example";
const RICH: &str = "https://rich.example";

fn config() -> Value {
    let k = keys();
    let jwks = json!({"keys": [k.rsa.jwk(Some("rsa1"), false)]}).to_string();
    json!({
        "providers": {
            // Seed 003 (Gloo): token in `x-auth: Bearer ...` or `?auth_token=`.
            "gloo": {"issuer": GLOO, "local_jwks": {"inline_string": jwks},
                "from_headers": [{"name": "x-auth", "value_prefix": "Bearer "}],
                "from_params": ["auth_token"],
                "claim_to_headers": [{"header_name": "x-org", "claim_name": "org"},
                                     {"header_name": "x-email", "claim_name": "email"}]},
            "rich": {"issuer": RICH, "local_jwks": {"inline_string": jwks},
                "from_cookies": ["session_jwt"],
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [
                    {"header_name": "x-tenant", "claim_name": "org.tenant.id"},
                    {"header_name": "x-level", "claim_name": "level"},
                    {"header_name": "x-ratio", "claim_name": "ratio"},
                    {"header_name": "x-verified", "claim_name": "verified"},
                    {"header_name": "x-groups", "claim_name": "groups"},
                    {"header_name": "x-profile", "claim_name": "profile"},
                    {"header_name": "x-missing", "claim_name": "nope.nothing"},
                    {"header_name": "x-note", "claim_name": "note"}]},
            "padded": {"issuer": "https://padded.example", "local_jwks": {"inline_string": jwks},
                "from_headers": [{"name": "x-padded"}],
                "forward_payload_header": "x-padded-payload", "pad_forward_payload_header": true},
            "keep": {"issuer": "https://keep.example", "local_jwks": {"inline_string": jwks},
                "from_params": ["keep_token"], "forward": true}
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/optional"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/gloo"}, "requires": {"provider_name": "gloo"}},
            {"match": {"prefix": "/padded"}, "requires": {"provider_name": "padded"}},
            {"match": {"prefix": "/keep"}, "requires": {"provider_name": "keep"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "rich"}}
        ]
    })
}

#[test]
fn claims_reach_the_upstream_and_nothing_else_does() {
    let k = keys();
    let env = Env::start(&config());
    let mut c = Checks::default();
    let sign = |iss: &str, extra: Value| k.rsa.sign(Some("rsa1"), &claims(iss, extra)).unwrap();

    // Seed 003, header and query parameter.
    let gloo = sign(GLOO, json!({"org": "internal", "email": "dev1@solo.io"}));
    for (case, args) in [
        (
            "x-auth header",
            vec![
                "-H".to_string(),
                format!("X-Auth: Bearer {gloo}"),
                "/gloo/get".to_string(),
            ],
        ),
        (
            "auth_token param",
            vec![format!("/gloo/get?auth_token={gloo}")],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = env.curl(&args);
        c.eq(&format!("{case} status"), r.status, 200);
        if r.status == 200 {
            c.eq(
                &format!("{case} x-org"),
                r.upstream_header("x-org"),
                Some("internal".into()),
            );
            c.eq(
                &format!("{case} x-email"),
                r.upstream_header("x-email"),
                Some("dev1@solo.io".into()),
            );
            c.eq(
                &format!("{case} token stripped (header)"),
                r.upstream_header("x-auth"),
                None,
            );
            c.eq(
                &format!("{case} token stripped (query)"),
                r.upstream()["path"].as_str(),
                Some("/gloo/get"),
            );
        }
    }

    // Nested, number, boolean, list and object claims; the payload header.
    let rich_claims = claims(
        RICH,
        json!({
            "org": {"tenant": {"id": "t-42"}}, "level": 42, "ratio": 1.5, "verified": true,
            "groups": ["admins", "dev ops", 7], "profile": {"name": "Ann", "langs": ["en"]},
            "note": "line1\nX-Injected: 1"
        }),
    );
    let rich = k.rsa.sign(Some("rsa1"), &rich_claims).unwrap();
    let spoofed = [
        "-H",
        "x-jwt-payload: eyJzdWIiOiJhZG1pbiJ9",
        "-H",
        "x-email: admin@corp",
        "-H",
        "X-Tenant: root",
        "-H",
        "x-org: evil",
        "-H",
        "x-missing: forged",
        "-H",
        "x-note: forged",
    ];
    let mut args: Vec<&str> = spoofed.to_vec();
    let bearer = format!("Authorization: Bearer {rich}");
    args.extend(["-H", &bearer, "/api"]);
    let r = env.curl(&args);
    c.eq(
        "rich status (claim with a newline does not fail the request)",
        r.status,
        200,
    );
    if r.status == 200 {
        let h = |n: &str| r.upstream_header(n);
        let payload = h("x-jwt-payload").unwrap_or_default();
        let decoded: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap_or_default())
                .unwrap_or(Value::Null);
        c.eq(
            "x-jwt-payload decodes to the payload",
            decoded,
            Value::Object(rich_claims.clone()),
        );
        c.eq(
            "x-jwt-payload is the segment as sent",
            payload.as_str(),
            rich.split('.').nth(1).unwrap(),
        );
        c.eq("nested", h("x-tenant"), Some("t-42".into()));
        c.eq("number", h("x-level"), Some("42".into()));
        c.eq("fraction", h("x-ratio"), Some("1.5".into()));
        c.eq("boolean", h("x-verified"), Some("true".into()));
        c.eq("list", h("x-groups"), Some("admins,dev ops,7".into()));
        c.eq(
            "object",
            h("x-profile"),
            Some(URL_SAFE_NO_PAD.encode(r#"{"langs":["en"],"name":"Ann"}"#)),
        );
        c.eq(
            "missing claim sets nothing (and the spoofed one is gone)",
            h("x-missing"),
            None,
        );
        c.eq("claim with newline not forwarded", h("x-note"), None);
        c.eq("no injected header", h("x-injected"), None);
        c.eq("spoofed x-email removed", h("x-email"), None);
        c.eq("spoofed x-org removed", h("x-org"), None);
        c.eq("token stripped", h("authorization"), None);
    }

    // Spoofing with no token on a public route, and an invalid token on an optional route.
    for (case, extra) in [
        ("public, no token", None),
        (
            "optional, invalid token",
            Some("Authorization: Bearer 12345"),
        ),
    ] {
        let mut args: Vec<&str> = spoofed.to_vec();
        if let Some(e) = extra {
            args.extend(["-H", e]);
        }
        args.push(if extra.is_some() {
            "/optional"
        } else {
            "/public"
        });
        let r = env.curl(&args);
        c.eq(&format!("{case} status"), r.status, 200);
        if r.status == 200 {
            for name in [
                "x-jwt-payload",
                "x-email",
                "x-tenant",
                "x-org",
                "x-missing",
                "x-note",
            ] {
                c.eq(
                    &format!("{case}: {name} absent upstream"),
                    r.upstream_header(name),
                    None,
                );
            }
        }
    }

    // Padding on request.
    let padded = sign("https://padded.example", json!({"p": "ab"}));
    let r = env.curl(&["-H", &format!("x-padded: {padded}"), "/padded"]);
    if r.status == 200 {
        let v = r.upstream_header("x-padded-payload").unwrap_or_default();
        c.eq("padded length", v.len() % 4, 0);
        c.check("padded decodes", URL_SAFE.decode(&v).is_ok(), || v.clone());
    } else {
        c.eq("padded status", r.status, 200);
    }

    // forward: false strips a cookie token and keeps the other cookies; forward: true keeps it.
    let r = env.curl(&[
        "-H",
        &format!("Cookie: theme=dark; session_jwt={rich}; lang=en"),
        "/cookie",
    ]);
    c.eq("cookie status", r.status, 200);
    if r.status == 200 {
        c.eq(
            "cookie stripped, others kept",
            r.upstream_header("cookie"),
            Some("theme=dark; lang=en".into()),
        );
    }
    let keep = sign("https://keep.example", json!({}));
    let r = env.curl(&[&format!("/keep?a=1&keep_token={keep}")]);
    c.eq("forward true status", r.status, 200);
    if r.status == 200 {
        c.eq(
            "forward true keeps the query token",
            r.upstream()["path"].as_str().map(String::from),
            Some(format!("/keep?a=1&keep_token={keep}")),
        );
    }
    c.finish(&env);
}
