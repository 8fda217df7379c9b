//! Where tokens are found (headers with a prefix, query parameters, cookies) and how a token
//! is taken out of the request when it must not be forwarded.

use std::borrow::Cow;

use crate::config::schema::{header_name, ConfigError};
use crate::request::view::{Request, RequestEdits};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// `prefix` is compared ASCII-case-insensitively at the start of the value.
    Header {
        name: String,
        prefix: Option<String>,
    },
    Param(String),
    Cookie(String),
}

/// A token and the location it came from, borrowed from the request and the configuration
/// (only a percent-decoded parameter is a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'a> {
    pub token: Cow<'a, str>,
    pub location: &'a TokenLocation,
}

/// Default locations, as Envoy: `Authorization: Bearer <t>`, then `?access_token=`.
pub fn default_locations() -> Vec<TokenLocation> {
    vec![
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: Some("Bearer ".into()),
        },
        TokenLocation::Param("access_token".into()),
    ]
}

pub fn compile_locations(
    at: &str,
    headers: Option<Vec<(String, Option<String>)>>,
    params: Option<Vec<String>>,
    cookies: Option<Vec<String>>,
) -> Result<Vec<TokenLocation>, ConfigError> {
    if headers.is_none() && params.is_none() && cookies.is_none() {
        return Ok(default_locations());
    }
    let mut out = Vec::new();
    for (i, (name, prefix)) in headers.unwrap_or_default().into_iter().enumerate() {
        let name = header_name(&format!("{at}from_headers[{i}].name"), &name)?;
        out.push(TokenLocation::Header {
            name,
            prefix: prefix.filter(|p| !p.is_empty()),
        });
    }
    for (i, p) in params.unwrap_or_default().into_iter().enumerate() {
        if p.is_empty() {
            return Err(ConfigError::at(
                format!("{at}from_params[{i}]"),
                "must not be empty",
            ));
        }
        out.push(TokenLocation::Param(p));
    }
    for (i, c) in cookies.unwrap_or_default().into_iter().enumerate() {
        if c.is_empty() || c.contains([';', '=', ' ']) {
            return Err(ConfigError::at(
                format!("{at}from_cookies[{i}]"),
                format!("invalid cookie name {c:?}"),
            ));
        }
        out.push(TokenLocation::Cookie(c));
    }
    Ok(out)
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}

/// Decodes `%XX` and `+` (form encoding); invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string's `name=value` pairs, raw, in order.
pub fn query_pairs(path: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = path
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// One `Cookie` header value's `name=value` pairs, trimmed, in order.
pub fn cookie_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(';').filter_map(|c| {
        let c = c.trim();
        let (n, v) = c.split_once('=')?;
        Some((n.trim(), v.trim()))
    })
}

