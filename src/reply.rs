//! Local replies the filter sends instead of forwarding: failures with Envoy's bodies and
//! `WWW-Authenticate` challenge, RBAC denials, CORS preflight answers.

use crate::jwt::error::AuthError;
use crate::request::view::Request;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Envoy's response code details (`%RESPONSE_CODE_DETAILS%`), as [`details`] makes them.
    pub details: String,
}

/// Response code details in `jwt_authn`'s style: `<what>` or `<what>{<why>}`, with every
/// whitespace or control character of `why` turned into `_` (Envoy refuses details with
/// spaces): `jwt_authz_denied{Jwt_is_expired}`, `jwt_authz_denied{rbac:orders-read}`.
pub fn details(what: &str, why: Option<&str>) -> String {
    match why {
        None => what.to_string(),
        Some(why) => {
            let why: String = why
                .chars()
                .map(|c| {
                    if c.is_whitespace() || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            format!("{what}{{{why}}}")
        }
    }
}

/// The details of a refusal with body `body`.
pub fn denied_details(body: &str) -> String {
    details("jwt_authz_denied", Some(body))
}

/// Envoy cuts the path of the realm URI at this many characters (`MaximumUriLength`).
const MAX_REALM_PATH: usize = 256;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `<scheme>://<host><path?query>`, the path being `x-envoy-original-path` when present.
pub fn realm(req: &Request) -> String {
    let scheme = req.header(":scheme").unwrap_or("http");
    let host = req.header(":authority").unwrap_or("");
    let path = req
        .header("x-envoy-original-path")
        .unwrap_or_else(|| req.path_and_query());
    let path = truncate(path, MAX_REALM_PATH);
    // A quote or backslash would end the quoted-string early: escape them.
    let uri = format!("{scheme}://{host}{path}");
    uri.replace('\\', "\\\\").replace('"', "\\\"")
}

/// 401/403 for a failed JWT check, as Envoy `jwt_authn` sends it.
pub fn auth_failure(err: AuthError, req: &Request, jwks_unavailable_status: u32) -> LocalReply {
    let mut challenge = format!("Bearer realm=\"{}\"", realm(req));
    if err != AuthError::Missing {
        challenge.push_str(", error=\"invalid_token\"");
    }
    LocalReply {
        status: err.http_status(jwks_unavailable_status),
        headers: vec![
            ("www-authenticate".into(), challenge),
            ("content-type".into(), "text/plain".into()),
        ],
        body: err.message().to_string(),
        details: denied_details(err.message()),
    }
}

/// 403 from authorization, as Envoy's RBAC filter sends it: no challenge. `policy`: the DENY
/// policy that refused (details `rbac:<name>`), or none when no ALLOW policy matched
/// (`rbac:none`, as RBAC's `matched_policy[none]`).
pub fn rbac_denied(policy: Option<&str>) -> LocalReply {
    LocalReply {
        status: 403,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "RBAC: access denied".into(),
        details: denied_details(&format!("rbac:{}", policy.unwrap_or("none"))),
    }
}

/// A `text/plain` reply whose details name its body.
pub fn plain(status: u32, body: &str) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.into(),
        details: denied_details(body),
    }
}

/// 414 for a path too long to be matched against the rules' regexes (as Apache and nginx
/// answer a request line over 8 KiB).
pub fn path_too_long() -> LocalReply {
    plain(414, "URI Too Long")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn req(path: &str) -> Request {
        Request::new(vec![
            (":scheme".into(), "https".into()),
            (":authority".into(), "api.example.com".into()),
            (":path".into(), path.into()),
        ])
    }

    #[test]
    fn missing_has_no_error_param() {
        let r = auth_failure(AuthError::Missing, &req("/v1/items?x=1"), 401);
        assert_eq!(r.status, 401);
        assert_eq!(r.body, "Jwt is missing");
        assert_eq!(
            r.headers[0].1,
            "Bearer realm=\"https://api.example.com/v1/items?x=1\""
        );
    }

    #[test]
    fn failures_carry_invalid_token() {
        let r = auth_failure(AuthError::AudienceNotAllowed, &req("/a"), 401);
        assert_eq!(r.status, 403);
        assert!(r.headers[0].1.ends_with(", error=\"invalid_token\""));
        assert_eq!(
            auth_failure(AuthError::JwksFetchFail, &req("/"), 503).status,
            503
        );
    }

    #[test]
    fn details_have_no_spaces() {
        let r = auth_failure(AuthError::Expired, &req("/"), 401);
        assert_eq!(r.details, "jwt_authz_denied{Jwt_is_expired}");
        assert_eq!(
            rbac_denied(Some("a b\tc")).details,
            "jwt_authz_denied{rbac:a_b_c}"
        );
        assert_eq!(rbac_denied(None).details, "jwt_authz_denied{rbac:none}");
        assert_eq!(
            details("jwt_authz_cors_preflight", None),
            "jwt_authz_cors_preflight"
        );
    }

    #[test]
    fn realm_path_is_cut_at_256() {
        let long = format!("/{}", "a".repeat(400));
        let realm = realm(&req(&long));
        assert_eq!(realm.len(), "https://api.example.com".len() + 256);
    }
}
