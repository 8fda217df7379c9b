//! Claims of a verified token: lookup by path, and the text a claim becomes in a header.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The claim at `path` (`["org", "tenant", "id"]`), walking nested objects.
pub fn lookup<'a, S: AsRef<str>>(payload: &'a Map<String, Value>, path: &[S]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = payload.get(first.as_ref())?;
    for seg in rest {
        v = v.as_object()?.get(seg.as_ref())?;
    }
    Some(v)
}

/// A scalar as text: strings as they are, integral numbers without a fraction, other numbers
/// as their shortest JSON text, booleans `true`/`false`.
pub fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        })),
        _ => None,
    }
}

/// The header value for a claim, per the contract: scalars as text, a list of scalars joined
/// with `,`, an object (or a list holding non-scalars) as base64url of its compact JSON.
/// `None` for null, or when the text is not a valid header value (CR, LF, NUL and other
/// control bytes): such a claim is skipped, never passed on.
pub fn header_value(v: &Value) -> Option<String> {
    let text = match v {
        Value::Null => return None,
        Value::Array(items) => {
            let texts: Option<Vec<Cow<str>>> = items.iter().map(scalar_text).collect();
            match texts {
                Some(t) => t.join(","),
                None => URL_SAFE_NO_PAD.encode(v.to_string()),
            }
        }
        Value::Object(_) => URL_SAFE_NO_PAD.encode(v.to_string()),
        _ => scalar_text(v)?.into_owned(),
    };
    is_header_value(&text).then_some(text)
}

/// RFC 9110 field-value: visible ASCII, space, tab and obs-text; no CR, LF, NUL or DEL.
pub fn is_header_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        assert_eq!(header_value(&json!("a b")).unwrap(), "a b");
        assert_eq!(header_value(&json!(42)).unwrap(), "42");
        assert_eq!(header_value(&json!(42.0)).unwrap(), "42");
        assert_eq!(header_value(&json!(-3)).unwrap(), "-3");
        assert_eq!(header_value(&json!(1.5)).unwrap(), "1.5");
        assert_eq!(header_value(&json!(true)).unwrap(), "true");
        assert_eq!(header_value(&json!(["a", 1, false])).unwrap(), "a,1,false");
        assert_eq!(
            header_value(&json!({"k":"v"})).unwrap(),
            URL_SAFE_NO_PAD.encode(r#"{"k":"v"}"#)
        );
        assert_eq!(header_value(&json!(null)), None);
        assert_eq!(header_value(&json!("a\r\nx-admin: 1")), None);
        assert_eq!(header_value(&json!("nul\0")), None);
    }

    #[test]
    fn nested_lookup() {
        let p = json!({"org":{"tenant":{"id":"t1"}},"flat":1});
        let p = p.as_object().unwrap();
        assert_eq!(lookup(p, &["org", "tenant", "id"]), Some(&json!("t1")));
        assert_eq!(lookup(p, &["flat", "x"]), None);
        assert_eq!(lookup(p, &["missing"]), None);
    }
}