/// Every token present at `locations`, each header value and parameter occurrence separately,
/// so that all of them can be required to verify.
pub fn extract<'a>(req: &'a Request, locations: &'a [TokenLocation]) -> Vec<Extracted<'a>> {
    let mut out = Vec::new();
    let mut push = |token: Cow<'a, str>, location: &'a TokenLocation| {
        let token = match token {
            Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
            Cow::Owned(t) => Cow::Owned(t.trim().to_string()),
        };
        if !token.is_empty() {
            out.push(Extracted { token, location });
        }
    };
    for loc in locations {
        match loc {
            TokenLocation::Header { name, prefix } => {
                for value in req.header_values(name) {
                    match prefix {
                        Some(p) => {
                            if let Some(t) = strip_prefix_ignore_case(value, p) {
                                push(Cow::Borrowed(t), loc);
                            }
                        }
                        None => push(Cow::Borrowed(value), loc),
                    }
                }
            }
            TokenLocation::Param(param) => {
                for (k, v) in query_pairs(req.path_and_query()) {
                    if percent_decode(k) == *param {
                        push(Cow::Owned(percent_decode(v)), loc);
                    }
                }
            }
            TokenLocation::Cookie(cookie) => {
                for value in req.header_values("cookie") {
                    for (n, v) in cookie_pairs(value) {
                        if n == cookie {
                            push(Cow::Borrowed(v.trim_matches('"')), loc);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Removes the token at `location` from the request: the whole header, the query parameter
/// (the rest of the query kept byte for byte), or the cookie (the other cookies kept).
pub fn remove_token(req: &Request, location: &TokenLocation, edits: &mut RequestEdits) {
    match location {
        TokenLocation::Header { name, .. } => edits.remove(name),
        TokenLocation::Param(param) => {
            let current = edits
                .set
                .iter()
                .find(|(n, _)| n == ":path")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| req.path_and_query().to_string());
            let (base, rest) = current.split_once('?').unwrap_or((&current, ""));
            let (query, fragment) = match rest.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (rest, None),
            };
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| percent_decode(p.split_once('=').map_or(*p, |(k, _)| k)) != *param)
                .collect();
            let mut path = base.to_string();
            if !kept.is_empty() {
                path.push('?');
                path.push_str(&kept.join("&"));
            }
            if let Some(f) = fragment {
                path.push('#');
                path.push_str(f);
            }
            edits.set(":path", path);
        }
        TokenLocation::Cookie(cookie) => remove_cookies(req, edits, |n| n == cookie),
    }
}

/// Removes from the `Cookie` header every cookie whose name `drop` picks, keeping the others
/// (and the edits already made to the header).
pub fn remove_cookies(req: &Request, edits: &mut RequestEdits, drop: impl Fn(&str) -> bool) {
    let mut kept = String::new();
    let mut keep = |value: &str| {
        for c in value.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            if !drop(c.split_once('=').map_or(c, |(n, _)| n.trim())) {
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(c);
            }
        }
    };
    match edits.set.iter().find(|(n, _)| n == "cookie") {
        Some((_, v)) => keep(v),
        None if edits.remove.iter().any(|n| n == "cookie") => {}
        None => req.header_values("cookie").for_each(keep),
    }
    if kept.is_empty() {
        edits.remove("cookie");
    } else {
        edits.set("cookie", kept);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request::new(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn default_locations_find_bearer_and_param() {
        let r = req(&[
            (":path", "/x?a=1&access_token=tok2&b=2"),
            ("authorization", "bearer tok1"),
        ]);
        let locations = default_locations();
        let got = extract(&r, &locations);
        let tokens: Vec<&str> = got.iter().map(|e| e.token.as_ref()).collect();
        assert_eq!(tokens, vec!["tok1", "tok2"]);
    }

    #[test]
    fn prefix_is_anchored() {
        let r = req(&[(":path", "/"), ("authorization", "Basic Bearer tok")]);
        assert!(extract(&r, &default_locations()).is_empty());
        let r = req(&[(":path", "/"), ("authorization", "Bearer ")]);
        assert!(extract(&r, &default_locations()).is_empty());
    }

    #[test]
    fn every_header_value_counts() {
        let r = req(&[
            (":path", "/"),
            ("authorization", "Bearer a"),
            ("authorization", "Bearer b"),
        ]);
        assert_eq!(extract(&r, &default_locations()).len(), 2);
    }

    #[test]
    fn param_removal_keeps_the_rest() {
        let r = req(&[(":path", "/p?x=%2F1&auth_token=t&y=2#frag")]);
        let loc = TokenLocation::Param("auth_token".into());
        assert_eq!(extract(&r, std::slice::from_ref(&loc))[0].token, "t");
        let mut e = RequestEdits::default();
        remove_token(&r, &loc, &mut e);
        assert_eq!(e.set, vec![(":path".into(), "/p?x=%2F1&y=2#frag".into())]);
        let r = req(&[(":path", "/p?auth_token=t")]);
        let mut e = RequestEdits::default();
        remove_token(&r, &loc, &mut e);
        assert_eq!(e.set, vec![(":path".into(), "/p".into())]);
    }

    #[test]
    fn cookie_removal_keeps_other_cookies() {
        let r = req(&[(":path", "/"), ("cookie", "a=1; session_jwt=tok; b=2")]);
        let loc = TokenLocation::Cookie("session_jwt".into());
        assert_eq!(extract(&r, std::slice::from_ref(&loc))[0].token, "tok");
        let mut e = RequestEdits::default();
        remove_token(&r, &loc, &mut e);
        assert_eq!(e.set, vec![("cookie".into(), "a=1; b=2".into())]);
        let r = req(&[(":path", "/"), ("cookie", "session_jwt=tok")]);
        let mut e = RequestEdits::default();
        remove_token(&r, &loc, &mut e);
        assert_eq!(e.remove, vec!["cookie".to_string()]);
    }
}
