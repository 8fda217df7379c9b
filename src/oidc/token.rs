//! The token endpoint (RFC 6749 §4.1.3, §6; OIDC Core 3.1.3): the form the filter posts for a
//! code or a refresh, with client authentication, and the strict reading of the answer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};
use std::fmt;

use crate::jwt::strict_json;
use crate::oidc::config::{ClientAuth, OidcProvider};
use crate::oidc::url::{form, form_encode, HttpUrl};

/// Answers longer than this are refused unread.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// `expires_in` above this (ten years) is refused as nonsense.
const MAX_EXPIRES_IN: u64 = 10 * 365 * 86_400;

/// A POST to the token endpoint: headers for `dispatch_http_call` (pseudo-headers included)
/// and the form body. Both may hold secrets, so `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The code exchange, with the flow's PKCE verifier and the `redirect_uri` as configured.
pub fn code_request(
    provider: &OidcProvider,
    endpoint: &HttpUrl,
    code: &str,
    verifier: &str,
) -> TokenRequest {
    build(
        provider,
        endpoint,
        vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &provider.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
}

pub fn refresh_request(
    provider: &OidcProvider,
    endpoint: &HttpUrl,
    refresh_token: &str,
) -> TokenRequest {
    build(
        provider,
        endpoint,
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
}

fn build<'a>(
    provider: &'a OidcProvider,
    endpoint: &HttpUrl,
    mut params: Vec<(&'a str, &'a str)>,
) -> TokenRequest {
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), endpoint.path_and_query.clone()),
        (":authority".to_string(), endpoint.authority.clone()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
    ];
    match (&provider.client_secret, provider.client_auth) {
        // A public client names itself in the body (RFC 6749 §4.1.3).
        (None, _) => params.push(("client_id", &provider.client_id)),
        (Some(secret), ClientAuth::SecretBasic) => {
            // RFC 6749 §2.3.1: each part form-encoded before the base64.
            let pair = format!(
                "{}:{}",
                form_encode(&provider.client_id),
                form_encode(secret.expose())
            );
            headers.push((
                "authorization".to_string(),
                format!("Basic {}", STANDARD.encode(pair)),
            ));
        }
        (Some(secret), ClientAuth::SecretPost) => {
            params.push(("client_id", &provider.client_id));
            params.push(("client_secret", secret.expose()));
        }
    }
    TokenRequest {
        headers,
        body: form(params),
    }
}

/// A successful answer. Tokens stay out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    /// Unverified here: the caller checks it (signature, OIDC Core 3.1.3.7) before any use.
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// A 4xx with the IdP's `error` code (`invalid_grant`: a spent or wrong code, a rotated
    /// refresh token), limited to RFC 6749's characters: safe to log.
    Refused { status: u32, error: String },
    /// 5xx: the IdP is failing (502 `Login failed`).
    Unavailable(u32),
    /// Any other status.
    Unexpected(u32),
    /// A 200 whose body is not a valid token answer.
    Malformed(&'static str),
}

/// Reads the token endpoint's answer: a JSON object without duplicate members, a non-empty
/// `access_token` of type `Bearer`, and optional members of the right type when present.
pub fn parse_response(status: u32, body: &[u8]) -> Result<TokenResponse, TokenError> {
    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return match status {
            200 => Err(TokenError::Malformed("the answer is too large")),
            _ => Err(error_for(status, None)),
        };
    }
    let json = strict_json::parse_object(body);
    if status != 200 {
        return Err(error_for(status, json.as_ref()));
    }
    let json = json.ok_or(TokenError::Malformed("not a JSON object"))?;
    let text = |name: &str| -> Result<Option<String>, TokenError> {
        match json.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if is_token_text(s) => Ok(Some(s.clone())),
            Some(_) => Err(TokenError::Malformed("a token member is not a token")),
        }
    };
    let access_token = text("access_token")?.ok_or(TokenError::Malformed("no access_token"))?;
    match json.get("token_type") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        _ => return Err(TokenError::Malformed("token_type is not Bearer")),
    }
    let expires_in = match json.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or(TokenError::Malformed("bad expires_in"))?),
        // Some IdPs send it as a string of digits.
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(
                s.parse()
                    .map_err(|_| TokenError::Malformed("bad expires_in"))?,
            )
        }
        Some(_) => return Err(TokenError::Malformed("bad expires_in")),
    };
    if expires_in.is_some_and(|e| e > MAX_EXPIRES_IN) {
        return Err(TokenError::Malformed("bad expires_in"));
    }
    let scope = match json.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(TokenError::Malformed("scope is not a string")),
    };
    Ok(TokenResponse {
        access_token,
        expires_in,
        refresh_token: text("refresh_token")?,
        id_token: text("id_token")?,
        scope,
    })
}

