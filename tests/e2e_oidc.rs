//! Issue 18: browser login at the proxy (the contract's `oidc` section), end to end with real
//! Envoy, curl with explicit cookies, the real OpenID provider (tests/idp/provider.js,
//! panva's oidc-provider with its dev login and consent pages) and, for the ID tokens and
//! IdP behaviours a real provider will not produce, the scripted IdP
//! (tests/common/scripted_idp.rs). Every check is named after the contract bullet it covers:
//! `discovery:`, `login start:`, `callback:`, `session:`, `refresh:`, `bearer:`,
//! `cross-site:`, `logout:`, `replicas:`, `return url:`, `stats:`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "common/scripted_idp.rs"]
mod scripted_idp;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{claims, free_port, keys, Checks, Env, Opts, Resp};
use oidc::*;
use scripted_idp::ScriptedIdp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const LOGIN_REQUIRED: &str = "Login required";
const LOGIN_FAILED: &str = "Login failed";
const UNAVAILABLE: &str = "OIDC provider unavailable";
const CROSS_SITE: &str = "Cross-site request refused";

fn start_envoy(cfg: &Value, port: u16, idp_port: u16) -> Env {
    Env::start_with(
        cfg,
        Opts {
            concurrency: 2,
            listen_port: Some(port),
            idp_port: Some(idp_port),
            ..Opts::default()
        },
    )
}

/// Waits until discovery has succeeded (a navigation is no longer a 503), 15 s at most.
fn wait_ready(env: &Env) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = navigate(env, &Jar::default(), "/ready-probe");
        if r.status != 503 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The real IdP and an Envoy in front of the echo upstream, configured by `cfg(issuer, port)`.
fn real_rig(ttl: Option<u64>, cfg: impl Fn(&str, u16) -> Value) -> (Env, Idp) {
    let (port, idp_port) = (free_port(), free_port());
    let idp = Idp::start(
        idp_port,
        &IdpOpts {
            host: "127.0.0.1",
            redirect_uri: redirect_uri(port),
            post_logout_redirect_uri: post_logout_uri(port),
            access_token_ttl: ttl,
        },
    );
    let env = start_envoy(&cfg(&idp.issuer, port), port, idp_port);
    wait_ready(&env);
    (env, idp)
}

fn scripted_rig(ttl: u64, cfg: impl Fn(&str, u16) -> Value) -> (Env, ScriptedIdp) {
    let port = free_port();
    let idp = ScriptedIdp::start(None, ttl);
    let env = start_envoy(&cfg(&idp.issuer(), port), port, idp.port);
    wait_ready(&env);
    (env, idp)
}

/// A whole login at the real IdP starting with a navigation to `path`: returns the callback's
/// response and its URL; `jar` ends with what the browser would hold.
fn real_login(env: &Env, idp: &Idp, jar: &mut Jar, path: &str, user: &str) -> (Resp, String) {
    let start = navigate(env, jar, path);
    assert_eq!(
        start.status, 302,
        "login start for {path}: {} {}",
        start.status, start.body
    );
    jar.apply(&start);
    let auth = start.header("location").unwrap().to_string();
    let cb = idp_login(
        &idp.issuer,
        &auth,
        user,
        &idp_jar(user),
        &redirect_uri(env.port),
    );
    let done = navigate(env, jar, &path_of(&cb));
    jar.apply(&done);
    (done, cb)
}

/// A login start against the scripted IdP: the 302 and the `state`, `nonce` it carries.
fn scripted_start(env: &Env, jar: &mut Jar, path: &str) -> (Resp, String, String) {
    let r = navigate(env, jar, path);
    jar.apply(&r);
    let loc = r.header("location").unwrap_or("").to_string();
    (
        r,
        param(&loc, "state").unwrap_or_default(),
        param(&loc, "nonce").unwrap_or_default(),
    )
}

fn scripted_callback(env: &Env, jar: &mut Jar, state: &str, code: &str, iss: Option<&str>) -> Resp {
    let mut path = format!("{CALLBACK}?code={code}&state={state}");
    if let Some(i) = iss {
        path.push_str(&format!("&iss={}", enc(i)));
    }
    let r = navigate(env, jar, &path);
    jar.apply(&r);
    r
}

