//! Issue 6: Istio AuthorizationPolicy semantics on claims, against real Envoy, with the seed
//! transcripts of posts 001 (Auth0 + httpbin) and 004 (svc1/svc2 audiences and groups).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{keys, now, Checks, Env};
use serde_json::{json, Map, Value};

const AUTH0: &str = "https://leonseng.au.auth0.com/";
const CLIENT: &str = "QWPjwvmVTLVJiQejcPJim0CKR3pxtgd3@clients";

fn jwks() -> String {
    json!({"keys": [keys().rsa.jwk(Some("rsa1"), false)]}).to_string()
}

fn token(payload: Value) -> String {
    let t = now();
    let mut m: Map<String, Value> = json!({"iat": t, "exp": t + 3600})
        .as_object()
        .unwrap()
        .clone();
    m.extend(payload.as_object().unwrap().clone());
    keys().rsa.sign(Some("rsa1"), &m).unwrap()
}

fn seed_001_config() -> Value {
    let extra = |path: &str, when: Value| {
        json!({"name": format!("extra{path}"), "action": "ALLOW",
        "rules": [{"to": [{"operation": {"hosts": ["extra.example"], "paths": [format!("{path}*")]}}], "when": when}]})
    };
    json!({
        "providers": {"auth0": {"issuer": AUTH0, "local_jwks": {"inline_string": jwks()},
                                "forward_payload_header": "x-jwt-payload"}},
        // As Istio's RequestAuthentication: a token is optional, but an invalid one is refused.
        "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}],
        "authorization": {"policies": [
            {"name": "httpbin-authz-policy", "action": "ALLOW", "rules": [{
                "from": [{"source": {"requestPrincipals": [format!("{AUTH0}/{CLIENT}")]}}],
                "to": [{"operation": {"hosts": ["httpbin"], "methods": ["GET"], "paths": ["/headers"]}}],
                "when": [{"key": "request.auth.claims[aud]", "values": ["istio-jwt-test"]},
                         {"key": "request.auth.claims[scope]", "values": ["write:database"]}]}]},
            {"name": "any-principal", "action": "ALLOW", "rules": [{
                "from": [{"source": {"request_principals": ["*"]}}],
                "to": [{"operation": {"hosts": ["star.example"]}}]}]},
            {"name": "deny-banned", "action": "DENY", "rules": [{
                "to": [{"operation": {"hosts": ["extra.example"]}}],
                "when": [{"key": "request.auth.claims[banned]", "values": ["true"]}]}]},
            {"name": "audit-all", "action": "AUDIT", "rules": [{}]},
            extra("/nested", json!([{"key": "request.auth.claims[org][tier]", "values": ["gold"]}])),
            extra("/number", json!([{"key": "request.auth.claims[level]", "values": ["42"]}])),
            extra("/bool", json!([{"key": "request.auth.claims[verified]", "values": ["true"]}])),
            extra("/header", json!([{"key": "request.headers[x-tenant]", "values": ["acme"]}])),
            extra("/notvalues", json!([{"key": "request.auth.claims[org][tier]", "not_values": ["free"]}])),
            extra("/list", json!([{"key": "request.auth.claims[roles]", "values": ["adm*"]}])),
            extra("/open", json!([]))
        ]}
    })
}

