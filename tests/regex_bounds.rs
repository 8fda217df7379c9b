//! Issue 21: regexes are never run on inputs over `MAX_REGEX_INPUT` (8 KiB), and what that
//! means where they are used: a path that reaches a regex rule is refused with 414 (never
//! handed to a later rule requiring less); a long `Origin` is not allowed by a regex.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_jwt_authz::authn::keystore::KeyStore;
use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::config::{self, FilterConfig};
use envoy_jwt_authz::crypto::signature::Alg;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline::{self, Decision, Outcome};
use envoy_jwt_authz::policy::string_match::MAX_REGEX_INPUT;
use envoy_jwt_authz::request::view::Request;
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000;

fn signer() -> &'static Signer {
    static S: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    S.get_or_init(|| Signer::generate(Alg::EdDSA).unwrap())
}

fn parse(extra: Value) -> FilterConfig {
    let mut cfg = json!({"providers": {"p": {"issuer": "https://idp.test",
        "local_jwks": {"inline_string": json!({"keys": [signer().jwk(Some("k"), false)]}).to_string()}}}});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    config::parse(cfg.to_string().as_bytes()).unwrap()
}

fn outcome(cfg: &FilterConfig, method: &str, path: &str, extra: &[(&str, String)]) -> Outcome {
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "svc".to_string()),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
    let keys = KeyStore::new(cfg);
    pipeline::on_request_headers(
        cfg,
        &keys,
        &Request::new(headers),
        NOW,
        &mut HostRandom,
        true,
    )
}

fn status(o: &Outcome) -> u32 {
    match &o.decision {
        Decision::Reply(r) => r.status,
        Decision::Continue(_) => 200,
        d => panic!("no login is configured here: {d:?}"),
    }
}

fn bearer() -> (&'static str, String) {
    let claims = json!({"iss": "https://idp.test", "sub": "alice", "exp": NOW + 600});
    let token = signer()
        .sign(Some("k"), claims.as_object().unwrap())
        .unwrap();
    ("authorization", format!("Bearer {token}"))
}

/// `/admin/...` needs a token (by a regex), everything else none: skipping the regex rule for a
/// long path would let `/admin/...` in without one.
fn admin_behind_a_regex() -> FilterConfig {
    parse(json!({"rules": [
        {"match": {"prefix": "/health"}},
        {"match": {"safe_regex": {"regex": "/admin/.*a.{50}b"}, "methods": ["GET"]},
         "requires": {"provider_name": "p"}},
        {"match": {"prefix": "/"}}
    ]}))
}

/// A path of exactly `len` bytes under `prefix`, ending so that the regex matches it.
fn path(prefix: &str, len: usize) -> String {
    let tail = format!("a{}b", "x".repeat(50));
    format!(
        "{prefix}{}{tail}",
        "a".repeat(len - prefix.len() - tail.len())
    )
}

#[test]
fn a_long_path_reaching_a_regex_rule_is_refused_not_passed_on() {
    let cfg = admin_behind_a_regex();
    // At the bound the regex runs: a token is needed, and enough.
    let at = path("/admin/", MAX_REGEX_INPUT);
    assert_eq!(at.len(), MAX_REGEX_INPUT);
    assert_eq!(status(&outcome(&cfg, "GET", &at, &[])), 401);
    assert_eq!(status(&outcome(&cfg, "GET", &at, &[bearer()])), 200);
    // One byte over, and a 55 KB path: refused, with or without a token.
    for len in [MAX_REGEX_INPUT + 1, 55_000] {
        let long = path("/admin/", len);
        for extra in [vec![], vec![bearer()]] {
            let o = outcome(&cfg, "GET", &long, &extra);
            assert_eq!(status(&o), 414, "{len}");
            let Decision::Reply(r) = &o.decision else {
                unreachable!()
            };
            assert_eq!(r.body, "URI Too Long");
        }
        // The regex is not run: a long path that it would not match is refused too (the
        // rule is taken to match).
        let other = format!("/admin/{}", "z".repeat(len));
        assert_eq!(status(&outcome(&cfg, "GET", &other, &[])), 414);
        // The query is not part of the path: a long query string changes nothing.
        let q = format!("/admin/x?{}", "a".repeat(len));
        assert_eq!(status(&outcome(&cfg, "GET", &q, &[])), 200);
    }
}

#[test]
fn a_long_path_that_never_reaches_a_regex_rule_goes_on_as_before() {
    let cfg = admin_behind_a_regex();
    let long = path("/health/", 55_000);
    // An earlier rule matches first: no regex is consulted.
    assert_eq!(status(&outcome(&cfg, "GET", &long, &[])), 200);
    // The regex rule's other conditions do not hold (POST): it could never apply.
    let admin = path("/admin/", 55_000);
    assert_eq!(status(&outcome(&cfg, "POST", &admin, &[])), 200);
    // Without regex rules, length does not matter.
    let plain = parse(
        json!({"rules": [{"match": {"prefix": "/admin/"}, "requires": {"provider_name": "p"}}]}),
    );
    assert_eq!(status(&outcome(&plain, "GET", &admin, &[])), 401);
    assert_eq!(status(&outcome(&plain, "GET", &admin, &[bearer()])), 200);
}

#[test]
fn a_long_origin_is_not_allowed_by_a_regex() {
    let cfg = parse(json!({"rules": [{"match": {"prefix": "/"}}],
                           "cors": {"allow_origin_string_match": [
        {"safe_regex": {"regex": "https://[a-z]+\\.corp\\.test"}},
        {"suffix": ".example.com"}
    ]}}));
    let acao = |origin: String| {
        outcome(&cfg, "GET", "/", &[("origin", origin)])
            .response_headers
            .iter()
            .find(|(n, _)| n == "access-control-allow-origin")
            .map(|(_, v)| v.clone())
    };
    let corp = |len: usize| format!("https://{}.corp.test", "a".repeat(len - 18));
    assert_eq!(corp(MAX_REGEX_INPUT).len(), MAX_REGEX_INPUT);
    assert_eq!(acao(corp(MAX_REGEX_INPUT)), Some(corp(MAX_REGEX_INPUT)));
    assert_eq!(acao(corp(MAX_REGEX_INPUT + 1)), None);
    assert_eq!(acao(corp(55_000)), None);
    // Matchers that are not regexes are not bounded.
    let long = format!("https://{}.example.com", "a".repeat(55_000));
    assert_eq!(acao(long.clone()), Some(long));
}