/// A full login at the scripted IdP (`code=good.<nonce>`): the jar holds the session after.
fn scripted_login(env: &Env, jar: &mut Jar, path: &str) -> Resp {
    let (r, state, nonce) = scripted_start(env, jar, path);
    assert_eq!(
        r.status, 302,
        "scripted login start: {} {}",
        r.status, r.body
    );
    scripted_callback(env, jar, &state, &format!("good.{nonce}"), None)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every cookie the filter sets is named with the `cookie_name` prefix.
fn own_cookies_only(c: &mut Checks, case: &str, r: &Resp) {
    for sc in set_cookies(r) {
        c.check(
            &format!("{case}: cookie {} starts with {COOKIE:?}", sc.name),
            sc.name.starts_with(COOKIE),
            || format!("Set-Cookie {sc:?}"),
        );
    }
}

fn not_upstream(c: &mut Checks, case: &str, r: &Resp) {
    c.check(
        case,
        serde_json::from_str::<Value>(&r.body).map_or(true, |v| v.get("headers").is_none()),
        || format!("reached the upstream: {}", r.body),
    );
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[test]
fn discovery_fails_closed_until_the_idp_answers_then_recovers_without_restart() {
    let (port, idp_port) = (free_port(), free_port());
    let mut cfg = web_config(&format!("http://127.0.0.1:{idp_port}"), port, &[KEY_A]);
    cfg["oidc"]["web"]["timeout"] = json!("1s");
    let env = start_envoy(&cfg, port, idp_port);
    let mut c = Checks::default();

    let nav = navigate(&env, &Jar::default(), "/app");
    c.reply(
        "discovery: navigation while the IdP is down",
        &nav,
        503,
        UNAVAILABLE,
    );
    c.eq(
        "discovery: no redirect while down",
        nav.header("location"),
        None,
    );
    let api_r = api(&env, &Jar::default(), &[], "/app");
    c.reply(
        "discovery: API request while the IdP is down",
        &api_r,
        503,
        UNAVAILABLE,
    );
    not_upstream(&mut c, "discovery: never let through while down", &nav);

    let idp = Idp::start(
        idp_port,
        &IdpOpts {
            host: "127.0.0.1",
            redirect_uri: redirect_uri(port),
            post_logout_redirect_uri: post_logout_uri(port),
            access_token_ttl: None,
        },
    );
    // Retries back off up to 30 s.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = navigate(&env, &Jar::default(), "/app");
    while last.status != 302 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        last = navigate(&env, &Jar::default(), "/app");
    }
    c.eq(
        "discovery: recovers without restart (302 within 40 s)",
        last.status,
        302,
    );
    let loc = last.header("location").unwrap_or("");
    c.check(
        "discovery: redirect to the discovered authorization_endpoint",
        loc.starts_with(&format!("{}/auth?", idp.issuer)),
        || loc.to_string(),
    );
    c.finish(&env);
}

#[test]
fn discovery_document_of_another_issuer_is_refused() {
    let idp = ScriptedIdp::start(None, 3600);
    let port = free_port();
    // The document says `http://127.0.0.1:P`; the configured issuer has a trailing slash.
    let mut cfg = web_config(&format!("{}/", idp.issuer()), port, &[KEY_A]);
    cfg["oidc"]["web"]["timeout"] = json!("1s");
    let env = start_envoy(&cfg, port, idp.port);
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = Checks::default();
    let r = navigate(&env, &Jar::default(), "/app");
    c.check(
        "discovery: the document was fetched",
        idp.discovery_hits() > 0,
        || "no discovery request".into(),
    );
    c.reply(
        "discovery: issuer not exactly the configured one: 503",
        &r,
        503,
        UNAVAILABLE,
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Starting a login

#[test]
fn login_start_redirects_navigations_and_refuses_everything_else() {
    let (env, idp) = real_rig(None, |iss, port| {
        let mut cfg = web_config(iss, port, &[KEY_A]);
        cfg["cors"] = json!({"allow_origin_string_match": [{"exact": "https://app.example"}],
                             "allow_methods": "GET,POST", "allow_credentials": true});
        cfg
    });
    let mut c = Checks::default();
    let before = stat(&env, "login_started");

    let r = navigate(&env, &Jar::default(), "/orders?id=7");
    c.eq("login start: navigation gets 302", r.status, 302);
    own_cookies_only(&mut c, "login start", &r);
    let loc = r.header("location").unwrap_or("").to_string();
    c.check(
        "login start: Location is the discovered authorization_endpoint",
        loc.starts_with(&format!("{}/auth?", idp.issuer)),
        || loc.clone(),
    );
    for (name, want) in [
        ("response_type", Some("code".to_string())),
        ("client_id", Some(CLIENT_ID.to_string())),
        ("redirect_uri", Some(redirect_uri(env.port))),
        ("code_challenge_method", Some("S256".to_string())),
        ("prompt", Some("consent".to_string())),
    ] {
        c.eq(&format!("login start: {name}"), param(&loc, name), want);
    }
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
    ] {
        c.eq(
            &format!("login start: {name} sent once"),
            param_count(&loc, name),
            1,
        );
    }
    let scope = param(&loc, "scope").unwrap_or_default();
    let scopes: Vec<&str> = scope.split(' ').collect();
    for s in ["openid", "email", "offline_access"] {
        c.check(
            &format!("login start: scope has {s}"),
            scopes.contains(&s),
            || scope.clone(),
        );
    }
    let state = param(&loc, "state").unwrap_or_default();
    let nonce = param(&loc, "nonce").unwrap_or_default();
    let challenge = param(&loc, "code_challenge").unwrap_or_default();
    c.check(
        "login start: state has at least 128 bits",
        state.len() >= 22,
        || state.clone(),
    );
    c.check(
        "login start: nonce has at least 128 bits",
        nonce.len() >= 22,
        || nonce.clone(),
    );
    c.check(
        "login start: S256 challenge is 43 base64url characters",
        challenge.len() == 43 && URL_SAFE_NO_PAD.decode(&challenge).is_ok(),
        || challenge.clone(),
    );
    c.check(
        "login start: state and nonce differ",
        state != nonce,
        || state.clone(),
    );

    let flows: Vec<SetCookie> = set_cookies(&r)
        .into_iter()
        .filter(|s| !s.clears())
        .collect();
    c.eq("login start: one flow cookie set", flows.len(), 1);
    if let Some(f) = flows.first() {
        c.check(
            "login start: flow cookie name starts with cookie_name",
            f.name.starts_with(COOKIE),
            || f.name.clone(),
        );
        c.eq(
            "login start: flow cookie Max-Age",
            f.attr("max-age"),
            Some("600"),
        );
        c.check(
            "login start: flow cookie HttpOnly",
            f.attr("httponly").is_some(),
            || format!("{f:?}"),
        );
        c.eq("login start: flow cookie Path", f.attr("path"), Some("/"));
        c.check(
            "login start: flow cookie SameSite=Lax (default)",
            f.attr("samesite")
                .is_some_and(|v| v.eq_ignore_ascii_case("lax")),
            || format!("{f:?}"),
        );
        c.check(
            "login start: no Secure with secure: false",
            f.attr("secure").is_none(),
            || format!("{f:?}"),
        );
        c.check(
            "login start: flow cookie value sealed (no state in clear)",
            !f.value.contains(&state) && !f.value.contains(&nonce),
            || f.value.clone(),
        );
    }

    let r2 = navigate(&env, &Jar::default(), "/orders?id=7");
    let loc2 = r2.header("location").unwrap_or("").to_string();
    c.check(
        "login start: a fresh state per login",
        param(&loc2, "state") != Some(state.clone()),
        || loc2.clone(),
    );
    c.check(
        "login start: a fresh nonce per login",
        param(&loc2, "nonce") != Some(nonce.clone()),
        || loc2.clone(),
    );
    c.check(
        "login start: a fresh PKCE verifier per login",
        param(&loc2, "code_challenge") != Some(challenge.clone()),
        || loc2.clone(),
    );

    let head = env.curl(&["-I", "-H", NAV[1], "-H", NAV[3], "/page"]);
    c.eq("login start: HEAD navigation gets 302", head.status, 302);
    let sfm = env.curl(&["-H", "Sec-Fetch-Mode: navigate", "/page"]);
    c.eq(
        "login start: Sec-Fetch-Mode: navigate alone is a navigation",
        sfm.status,
        302,
    );
    let html = env.curl(&["-H", "Accept: text/html", "/page"]);
    c.eq(
        "login start: Accept text/html alone is a navigation",
        html.status,
        302,
    );

    let plain = api(&env, &Jar::default(), &[], "/page");
    c.reply(
        "login start: curl's Accept */* gets 401",
        &plain,
        401,
        LOGIN_REQUIRED,
    );
    c.eq(
        "login start: 401 has no Location",
        plain.header("location"),
        None,
    );
    let xhr = env.curl(&[
        "-H",
        NAV[1],
        "-H",
        "X-Requested-With: XMLHttpRequest",
        "/page",
    ]);
    c.reply(
        "login start: X-Requested-With is not a navigation",
        &xhr,
        401,
        LOGIN_REQUIRED,
    );
    let post = env.curl(&["-X", "POST", "-H", NAV[1], "-H", NAV[3], "/page"]);
    c.reply(
        "login start: POST is not a navigation",
        &post,
        401,
        LOGIN_REQUIRED,
    );
    let fetch = env.curl(&[
        "-H",
        "Sec-Fetch-Mode: cors",
        "-H",
        "Accept: application/json",
        "/page",
    ]);
    c.reply("login start: fetch() gets 401", &fetch, 401, LOGIN_REQUIRED);
    let cors = env.curl(&["-H", "Origin: https://app.example", "/page"]);
    c.reply(
        "login start: 401 for an allowed origin",
        &cors,
        401,
        LOGIN_REQUIRED,
    );
    c.eq(
        "login start: 401 carries CORS headers",
        cors.header("access-control-allow-origin"),
        Some("https://app.example"),
    );

    let cb = navigate(&env, &Jar::default(), CALLBACK);
    c.reply(
        "callback: without code, state or flow cookie",
        &cb,
        401,
        LOGIN_FAILED,
    );
    not_upstream(&mut c, "callback: never forwarded upstream", &cb);

    let after = stat_at_least(&env, "login_started", before + 5);
    c.check(
        "stats: login_started counts each login start",
        after >= before + 5,
        || format!("{before} -> {after}"),
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// The whole login with the real IdP

#[test]
fn full_login_returns_to_the_original_url_with_a_session() {
    let (env, idp) = real_rig(None, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    jar.set("theme", "dark");

    let (done, cb) = real_login(&env, &idp, &mut jar, "/orders?id=7&q=a%20b", "alice");
    c.eq(
        "callback: IdP sent the RFC 9207 iss",
        param(&cb, "iss"),
        Some(idp.issuer.clone()),
    );
    c.eq("callback: success is a 302", done.status, 302);
    c.eq(
        "callback: Location is the original path and query",
        done.header("location"),
        Some("/orders?id=7&q=a%20b"),
    );
    own_cookies_only(&mut c, "callback", &done);
    let sc = set_cookies(&done);
    let session: Vec<&SetCookie> = sc.iter().filter(|s| !s.clears()).collect();
    c.check("callback: session cookie set", !session.is_empty(), || {
        format!("{sc:?}")
    });
    for s in &session {
        c.check(
            &format!("session: {} HttpOnly", s.name),
            s.attr("httponly").is_some(),
            || format!("{s:?}"),
        );
        c.eq(
            &format!("session: {} Path", s.name),
            s.attr("path"),
            Some("/"),
        );
        c.check(
            &format!("session: {} SameSite=Lax", s.name),
            s.attr("samesite")
                .is_some_and(|v| v.eq_ignore_ascii_case("lax")),
            || format!("{s:?}"),
        );
        c.check(
            &format!("session: {} not Secure (secure: false)", s.name),
            s.attr("secure").is_none(),
            || format!("{s:?}"),
        );
        c.check(
            &format!("session: {} holds no token in clear", s.name),
            !s.value.contains("eyJhbGciOi") && !s.value.contains("alice@example.com"),
            || s.value.clone(),
        );
    }
    c.eq(
        "callback: flow cookie cleared",
        jar.flows(),
        Vec::<String>::new(),
    );
    c.check(
        "callback: a cleared flow cookie is in the reply",
        sc.iter().any(|s| s.clears()),
        || format!("{sc:?}"),
    );

    let page = env.curl(&[
        NAV[0],
        NAV[1],
        "-H",
        &jar.header(),
        "-H",
        "x-email: spoofed@evil.example",
        "/orders?id=7",
    ]);
    c.eq("session: the page is served", page.status, 200);
    if page.status == 200 {
        let up = page.upstream();
        c.eq(
            "session: claim_to_headers email",
            up["headers"]["x-email"].as_str(),
            Some("alice@example.com"),
        );
        let authz = up["headers"]["authorization"].as_str().unwrap_or("");
        c.check(
            "session: forward_access_token sets Authorization: Bearer",
            authz.starts_with("Bearer ") && authz.len() > 10,
            || authz.to_string(),
        );
        c.eq(
            "session: session and flow cookies stripped, others kept",
            up["headers"]["cookie"].as_str(),
            Some("theme=dark"),
        );
    }
    let xhr = api(&env, &jar, &[], "/api/data");
    c.eq(
        "session: non-navigation requests pass with the session",
        xhr.status,
        200,
    );
    let only_session = api(&env, &jar.without_flows(), &[], "/x");
    if only_session.status == 200 {
        c.eq(
            "session: Cookie header removed when only the filter's cookies were sent",
            only_session.upstream()["headers"]["cookie"].as_str(),
            Some("theme=dark"),
        );
    }
    let mut no_other = jar.clone();
    no_other.cookies.remove("theme");
    let bare = api(&env, &no_other, &[], "/x");
    if bare.status == 200 {
        c.eq(
            "session: no Cookie header left upstream",
            bare.upstream()["headers"]["cookie"].as_str(),
            None,
        );
    }
    c.check(
        "stats: login_completed",
        stat_at_least(&env, "login_completed", 1) >= 1,
        || format!("{:?}", oidc_stats(&env, "web")),
    );
    c.finish(&env);
}

#[test]
fn two_tabs_log_in_in_parallel_and_at_most_four_flows_are_kept() {
    let (env, idp) = real_rig(None, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let a = navigate(&env, &jar, "/tab-a");
    jar.apply(&a);
    let b = navigate(&env, &jar, "/tab-b");
    jar.apply(&b);
    c.eq(
        "login start: two tabs keep two flow cookies",
        jar.flows().len(),
        2,
    );
    let idp_cookies = idp_jar("tabs");
    let redirect = redirect_uri(env.port);
    let cb_a = idp_login(
        &idp.issuer,
        a.header("location").unwrap_or(""),
        "alice",
        &idp_cookies,
        &redirect,
    );
    let cb_b = idp_login(
        &idp.issuer,
        b.header("location").unwrap_or(""),
        "alice",
        &idp_cookies,
        &redirect,
    );
    // The second tab finishes first.
    let done_b = navigate(&env, &jar, &path_of(&cb_b));
    jar.apply(&done_b);
    c.eq("callback: tab B completes", done_b.status, 302);
    c.eq(
        "callback: tab B returns to its page",
        done_b.header("location"),
        Some("/tab-b"),
    );
    let done_a = navigate(&env, &jar, &path_of(&cb_a));
    jar.apply(&done_a);
    c.eq("callback: tab A completes too", done_a.status, 302);
    c.eq(
        "callback: tab A returns to its page",
        done_a.header("location"),
        Some("/tab-a"),
    );
    c.eq(
        "callback: both flows cleared",
        jar.flows(),
        Vec::<String>::new(),
    );
    let page = api(&env, &jar, &[], "/tab-a");
    c.eq(
        "session: the session works after two tabs",
        page.status,
        200,
    );

    let mut many = Jar::default();
    let mut names = Vec::new();
    for i in 0..5 {
        let r = navigate(&env, &many, &format!("/t{i}"));
        let new: Vec<String> = set_cookies(&r)
            .into_iter()
            .filter(|s| !s.clears())
            .map(|s| s.name)
            .collect();
        names.extend(new);
        if i == 4 {
            let cleared: Vec<String> = set_cookies(&r)
                .into_iter()
                .filter(|s| s.clears())
                .map(|s| s.name)
                .collect();
            c.check(
                "login start: the 5th flow clears the oldest",
                names.first().is_some_and(|n| cleared.contains(n)),
                || format!("flows {names:?}, cleared {cleared:?}"),
            );
        }
        many.apply(&r);
        // Flows created within one second must still order: give each its own second.
        std::thread::sleep(Duration::from_millis(1050));
    }
    c.check(
        "login start: at most 4 flows at once",
        many.flows().len() <= 4,
        || format!("{:?}", many.flows()),
    );
    c.finish(&env);
}

#[test]
fn callback_failures_are_login_failed_and_checked_before_the_code_is_spent() {
    let (env, idp) = real_rig(None, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let failed_before = stat(&env, "login_failed");
    let mut jar = Jar::default();
    let start = navigate(&env, &jar, "/secure");
    jar.apply(&start);
    let cb = idp_login(
        &idp.issuer,
        start.header("location").unwrap_or(""),
        "bob",
        &idp_jar("fail"),
        &redirect_uri(env.port),
    );
    let cb_path = path_of(&cb);
    let code = param(&cb, "code").unwrap_or_default();
    let state = param(&cb, "state").unwrap_or_default();
    let iss = param(&cb, "iss").unwrap_or_default();

    let wrong_state = format!(
        "{CALLBACK}?code={}&state={}&iss={}",
        enc(&code),
        "A".repeat(state.len().max(22)),
        enc(&iss)
    );
    c.reply(
        "callback: wrong state",
        &navigate(&env, &jar, &wrong_state),
        401,
        LOGIN_FAILED,
    );
    let no_state = format!("{CALLBACK}?code={}&iss={}", enc(&code), enc(&iss));
    c.reply(
        "callback: missing state",
        &navigate(&env, &jar, &no_state),
        401,
        LOGIN_FAILED,
    );
    let bad_iss = format!(
        "{CALLBACK}?code={}&state={}&iss={}",
        enc(&code),
        enc(&state),
        enc("https://evil.example")
    );
    c.reply(
        "callback: iss parameter mismatch (RFC 9207)",
        &navigate(&env, &jar, &bad_iss),
        401,
        LOGIN_FAILED,
    );
    let other_browser = navigate(&env, &Jar::default(), &cb_path);
    c.reply(
        "callback: right state without its flow cookie",
        &other_browser,
        401,
        LOGIN_FAILED,
    );

    let jar_before = jar.clone();
    let ok = navigate(&env, &jar, &cb_path);
    c.eq(
        "callback: the code still works after the refused attempts (checked before it is spent)",
        ok.status,
        302,
    );
    let replay = navigate(&env, &jar_before, &cb_path);
    c.reply(
        "callback: replayed code (flow cookie kept)",
        &replay,
        401,
        LOGIN_FAILED,
    );
    c.check(
        "callback: replay sets no session",
        set_cookies(&replay).iter().all(|s| s.clears()),
        || format!("{:?}", set_cookies(&replay)),
    );

    let mut j2 = Jar::default();
    let s2 = navigate(&env, &j2, "/denied");
    j2.apply(&s2);
    let st2 = param(s2.header("location").unwrap_or(""), "state").unwrap_or_default();
    let err = format!(
        "{CALLBACK}?error=access_denied&error_description=no&state={st2}&iss={}",
        enc(&idp.issuer)
    );
    let e = navigate(&env, &j2, &err);
    c.reply("callback: IdP error=", &e, 401, LOGIN_FAILED);
    not_upstream(&mut c, "callback: error never forwarded", &e);

    let failed = stat_at_least(&env, "login_failed", failed_before + 6);
    c.check(
        "stats: login_failed counts each refused callback",
        failed >= failed_before + 6,
        || format!("{failed_before} -> {failed}"),
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Sessions: tampering, key rotation, replicas

fn tamper(v: &str) -> String {
    let mid = v.len() / 2;
    let b = v.as_bytes()[mid];
    let swapped = if b == b'A' { 'B' } else { 'A' };
    format!("{}{}{}", &v[..mid], swapped, &v[mid + 1..])
}

#[test]
fn tampered_cookies_rotation_and_replicas() {
    let (pa, idp_port) = (free_port(), free_port());
    let idp = Idp::start(
        idp_port,
        &IdpOpts {
            host: "127.0.0.1",
            redirect_uri: redirect_uri(pa),
            post_logout_redirect_uri: post_logout_uri(pa),
            access_token_ttl: None,
        },
    );
    // Every Envoy below names A's redirect_uri: the one the IdP knows.
    let cfg = |keys: &[&str]| web_config(&idp.issuer, pa, keys);
    let a = start_envoy(&cfg(&[KEY_A]), pa, idp_port);
    wait_ready(&a);
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let (done, _) = real_login(&a, &idp, &mut jar, "/home", "carol");
    c.eq("session: login on A", done.status, 302);
    let session = jar.session();
    c.check(
        "session: a session cookie is held",
        !session.is_empty(),
        || format!("{jar:?}"),
    );

    let rejected_before = stat(&a, "session_rejected");
    if let Some((name, value)) = session.first() {
        let mut t = jar.clone();
        t.set(name, &tamper(value));
        c.reply(
            "session: tampered cookie is no session (API)",
            &api(&a, &t, &[], "/home"),
            401,
            LOGIN_REQUIRED,
        );
        let nav = navigate(&a, &t, "/home");
        c.eq(
            "session: tampered cookie is no session (navigation: new login)",
            nav.status,
            302,
        );
        let mut cut = jar.clone();
        cut.set(name, &value[..value.len() / 2]);
        c.reply(
            "session: truncated cookie is no session",
            &api(&a, &cut, &[], "/home"),
            401,
            LOGIN_REQUIRED,
        );
        let mut empty = jar.clone();
        empty.set(name, "");
        c.reply(
            "session: empty cookie is no session",
            &api(&a, &empty, &[], "/home"),
            401,
            LOGIN_REQUIRED,
        );
        let mut renamed = Jar::default();
        renamed.set(&format!("{COOKIE}x"), value);
        c.reply(
            "session: a session under another name does not open",
            &api(&a, &renamed, &[], "/home"),
            401,
            LOGIN_REQUIRED,
        );
    }
    let rejected = stat_at_least(&a, "session_rejected", rejected_before + 1);
    c.check(
        "stats: session_rejected",
        rejected > rejected_before,
        || format!("{rejected_before} -> {rejected}"),
    );
    c.eq(
        "session: the intact cookie still works on A",
        api(&a, &jar, &[], "/home").status,
        200,
    );

    let b = start_envoy(&cfg(&[KEY_B, KEY_A]), free_port(), idp_port);
    wait_ready(&b);
    let rb = api(&b, &jar, &[], "/home");
    c.eq(
        "session: keys [new, old] open a cookie sealed under [old] (rotation)",
        rb.status,
        200,
    );
    if rb.status == 200 {
        c.eq(
            "session: rotation keeps the identity",
            rb.upstream()["headers"]["x-email"].as_str(),
            Some("carol@example.com"),
        );
    }
    let replica = start_envoy(&cfg(&[KEY_A]), free_port(), idp_port);
    wait_ready(&replica);
    c.eq(
        "replicas: a second Envoy with the same keys accepts the session",
        api(&replica, &jar, &[], "/home").status,
        200,
    );
    let dropped = start_envoy(&cfg(&[KEY_B]), free_port(), idp_port);
    wait_ready(&dropped);
    c.reply(
        "session: a ring without the sealing key opens nothing",
        &api(&dropped, &jar, &[], "/home"),
        401,
        LOGIN_REQUIRED,
    );

    // A login started on A finishes on the replica.
    let mut j2 = Jar::default();
    let start = navigate(&a, &j2, "/from-a");
    j2.apply(&start);
    let cb = idp_login(
        &idp.issuer,
        start.header("location").unwrap_or(""),
        "dave",
        &idp_jar("replica"),
        &redirect_uri(pa),
    );
    let fin = navigate(&replica, &j2, &path_of(&cb));
    j2.apply(&fin);
    c.eq(
        "replicas: a login started on one Envoy finishes on another",
        fin.status,
        302,
    );
    c.eq(
        "replicas: and returns to its page",
        fin.header("location"),
        Some("/from-a"),
    );
    c.eq(
        "replicas: that session works on the first",
        api(&a, &j2, &[], "/x").status,
        200,
    );
    drop((b, dropped, replica));
    c.finish(&a);
}

// ---------------------------------------------------------------------------------------------
// Refresh

/// Sends two requests with the same cookies at once; their statuses.
fn concurrent(env: &Env, jar: &Jar) -> Vec<u16> {
    env.curl_many(
        &jar.header(),
        &["/race-1".to_string(), "/race-2".to_string()],
        2,
    )
}

#[test]
fn refresh_with_the_real_idp_rotating_refresh_tokens() {
    // Access tokens live 2 s: within 60 s of expiry at once, every request refreshes.
    let (env, idp) = real_rig(Some(2), |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let (done, _) = real_login(&env, &idp, &mut jar, "/r", "erin");
    c.eq("refresh: login", done.status, 302);
    let success_before = stat(&env, "refresh_success");
    let first = api(&env, &jar, &[], "/r1");
    c.eq("refresh: request near expiry succeeds", first.status, 200);
    let refreshed = set_cookies(&first)
        .into_iter()
        .any(|s| s.name.starts_with(COOKIE) && !s.clears());
    c.check(
        "refresh: new session cookies on the response",
        refreshed,
        || format!("{:?}", first.headers),
    );
    let bearer1 = if first.status == 200 {
        first.upstream_header("authorization")
    } else {
        None
    };
    jar.apply(&first);
    let second = api(&env, &jar, &[], "/r2");
    c.eq("refresh: the refreshed session works", second.status, 200);
    let bearer2 = if second.status == 200 {
        second.upstream_header("authorization")
    } else {
        None
    };
    c.check(
        "refresh: a new access token goes upstream",
        bearer1.is_some() && bearer1 != bearer2,
        || format!("{bearer1:?} / {bearer2:?}"),
    );
    jar.apply(&second);
    let after = stat_at_least(&env, "refresh_success", success_before + 2);
    c.check(
        "stats: refresh_success",
        after >= success_before + 2,
        || format!("{success_before} -> {after}"),
    );

    // The race: two requests of one session at once, refresh tokens rotating.
    let (s0, f0) = (stat(&env, "refresh_success"), stat(&env, "refresh_failed"));
    let statuses = concurrent(&env, &jar);
    c.eq(
        "refresh: race, both requests succeed",
        statuses,
        vec![200, 200],
    );
    let (s1, f1) = (stat(&env, "refresh_success"), stat(&env, "refresh_failed"));
    c.eq("refresh: race, one refresh call", s1.saturating_sub(s0), 1);
    c.eq(
        "refresh: race, no refused refresh",
        f1.saturating_sub(f0),
        0,
    );
    c.finish(&env);
}

#[test]
fn refresh_single_flight_and_refused_refresh_with_the_scripted_idp() {
    // expires_in 30: always within 60 s of expiry.
    let (env, idp) = scripted_rig(30, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let done = scripted_login(&env, &mut jar, "/s");
    c.eq("refresh: scripted login", done.status, 302);
    idp.set_refresh_delay(800);
    let before = idp.refreshes();
    let statuses = concurrent(&env, &jar);
    c.eq(
        "refresh: race, both requests succeed",
        statuses,
        vec![200, 200],
    );
    c.eq(
        "refresh: race, exactly one refresh call at the token endpoint",
        idp.refreshes() - before,
        1,
    );
    let call = idp
        .token_calls()
        .into_iter()
        .rfind(|t| t.field("grant_type") == Some("refresh_token"));
    c.check(
        "refresh: grant_type=refresh_token with the held refresh token",
        call.as_ref()
            .and_then(|t| t.field("refresh_token"))
            .is_some_and(|t| t.starts_with("rt-")),
        || format!("{call:?}"),
    );

    // The race spent the jar's refresh token (rotation): a new login for the refused case.
    idp.set_refresh_delay(0);
    let mut fresh = Jar::default();
    c.eq(
        "refresh: second scripted login",
        scripted_login(&env, &mut fresh, "/s").status,
        302,
    );
    let fresh = fresh.without_flows();
    idp.set_refuse_refresh(true);
    let failed_before = stat(&env, "refresh_failed");
    let refused = api(&env, &fresh, &[], "/s");
    c.reply(
        "refresh: refused refresh ends the session (API)",
        &refused,
        401,
        LOGIN_REQUIRED,
    );
    let nav = navigate(&env, &fresh, "/s");
    c.eq(
        "refresh: refused refresh ends the session (navigation: new login)",
        nav.status,
        302,
    );
    c.check(
        "refresh: the new login goes to the IdP",
        nav.header("location")
            .is_some_and(|l| l.starts_with(&format!("{}/auth?", idp.issuer()))),
        || format!("{:?}", nav.header("location")),
    );
    let failed = stat_at_least(&env, "refresh_failed", failed_before + 1);
    c.check("stats: refresh_failed", failed > failed_before, || {
        format!("{failed_before} -> {failed}")
    });
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// ID token checks (OIDC Core 3.1.3.7) with the scripted IdP

#[test]
fn id_tokens_failing_a_check_are_login_failed() {
    let (env, idp) = scripted_rig(3600, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    for (case, want) in [
        ("good", 302),
        ("azp_ok", 302),
        ("nonce", 401),
        ("nononce", 401),
        ("aud", 401),
        ("expired", 401),
        ("future", 401),
        ("badsig", 401),
        ("azp", 401),
        ("iss", 401),
        ("invalid", 401),
        ("http500", 502),
    ] {
        let mut jar = Jar::default();
        let (start, state, nonce) = scripted_start(&env, &mut jar, "/id");
        if start.status != 302 {
            c.eq(&format!("callback: {case}: login start"), start.status, 302);
            continue;
        }
        let r = scripted_callback(
            &env,
            &mut jar,
            &state,
            &format!("{case}.{nonce}"),
            Some(&idp.issuer()),
        );
        if want == 302 {
            c.eq(
                &format!("callback: ID token {case} accepted"),
                r.status,
                302,
            );
            c.eq(
                &format!("callback: {case} returns to the page"),
                r.header("location"),
                Some("/id"),
            );
            c.eq(
                &format!("session: {case} session works"),
                api(&env, &jar.without_flows(), &[], "/id").status,
                200,
            );
        } else {
            c.reply(
                &format!("callback: ID token {case}"),
                &r,
                want,
                LOGIN_FAILED,
            );
            c.check(
                &format!("callback: {case} sets no session"),
                set_cookies(&r).iter().all(|s| s.clears()),
                || format!("{:?}", set_cookies(&r)),
            );
        }
        if case == "good" {
            let loc = start.header("location").unwrap_or("").to_string();
            let call = idp
                .token_calls()
                .into_iter()
                .rfind(|t| t.field("grant_type") == Some("authorization_code"));
            match call {
                None => c.check(
                    "callback: code exchanged at the token endpoint",
                    false,
                    || "no call".into(),
                ),
                Some(t) => {
                    let verifier = t.field("code_verifier").unwrap_or("");
                    let s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    c.eq(
                        "callback: PKCE verifier matches the S256 challenge",
                        Some(s256),
                        param(&loc, "code_challenge"),
                    );
                    c.eq(
                        "callback: redirect_uri sent to the token endpoint",
                        t.field("redirect_uri"),
                        Some(redirect_uri(env.port).as_str()),
                    );
                    c.eq(
                        "callback: the code sent",
                        t.field("code").map(str::to_owned),
                        Some(format!("good.{nonce}")),
                    );
                    let basic = format!(
                        "Basic {}",
                        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
                    );
                    c.eq(
                        "callback: client_secret_basic (default)",
                        t.header("authorization"),
                        Some(basic.as_str()),
                    );
                    c.eq(
                        "callback: no secret in the form with basic auth",
                        t.field("client_secret"),
                        None,
                    );
                    c.check(
                        "callback: form-encoded POST",
                        t.header("content-type")
                            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
                        || format!("{:?}", t.headers),
                    );
                }
            }
        }
    }
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens beside sessions

#[test]
fn bearer_tokens_are_judged_by_their_provider_alone() {
    const API_ISS: &str = "https://api.example";
    let (env, idp) = scripted_rig(3600, |iss, port| {
        let set = json!({"keys": [keys().rsa.jwk(Some("api"), true)]}).to_string();
        json!({
            "providers": {"api": {"issuer": API_ISS, "local_jwks": {"inline_string": set}}},
            "oidc": {"web": web_entry(iss, port, &[KEY_A])},
            "rules": [{"match": {"prefix": "/api/"}, "requires": {"requires_any": {"requirements": [
                          {"provider_name": "api"}, {"oidc": "web"}]}}},
                      {"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]
        })
    });
    let mut c = Checks::default();
    let good = keys()
        .rsa
        .sign(Some("api"), &claims(API_ISS, json!({})))
        .unwrap();
    let bad = keys()
        .rogue
        .sign(Some("api"), &claims(API_ISS, json!({})))
        .unwrap();
    let bad_h = format!("Authorization: Bearer {bad}");
    let good_h = format!("Authorization: Bearer {good}");

    let r = env.curl(&[NAV[0], NAV[1], NAV[2], NAV[3], "-H", &bad_h, "/api/x"]);
    c.reply(
        "bearer: invalid token on a navigation gets the provider's 401",
        &r,
        401,
        "Jwt verification fails",
    );
    c.eq("bearer: never a login redirect", r.header("location"), None);
    c.check(
        "bearer: with the challenge",
        r.header("www-authenticate")
            .is_some_and(|w| w.starts_with("Bearer realm=") && w.contains("invalid_token")),
        || format!("{:?}", r.header("www-authenticate")),
    );
    c.eq(
        "bearer: valid token passes",
        env.curl(&["-H", &good_h, "/api/x"]).status,
        200,
    );
    let nav = navigate(&env, &Jar::default(), "/api/x");
    c.eq(
        "bearer: no token, no session: the oidc leg answers (302)",
        nav.status,
        302,
    );
    c.reply(
        "bearer: no token, no session, not a navigation: Login required",
        &api(&env, &Jar::default(), &[], "/api/x"),
        401,
        LOGIN_REQUIRED,
    );

    let mut jar = Jar::default();
    let done = scripted_login(&env, &mut jar, "/");
    c.eq("bearer: session login", done.status, 302);
    let s = api(&env, &jar.without_flows(), &[], "/api/x");
    c.eq("bearer: the session satisfies requires_any", s.status, 200);
    let both = api(&env, &jar.without_flows(), &["-H", &bad_h], "/api/x");
    c.reply(
        "bearer: a session does not rescue an invalid bearer token",
        &both,
        401,
        "Jwt verification fails",
    );
    drop(idp);
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Cross-site requests

#[test]
fn cross_site_unsafe_requests_with_the_session_are_refused() {
    let (env, _idp) = scripted_rig(3600, |iss, port| {
        let mut cfg = web_config(iss, port, &[KEY_A]);
        cfg["cors"] = json!({"allow_origin_string_match": [{"exact": "https://app.example"}],
                             "allow_methods": "GET,POST,PUT,DELETE", "allow_credentials": true});
        cfg
    });
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let done = scripted_login(&env, &mut jar, "/");
    c.eq("cross-site: login", done.status, 302);
    let jar = jar.without_flows();
    let own = format!("Origin: http://127.0.0.1:{}", env.port);
    let post = |extra: &[&str]| {
        let mut a = vec!["-X", "POST", "--data", "x=1"];
        a.extend_from_slice(extra);
        api(&env, &jar, &a, "/form")
    };
    c.reply(
        "cross-site: POST from https://evil.example",
        &post(&["-H", "Origin: https://evil.example"]),
        403,
        CROSS_SITE,
    );
    c.eq(
        "cross-site: same-origin POST passes",
        post(&["-H", &own]).status,
        200,
    );
    c.eq(
        "cross-site: POST from a CORS-allowed origin passes",
        post(&["-H", "Origin: https://app.example"]).status,
        200,
    );
    c.eq(
        "cross-site: Sec-Fetch-Site: same-origin without Origin passes",
        post(&["-H", "Sec-Fetch-Site: same-origin"]).status,
        200,
    );
    c.reply(
        "cross-site: POST with neither Origin nor Sec-Fetch-Site",
        &post(&[]),
        403,
        CROSS_SITE,
    );
    c.reply(
        "cross-site: Sec-Fetch-Site: cross-site without Origin",
        &post(&["-H", "Sec-Fetch-Site: cross-site"]),
        403,
        CROSS_SITE,
    );
    for m in ["PUT", "DELETE", "PATCH"] {
        let r = api(
            &env,
            &jar,
            &["-X", m, "-H", "Origin: https://evil.example"],
            "/form",
        );
        c.reply(
            &format!("cross-site: {m} from another origin"),
            &r,
            403,
            CROSS_SITE,
        );
    }
    let get = api(&env, &jar, &["-H", "Origin: https://evil.example"], "/form");
    c.eq(
        "cross-site: GET from another origin is not refused",
        get.status,
        200,
    );
    let no_session = api(
        &env,
        &Jar::default(),
        &["-X", "POST", "-H", "Origin: https://evil.example"],
        "/form",
    );
    c.reply(
        "cross-site: without a session it is just Login required",
        &no_session,
        401,
        LOGIN_REQUIRED,
    );
    let lo = api(&env, &jar, &["-H", "Sec-Fetch-Site: cross-site"], LOGOUT);
    c.reply("cross-site: logout from another site", &lo, 403, CROSS_SITE);
    c.check(
        "cross-site: refused logout clears nothing",
        set_cookies(&lo).is_empty(),
        || format!("{:?}", set_cookies(&lo)),
    );
    c.eq(
        "cross-site: the session survived",
        api(&env, &jar, &[], "/x").status,
        200,
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Logout

#[test]
fn logout_clears_cookies_and_ends_at_the_idp() {
    let (env, idp) = real_rig(None, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    let (done, _) = real_login(&env, &idp, &mut jar, "/", "frank");
    c.eq("logout: login", done.status, 302);
    // A pending flow from another tab is cleared too.
    let pending = navigate(&env, &Jar::default(), "/other-tab");
    jar.apply(&pending);
    let sent: Vec<String> = jar
        .cookies
        .keys()
        .filter(|n| n.starts_with(COOKIE))
        .cloned()
        .collect();
    let before = stat(&env, "logout");
    let r = navigate(&env, &jar, LOGOUT);
    c.eq("logout: 302", r.status, 302);
    let loc = r.header("location").unwrap_or("").to_string();
    c.check(
        "logout: to the IdP's end_session_endpoint",
        loc.starts_with(&format!("{}/session/end?", idp.issuer)),
        || loc.clone(),
    );
    let hint = param(&loc, "id_token_hint").unwrap_or_default();
    c.eq("logout: id_token_hint is a JWT", hint.split('.').count(), 3);
    c.eq(
        "logout: client_id",
        param(&loc, "client_id"),
        Some(CLIENT_ID.to_string()),
    );
    c.eq(
        "logout: post_logout_redirect_uri",
        param(&loc, "post_logout_redirect_uri"),
        Some(post_logout_uri(env.port)),
    );
    let cleared: Vec<String> = set_cookies(&r)
        .into_iter()
        .filter(|s| s.clears())
        .map(|s| s.name)
        .collect();
    for n in &sent {
        c.check(
            &format!("logout: cookie {n} cleared"),
            cleared.contains(n),
            || format!("cleared {cleared:?}"),
        );
    }
    own_cookies_only(&mut c, "logout", &r);
    jar.apply(&r);
    c.reply(
        "logout: the session is gone",
        &api(&env, &jar, &[], "/"),
        401,
        LOGIN_REQUIRED,
    );
    let end = curl_url(&loc, &idp_jar("logout"), &[]);
    c.eq(
        "logout: the IdP accepts the end-session request",
        end.status,
        200,
    );
    c.check(
        "logout: the IdP shows its logout confirmation",
        end.body.contains("form"),
        || end.body.clone(),
    );
    c.check(
        "stats: logout",
        stat_at_least(&env, "logout", before + 1) > before,
        || format!("{:?}", oidc_stats(&env, "web")),
    );

    let anon = navigate(&env, &Jar::default(), LOGOUT);
    c.eq("logout: without a session, 302", anon.status, 302);
    c.eq(
        "logout: without a session, to post_logout_redirect_uri",
        anon.header("location"),
        Some(post_logout_uri(env.port).as_str()),
    );
    let own = format!("Origin: http://127.0.0.1:{}", env.port);
    let mut j2 = Jar::default();
    real_login(&env, &idp, &mut j2, "/", "frank");
    let post = api(
        &env,
        &j2.without_flows(),
        &["-X", "POST", "-H", &own],
        LOGOUT,
    );
    c.eq(
        "logout: POST from the own origin works too",
        post.status,
        302,
    );
    c.check(
        "logout: POST goes to the end-session endpoint",
        post.header("location")
            .is_some_and(|l| l.contains("/session/end")),
        || format!("{:?}", post.header("location")),
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Return URL normalization

/// The contract's rule for where a login returns: the original path and query when it is a
/// relative reference with one leading `/` (no `//`, `\`, control characters or whitespace,
/// raw or percent-encoded), else `/`.
fn safe_return(s: &str) -> bool {
    fn layer_ok(b: &[u8]) -> bool {
        let lead = matches!(b, [b'/'] | [b'/', _, ..]) && !matches!(b, [b'/', b'/' | b'\\', ..]);
        lead && !b.iter().any(|&c| c <= 0x20 || c == 0x7f || c == b'\\')
    }
    let mut cur = s.as_bytes().to_vec();
    for _ in 0..3 {
        if !layer_ok(&cur) {
            return false;
        }
        cur = decode(&String::from_utf8_lossy(&cur).replace('+', "%2B")).into_bytes();
    }
    true
}

#[test]
fn return_urls_stay_on_the_host() {
    let (env, _idp) = scripted_rig(3600, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    for payload in [
        "/plain/path?x=1",
        "//evil.example",
        "///evil.example/",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        // CVE-2020-11053: encoded whitespace between the slashes.
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0D/evil.example",
        "/%20/evil.example",
        "/%2509/evil.example",
        // CVE-2020-5233: backslash variants.
        "/\\/evil.example",
        "/%5C/evil.example",
        // CVE-2021-21291: a host that suffix-matches an allowed domain.
        "/%2F%2Fevil.example%2F.127.0.0.1",
        "//evil.example/.127.0.0.1",
        // Userinfo and schemes.
        "//user@evil.example/",
        "/https://evil.example/",
        "/?next=//evil.example",
        "/a/../..//evil.example",
    ] {
        let mut jar = Jar::default();
        let (start, state, nonce) = scripted_start(&env, &mut jar, payload);
        // What the filter sees is what Envoy passes on after its own path normalization: the
        // listener without the filter echoes it.
        let seen = std::process::Command::new("curl")
            .args(["-s", "--path-as-is", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{}{payload}", env.plain_port))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let seen_path = serde_json::from_str::<Value>(&seen)
            .ok()
            .and_then(|v| v["path"].as_str().map(str::to_owned));
        if start.status != 302
            || !start
                .header("location")
                .is_some_and(|l| l.contains("/auth?"))
        {
            // Envoy itself refused the path, or redirected it (UNESCAPE_AND_REDIRECT turns
            // `%5C` and `%2F` into slashes) before the filter: such a redirect must stay on
            // this host, and no login starts.
            let origin = format!("http://127.0.0.1:{}", env.port);
            let same_host = |l: &str| l.strip_prefix(&origin).map_or(safe_return(l), safe_return);
            c.check(
                &format!("return url: {payload:?} refused or redirected on this host by Envoy"),
                start.status != 200 && start.header("location").is_none_or(same_host),
                || format!("{} {:?}", start.status, start.header("location")),
            );
            continue;
        }
        let r = scripted_callback(&env, &mut jar, &state, &format!("good.{nonce}"), None);
        let loc = r.header("location").unwrap_or("").to_string();
        c.eq(
            &format!("return url: {payload:?} callback 302"),
            r.status,
            302,
        );
        c.check(
            &format!("return url: {payload:?} Location is a safe relative reference"),
            safe_return(&loc),
            || loc.clone(),
        );
        let want = match &seen_path {
            Some(p) if safe_return(p) => p.clone(),
            _ => "/".to_string(),
        };
        c.eq(
            &format!("return url: {payload:?} (seen as {seen_path:?})"),
            loc,
            want,
        );
    }
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// The rigs themselves, without Envoy: these pass whatever the filter does, so a failure in the
// tests above that also shows here is the rig's, not the filter's.

fn token_call(endpoint: &str, form: &str) -> Resp {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "10",
            "-u",
            &format!("{CLIENT_ID}:{CLIENT_SECRET}"),
        ])
        .args(["--data", form, endpoint])
        .output()
        .unwrap();
    common::parse_curl(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn rig_real_idp_runs_a_code_flow_with_pkce_and_rotates_refresh_tokens() {
    let port = free_port();
    let idp = Idp::start(
        free_port(),
        &IdpOpts {
            host: "127.0.0.1",
            redirect_uri: redirect_uri(port),
            post_logout_redirect_uri: post_logout_uri(port),
            access_token_ttl: Some(2),
        },
    );
    let verifier = "a-test-verifier-of-at-least-43-characters-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let auth = format!(
        "{}/auth?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid%20email%20offline_access&state=st4te&nonce=n0nce&code_challenge={challenge}&code_challenge_method=S256&prompt=consent",
        idp.issuer,
        enc(&redirect_uri(port))
    );
    let cb = idp_login(
        &idp.issuer,
        &auth,
        "alice",
        &idp_jar("rig"),
        &redirect_uri(port),
    );
    assert_eq!(param(&cb, "state").as_deref(), Some("st4te"), "{cb}");
    assert_eq!(param(&cb, "iss"), Some(idp.issuer.clone()), "{cb}");
    let code = param(&cb, "code").unwrap();
    let endpoint = format!("{}/token", idp.issuer);
    let t = token_call(
        &endpoint,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
            enc(&code),
            enc(&redirect_uri(port))
        ),
    );
    assert_eq!(t.status, 200, "{}", t.body);
    let body: Value = serde_json::from_str(&t.body).unwrap();
    assert_eq!(body["expires_in"], json!(2), "{body}");
    assert!(
        body["id_token"].as_str().unwrap().split('.').count() == 3,
        "{body}"
    );
    let rt = body["refresh_token"]
        .as_str()
        .expect("a refresh token (offline_access + consent)")
        .to_string();
    let r1 = token_call(
        &endpoint,
        &format!("grant_type=refresh_token&refresh_token={}", enc(&rt)),
    );
    assert_eq!(r1.status, 200, "{}", r1.body);
    let r2 = token_call(
        &endpoint,
        &format!("grant_type=refresh_token&refresh_token={}", enc(&rt)),
    );
    assert_eq!(
        r2.status, 400,
        "a rotated refresh token is refused: {}",
        r2.body
    );
    assert!(r2.body.contains("invalid_grant"), "{}", r2.body);
    // A replayed code is refused (and oidc-provider then revokes what the code gave).
    let again = token_call(
        &endpoint,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
            enc(&code),
            enc(&redirect_uri(port))
        ),
    );
    assert_eq!(again.status, 400, "a code works once: {}", again.body);
}

#[test]
fn rig_scripted_idp_serves_discovery_keys_and_spoiled_id_tokens() {
    let idp = ScriptedIdp::start(None, 30);
    let get = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", &format!("{}{path}", idp.issuer())])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let doc = get("/.well-known/openid-configuration");
    assert_eq!(doc["issuer"].as_str(), Some(idp.issuer().as_str()));
    assert_eq!(get("/jwks")["keys"][0]["kid"], json!(scripted_idp::KID));
    let endpoint = format!("{}/token", idp.issuer());
    let ok = token_call(
        &endpoint,
        "grant_type=authorization_code&code=nonce.N1&code_verifier=v&redirect_uri=x",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let body: Value = serde_json::from_str(&ok.body).unwrap();
    let payload = body["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["nonce"], json!("not-the-flows-nonce"));
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        token_call(
            &endpoint,
            &format!("grant_type=refresh_token&refresh_token={rt}")
        )
        .status,
        200
    );
    assert_eq!(
        token_call(
            &endpoint,
            &format!("grant_type=refresh_token&refresh_token={rt}")
        )
        .status,
        400
    );
    assert_eq!(idp.refreshes(), 2);
    assert_eq!(
        token_call(&endpoint, "grant_type=authorization_code&code=http500.x").status,
        500
    );
    let call = &idp.token_calls()[0];
    assert_eq!(call.field("code"), Some("nonce.N1"));
    assert!(call.header("authorization").unwrap().starts_with("Basic "));
}

// ---------------------------------------------------------------------------------------------
// Discovery: the IdP rotates its signing key

#[test]
fn idp_key_rotation_is_picked_up_on_a_kid_miss() {
    let (env, idp) = scripted_rig(3600, |iss, port| web_config(iss, port, &[KEY_A]));
    let mut c = Checks::default();
    let mut jar = Jar::default();
    c.eq(
        "discovery: login with the first key",
        scripted_login(&env, &mut jar, "/k").status,
        302,
    );
    let hits = idp.jwks_hits();
    idp.rotate_keys();
    // kid-miss refetches are spaced as for remote_jwks (kid_refetch_interval, 30 s by default).
    std::thread::sleep(Duration::from_secs(31));
    let mut j2 = Jar::default();
    let r = scripted_login(&env, &mut j2, "/k2");
    c.eq(
        "discovery: an ID token under a new kid is accepted after a refetch",
        r.status,
        302,
    );
    c.check(
        "discovery: the key set was fetched again",
        idp.jwks_hits() > hits,
        || format!("{hits} -> {}", idp.jwks_hits()),
    );
    c.eq(
        "discovery: sessions from before the rotation still work",
        api(&env, &jar.without_flows(), &[], "/k").status,
        200,
    );
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Secrets and client authentication

fn start_scripted_with(
    idp: &ScriptedIdp,
    cfg: &Value,
    port: u16,
    vm_env: &[(&str, &str)],
) -> Result<Env, String> {
    Env::try_start_with(
        cfg,
        Opts {
            concurrency: 1,
            listen_port: Some(port),
            idp_port: Some(idp.port),
            vm_env: vm_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Opts::default()
        },
    )
}

#[test]
fn secrets_from_the_vm_environment_and_client_authentication() {
    let idp = ScriptedIdp::start(None, 3600);
    idp.set_access_token_len(Some(24));
    let mut c = Checks::default();
    let last_code_call = |idp: &ScriptedIdp| {
        idp.token_calls()
            .into_iter()
            .rfind(|t| t.field("grant_type") == Some("authorization_code"))
    };

    // {"env": NAME} secrets from vm_config.environment_variables.
    let port = free_port();
    let mut cfg = web_config(&idp.issuer(), port, &[KEY_A]);
    cfg["oidc"]["web"]["client_secret"] = json!({"env": "OIDC_CLIENT_SECRET"});
    cfg["oidc"]["web"]["session"]["keys"] = json!([{"env": "OIDC_KEY_NEW"}]);
    let env = start_scripted_with(
        &idp,
        &cfg,
        port,
        &[
            ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
            ("OIDC_KEY_NEW", KEY_A),
        ],
    )
    .unwrap_or_else(|log| panic!("env secrets refused:\n{log}"));
    wait_ready(&env);
    let mut jar = Jar::default();
    let (start, state, nonce) = scripted_start(&env, &mut jar, "/env");
    c.eq("secrets: login start with env secrets", start.status, 302);
    let done = scripted_callback(&env, &mut jar, &state, &format!("good.{nonce}"), None);
    c.eq("secrets: login with env secrets", done.status, 302);
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    c.eq(
        "secrets: client_secret from the environment, basic auth",
        last_code_call(&idp).and_then(|t| t.header("authorization").map(str::to_owned)),
        Some(basic),
    );
    let page = api(&env, &jar.without_flows(), &[], "/env");
    c.eq(
        "secrets: the session sealed with the env key works",
        page.status,
        200,
    );
    let mut inline = web_config(&idp.issuer(), port, &[KEY_A]);
    inline["oidc"]["web"]["timeout"] = json!("5s");
    let other =
        start_scripted_with(&idp, &inline, free_port(), &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&other);
    c.eq(
        "secrets: an env key and the same inline key are one key",
        api(&other, &jar.without_flows(), &[], "/env").status,
        200,
    );
    let log = env.log();
    let session_values: Vec<String> = jar.session().into_iter().map(|(_, v)| v).collect();
    let at = page
        .upstream_header("authorization")
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_string();
    for (what, secret) in [
        ("client secret", CLIENT_SECRET.to_string()),
        ("session key", KEY_A.to_string()),
        ("code", format!("good.{nonce}")),
        ("access token", at.clone()),
    ] {
        if secret.len() > 4 {
            c.check(
                &format!("secrets: no {what} in Envoy's log"),
                !log.contains(&secret),
                || format!("{secret:?} logged"),
            );
        }
    }
    for v in session_values {
        c.check(
            "secrets: no session cookie value in Envoy's log",
            !log.contains(&v[..v.len().min(40)]),
            || "session cookie logged".into(),
        );
    }
    drop(other);

    // A missing variable refuses the configuration.
    match start_scripted_with(&idp, &cfg, free_port(), &[("OIDC_KEY_NEW", KEY_A)]) {
        Ok(_) => c.check(
            "secrets: a missing variable refuses the config",
            false,
            || "Envoy started".into(),
        ),
        Err(log) => c.check(
            "secrets: a missing variable refuses the config, naming the path",
            log.contains("oidc.web.client_secret"),
            || {
                log.lines()
                    .filter(|l| l.contains("invalid plugin"))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ),
    }

    // client_secret_post.
    let port = free_port();
    let mut post_cfg = web_config(&idp.issuer(), port, &[KEY_A]);
    post_cfg["oidc"]["web"]["client_auth"] = json!("client_secret_post");
    let post_env =
        start_scripted_with(&idp, &post_cfg, port, &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&post_env);
    c.eq(
        "client auth: client_secret_post login",
        scripted_login(&post_env, &mut Jar::default(), "/p").status,
        302,
    );
    let t = last_code_call(&idp);
    c.eq(
        "client auth: client_secret_post sends client_id",
        t.as_ref().and_then(|t| t.field("client_id")),
        Some(CLIENT_ID),
    );
    c.eq(
        "client auth: client_secret_post sends client_secret",
        t.as_ref().and_then(|t| t.field("client_secret")),
        Some(CLIENT_SECRET),
    );
    c.eq(
        "client auth: client_secret_post sends no Authorization",
        t.as_ref().and_then(|t| t.header("authorization")),
        None,
    );
    drop(post_env);

    // A public client: PKCE only.
    let port = free_port();
    let mut public = web_config(&idp.issuer(), port, &[KEY_A]);
    public["oidc"]["web"]
        .as_object_mut()
        .unwrap()
        .remove("client_secret");
    let pub_env =
        start_scripted_with(&idp, &public, port, &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&pub_env);
    c.eq(
        "client auth: public client login",
        scripted_login(&pub_env, &mut Jar::default(), "/p").status,
        302,
    );
    let t = last_code_call(&idp);
    c.eq(
        "client auth: public client sends client_id in the form",
        t.as_ref().and_then(|t| t.field("client_id")),
        Some(CLIENT_ID),
    );
    c.eq(
        "client auth: public client sends no secret",
        t.as_ref().and_then(|t| t.field("client_secret")),
        None,
    );
    c.eq(
        "client auth: public client sends no Authorization",
        t.as_ref().and_then(|t| t.header("authorization")),
        None,
    );
    c.check(
        "client auth: public client sends the PKCE verifier",
        t.as_ref()
            .and_then(|t| t.field("code_verifier"))
            .is_some_and(|v| v.len() >= 43),
        || format!("{t:?}"),
    );
    drop(pub_env);
    c.finish(&env);
}

// ---------------------------------------------------------------------------------------------
// Session lifetimes, size, forwarding and authorization

#[test]
fn session_lifetimes() {
    let idp = ScriptedIdp::start(None, 3600);
    let mut c = Checks::default();
    // absolute_lifetime alone.
    let port = free_port();
    let mut abs = web_config(&idp.issuer(), port, &[KEY_A]);
    abs["oidc"]["web"]["session"]["absolute_lifetime"] = json!("3s");
    let env = start_scripted_with(&idp, &abs, port, &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&env);
    let mut jar = Jar::default();
    let done = scripted_login(&env, &mut jar, "/a");
    c.eq("session: login (absolute_lifetime 3s)", done.status, 302);
    for s in set_cookies(&done).iter().filter(|s| !s.clears()) {
        let max_age: u64 = s
            .attr("max-age")
            .and_then(|m| m.parse().ok())
            .unwrap_or(u64::MAX);
        c.check(
            &format!("session: {} Max-Age within absolute_lifetime", s.name),
            max_age <= 3,
            || format!("{s:?}"),
        );
    }
    let jar = jar.without_flows();
    std::thread::sleep(Duration::from_millis(1000));
    c.eq(
        "session: used within absolute_lifetime",
        api(&env, &jar, &[], "/a").status,
        200,
    );
    std::thread::sleep(Duration::from_millis(3200));
    c.reply(
        "session: past absolute_lifetime is no session",
        &api(&env, &jar, &[], "/a"),
        401,
        LOGIN_REQUIRED,
    );

    // idle_timeout alone: kept alive by use, ended by idleness.
    let port = free_port();
    let mut idle = web_config(&idp.issuer(), port, &[KEY_A]);
    idle["oidc"]["web"]["session"]["idle_timeout"] = json!("3s");
    let env2 = start_scripted_with(&idp, &idle, port, &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&env2);
    let mut jar = Jar::default();
    c.eq(
        "session: login (idle_timeout 3s)",
        scripted_login(&env2, &mut jar, "/i").status,
        302,
    );
    let mut jar = jar.without_flows();
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(1000));
        let r = api(&env2, &jar, &[], "/i");
        c.eq(
            &format!(
                "session: used every second, request {i} passes (idle counts from the last use)"
            ),
            r.status,
            200,
        );
        jar.apply(&r);
    }
    std::thread::sleep(Duration::from_millis(4500));
    c.reply(
        "session: idle past idle_timeout is no session",
        &api(&env2, &jar, &[], "/i"),
        401,
        LOGIN_REQUIRED,
    );
    drop(env2);
    c.finish(&env);
}

#[test]
fn large_sessions_split_and_forwarding_and_authorization_options() {
    let idp = ScriptedIdp::start(None, 3600);
    let mut c = Checks::default();
    // A 6000-character access token: the session needs more than one cookie.
    idp.set_access_token_len(Some(6000));
    let port = free_port();
    let env = start_scripted_with(&idp, &web_config(&idp.issuer(), port, &[KEY_A]), port, &[])
        .unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&env);
    let mut jar = Jar::default();
    jar.set("other", "1");
    let done = scripted_login(&env, &mut jar, "/big");
    c.eq("session: large session login", done.status, 302);
    let set: Vec<SetCookie> = set_cookies(&done)
        .into_iter()
        .filter(|s| !s.clears())
        .collect();
    c.check(
        "session: a large session is split into several cookies",
        set.len() >= 2,
        || format!("{} cookies", set.len()),
    );
    for s in &set {
        c.check(
            &format!("session: {} starts with cookie_name", s.name),
            s.name.starts_with(COOKIE),
            || s.name.clone(),
        );
        let line = s.name.len() + 1 + s.value.len();
        c.check(
            &format!("session: {} fits one cookie (4096 bytes)", s.name),
            line <= 4096,
            || format!("{line} bytes"),
        );
    }
    let r = api(&env, &jar.without_flows(), &[], "/big");
    c.eq("session: a split session opens", r.status, 200);
    if r.status == 200 {
        let authz = r.upstream_header("authorization").unwrap_or_default();
        c.check(
            "session: the whole access token goes upstream",
            authz.len() > 6000,
            || format!("{} bytes", authz.len()),
        );
        c.eq(
            "session: every chunk stripped, other cookies kept",
            r.upstream_header("cookie"),
            Some("other=1".to_string()),
        );
    }
    let mut missing = jar.without_flows();
    if let Some((name, _)) = missing.session().last().cloned() {
        missing.cookies.remove(&name);
        c.reply(
            "session: a split session with a chunk missing is no session",
            &api(&env, &missing, &[], "/big"),
            401,
            LOGIN_REQUIRED,
        );
    }
    drop(env);
    idp.set_access_token_len(None);

    // forward_access_token: false, and authorization policies on the session's identity.
    let port = free_port();
    let mut cfg = web_config(&idp.issuer(), port, &[KEY_A]);
    cfg["oidc"]["web"]["forward_access_token"] = json!(false);
    cfg["authorization"] = json!({"policies": [
        {"name": "scripted-only", "action": "ALLOW", "rules": [
            {"from": [{"source": {"request_principals": [format!("{}/scripted-user", idp.issuer())]}}],
             "to": [{"operation": {"paths": ["/ok*"]}}]},
            {"to": [{"operation": {"paths": ["/aud*"]}}],
             "when": [{"key": "request.auth.audiences", "values": [CLIENT_ID]}]},
            {"to": [{"operation": {"paths": ["/mail*"]}}],
             "when": [{"key": "request.auth.claims[email]", "values": ["scripted@example.com"]}]},
            {"to": [{"operation": {"paths": ["/nobody*"]}}],
             "when": [{"key": "request.auth.claims[email]", "values": ["nobody@example.com"]}]}]}]});
    let env = start_scripted_with(&idp, &cfg, port, &[]).unwrap_or_else(|log| panic!("{log}"));
    wait_ready(&env);
    let mut jar = Jar::default();
    c.eq(
        "session: login (forward_access_token false)",
        scripted_login(&env, &mut jar, "/ok").status,
        302,
    );
    let jar = jar.without_flows();
    let ok = api(&env, &jar, &[], "/ok");
    c.eq(
        "session: request.auth.principal is <iss>/<sub>",
        ok.status,
        200,
    );
    if ok.status == 200 {
        c.eq(
            "session: forward_access_token false sets no Authorization",
            ok.upstream_header("authorization"),
            None,
        );
    }
    c.eq(
        "session: request.auth.audiences",
        api(&env, &jar, &[], "/aud").status,
        200,
    );
    c.eq(
        "session: request.auth.claims[email]",
        api(&env, &jar, &[], "/mail").status,
        200,
    );
    c.reply(
        "session: a policy that does not match the session's claims",
        &api(&env, &jar, &[], "/nobody"),
        403,
        "RBAC: access denied",
    );
    c.finish(&env);
}
