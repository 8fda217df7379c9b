//! Local replies the filter sends instead of forwarding: failures with Envoy's bodies and
//! `WWW-Authenticate` challenge, RBAC denials, CORS preflight answers.

use crate::jwt::error::AuthError;
use crate::request::view::Request;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
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
    }
}

/// 403 from authorization, as Envoy's RBAC filter sends it: no challenge.
pub fn rbac_denied() -> LocalReply {
    plain(403, "RBAC: access denied")
}

/// A `text/plain` reply.
pub fn plain(status: u32, body: &str) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.into(),
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
    fn realm_path_is_cut_at_256() {
        let long = format!("/{}", "a".repeat(400));
        let realm = realm(&req(&long));
        assert_eq!(realm.len(), "https://api.example.com".len() + 256);
    }
}
