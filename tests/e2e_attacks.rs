//! Issue 8: the attack corpus against real Envoy. Every case must be refused with the right
//! status, nothing may reach the upstream (Envoy's own `upstream_rq_total` for the upstream
//! cluster does not move), and no wasm VM may crash (checked by `Checks::finish`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{claims, keys, now, Checks, Env};
use envoy_jwt_authz::cli::mint;
use serde_json::{json, Value};

const ISS: &str = "https://issuer.example";

fn config() -> Value {
    let k = keys();
    let jwks = json!({"keys": [
        k.rsa.jwk(Some("rsa1"), false),
        k.ec.jwk(Some("ec1"), true),
        k.ed.jwk(Some("ed1"), false)
    ]});
    let hs = json!({"keys": [k.hs.jwk(Some("hs1"), true)]});
    json!({
        "providers": {"hs": {"issuer": ISS, "from_headers": [{"name": "x-hs-token"}],
                             "local_jwks": {"inline_string": hs.to_string()}},
                      "main": {"issuer": ISS, "local_jwks": {"inline_string": jwks.to_string()},
                               "forward_payload_header": "x-jwt-payload",
                               "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}},
        "rules": [{"match": {"prefix": "/public"}},
                  {"match": {"prefix": "/hs"}, "requires": {"provider_name": "hs"}},
                  {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}],
        "cors": {"allow_origin_string_match": [{"safe_regex": {"regex": ".*"}}],
                 "allow_methods": "GET", "allow_credentials": true}
    })
}

fn b64(s: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn upstream_requests(env: &Env) -> u64 {
    env.admin_get("/stats?filter=^cluster\\.upstream\\.upstream_rq_total$")
        .split(": ")
        .nth(1)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A token with this exact header and payload text, signed by a key that *is* in the set
/// (so only the header or payload can be the reason for a refusal).
fn rsa_signed_raw(header: &str, payload: &str) -> String {
    let k = keys();
    // Sign through the real key, then splice: jwt-simple only signs its own headers, so the
    // signature is over a different input and the token must fail however it is read.
    let genuine = k.rsa.sign(Some("rsa1"), &claims(ISS, json!({}))).unwrap();
    let sig = genuine.rsplit('.').next().unwrap().to_string();
    format!(
        "{}.{}.{sig}",
        b64(header.as_bytes()),
        b64(payload.as_bytes())
    )
}

#[test]
fn attack_corpus_is_refused() {
    let k = keys();
    let env = Env::start(&config());
    let mut c = Checks::default();
    let t = now();
    let payload =
        json!({"iss": ISS, "sub": "mallory", "aud": "api://default", "iat": t, "exp": t + 600})
            .to_string();
    let good = k.rsa.sign(Some("rsa1"), &claims(ISS, json!({}))).unwrap();
    let rsa_jwk = k.rsa.jwk(Some("rsa1"), false);
    let n_bytes = URL_SAFE_NO_PAD
        .decode(rsa_jwk["n"].as_str().unwrap())
        .unwrap();

    let hs_secret = URL_SAFE_NO_PAD
        .decode(k.hs.jwk(None, false)["k"].as_str().unwrap())
        .unwrap();
    let mut hs_cases: Vec<(String, String)> = Vec::new();
    // (case, token, allowed statuses)
    let mut cases: Vec<(String, String, Vec<u16>)> = Vec::new();
    let mut add = |name: &str, token: String, statuses: &[u16]| {
        cases.push((name.to_string(), token, statuses.to_vec()))
    };
    // alg none in every spelling, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE", "none ", ""] {
        let h = json!({"alg": alg, "typ": "JWT"}).to_string();
        add(
            &format!("alg {alg:?} empty sig"),
            mint::unsigned(&h, &payload, ""),
            &[401],
        );
        add(
            &format!("alg {alg:?} with sig"),
            mint::unsigned(&h, &payload, "c2ln"),
            &[401],
        );
    }
    add(
        "no alg",
        mint::unsigned(r#"{"typ":"JWT"}"#, &payload, "c2ln"),
        &[401],
    );
    add(
        "alg number",
        mint::unsigned(r#"{"alg":256}"#, &payload, "c2ln"),
        &[401],
    );
    // HS/RS key confusion: HMAC with the RSA public key in every form an attacker might try.
    for (form, secret) in [
        ("jwk json", rsa_jwk.to_string().into_bytes()),
        ("modulus bytes", n_bytes.clone()),
        (
            "modulus b64",
            rsa_jwk["n"].as_str().unwrap().as_bytes().to_vec(),
        ),
    ] {
        for (alg, kid) in [
            ("HS256", "rsa1"),
            ("HS384", "rsa1"),
            ("HS512", "rsa1"),
            ("HS256", ""),
        ] {
            let h = if kid.is_empty() {
                json!({"alg": alg}).to_string()
            } else {
                json!({"alg": alg, "kid": kid}).to_string()
            };
            // hs256_raw signs with SHA-256 whatever the header says: wrong either way.
            add(
                &format!("{alg} kid {kid:?} keyed with {form}"),
                mint::hs256_raw(&secret, &h, &payload),
                &[401],
            );
        }
    }
    // ES256 with r = s = 0 (CVE-2022-21449) and other degenerate signatures.
    for (name, sig) in [
        ("r=s=0", vec![0u8; 64]),
        ("all ones", vec![0xffu8; 64]),
        ("short", vec![1u8; 63]),
        (
            "DER-encoded",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
    ] {
        let h = json!({"alg": "ES256", "kid": "ec1"}).to_string();
        add(
            &format!("ES256 {name}"),
            mint::unsigned(&h, &payload, &b64(&sig)),
            &[401],
        );
    }
    add(
        "EdDSA zero sig",
        mint::unsigned(r#"{"alg":"EdDSA","kid":"ed1"}"#, &payload, &b64(&[0u8; 64])),
        &[401],
    );
    // Keys or key locations embedded in the header are never used.
    let rogue = &k.rogue;
    let rogue_jwk = rogue.jwk(Some("rsa1"), false);
    for (name, extra) in [
        ("embedded jwk", json!({"jwk": rogue_jwk})),
        ("jku", json!({"jku": "http://127.0.0.1:1/jwks.json"})),
        ("x5u", json!({"x5u": "http://127.0.0.1:1/cert.pem"})),
        ("x5c", json!({"x5c": [STANDARD.encode(b"not a cert")]})),
    ] {
        let mut h = json!({"alg": "RS256", "kid": "rsa1"});
        for (key, v) in extra.as_object().unwrap() {
            h[key] = v.clone();
        }
        // Signed with the rogue key the header points at.
        let tok = rogue.sign(Some("rsa1"), &claims(ISS, json!({}))).unwrap();
        let sig = tok.rsplit('.').next().unwrap();
        add(
            name,
            format!(
                "{}.{}.{sig}",
                b64(h.to_string().as_bytes()),
                b64(payload.as_bytes())
            ),
            &[401],
        );
    }
    add(
        "rogue key, known kid",
        rogue.sign(Some("rsa1"), &claims(ISS, json!({}))).unwrap(),
        &[401],
    );
    for kid in ["../../../../dev/null", "' OR '1'='1", "rsa1\u{0}", "*", ""] {
        let tok = rogue.sign(Some(kid), &claims(ISS, json!({}))).unwrap();
        add(&format!("kid {kid:?}"), tok, &[401]);
    }
    add(
        "kid number",
        rsa_signed_raw(r#"{"alg":"RS256","kid":1}"#, &payload),
        &[401],
    );
    // crit and b64 are refused, even with a genuine signature over them.
    add(
        "crit",
        rsa_signed_raw(
            r#"{"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1}"#,
            &payload,
        ),
        &[401],
    );
    add(
        "b64 false",
        rsa_signed_raw(
            r#"{"alg":"RS256","kid":"rsa1","b64":false,"crit":["b64"]}"#,
            &payload,
        ),
        &[401],
    );
    // Duplicate members.
    add(
        "dup alg",
        rsa_signed_raw(r#"{"alg":"RS256","alg":"none","kid":"rsa1"}"#, &payload),
        &[401],
    );
    add(
        "dup sub",
        rsa_signed_raw(
            r#"{"alg":"RS256","kid":"rsa1"}"#,
            &format!(
                r#"{{"iss":"{ISS}","sub":"a","sub":"admin","exp":{}}}"#,
                t + 600
            ),
        ),
        &[401],
    );
    // Numeric edge cases for exp and nbf (genuinely signed through the key's own signer).
    for (name, extra) in [
        ("exp string", json!({"exp": (t + 600).to_string()})),
        ("exp float", json!({"exp": (t as f64) + 600.5})),
        ("exp negative", json!({"exp": -1})),
        ("exp 2^63", json!({"exp": 9_223_372_036_854_775_808u64})),
        ("exp 1e400-ish", json!({"exp": 1.0e300})),
        ("exp past", json!({"exp": t - 3600})),
        ("nbf string", json!({"nbf": t.to_string()})),
        ("nbf future", json!({"nbf": t + 3600})),
        ("nbf float", json!({"nbf": 0.5})),
        ("nbf negative", json!({"nbf": -5})),
        ("iat string", json!({"iat": "now"})),
    ] {
        let mut p: Value = serde_json::from_str(&payload).unwrap();
        for (key, v) in extra.as_object().unwrap() {
            p[key] = v.clone();
        }
        // Exactly this payload text under a genuine HMAC signature: only the claim can fail.
        hs_cases.push((
            name.to_string(),
            mint::hs256_raw(&hs_secret, r#"{"alg":"HS256","kid":"hs1"}"#, &p.to_string()),
        ));
    }
    // Shapes.
    add("4 segments", format!("{good}.x"), &[401]);
    add(
        "2 segments",
        good.rsplit_once('.').unwrap().0.to_string(),
        &[401],
    );
    add("empty segments", "..".into(), &[401]);
    add(
        "64 KiB",
        format!("{}{}", good, "A".repeat(64 * 1024)),
        &[401, 431],
    );
    add(
        "9 KiB",
        format!(
            "{}.{}",
            good.rsplit_once('.').unwrap().0,
            "A".repeat(9 * 1024)
        ),
        &[401],
    );
    // Non-canonical base64 in the signature: padding, standard alphabet, stray trailing bits.
    let (head, sig) = good.rsplit_once('.').unwrap();
    add("sig padded", format!("{head}.{sig}=="), &[401]);
    add(
        "sig std alphabet",
        format!("{head}.{}", sig.replace('-', "+").replace('_', "/") + "+/"),
        &[401],
    );
    let mut bytes = sig.as_bytes().to_vec();
    let last = bytes.len() - 1;
    // 256 bytes encode to 342 chars with 4 unused bits in the last one.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|c| *c == bytes[last]).unwrap();
    bytes[last] = alphabet[idx ^ 1];
    add(
        "sig trailing bits",
        format!("{head}.{}", String::from_utf8(bytes).unwrap()),
        &[401],
    );
    add(
        "whitespace inside",
        format!("{} {}", &good[..10], &good[10..]),
        &[401],
    );

    let before = upstream_requests(&env);
    for (name, token, statuses) in &cases {
        let r = env.curl(&["-H", &format!("Authorization: Bearer {token}"), "/x"]);
        c.check(name, statuses.contains(&r.status), || {
            format!("status {} body {:?}", r.status, r.body)
        });
    }
    for (name, token) in &hs_cases {
        let r = env.curl(&["-H", &format!("x-hs-token: {token}"), "/hs"]);
        c.check(name, r.status == 401, || {
            format!("status {} body {:?}", r.status, r.body)
        });
    }
    // The same payload shape with sane claims passes: the refusals above are the claims'.
    let sane = json!({"iss": ISS, "sub": "s", "exp": t + 600}).to_string();
    let control = mint::hs256_raw(&hs_secret, r#"{"alg":"HS256","kid":"hs1"}"#, &sane);
    c.eq(
        "HS256 control token",
        env.curl(&["-H", &format!("x-hs-token: {control}"), "/hs"])
            .status,
        200,
    );
    // Header games.
    let bad = mint::unsigned(r#"{"alg":"none"}"#, &payload, "");
    let mut many: Vec<String> = Vec::new();
    for _ in 0..100 {
        many.push("-H".into());
        many.push(format!("Authorization: Bearer {bad}"));
    }
    many.push("/x".into());
    let args: Vec<&str> = many.iter().map(String::as_str).collect();
    c.eq("100 bad Authorization headers", env.curl(&args).status, 401);
    c.eq(
        "good and bad, names differing in case",
        env.curl(&[
            "-H",
            &format!("AUTHORIZATION: Bearer {bad}"),
            "-H",
            &format!("authorization: Bearer {good}"),
            "/x",
        ])
        .status,
        401,
    );
    c.eq(
        "Bearer without token",
        env.curl(&["-H", "Authorization: Bearer ", "/x"]).status,
        401,
    );
    c.eq(
        "token in a second header value",
        env.curl(&[
            "-H",
            &format!("Authorization: Basic x, Bearer {good}"),
            "/x",
        ])
        .status,
        401,
    );
    // CORS: `null` and hostile origins under a match-everything policy with credentials.
    let r = env.curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: null",
        "-H",
        "Access-Control-Request-Method: GET",
        "/x",
    ]);
    c.eq(
        "preflight Origin null not answered",
        (r.status, r.header("access-control-allow-origin")),
        (401, None),
    );
    let r = env.curl(&["-H", "Origin: null", "/x"]);
    c.eq(
        "Origin null never echoed",
        r.header("access-control-allow-origin"),
        None,
    );
    let rejected = cases.len() + hs_cases.len() + 6;
    let after = upstream_requests(&env);
    c.eq("only the control reached the upstream", after - before, 1);

    // Accepted requests still go through, and spoofed headers in any case are dropped.
    let r = env.curl(&[
        "-H",
        "X-JWT-PAYLOAD: spoof",
        "-H",
        "X-Sub: admin",
        "-H",
        "Origin: https://x.test",
        "/public",
    ]);
    c.eq("public route reached", r.status, 200);
    c.eq(
        "uppercase spoof removed",
        r.upstream_header("x-jwt-payload"),
        None,
    );
    c.eq("mixed-case spoof removed", r.upstream_header("x-sub"), None);
    c.eq(
        "credentials echo the origin, never *",
        r.header("access-control-allow-origin"),
        Some("https://x.test"),
    );
    c.eq(
        "upstream counted the good one",
        upstream_requests(&env) - after,
        1,
    );
    println!("attack corpus: {rejected} cases refused, 0 forwarded");
    for name in cases
        .iter()
        .map(|c| &c.0)
        .chain(hs_cases.iter().map(|c| &c.0))
    {
        println!("  {name}");
    }
    c.finish(&env);
}

/// The review's F1 request: one unauthenticated request carrying as many distinct kid-less
/// RS256 tokens with bad signatures as the header budget holds. Without bounds each one was
/// tried against every fitting key (65 ms of V8 per request with 4 RSA-2048 keys); now the
/// request makes at most `max_signature_checks_per_request` checks and says so.
#[test]
fn many_tokens_in_one_request_cost_a_bounded_amount() {
    let k = keys();
    // Kid-less RSA keys: every token is tried against each of them until the budget runs out.
    let jwks = json!({"keys": [k.rsa.jwk(None, false), k.rogue.jwk(None, false)]});
    let env = Env::start(&json!({
        "providers": {"p": {"issuer": ISS, "from_params": ["access_token"],
                            "local_jwks": {"inline_string": jwks.to_string()}}},
        "rules": [{"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}},
                  {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    }));
    let mut c = Checks::default();
    let head = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let forged = |n: usize| {
        let body = b64(json!({"iss": ISS, "n": n}).to_string().as_bytes());
        format!("{head}.{body}.{}", b64(&[n as u8; 256]))
    };
    // About 50 KiB of query, under Envoy's 60 KiB header budget.
    let query: Vec<String> = (0..120)
        .map(|n| format!("access_token={}", forged(n)))
        .collect();
    let path = |route: &str| format!("/{route}?{}", query.join("&"));
    let limited = |env: &Env| {
        env.admin_get("/stats?filter=jwt_authz.limit_reached$")
            .split(": ")
            .nth(1)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let r = env.curl(&[&path("lenient")]);
    c.eq(
        "allow_missing_or_failed: forged tokens ignored",
        r.status,
        200,
    );
    // Per-request counts reach Envoy every 0.1 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while limited(&env) < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    c.eq("counted in limit_reached", limited(&env), 1);
    c.check(
        "the debug log names the bound",
        env.log()
            .contains("more than max_tokens_per_request (4) tokens"),
        || "no log line naming max_tokens_per_request".into(),
    );
    // A requirement on one provider stops at the first token that fails: no bound needed.
    let r = env.curl(&[&path("strict")]);
    c.reply("provider: refused", &r, 401, "Jwt verification fails");
    // One good token among them still verifies on the lenient route.
    let good = k.rsa.sign(None, &claims(ISS, json!({}))).unwrap();
    let r = env.curl(&[&format!("/lenient?access_token={good}")]);
    c.eq("a good kid-less token still passes", r.status, 200);
    c.finish(&env);
}
