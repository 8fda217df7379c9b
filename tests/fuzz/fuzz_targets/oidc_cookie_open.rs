//! Arbitrary `Cookie` headers (one per input line) against the session and flow cookie
//! openers: reassembling chunks, opening with the key ring, starting a login beside them,
//! stripping the filter's cookies before the upstream, clearing them at logout. Placeholders
//! let the fuzzer place genuine sealed values: `$S` (a small session), `$C0` and `$C1` (the
//! two chunks of a large one, names `web.0-2` / `web.1-2`), `$OLD` (sealed under the old key).
//! Nobody here can seal without the keys: whatever opens must be one of those sessions.
#![no_main]

use std::sync::OnceLock;

use envoy_jwt_authz::oidc::config::OidcProvider;
use envoy_jwt_authz::oidc::cookies::{self, classify};
use envoy_jwt_authz::oidc::flow;
use envoy_jwt_authz::oidc::session::{self, Session};
use envoy_jwt_authz::request::view::{Request, RequestEdits};
use envoy_jwt_authz_fuzz::oidc::{
    provider, provider_with_keys, set_cookie_pair, Xorshift, ISSUER, KEY_NEW, KEY_OLD, NOW,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

struct Fixture {
    ring: OidcProvider,
    new_only: OidcProvider,
    small: Session,
    big: Session,
    old: Session,
    small_value: String,
    chunks: Vec<String>,
    old_value: String,
}
// libFuzzer runs a target on one thread.
unsafe impl Sync for Fixture {}
unsafe impl Send for Fixture {}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn sealed(p: &OidcProvider, s: &Session, seed: u64) -> Vec<(String, String)> {
    let stored = match session::store(p, s, NOW, &[], &mut Xorshift(seed)) {
        Ok(st) => st,
        Err(e) => panic!("cannot seal the fixture session: {e:?}"),
    };
    stored
        .set_cookies
        .iter()
        .map(|l| set_cookie_pair(l))
        .collect()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ring = provider();
        let new_only = provider_with_keys(&[KEY_NEW]);
        let old_only = provider_with_keys(&[KEY_OLD]);
        let small = Session::new(
            ISSUER.into(),
            "alice".into(),
            claims(json!({"email": "alice@example.com"})),
            NOW - 10,
        );
        let mut big = Session::new(
            ISSUER.into(),
            "bob".into(),
            claims(json!({"email": "bob@example.com"})),
            NOW - 10,
        );
        big.access_token = Some("a".repeat(2000));
        big.id_token = Some("i".repeat(2000));
        let old = Session::new(ISSUER.into(), "carol".into(), Map::new(), NOW - 10);
        let small_c = sealed(&ring, &small, 1);
        let big_c = sealed(&ring, &big, 2);
        let old_c = sealed(&old_only, &old, 3);
        assert_eq!(small_c.len(), 1, "small session split");
        assert_eq!(
            big_c.len(),
            2,
            "large session not in two chunks: {}",
            big_c.len()
        );
        assert_eq!(big_c[0].0, "web.0-2");
        Fixture {
            ring,
            new_only,
            small,
            big,
            old,
            small_value: small_c[0].1.clone(),
            chunks: big_c.into_iter().map(|(_, v)| v).collect(),
            old_value: old_c[0].1.clone(),
        }
    })
}

fn no_unsafe(line: &str) {
    assert!(
        !line.bytes().any(|b| b < 0x20 || b == 0x7f),
        "Set-Cookie with a control byte: {line:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let text = String::from_utf8_lossy(data)
        .replace("$S", &f.small_value)
        .replace("$C0", &f.chunks[0])
        .replace("$C1", &f.chunks[1])
        .replace("$OLD", &f.old_value);
    let mut headers = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/app".to_string()),
        (":authority".to_string(), "app.example.com".to_string()),
    ];
    for line in text.split('\n') {
        headers.push(("cookie".to_string(), line.to_string()));
    }
    let req = Request::new(headers);
    let present = cookies::request_cookies(&req);

    // Whatever opens is a session sealed here, with the key ring that sealed it.
    if let Ok(s) = session::load(&f.ring, &present, NOW) {
        assert!(
            s == f.small || s == f.big || s == f.old,
            "a session nobody sealed opened: {s:?}"
        );
    }
    if let Ok(s) = session::load(&f.new_only, &present, NOW) {
        assert!(s != f.old, "a cookie sealed under a dropped key opened");
        assert!(s == f.small || s == f.big, "a session nobody sealed opened");
    }
    // Past the absolute lifetime nothing opens.
    assert!(session::load(&f.ring, &present, NOW + 86_400).is_err());

    // A login started beside arbitrary cookies writes only the filter's own, well-formed ones.
    let attrs = &f.ring.session.cookie;
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    if let Some(start) = flow::start_login(
        &f.ring,
        "https://idp.example.com/auth",
        "/app",
        &present,
        NOW,
        &mut rng,
    ) {
        // At most every flow present cleared, plus the new one.
        assert!(start.set_cookies.len() <= present.len() + 1);
        for line in &start.set_cookies {
            no_unsafe(line);
            let (name, _) = set_cookie_pair(line);
            assert!(
                classify(&attrs.name, &name).is_some(),
                "login set a cookie that is not the filter's: {name:?}"
            );
        }
    }
    for line in cookies::clear_all(attrs, &present)
        .iter()
        .chain(cookies::clear_session(attrs, &present).iter())
    {
        no_unsafe(line);
        assert!(
            line.starts_with(&attrs.name),
            "cleared a foreign cookie: {line:?}"
        );
        assert!(
            line.contains("Max-Age=0"),
            "a clear that does not expire: {line:?}"
        );
    }

    // Nothing the filter reads as its own cookie reaches the upstream.
    let mut edits = RequestEdits::default();
    cookies::strip(&req, &attrs.name, &mut edits);
    let after: Vec<(String, String)> = match edits.set.iter().find(|(n, _)| n == "cookie") {
        Some((_, v)) => vec![("cookie".to_string(), v.clone())],
        None if edits.remove.iter().any(|n| n == "cookie") => Vec::new(),
        None => req
            .header_values("cookie")
            .map(|v| ("cookie".to_string(), v.to_string()))
            .collect(),
    };
    let upstream = Request::new(after);
    for (n, _) in cookies::request_cookies(&upstream) {
        assert!(
            classify(&attrs.name, n).is_none(),
            "the filter's cookie {n:?} reaches the upstream"
        );
    }
    assert!(
        session::load(&f.ring, &cookies::request_cookies(&upstream), NOW).is_err(),
        "a session still opens from what goes upstream"
    );
});
