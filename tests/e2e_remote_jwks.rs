//! Issue 3: remote JWKS through Envoy HTTP callouts, with 4 workers: one fetch per Envoy,
//! cold start, rotation on an unknown kid, outages survived, keys removed at refresh.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::jwks_server::{JwksServer, Mode};
use common::{claims, keys, Checks, Env, Opts};
use serde_json::{json, Value};

const ISS: &str = "https://idp.example";

fn set_a() -> String {
    json!({"keys": [keys().rsa.jwk(Some("a"), false)]}).to_string()
}
fn set_ab() -> String {
    json!({"keys": [keys().rsa.jwk(Some("a"), false), keys().ec.jwk(Some("b"), false)]}).to_string()
}
fn set_b() -> String {
    json!({"keys": [keys().ec.jwk(Some("b"), false)]}).to_string()
}
fn token_a() -> String {
    keys().rsa.sign(Some("a"), &claims(ISS, json!({}))).unwrap()
}
fn token_b() -> String {
    keys().ec.sign(Some("b"), &claims(ISS, json!({}))).unwrap()
}

fn config(remote: Value, extra: Value) -> Value {
    let mut c = json!({
        "providers": {"idp": {"issuer": ISS, "remote_jwks": remote}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn start(server: &JwksServer, cfg: &Value) -> Env {
    Env::start_with(
        cfg,
        Opts {
            concurrency: 4,
            jwks_port: Some(server.port),
            ..Opts::default()
        },
    )
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

#[test]
fn one_fetch_per_envoy_and_rotation_without_restart() {
    let server = JwksServer::start(Mode::Serve(set_a()));
    let cfg = config(
        json!({"http_uri": {"uri": "http://idp.example/.well-known/jwks.json", "cluster": "jwks", "timeout": "2s"},
                            "cache_duration": "600s"}),
        json!({}),
    );
    let env = start(&server, &cfg);
    let mut c = Checks::default();
    // The first request arrives before any key set: it waits for the fetch and passes.
    let r = env.curl(&["-H", &bearer(&token_a()), "/first"]);
    c.eq("first request after start", r.status, 200);

    let paths: Vec<String> = (0..1000).map(|i| format!("/r{i}")).collect();
    let statuses = env.curl_many(&bearer(&token_a()), &paths, 16);
    c.eq("1000 requests", statuses.len(), 1000);
    c.eq(
        "1000 requests all 200",
        statuses.iter().filter(|s| **s == 200).count(),
        1000,
    );
    c.eq("JWKS requests for 4 workers", server.count(), 1);
    // Every VM (4 workers and the main thread) loaded that one fetched set.
    let log = env.log();
    let mut threads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("this VM loaded key set version 1"))
        .filter_map(|l| l.split("][").nth(1))
        .collect();
    threads.sort();
    threads.dedup();
    c.check("the set reached every worker", threads.len() >= 4, || {
        format!("VMs that loaded it: {threads:?}")
    });

    // Rotation: the IdP adds key B; the first B token triggers one refetch and passes.
    server.set(Mode::Serve(set_ab()));
    let t0 = Instant::now();
    let r = env.curl(&["-H", &bearer(&token_b()), "/rotated"]);
    c.eq("first token signed with the new key", r.status, 200);
    c.check(
        "rotation wait is short",
        t0.elapsed() < Duration::from_secs(2),
        || format!("{:?}", t0.elapsed()),
    );
    c.eq("JWKS requests after rotation", server.count(), 2);
    let statuses = env.curl_many(&bearer(&token_b()), &paths[..200], 16);
    c.eq(
        "new key on every worker",
        statuses.iter().filter(|s| **s == 200).count(),
        200,
    );

    // A flood of unknown kids: at most one refetch per kid_refetch_interval (30 s).
    let before = server.count();
    let mut unknown = 0;
    for i in 0..40 {
        let t = keys()
            .ec
            .sign(Some(&format!("random-{i}")), &claims(ISS, json!({})))
            .unwrap();
        let r = env.curl(&["-H", &bearer(&t), "/flood"]);
        if r.status == 401 && r.body == "Jwks doesn't have key to match kid or alg from Jwt" {
            unknown += 1;
        }
    }
    c.eq("unknown kids refused", unknown, 40);
    c.check(
        "flood fetches at most once",
        server.count() - before <= 1,
        || format!("{} fetches", server.count() - before),
    );
    c.check(
        "fetch logged",
        env.log().contains(
            "jwks idp: fetched 1 keys from idp.example/.well-known/jwks.json via cluster jwks",
        ),
        || "no fetch log line".into(),
    );
    c.finish(&env);
}

#[test]
fn outages_keep_the_last_good_set_and_removed_keys_stop_working() {
    let server = JwksServer::start(Mode::Serve(set_a()));
    let cfg = config(
        json!({"http_uri": {"uri": "http://idp.example/jwks", "cluster": "jwks", "timeout": "1s"},
                            "cache_duration": "2s", "kid_refetch_interval": "1s"}),
        json!({}),
    );
    let env = start(&server, &cfg);
    let mut c = Checks::default();
    let a = bearer(&token_a());
    c.eq("warm-up", env.curl(&["-H", &a, "/warm"]).status, 200);

    // 3 x cache_duration of outage: 500, then garbage, then a hanging server.
    let mut slowest = Duration::ZERO;
    let mut failures = 0;
    let mut requests = 0;
    for mode in [Mode::Status(500), Mode::Garbage, Mode::Hang] {
        server.set(mode.clone());
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let t0 = Instant::now();
            let r = env.curl(&["-H", &a, "/during-outage"]);
            slowest = slowest.max(t0.elapsed());
            requests += 1;
            if r.status != 200 {
                failures += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    c.eq("requests refused during the outage", failures, 0);
    c.check(
        "no request waited on the hanging server",
        slowest < Duration::from_millis(500),
        || format!("slowest {slowest:?} of {requests}"),
    );
    let log = env.log();
    let warns = log
        .matches("jwks idp: fetch from idp.example/jwks via cluster jwks failed")
        .count();
    c.check(
        "outage logged once per state change",
        (1..=3).contains(&warns) && log.contains("failed: HTTP 500; keeping the key set fetched"),
        || {
            log.lines()
                .filter(|l| l.contains("jwks idp"))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );

    // Recovery, then key A is removed: after the next refresh its tokens fail.
    server.set(Mode::Serve(set_b()));
    let end = Instant::now() + Duration::from_secs(12);
    let mut last = 200;
    while Instant::now() < end && last == 200 {
        std::thread::sleep(Duration::from_millis(200));
        last = env.curl(&["-H", &a, "/after-removal"]).status;
    }
    let r = env.curl(&["-H", &a, "/after-removal"]);
    c.reply(
        "removed key",
        &r,
        401,
        "Jwks doesn't have key to match kid or alg from Jwt",
    );
    c.eq(
        "new key works",
        env.curl(&["-H", &bearer(&token_b()), "/b"]).status,
        200,
    );
    c.check(
        "recovery logged",
        env.log()
            .contains("jwks idp: fetch from idp.example/jwks via cluster jwks recovered"),
        || "no recovery line".into(),
    );
    c.finish(&env);
}

#[test]
fn no_key_set_at_all_fails_with_the_configured_status() {
    let server = JwksServer::start(Mode::Status(503));
    let cfg = config(
        json!({"http_uri": {"uri": "http://idp.example/jwks", "cluster": "jwks", "timeout": "1s"}}),
        json!({"jwks_unavailable_status": 503}),
    );
    let env = start(&server, &cfg);
    let mut c = Checks::default();
    let r = env.curl(&["-H", &bearer(&token_a()), "/x"]);
    c.reply(
        "first request, fetch fails",
        &r,
        503,
        "Jwks remote fetch is failed",
    );
    let r = env.curl(&["-H", &bearer(&token_a()), "/x"]);
    c.reply("during backoff", &r, 503, "Jwks remote fetch is failed");
    // A token that fails earlier checks never needs the key set.
    c.reply("no token", &env.curl(&["/x"]), 401, "Jwt is missing");
    server.set(Mode::Serve(set_a()));
    let end = Instant::now() + Duration::from_secs(5);
    let mut status = 0;
    while Instant::now() < end && status != 200 {
        std::thread::sleep(Duration::from_millis(200));
        status = env.curl(&["-H", &bearer(&token_a()), "/x"]).status;
    }
    c.eq("after the IdP recovers", status, 200);
    c.finish(&env);
}

#[test]
fn request_bodies_wait_with_their_headers() {
    let server = JwksServer::start(Mode::Hang);
    let cfg = config(
        json!({"http_uri": {"uri": "http://idp.example/jwks", "cluster": "jwks", "timeout": "1s"},
                            "kid_refetch_interval": "1s"}),
        json!({}),
    );
    let env = start(&server, &cfg);
    let mut c = Checks::default();
    // Several data frames, arriving while the headers wait for the key set.
    let body = "b".repeat(60_000);
    let post = |t: &str| {
        env.curl(&[
            "-X",
            "POST",
            "-H",
            &bearer(t),
            "-H",
            "content-type: text/plain",
            "--data-binary",
            &body,
            "/upload",
        ])
    };
    let r = post(&token_a());
    c.reply(
        "POST waiting on a hanging IdP is refused, not forwarded",
        &r,
        401,
        "Jwks remote fetch is failed",
    );

    server.set(Mode::Serve(set_a()));
    let end = Instant::now() + Duration::from_secs(5);
    let mut r = post(&token_a());
    while Instant::now() < end && r.status != 200 {
        std::thread::sleep(Duration::from_millis(200));
        r = post(&token_a());
    }
    c.eq("POST after the IdP recovers", r.status, 200);

    // Rotation: the new key's first token waits for a refetch, with its body behind it. The
    // recovery above may have spent this interval's refetch: wait it out.
    server.set(Mode::Serve(set_ab()));
    std::thread::sleep(Duration::from_millis(1100));
    let r = post(&token_b());
    c.eq("POST that waited for a refetch", r.status, 200);
    c.eq(
        "its whole body reached the upstream",
        r.upstream()["body_bytes"].as_u64(),
        Some(60_000),
    );
    server.set(Mode::Hang);
    std::thread::sleep(Duration::from_millis(1100));
    let unknown = keys().ec.sign(Some("c"), &claims(ISS, json!({}))).unwrap();
    c.reply(
        "POST waiting on a refetch that hangs",
        &post(&unknown),
        401,
        "Jwks doesn't have key to match kid or alg from Jwt",
    );
    c.finish(&env);
}
