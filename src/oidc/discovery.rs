//! The discovery document (OpenID Connect Discovery 1.0 §3, §4.3): the endpoints the filter
//! needs, each split for `dispatch_http_call`, after checking that `issuer` is the configured
//! one exactly (a document from another issuer is a mix-up, never a variant).

use serde_json::Value;

use crate::jwt::strict_json;
use crate::oidc::url::{parse_absolute, HttpUrl};

/// Documents longer than this are refused unread.
pub const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where browsers are sent, as published (its own query kept).
    pub authorization_endpoint: String,
    pub token_endpoint: HttpUrl,
    pub jwks_uri: HttpUrl,
    /// RP-initiated logout, when the IdP offers it.
    pub end_session_endpoint: Option<String>,
}

/// Parses the document served for `issuer`. The error says what is wrong, for the log.
pub fn parse(issuer: &str, body: &[u8]) -> Result<Discovery, String> {
    if body.len() > MAX_DISCOVERY_BYTES {
        return Err(format!("larger than {MAX_DISCOVERY_BYTES} bytes"));
    }
    let doc =
        strict_json::parse_object(body).ok_or("not a JSON object (or one with a member twice)")?;
    match doc.get("issuer") {
        Some(Value::String(i)) if i == issuer => {}
        Some(Value::String(i)) => {
            return Err(format!("issuer {i:?} is not the configured {issuer:?}"))
        }
        _ => return Err("no issuer".into()),
    }
    let url = |name: &str, required: bool| -> Result<Option<(String, HttpUrl)>, String> {
        match doc.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::String(s)) => parse_absolute(s)
                .map(|u| Some((s.clone(), u)))
                .map_err(|e| format!("{name} {s:?} {e}")),
            _ => Err(format!("no {name}")),
        }
    };
    let required = |name: &str| -> Result<(String, HttpUrl), String> {
        url(name, true)?.ok_or_else(|| format!("no {name}"))
    };
    // PKCE S256 is always sent: a document that lists methods without it cannot work.
    if let Some(methods) = doc.get("code_challenge_methods_supported") {
        let s256 = methods
            .as_array()
            .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("S256")));
        if !s256 {
            return Err("code_challenge_methods_supported does not list S256".into());
        }
    }
    Ok(Discovery {
        authorization_endpoint: required("authorization_endpoint")?.0,
        token_endpoint: required("token_endpoint")?.1,
        jwks_uri: required("jwks_uri")?.1,
        end_session_endpoint: url("end_session_endpoint", false)?.map(|(s, _)| s),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:4010";

    /// Shaped like oidc-provider 9's document.
    fn document() -> serde_json::Value {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": "http://127.0.0.1:4010/auth",
            "token_endpoint": "http://127.0.0.1:4010/token",
            "jwks_uri": "http://127.0.0.1:4010/jwks",
            "end_session_endpoint": "http://127.0.0.1:4010/session/end",
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "offline_access"],
            "claims_parameter_supported": false
        })
    }

    fn parse_json(doc: &serde_json::Value) -> Result<Discovery, String> {
        parse(ISSUER, doc.to_string().as_bytes())
    }

    #[test]
    fn reads_the_endpoints() {
        let d = parse_json(&document()).unwrap();
        assert_eq!(d.authorization_endpoint, "http://127.0.0.1:4010/auth");
        assert_eq!(d.token_endpoint.authority, "127.0.0.1:4010");
        assert_eq!(d.token_endpoint.path_and_query, "/token");
        assert_eq!(d.jwks_uri.path_and_query, "/jwks");
        assert_eq!(
            d.end_session_endpoint.as_deref(),
            Some("http://127.0.0.1:4010/session/end")
        );
        let mut doc = document();
        let o = doc.as_object_mut().unwrap();
        o.remove("end_session_endpoint");
        o.remove("code_challenge_methods_supported");
        assert_eq!(parse_json(&doc).unwrap().end_session_endpoint, None);
    }

    #[test]
    fn reads_the_test_idps_own_document() {
        // Served by tests/idp/provider.js (oidc-provider 9.13.3) as `localhost`.
        let body = include_bytes!("../../tests/idp/fixtures/openid-configuration.json");
        let d = parse("http://localhost:4010", body).unwrap();
        assert_eq!(d.authorization_endpoint, "http://localhost:4010/auth");
        assert_eq!(d.token_endpoint.path_and_query, "/token");
        assert_eq!(d.jwks_uri.authority, "localhost:4010");
        assert_eq!(
            d.end_session_endpoint.as_deref(),
            Some("http://localhost:4010/session/end")
        );
        assert!(parse("http://127.0.0.1:4010", body).is_err());
    }

    #[test]
    fn refuses_another_issuer_and_missing_or_bad_endpoints() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "issuer",
                json!("http://127.0.0.1:4010/"),
                "is not the configured",
            ),
            (
                "issuer",
                json!("http://127.0.0.1:4011"),
                "is not the configured",
            ),
            ("issuer", json!(null), "no issuer"),
            ("token_endpoint", json!(null), "no token_endpoint"),
            ("jwks_uri", json!(5), "no jwks_uri"),
            (
                "jwks_uri",
                json!("/jwks"),
                "jwks_uri \"/jwks\" is not an http",
            ),
            (
                "authorization_endpoint",
                json!("https://u@evil.example/auth"),
                "user information",
            ),
            (
                "end_session_endpoint",
                json!("javascript:x"),
                "end_session_endpoint",
            ),
            ("code_challenge_methods_supported", json!(["plain"]), "S256"),
            ("code_challenge_methods_supported", json!("S256"), "S256"),
        ];
        for (member, value, why) in cases {
            let mut doc = document();
            if value.is_null() && member != "end_session_endpoint" {
                doc.as_object_mut().unwrap().remove(member);
            } else {
                doc[member] = value;
            }
            let err = parse_json(&doc).unwrap_err();
            assert!(err.contains(why), "{member}: {err}");
        }
    }

    #[test]
    fn refuses_what_is_not_one_json_object() {
        let dup = r#"{"issuer":"http://127.0.0.1:4010","issuer":"http://evil"}"#;
        assert!(parse(ISSUER, dup.as_bytes()).is_err());
        assert!(parse(ISSUER, b"[]").is_err());
        assert!(parse(ISSUER, &vec![b' '; MAX_DISCOVERY_BYTES + 1])
            .unwrap_err()
            .contains("larger"));
        let text = document().to_string();
        for cut in 0..text.len() {
            assert!(parse(ISSUER, &text.as_bytes()[..cut]).is_err());
        }
    }
}