#[test]
fn seed_001_and_istio_semantics() {
    let env = Env::start(&seed_001_config());
    let mut c = Checks::default();
    let seed = json!({"iss": AUTH0, "sub": CLIENT, "aud": "istio-jwt-test", "azp": "QWPjwvmVTLVJiQejcPJim0CKR3pxtgd3",
                      "scope": "read:database write:database", "gty": "client-credentials"});
    let good = token(seed.clone());
    let with = |patch: Value| {
        let mut p = seed.clone();
        for (k, v) in patch.as_object().unwrap() {
            p[k] = v.clone();
        }
        token(p)
    };
    let get = |host: &str, path: &str, tok: Option<&str>, extra: &[&str]| {
        let hh = format!("Host: {host}");
        let bearer = tok.map(|t| format!("Authorization: Bearer {t}"));
        let mut args: Vec<&str> = vec!["-H", &hh];
        if let Some(b) = &bearer {
            args.extend(["-H", b.as_str()]);
        }
        args.extend(extra);
        args.push(path);
        env.curl(&args)
    };
    let rbac = "RBAC: access denied";

    let r = get("httpbin", "/headers", Some(&good), &[]);
    c.eq("seed: good token GET /headers", r.status, 200);
    if r.status == 200 {
        c.check(
            "seed: x-jwt-payload forwarded",
            r.upstream_header("x-jwt-payload").is_some(),
            || r.body.clone(),
        );
    }
    c.reply(
        "seed: no token",
        &get("httpbin", "/headers", None, &[]),
        403,
        rbac,
    );
    let r = get("httpbin", "/headers", None, &[]);
    c.eq(
        "seed: RBAC denial has no challenge",
        r.header("www-authenticate"),
        None,
    );
    c.reply(
        "seed: other subject",
        &get(
            "httpbin",
            "/headers",
            Some(&with(
                json!({"sub": "uoPlJVCJID9UxJS1jdOMPcr9Gmz2TGgP@clients"}),
            )),
            &[],
        ),
        403,
        rbac,
    );
    c.reply(
        "seed: POST /post",
        &get("httpbin", "/post", Some(&good), &["-X", "POST"]),
        403,
        rbac,
    );
    c.reply(
        "seed: POST /headers",
        &get("httpbin", "/headers", Some(&good), &["-X", "POST"]),
        403,
        rbac,
    );
    c.reply(
        "seed: GET /ip",
        &get("httpbin", "/ip", Some(&good), &[]),
        403,
        rbac,
    );
    c.reply(
        "seed: scope read:database only",
        &get(
            "httpbin",
            "/headers",
            Some(&with(json!({"scope": "read:database"}))),
            &[],
        ),
        403,
        rbac,
    );
    c.reply(
        "seed: wrong aud",
        &get(
            "httpbin",
            "/headers",
            Some(&with(json!({"aud": "other"}))),
            &[],
        ),
        403,
        rbac,
    );
    c.eq(
        "seed: aud list",
        get(
            "httpbin",
            "/headers",
            Some(&with(json!({"aud": ["x", "istio-jwt-test"]}))),
            &[],
        )
        .status,
        200,
    );
    c.reply(
        "seed: malformed token is authn's 401",
        &get("httpbin", "/headers", Some("bad"), &[]),
        401,
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
    );
    // requestPrincipals ["*"]: any token with iss and sub; none without.
    c.eq(
        "*: any principal",
        get(
            "star.example",
            "/x",
            Some(&with(json!({"sub": "someone"}))),
            &[],
        )
        .status,
        200,
    );
    c.reply(
        "*: no token",
        &get("star.example", "/x", None, &[]),
        403,
        rbac,
    );
    let no_sub = token(json!({"iss": AUTH0}));
    c.reply(
        "*: token without sub",
        &get("star.example", "/x", Some(&no_sub), &[]),
        403,
        rbac,
    );

    // Path tricks on the seed policy (paths ["/headers"], GET).
    c.eq(
        "path: query ignored",
        get("httpbin", "/headers?x=1", Some(&good), &[]).status,
        200,
    );
    c.eq(
        "path: //headers merged",
        get("httpbin", "//headers", Some(&good), &[]).status,
        200,
    );
    c.reply(
        "path: /HEADERS is another path",
        &get("httpbin", "/HEADERS", Some(&good), &[]),
        403,
        rbac,
    );
    c.reply(
        "path: /headers/../admin normalized to /admin",
        &get("httpbin", "/headers/../admin", Some(&good), &[]),
        403,
        rbac,
    );
    c.eq(
        "path: /headers/./ normalized",
        get("httpbin", "/./headers", Some(&good), &[]).status,
        200,
    );
    let r = get("httpbin", "/headers%2Fx", Some(&good), &[]);
    c.eq(
        "path: %2F is unescaped and redirected by Envoy",
        r.status,
        307,
    );
    c.reply(
        "path: /headers/x",
        &get("httpbin", "/headers/x", Some(&good), &[]),
        403,
        rbac,
    );

    // DENY beats ALLOW; AUDIT never blocks; typed and nested claims; headers; not_values.
    let ex = |path: &str, claims: Value, extra: &[&str]| {
        let mut p = json!({"iss": AUTH0, "sub": "u1"});
        for (k, v) in claims.as_object().unwrap() {
            p[k] = v.clone();
        }
        get("extra.example", path, Some(&token(p)), extra).status
    };
    c.eq(
        "open route allowed (audit-all matched, did not block)",
        ex("/open", json!({}), &[]),
        200,
    );
    c.eq(
        "DENY beats ALLOW",
        ex("/open", json!({"banned": true}), &[]),
        403,
    );
    c.eq(
        "banned false",
        ex("/open", json!({"banned": false}), &[]),
        200,
    );
    c.eq(
        "nested gold",
        ex("/nested", json!({"org": {"tier": "gold"}}), &[]),
        200,
    );
    c.eq(
        "nested silver",
        ex("/nested", json!({"org": {"tier": "silver"}}), &[]),
        403,
    );
    c.eq("number 42", ex("/number", json!({"level": 42}), &[]), 200);
    c.eq("number 43", ex("/number", json!({"level": 43}), &[]), 403);
    c.eq(
        "string \"42\" also matches",
        ex("/number", json!({"level": "42"}), &[]),
        200,
    );
    c.eq(
        "bool true",
        ex("/bool", json!({"verified": true}), &[]),
        200,
    );
    c.eq(
        "bool false",
        ex("/bool", json!({"verified": false}), &[]),
        403,
    );
    c.eq(
        "header acme",
        ex("/header", json!({}), &["-H", "x-tenant: acme"]),
        200,
    );
    c.eq(
        "header other",
        ex("/header", json!({}), &["-H", "x-tenant: other"]),
        403,
    );
    c.eq(
        "not_values gold",
        ex("/notvalues", json!({"org": {"tier": "gold"}}), &[]),
        200,
    );
    c.eq(
        "not_values free",
        ex("/notvalues", json!({"org": {"tier": "free"}}), &[]),
        403,
    );
    c.eq(
        "list prefix match",
        ex("/list", json!({"roles": ["dev", "admin"]}), &[]),
        200,
    );
    c.eq(
        "list no match",
        ex("/list", json!({"roles": ["dev"]}), &[]),
        403,
    );
    c.finish(&env);
}

