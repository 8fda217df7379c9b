//! A session as the request's identity: the form authorization reads (`iss`, `sub`, audiences,
//! claims) and the upstream request's headers (claims, the access token).

use serde_json::Value;

use crate::config::OidcLogin;
use crate::crypto::signature::Alg;
use crate::jwt::claims;
use crate::jwt::token::Jwt;
use crate::oidc::session::Session;
use crate::request::view::RequestEdits;

/// The session's claims as a verified token's, for authorization: `request.auth.principal`
/// is `<iss>/<sub>` and `request.auth.audiences` the ID token's `aud`.
pub fn as_jwt(s: &Session) -> Jwt {
    let mut payload = s.claims.clone();
    payload.insert("iss".into(), Value::String(s.iss.clone()));
    payload.insert("sub".into(), Value::String(s.sub.clone()));
    let audiences = match payload.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Jwt {
        // Never checked again: the ID token was verified at login, with the key's algorithm.
        alg: Alg::RS256,
        kid: None,
        iss: Some(s.iss.clone()),
        sub: Some(s.sub.clone()),
        audiences,
        exp: None,
        nbf: None,
        payload,
        payload_b64: String::new(),
    }
}

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
