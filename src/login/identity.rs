//! A session as the request's identity for the upstream: its claims as headers and its access
//! token (authorization reads `oidc::session::Session::identity`).

use crate::config::OidcLogin;
use crate::jwt::claims;
use crate::jwt::token::Jwt;
use crate::oidc::session::Session;
use crate::request::view::RequestEdits;

/// Headers for the upstream: `claim_to_headers`, and the access token as a bearer token when
/// `forward_access_token`.
pub fn edits(login: &OidcLogin, s: &Session, jwt: &Jwt, edits: &mut RequestEdits) {
    let p = &login.provider;
    for c in &p.claim_to_headers {
        if let Some(value) = claims::lookup(&jwt.payload, &c.path).and_then(claims::header_value) {
            edits.set(&c.header, value);
        }
    }
    if p.forward_access_token {
        match &s.access_token {
            Some(t) => edits.set("authorization", format!("Bearer {t}")),
            // Trimmed from a large session: the upstream must not take a client's own header
            // for the session's.
            None => edits.remove("authorization"),
        }
    }
}