/// Printable ASCII, no space: what can travel in an `Authorization` header or a form.
fn is_token_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn error_for(status: u32, json: Option<&Map<String, Value>>) -> TokenError {
    match status {
        400..=499 => {
            let error = json
                .and_then(|j| j.get("error"))
                .and_then(Value::as_str)
                .map(|e| {
                    e.chars()
                        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
                        .take(128)
                        .collect::<String>()
                })
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "(no error code)".to_string());
            TokenError::Refused { status, error }
        }
        500..=599 => TokenError::Unavailable(status),
        _ => TokenError::Unexpected(status),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::oidc::config::testing::{compile_json, example, provider, CLIENT_SECRET};
    use crate::oidc::url::parse_absolute;
    use crate::request::extractor::{percent_decode, query_pairs};
    use serde_json::json;

    fn endpoint() -> HttpUrl {
        parse_absolute("https://idp.example.com:8443/realms/acme/token").unwrap()
    }

    fn header<'a>(r: &'a TokenRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn form_fields(body: &str) -> Vec<(String, String)> {
        query_pairs(&format!("?{body}"))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect()
    }

    fn with(field: &str, value: serde_json::Value) -> OidcProvider {
        let mut j = example();
        if value.is_null() {
            j.as_object_mut().unwrap().remove(field);
        } else {
            j[field] = value;
        }
        compile_json(j).unwrap()
    }

    #[test]
    fn code_exchange_with_basic_authentication() {
        let r = code_request(&provider(), &endpoint(), "c/o+de", "verif1er");
        assert_eq!(header(&r, ":method"), Some("POST"));
        assert_eq!(header(&r, ":path"), Some("/realms/acme/token"));
        assert_eq!(header(&r, ":authority"), Some("idp.example.com:8443"));
        assert_eq!(
            header(&r, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            r.body,
            "grant_type=authorization_code&code=c%2Fo%2Bde&redirect_uri=https%3A%2F%2Fapp.example.com%2Foauth2%2Fcallback&code_verifier=verif1er"
        );
        // RFC 6749 §2.3.1: form-encoded, then base64.
        let basic = header(&r, "authorization")
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        let pair = String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap();
        assert_eq!(pair, "gateway:s3cret%3Awith%26odd+chars");
        let (id, secret) = pair.split_once(':').unwrap();
        assert_eq!(
            (percent_decode(id).as_str(), percent_decode(secret).as_str()),
            ("gateway", CLIENT_SECRET)
        );
        let shown = format!("{r:?}");
        assert!(
            !shown.contains(basic) && !shown.contains("c%2Fo") && !shown.contains("verif1er"),
            "{shown}"
        );
    }

    #[test]
    fn post_and_public_clients() {
        let post = with("client_auth", json!("client_secret_post"));
        let r = refresh_request(&post, &endpoint(), "rt 1");
        assert_eq!(header(&r, "authorization"), None);
        let fields = form_fields(&r.body);
        let want: Vec<(String, String)> = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt 1"),
            ("client_id", "gateway"),
            ("client_secret", CLIENT_SECRET),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(fields, want);
        let mut j = example();
        j.as_object_mut().unwrap().remove("client_secret");
        j.as_object_mut().unwrap().remove("client_auth");
        let public = compile_json(j).unwrap();
        let r = code_request(&public, &endpoint(), "c", "v");
        assert_eq!(header(&r, "authorization"), None);
        assert!(
            r.body.ends_with("&code_verifier=v&client_id=gateway"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("client_secret"));
    }

    #[test]
    fn successful_answers() {
        let full = br#"{"access_token":"at","token_type":"Bearer","expires_in":300,
            "refresh_token":"rt","id_token":"h.p.s","scope":"openid email"}"#;
        let t = parse_response(200, full).unwrap();
        assert_eq!(t.access_token, "at");
        assert_eq!(t.expires_in, Some(300));
        assert_eq!(t.refresh_token.as_deref(), Some("rt"));
        assert_eq!(t.id_token.as_deref(), Some("h.p.s"));
        assert_eq!(t.scope.as_deref(), Some("openid email"));
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("\"at\"") && !shown.contains("h.p.s"),
            "{shown}"
        );
        let minimal = br#"{"access_token":"at","token_type":"bearer","refresh_token":null,"expires_in":"3600"}"#;
        let t = parse_response(200, minimal).unwrap();
        assert_eq!(
            (t.expires_in, t.refresh_token, t.id_token),
            (Some(3600), None, None)
        );
    }

    #[test]
    fn malformed_answers_are_refused() {
        for bad in [
            &br#"{"token_type":"Bearer"}"#[..],
            br#"{"access_token":"","token_type":"Bearer"}"#,
            br#"{"access_token":"a b","token_type":"Bearer"}"#,
            br#"{"access_token":5,"token_type":"Bearer"}"#,
            br#"{"access_token":"at"}"#,
            br#"{"access_token":"at","token_type":"DPoP"}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":-1}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":1.5}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":"soon"}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":99999999999}"#,
            br#"{"access_token":"at","token_type":"Bearer","refresh_token":7}"#,
            br#"{"access_token":"at","token_type":"Bearer","id_token":["x"]}"#,
            br#"{"access_token":"at","token_type":"Bearer","scope":1}"#,
            br#"{"access_token":"at","access_token":"other","token_type":"Bearer"}"#,
            br#"{"error":"invalid_grant"}"#,
            br#"["access_token"]"#,
            b"access_token=at&token_type=bearer",
            b"",
        ] {
            assert!(
                matches!(parse_response(200, bad), Err(TokenError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = format!(
            r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
            "a".repeat(MAX_TOKEN_RESPONSE_BYTES)
        );
        assert_eq!(
            parse_response(200, huge.as_bytes()),
            Err(TokenError::Malformed("the answer is too large"))
        );
        // Every cut of a valid answer is refused or read, never a panic.
        let full =
            br#"{"access_token":"at","token_type":"Bearer","expires_in":300,"id_token":"a.b.c"}"#;
        for cut in 0..full.len() {
            assert!(parse_response(200, &full[..cut]).is_err());
        }
    }

    #[test]
    fn error_statuses() {
        assert_eq!(
            parse_response(
                400,
                br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#
            ),
            Err(TokenError::Refused {
                status: 400,
                error: "invalid_grant".into()
            })
        );
        assert_eq!(
            parse_response(401, b"<html>nope</html>"),
            Err(TokenError::Refused {
                status: 401,
                error: "(no error code)".into()
            })
        );
        assert_eq!(
            parse_response(400, "{\"error\":\"bad\\n\\\"code\\\\\"}".as_bytes()),
            Err(TokenError::Refused {
                status: 400,
                error: "badcode".into()
            })
        );
        assert_eq!(
            parse_response(503, b"{}"),
            Err(TokenError::Unavailable(503))
        );
        assert_eq!(
            parse_response(500, &vec![b'x'; MAX_TOKEN_RESPONSE_BYTES + 1]),
            Err(TokenError::Unavailable(500))
        );
        assert_eq!(parse_response(302, b""), Err(TokenError::Unexpected(302)));
        assert_eq!(
            parse_response(201, br#"{"access_token":"at","token_type":"Bearer"}"#),
            Err(TokenError::Unexpected(201))
        );
    }
}
