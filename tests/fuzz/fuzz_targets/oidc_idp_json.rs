//! Arbitrary IdP answers: the discovery document and the token endpoint's reply. The first
//! byte picks the token status (200 most of the time). Never a panic; what is accepted is
//! well-formed: a discovery document accepted is for the configured issuer, its endpoints
//! parsed; a token answer accepted has a non-empty access token of header-safe characters.
#![no_main]

use envoy_jwt_authz::oidc::discovery;
use envoy_jwt_authz::oidc::token::{self, TokenError};
use envoy_jwt_authz_fuzz::oidc::ISSUER;
use libfuzzer_sys::fuzz_target;

fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = discovery::parse(ISSUER, data) {
        for u in [&d.token_endpoint, &d.jwks_uri] {
            assert!(header_safe(&u.authority), "authority {:?}", u.authority);
            assert!(
                u.path_and_query.starts_with('/'),
                "path {:?}",
                u.path_and_query
            );
            assert!(header_safe(&u.path_and_query));
        }
        assert!(!d.authorization_endpoint.is_empty());
        // One document names one issuer (strict JSON: no member twice).
        assert!(discovery::parse("https://other.example", data).is_err());
    }
    let (status, body) = match data.split_first() {
        Some((s, rest)) => {
            let status = match s % 8 {
                0 => 400,
                1 => 401,
                2 => 503,
                3 => 302,
                _ => 200,
            };
            (status, rest)
        }
        None => (200, data),
    };
    match token::parse_response(status, body) {
        Ok(t) => {
            assert_eq!(status, 200);
            assert!(
                header_safe(&t.access_token),
                "access token {:?}",
                t.access_token
            );
            for s in [&t.refresh_token, &t.id_token].into_iter().flatten() {
                assert!(header_safe(s), "token {s:?}");
            }
        }
        Err(TokenError::Refused { error, .. }) => {
            assert!(error.len() <= 128, "error of {} bytes", error.len());
            assert!(
                error.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{error:?}"
            );
        }
        Err(TokenError::Unavailable(s)) => assert!((500..600).contains(&s)),
        Err(_) => {}
    }
});
