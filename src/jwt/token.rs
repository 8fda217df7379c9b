//! Decoding of a compact JWS into header fields and payload claims, with Envoy's parse statuses.
//! Nothing here trusts the token: the signature is checked later by the verifier.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::crypto::signature::Alg;
use crate::jwt::error::AuthError;
use crate::jwt::strict_json;

/// A token split and decoded, claims not yet trusted.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub alg: Alg,
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub audiences: Vec<String>,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub payload: Map<String, Value>,
    /// The payload segment as received (base64url, no padding).
    pub payload_b64: String,
}

const MAX_TIME: f64 = 9_223_372_036_854_775_807.0;

pub fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Parses `header.payload.signature`. Order of checks, and so which error wins, follows
/// jwt_verify_lib's `Jwt::parseFromString`.
pub fn parse(token: &str) -> Result<Jwt, AuthError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::BadFormat);
    };
    if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
        return Err(AuthError::BadFormat);
    }

    let header_bytes = decode_segment(header_b64).ok_or(AuthError::HeaderBadBase64)?;
    let header = match strict_json::parse_object(&header_bytes) {
        Some(h) => h,
        None => return Err(AuthError::HeaderBadJson),
    };
    let alg = match header.get("alg") {
        Some(Value::String(a)) => Alg::from_name(a).ok_or(AuthError::HeaderAlgNotImplemented)?,
        _ => return Err(AuthError::HeaderBadAlg),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(AuthError::HeaderBadKid),
    };
    // RFC 7515 §4.1.11: we implement no extension, so any `crit` (even empty) is refused;
    // `b64` only has meaning through `crit` (RFC 7797) and is refused with it.
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(AuthError::VerificationFail);
    }

    let payload_bytes = decode_segment(payload_b64).ok_or(AuthError::PayloadBadBase64)?;
    let payload = strict_json::parse_object(&payload_bytes).ok_or(AuthError::PayloadBadJson)?;

    let iss = optional_string(&payload, "iss", AuthError::IssNotString)?;
    let sub = optional_string(&payload, "sub", AuthError::SubNotString)?;
    optional_time(
        &payload,
        "iat",
        AuthError::IatNotInteger,
        AuthError::IatOutOfRange,
    )?;
    let nbf = optional_time(
        &payload,
        "nbf",
        AuthError::NbfNotInteger,
        AuthError::NbfOutOfRange,
    )?;
    let exp = optional_time(
        &payload,
        "exp",
        AuthError::ExpNotInteger,
        AuthError::ExpOutOfRange,
    )?;
    optional_string(&payload, "jti", AuthError::JtiNotString)?;
    let audiences = match payload.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => {
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                match item {
                    Value::String(a) => out.push(a.clone()),
                    _ => return Err(AuthError::AudNotString),
                }
            }
            out
        }
        Some(_) => return Err(AuthError::AudNotString),
    };

    if decode_segment(signature_b64).is_none() {
        return Err(AuthError::SignatureBadBase64);
    }

    Ok(Jwt {
        alg,
        kid,
        iss,
        sub,
        audiences,
        exp,
        nbf,
        payload,
        payload_b64: payload_b64.to_string(),
    })
}

fn optional_string(
    payload: &Map<String, Value>,
    name: &str,
    err: AuthError,
) -> Result<Option<String>, AuthError> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err),
    }
}

/// A NumericDate: a JSON number that is a whole value in `0..2^63`.
fn optional_time(
    payload: &Map<String, Value>,
    name: &str,
    not_integer: AuthError,
    out_of_range: AuthError,
) -> Result<Option<u64>, AuthError> {
    let Some(value) = payload.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(not_integer);
    };
    if let Some(u) = n.as_u64() {
        return if u <= i64::MAX as u64 {
            Ok(Some(u))
        } else {
            Err(out_of_range)
        };
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < MAX_TIME => Ok(Some(f as u64)),
        _ => Err(out_of_range),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    #[test]
    fn parses_claims() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":10,"nbf":5}"#,
        );
        let jwt = parse(&t).unwrap();
        assert_eq!(jwt.alg, Alg::RS256);
        assert_eq!(jwt.kid.as_deref(), Some("k1"));
        assert_eq!(jwt.iss.as_deref(), Some("i"));
        assert_eq!(jwt.audiences, vec!["a", "b"]);
        assert_eq!((jwt.exp, jwt.nbf), (Some(10), Some(5)));
    }

    #[test]
    fn format_errors() {
        assert_eq!(parse("abc").unwrap_err(), AuthError::BadFormat);
        assert_eq!(parse("a.b").unwrap_err(), AuthError::BadFormat);
        assert_eq!(parse("a.b.c.d").unwrap_err(), AuthError::BadFormat);
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        assert_eq!(parse(&none).unwrap_err(), AuthError::BadFormat);
        assert_eq!(
            parse("!!.e30.c2ln").unwrap_err(),
            AuthError::HeaderBadBase64
        );
        let padded = format!("{}=.e30.c2ln", b64(r#"{"alg":"RS256"}"#));
        assert_eq!(parse(&padded).unwrap_err(), AuthError::HeaderBadBase64);
    }

    #[test]
    fn header_errors() {
        for (header, err) in [
            ("[]", AuthError::HeaderBadJson),
            ("{}", AuthError::HeaderBadAlg),
            (r#"{"alg":5}"#, AuthError::HeaderBadAlg),
            (r#"{"alg":"none"}"#, AuthError::HeaderAlgNotImplemented),
            (r#"{"alg":"NONE"}"#, AuthError::HeaderAlgNotImplemented),
            (r#"{"alg":"rs256"}"#, AuthError::HeaderAlgNotImplemented),
            (r#"{"alg":"RS256","kid":1}"#, AuthError::HeaderBadKid),
            (
                r#"{"alg":"RS256","crit":["exp"]}"#,
                AuthError::VerificationFail,
            ),
            (r#"{"alg":"RS256","crit":[]}"#, AuthError::VerificationFail),
            (
                r#"{"alg":"RS256","b64":false}"#,
                AuthError::VerificationFail,
            ),
            (r#"{"alg":"none","alg":"RS256"}"#, AuthError::HeaderBadJson),
        ] {
            assert_eq!(parse(&token(header, "{}")).unwrap_err(), err, "{header}");
        }
    }

    #[test]
    fn payload_errors() {
        for (payload, err) in [
            ("x", AuthError::PayloadBadJson),
            (r#"{"iss":1}"#, AuthError::IssNotString),
            (r#"{"sub":[]}"#, AuthError::SubNotString),
            (r#"{"exp":"1"}"#, AuthError::ExpNotInteger),
            (r#"{"exp":-1}"#, AuthError::ExpOutOfRange),
            (r#"{"exp":1.5}"#, AuthError::ExpOutOfRange),
            (r#"{"exp":9223372036854775808}"#, AuthError::ExpOutOfRange),
            (r#"{"nbf":true}"#, AuthError::NbfNotInteger),
            (r#"{"iat":"x"}"#, AuthError::IatNotInteger),
            (r#"{"jti":3}"#, AuthError::JtiNotString),
            (r#"{"aud":[1]}"#, AuthError::AudNotString),
            (r#"{"exp":1,"exp":2}"#, AuthError::PayloadBadJson),
        ] {
            assert_eq!(
                parse(&token(r#"{"alg":"ES256"}"#, payload)).unwrap_err(),
                err,
                "{payload}"
            );
        }
        let whole_float = token(r#"{"alg":"ES256"}"#, r#"{"exp":1e3}"#);
        assert_eq!(parse(&whole_float).unwrap().exp, Some(1000));
    }
}