fn seed_004_config() -> Value {
    let iss = "https://idp-on-cloud-run-3kdezruzua-uc.a.run.app";
    json!({
        "providers": {"idp": {"issuer": iss, "local_jwks": {"inline_string": jwks()}}},
        "rules": [
            {"match": {"prefix": "/", "hosts": ["svc1.example.com"]},
             "requires": {"provider_and_audiences": {"provider_name": "idp", "audiences": ["https://svc1.example.com"]}}},
            {"match": {"prefix": "/", "hosts": ["svc2.example.com"]},
             "requires": {"provider_and_audiences": {"provider_name": "idp", "audiences": ["https://svc2.example.com"]}}}
        ],
        "authorization": {"policies": [
            {"name": "svc1-az", "action": "ALLOW", "rules": [{"to": [{"operation": {"hosts": ["svc1.example.com"]}}],
                "when": [{"key": "request.auth.claims[aud]", "values": ["https://svc1.example.com"]}]}]},
            {"name": "svc2-az", "action": "ALLOW", "rules": [{
                "to": [{"operation": {"hosts": ["svc2.example.com"], "methods": ["GET"]}}],
                "when": [{"key": "request.auth.claims[iss]", "values": [iss]},
                         {"key": "request.auth.claims[aud]", "values": ["https://svc2.example.com"]},
                         {"key": "request.auth.claims[groups]", "values": ["group1", "group2"]},
                         {"key": "request.auth.claims[sub]", "values": ["bob"]}]}]}
        ]}
    })
}

#[test]
fn seed_004_hosts_audiences_and_groups() {
    let env = Env::start(&seed_004_config());
    let mut c = Checks::default();
    let iss = "https://idp-on-cloud-run-3kdezruzua-uc.a.run.app";
    let alice = token(json!({"iss": iss, "sub": "alice", "aud": "https://svc1.example.com"}));
    let bob = token(
        json!({"iss": iss, "sub": "bob", "aud": "https://svc2.example.com", "groups": ["group1", "group2"]}),
    );
    let bob_no_groups = token(json!({"iss": iss, "sub": "bob", "aud": "https://svc2.example.com"}));
    let get = |host: &str, tok: Option<&str>| {
        let hh = format!("Host: {host}");
        let b = tok.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["-H", hh.as_str()];
        if let Some(b) = &b {
            args.extend(["-H", b.as_str()]);
        }
        args.push("/version");
        env.curl(&args)
    };
    c.reply(
        "malformed token",
        &get("svc1.example.com", Some("foo")),
        401,
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
    );
    c.reply(
        "no token",
        &get("svc1.example.com", None),
        401,
        "Jwt is missing",
    );
    c.eq(
        "alice to svc1",
        get("svc1.example.com", Some(&alice)).status,
        200,
    );
    c.reply(
        "alice to svc2",
        &get("svc2.example.com", Some(&alice)),
        403,
        "Audiences in Jwt are not allowed",
    );
    c.eq(
        "bob to svc2",
        get("svc2.example.com", Some(&bob)).status,
        200,
    );
    c.reply(
        "bob without groups to svc2",
        &get("svc2.example.com", Some(&bob_no_groups)),
        403,
        "RBAC: access denied",
    );
    c.reply(
        "bob to svc1",
        &get("svc1.example.com", Some(&bob)),
        403,
        "Audiences in Jwt are not allowed",
    );
    c.finish(&env);
}
