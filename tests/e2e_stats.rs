//! Issue 9: the filter's counters on Envoy's admin `/stats` and Prometheus endpoint move as
//! requests are allowed, denied (by reason), answered as preflights, and as key sets are
//! fetched, against real Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;

use common::jwks_server::{JwksServer, Mode};
use common::{claims, keys, now, Checks, Env, Opts};
use serde_json::json;

const ISS: &str = "https://idp.example";

/// `name: value` lines of `/stats` for our counters, without Envoy's `wasmcustom.` prefix.
fn counters(env: &Env) -> HashMap<String, u64> {
    env.admin_get("/stats?filter=jwt_authz")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(n, v)| {
            Some((
                n.trim_start_matches("wasmcustom.").to_string(),
                v.trim().parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn counters_move_on_stats_and_prometheus() {
    let k = keys();
    let set = json!({"keys": [k.rsa.jwk(Some("a"), false)]}).to_string();
    let server = JwksServer::start(Mode::Serve(set));
    let cfg = json!({
        "providers": {"idp": {"issuer": ISS, "audiences": ["api"],
            "remote_jwks": {"http_uri": {"uri": "http://idp.example/jwks", "cluster": "jwks", "timeout": "1s"},
                            "cache_duration": "600s", "kid_refetch_interval": "1s"}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        "cors": {"allow_origin_string_match": [{"exact": "https://app.example"}], "allow_methods": "GET"},
        "authorization": {"policies": [{"name": "no-admin", "action": "DENY",
            "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}]}
    });
    let env = Env::start_with(
        &cfg,
        Opts {
            concurrency: 2,
            jwks_port: Some(server.port),
            ..Opts::default()
        },
    );
    let mut c = Checks::default();
    let token = |extra: serde_json::Value, kid: &str| {
        let mut cl = claims(ISS, json!({"aud": "api"}));
        for (key, v) in extra.as_object().unwrap() {
            cl.insert(key.clone(), v.clone());
        }
        k.rsa.sign(Some(kid), &cl).unwrap()
    };
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let good = token(json!({}), "a");

    let before = counters(&env);
    c.eq(
        "all counters defined at start",
        before.get("jwt_authz.allowed").copied(),
        Some(0),
    );

    let status = |args: &[&str]| env.curl(args).status;
    // Six times: with two workers, each verifies it once and serves the rest from its cache.
    for i in 0..6 {
        c.eq(
            &format!("good {i}"),
            status(&["-H", &bearer(&good), "/"]),
            200,
        );
    }
    c.eq("missing", status(&["/"]), 401);
    let expired = token(json!({"exp": now() - 3600}), "a");
    c.eq("expired", status(&["-H", &bearer(&expired), "/"]), 401);
    let other_aud = token(json!({"aud": "other"}), "a");
    c.eq("audience", status(&["-H", &bearer(&other_aud), "/"]), 403);
    let forged = format!("{}x", &good[..good.len() - 8]);
    c.eq("invalid", status(&["-H", &bearer(&forged), "/"]), 401);
    c.eq(
        "unknown kid",
        status(&["-H", &bearer(&token(json!({}), "zz")), "/"]),
        401,
    );
    c.eq(
        "authorization",
        status(&["-H", &bearer(&good), "/admin"]),
        403,
    );
    let preflight = [
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: GET",
        "/",
    ];
    c.eq("preflight", status(&preflight), 200);
    c.eq(
        "rejected origin",
        status(&[
            "-H",
            "Origin: https://evil.example",
            "-H",
            &bearer(&good),
            "/",
        ]),
        200,
    );
    // A failed fetch: the server breaks, then an unknown kid asks for a refetch.
    server.set(Mode::Status(500));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    c.eq(
        "unknown kid during outage",
        status(&["-H", &bearer(&token(json!({}), "yy")), "/"]),
        401,
    );

    // Workers hand their counts to Envoy on every tick (0.1 s): wait for the last flush.
    let settled = |m: &HashMap<String, u64>| {
        let v = |n: &str| m.get(n).copied().unwrap_or(0);
        v("jwt_authz.allowed") - before.get("jwt_authz.allowed").copied().unwrap_or(0) >= 7
            && v("jwt_authz.denied") - before.get("jwt_authz.denied").copied().unwrap_or(0) >= 7
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut after = counters(&env);
    while !settled(&after) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = counters(&env);
    }
    // One more flush period, so that nothing counted late is missed by the exact checks.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    after = counters(&env);
    let moved =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // Good requests: 6 + the rejected-origin one (CORS refuses no request).
    c.eq("allowed", moved("jwt_authz.allowed"), 7);
    c.eq("denied", moved("jwt_authz.denied"), 7);
    c.eq("denied_missing", moved("jwt_authz.denied_missing"), 1);
    c.eq("denied_expired", moved("jwt_authz.denied_expired"), 1);
    c.eq("denied_audience", moved("jwt_authz.denied_audience"), 1);
    c.eq("denied_invalid", moved("jwt_authz.denied_invalid"), 1);
    c.eq("denied_jwks", moved("jwt_authz.denied_jwks"), 2);
    c.eq(
        "denied_authorization",
        moved("jwt_authz.denied_authorization"),
        1,
    );
    c.eq(
        "cors_preflight_answered",
        moved("jwt_authz.cors_preflight_answered"),
        1,
    );
    c.eq(
        "cors_origin_rejected",
        moved("jwt_authz.cors_origin_rejected"),
        1,
    );
    // The good token verified once, then served from the worker's cache.
    c.check(
        "jwt_cache_hit",
        moved("jwt_authz.jwt_cache_hit") >= 4,
        || format!("{after:?}"),
    );
    c.check(
        "jwt_cache_miss",
        moved("jwt_authz.jwt_cache_miss") >= 1,
        || format!("{after:?}"),
    );
    c.check(
        "jwks_fetch_success",
        after
            .get("jwt_authz.jwks_fetch_success")
            .copied()
            .unwrap_or(0)
            >= 1,
        || format!("{after:?}"),
    );
    c.eq(
        "jwks_fetch_failed",
        after.get("jwt_authz.jwks_fetch_failed").copied(),
        Some(1),
    );
    c.eq(
        "per provider fetch success equals total",
        after.get("jwt_authz.provider.idp.jwks_fetch_success"),
        after.get("jwt_authz.jwks_fetch_success"),
    );
    c.eq(
        "per provider fetch failed",
        after
            .get("jwt_authz.provider.idp.jwks_fetch_failed")
            .copied(),
        Some(1),
    );

    let prom = env.admin_get("/stats/prometheus");
    let line = prom.lines().find(|l| l.starts_with("jwt_authz_allowed"));
    c.eq(
        "prometheus allowed",
        line.and_then(|l| l.split_whitespace().nth(1)),
        Some(after["jwt_authz.allowed"].to_string().as_str()),
    );
    c.finish(&env);
}
