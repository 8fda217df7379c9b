//! The filter's cookies: a sealed session split across several cookies when one cannot hold
//! it, reassembled from a request before it is opened; per-flow cookies; the `Set-Cookie` lines
//! that set and clear them; and their removal from the `Cookie` header that goes upstream.
//!
//! Names, for `session.cookie_name` `N`: the session is `N` when it fits in one cookie, else
//! `N.<i>-<n>` for chunk `i` of `n` (the count in every name, so reassembly is exact and a stale
//! chunk of a longer session is never mixed in); a flow is `N.f-<state>`. Every name the filter
//! sets starts with `N`, and every cookie named `N` or `N.…` is the filter's.

use std::borrow::Cow;

use crate::config::schema::is_token;
use crate::request::extractor::{cookie_pairs, remove_cookies};
use crate::request::view::{Request, RequestEdits};

/// Bytes of sealed value per cookie: with the name and attributes a `Set-Cookie` stays under
/// the 4096 bytes every browser keeps.
pub const CHUNK_BYTES: usize = 3800;
/// At most this many session cookies: past it the session is trimmed, then refused.
pub const MAX_CHUNKS: usize = 4;
/// The hard cap on a sealed session, all chunks together.
pub const MAX_SESSION_BYTES: usize = CHUNK_BYTES * MAX_CHUNKS;

const FLOW_INFIX: &str = ".f-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

/// The attributes every cookie of one provider carries (besides `HttpOnly` and `Path=/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttrs {
    pub name: String,
    pub same_site: SameSite,
    pub secure: bool,
}

/// What a cookie name means to the provider whose cookie name is `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own<'a> {
    /// Chunk `index` of `count` of the session (`0` of `1` for the unsplit cookie).
    Session { index: usize, count: usize },
    /// The flow whose `state` this is.
    Flow(&'a str),
    /// Starts with `base.` but is neither: still the filter's (stripped, cleared).
    Other,
}

pub fn classify<'a>(base: &str, cookie: &'a str) -> Option<Own<'a>> {
    if cookie == base {
        return Some(Own::Session { index: 0, count: 1 });
    }
    let rest = cookie.strip_prefix(base)?;
    if let Some(state) = rest.strip_prefix(FLOW_INFIX) {
        return Some(Own::Flow(state));
    }
    let suffix = rest.strip_prefix('.')?;
    let parsed = suffix.split_once('-').and_then(|(i, n)| {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(n) {
            return None;
        }
        let (index, count) = (i.parse::<usize>().ok()?, n.parse::<usize>().ok()?);
        ((2..=MAX_CHUNKS).contains(&count) && index < count).then_some((index, count))
    });
    Some(match parsed {
        Some((index, count)) => Own::Session { index, count },
        None => Own::Other,
    })
}

fn chunk_name(base: &str, index: usize, count: usize) -> String {
    if count == 1 {
        base.to_string()
    } else {
        format!("{base}.{index}-{count}")
    }
}

pub fn flow_cookie_name(base: &str, state: &str) -> String {
    format!("{base}{FLOW_INFIX}{state}")
}

/// Every `name=value` pair of the request's `Cookie` headers.
pub fn request_cookies(req: &Request) -> Vec<(&str, &str)> {
    req.header_values("cookie").flat_map(cookie_pairs).collect()
}

/// The sealed session values the request may carry, to be tried in order: the unsplit cookie,
/// then each complete chunk set (fewest chunks first). A set with a chunk missing, a chunk
/// larger than the filter writes or a total over [`MAX_SESSION_BYTES`] is no candidate; of a
/// chunk sent twice, the first counts.
pub fn assemble<'c>(base: &str, cookies: &[(&'c str, &'c str)]) -> Vec<Cow<'c, str>> {
    let mut sets: [[Option<&str>; MAX_CHUNKS]; MAX_CHUNKS] = [[None; MAX_CHUNKS]; MAX_CHUNKS];
    for (name, value) in cookies {
        if let Some(Own::Session { index, count }) = classify(base, name) {
            if value.is_empty() || value.len() > CHUNK_BYTES {
                continue;
            }
            if let Some(slot) = sets.get_mut(count - 1).and_then(|s| s.get_mut(index)) {
                slot.get_or_insert(value);
            }
        }
    }
    sets.iter()
        .enumerate()
        .filter_map(|(i, set)| {
            let parts = set.get(..=i)?;
            // The unsplit cookie (the usual case) is taken as it is, without a copy.
            let whole = match parts {
                [one] => Cow::Borrowed((*one)?),
                _ => {
                    let mut whole = String::new();
                    for part in parts {
                        whole.push_str((*part)?);
                    }
                    Cow::Owned(whole)
                }
            };
            (whole.len() <= MAX_SESSION_BYTES).then_some(whole)
        })
        .collect()
}

/// Splits a sealed value into `(name, value)` cookies; None when over [`MAX_SESSION_BYTES`].
/// Sealed values are ASCII, so every split falls on a character boundary.
pub fn split(base: &str, sealed: &str) -> Option<Vec<(String, String)>> {
    if sealed.is_empty() || sealed.len() > MAX_SESSION_BYTES || !sealed.is_ascii() {
        return None;
    }
    let count = sealed.len().div_ceil(CHUNK_BYTES);
    let parts: Vec<&str> = (0..count)
        .map(|i| {
            sealed
                .get(i * CHUNK_BYTES..((i + 1) * CHUNK_BYTES).min(sealed.len()))
                .unwrap_or("")
        })
        .collect();
    Some(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (chunk_name(base, i, count), p.to_string()))
            .collect(),
    )
}

fn attributes(attrs: &CookieAttrs, max_age: u64) -> String {
    let same_site = match attrs.same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
        SameSite::None => "None",
    };
    let secure = if attrs.secure { "; Secure" } else { "" };
    format!("; Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite={same_site}")
}

/// A `Set-Cookie` value setting `name`.
pub fn set_cookie(attrs: &CookieAttrs, name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}{}", attributes(attrs, max_age))
}

/// A `Set-Cookie` value that makes the browser drop `name` (same attributes, or a `__Host-`
/// cookie would not be replaced).
pub fn clear_cookie(attrs: &CookieAttrs, name: &str) -> String {
    format!("{name}={}", attributes(attrs, 0))
}

/// The `Set-Cookie` lines that store a sealed session: its chunks, and the clearing of every
/// other session cookie the request carried (a shorter session leaves no stale chunk behind).
/// None when the value is over the cap.
pub fn store_session(
    attrs: &CookieAttrs,
    sealed: &str,
    max_age: u64,
    present: &[(&str, &str)],
) -> Option<Vec<String>> {
    let chunks = split(&attrs.name, sealed)?;
    let mut lines: Vec<String> = chunks
        .iter()
        .map(|(n, v)| set_cookie(attrs, n, v, max_age))
        .collect();
    lines.extend(stale_session_cookies(attrs, present, |n| {
        !chunks.iter().any(|(c, _)| c == n)
    }));
    Some(lines)
}

/// Clears for the session cookies in `present` that `pick` picks (each name once).
fn stale_session_cookies<'a>(
    attrs: &'a CookieAttrs,
    present: &'a [(&'a str, &'a str)],
    pick: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = String> + 'a {
    let mut seen: Vec<&str> = Vec::new();
    present.iter().filter_map(move |(n, _)| {
        let ours = matches!(
            classify(&attrs.name, n),
            Some(Own::Session { .. } | Own::Other)
        );
        // Only names that are tokens are echoed into a Set-Cookie.
        if !ours || !is_token(n) || !pick(n) || seen.contains(n) {
            return None;
        }
        seen.push(n);
        Some(clear_cookie(attrs, n))
    })
}

/// Clears for every cookie of the filter the request carried: session chunks, flows and any
/// other `N.…` name (logout, a session that no longer opens).
pub fn clear_all(attrs: &CookieAttrs, present: &[(&str, &str)]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (n, _) in present {
        if classify(&attrs.name, n).is_some() && is_token(n) && !seen.contains(n) {
            seen.push(n);
            out.push(clear_cookie(attrs, n));
        }
    }
    out
}

/// Clears the session cookies only (a session that expired or does not open), flows kept.
pub fn clear_session(attrs: &CookieAttrs, present: &[(&str, &str)]) -> Vec<String> {
    stale_session_cookies(attrs, present, |_| true).collect()
}

/// Takes every cookie of the filter out of the `Cookie` header before the request goes
/// upstream: the session is the filter's business, and its chunks would only cost the
/// upstream header space.
pub fn strip(req: &Request, base: &str, edits: &mut RequestEdits) {
    strip_all(req, &request_cookies(req), [base], edits);
}

/// [`strip`] for several providers' cookies at once (one `Cookie` rewrite); `bases` is walked
/// per cookie name, so callers pass their names without collecting them per request.
/// `present` is the request's cookies ([`request_cookies`]).
pub fn strip_all<'b, I>(req: &Request, present: &[(&str, &str)], bases: I, edits: &mut RequestEdits)
where
    I: IntoIterator<Item = &'b str> + Clone,
{
    let ours = |n: &str| bases.clone().into_iter().any(|b| classify(b, n).is_some());
    if present.iter().any(|(n, _)| ours(n)) {
        remove_cookies(req, edits, ours);
    }
}

/// Whether a cookie name and its attributes can be set by browsers: `__Host-` needs `Secure`
/// (and `Path=/`, no `Domain`, as the filter sets), `__Secure-` needs `Secure`, `SameSite=None`
/// needs `Secure`.
pub fn check_attrs(attrs: &CookieAttrs) -> Result<(), String> {
    let prefixed = ["__Host-", "__Secure-"]
        .iter()
        .find(|p| attrs.name.starts_with(*p));
    if let (Some(p), false) = (prefixed, attrs.secure) {
        return Err(format!(
            "{:?} starts with {p}, which browsers accept only with secure: true",
            attrs.name
        ));
    }
    if attrs.same_site == SameSite::None && !attrs.secure {
        return Err("same_site None needs secure: true".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn attrs() -> CookieAttrs {
        CookieAttrs {
            name: "__Host-web".into(),
            same_site: SameSite::Lax,
            secure: true,
        }
    }

    fn as_pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn names_are_classified() {
        let b = "__Host-web";
        assert_eq!(classify(b, b), Some(Own::Session { index: 0, count: 1 }));
        assert_eq!(
            classify(b, "__Host-web.1-3"),
            Some(Own::Session { index: 1, count: 3 })
        );
        assert_eq!(classify(b, "__Host-web.f-abc"), Some(Own::Flow("abc")));
        for other in [
            "__Host-web.3-3",
            "__Host-web.0-1",
            "__Host-web.0-5",
            "__Host-web.x",
            "__Host-web.00-2x",
            "__Host-web.",
        ] {
            assert_eq!(classify(b, other), Some(Own::Other), "{other}");
        }
        for foreign in ["__Host-webx", "__Host-we", "session", "__host-web"] {
            assert_eq!(classify(b, foreign), None, "{foreign}");
        }
    }

    #[test]
    fn split_and_assemble_at_the_boundaries() {
        let b = "__Host-web";
        for len in [
            1,
            CHUNK_BYTES - 1,
            CHUNK_BYTES,
            CHUNK_BYTES + 1,
            2 * CHUNK_BYTES,
            3 * CHUNK_BYTES + 7,
            MAX_SESSION_BYTES,
        ] {
            let value: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let chunks = split(b, &value).unwrap();
            assert_eq!(chunks.len(), len.div_ceil(CHUNK_BYTES), "{len}");
            assert!(chunks
                .iter()
                .all(|(_, v)| v.len() <= CHUNK_BYTES && !v.is_empty()));
            if len <= CHUNK_BYTES {
                assert_eq!(chunks[0].0, b);
            } else {
                assert_eq!(chunks[0].0, format!("{b}.0-{}", chunks.len()));
            }
            // The browser may send them in any order, among other cookies.
            let mut sent = as_pairs(&chunks);
            sent.reverse();
            sent.insert(1, ("other", "1"));
            assert_eq!(assemble(b, &sent), vec![Cow::from(value.clone())], "{len}");
        }
        assert_eq!(split(b, &"a".repeat(MAX_SESSION_BYTES + 1)), None);
        assert_eq!(split(b, ""), None);
    }

    #[test]
    fn incomplete_oversized_and_mixed_sets_are_not_candidates() {
        let b = "c";
        // A chunk missing.
        assert!(assemble(b, &[("c.0-3", "a"), ("c.2-3", "c")]).is_empty());
        // A chunk larger than the filter writes.
        let big = "a".repeat(CHUNK_BYTES + 1);
        assert!(assemble(b, &[("c", big.as_str())]).is_empty());
        assert!(assemble(b, &[("c", "")]).is_empty());
        // Stale chunks of a longer session never mix with a shorter one: each set is whole.
        let got = assemble(
            b,
            &[
                ("c.0-2", "x"),
                ("c.1-2", "y"),
                ("c.0-3", "p"),
                ("c.1-3", "q"),
            ],
        );
        assert_eq!(got, vec![Cow::from("xy")]);
        // Unsplit first, then sets by size; a repeated chunk: the first counts.
        let got = assemble(
            b,
            &[("c.1-2", "y"), ("c", "s"), ("c.0-2", "x"), ("c.0-2", "z")],
        );
        assert_eq!(got, vec![Cow::from("s"), Cow::from("xy")]);
    }

    #[test]
    fn set_cookie_lines_carry_the_attributes() {
        let a = attrs();
        assert_eq!(
            set_cookie(&a, "__Host-web", "v1.x", 3600),
            "__Host-web=v1.x; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            clear_cookie(&a, "__Host-web.f-s"),
            "__Host-web.f-s=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        let plain = CookieAttrs {
            name: "web".into(),
            same_site: SameSite::Strict,
            secure: false,
        };
        assert_eq!(
            set_cookie(&plain, "web", "v", 1),
            "web=v; Path=/; Max-Age=1; HttpOnly; SameSite=Strict"
        );
        let none = CookieAttrs {
            same_site: SameSite::None,
            ..attrs()
        };
        assert!(set_cookie(&none, "n", "v", 1).ends_with("; Secure; SameSite=None"));
        // Every line stays under the 4096 bytes browsers keep.
        let line = set_cookie(
            &a,
            &format!("{}.3-4", "x".repeat(64)),
            &"v".repeat(CHUNK_BYTES),
            86_400,
        );
        assert!(line.len() < 4096, "{}", line.len());
    }

    #[test]
    fn storing_clears_stale_session_cookies_but_not_flows() {
        let a = attrs();
        let present = [
            ("__Host-web.0-2", "old"),
            ("__Host-web.1-2", "old"),
            ("__Host-web.f-abc", "flow"),
            ("__Host-web.junk", "?"),
            ("theirs", "1"),
            ("__Host-web.1-2", "dup"),
        ];
        let lines = store_session(&a, "v1.short", 60, &present).unwrap();
        assert_eq!(lines[0], set_cookie(&a, "__Host-web", "v1.short", 60));
        let cleared: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split('=').next().unwrap())
            .collect();
        assert_eq!(
            cleared,
            vec!["__Host-web.0-2", "__Host-web.1-2", "__Host-web.junk"]
        );
        assert!(lines[1..].iter().all(|l| l.contains("Max-Age=0")));
        // A chunk rewritten under the same name is not also cleared.
        let long = "v".repeat(CHUNK_BYTES + 1);
        let lines = store_session(&a, &long, 60, &present).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[..2].iter().all(|l| !l.contains("Max-Age=0")));
        assert!(lines[2].starts_with("__Host-web.junk=;"));
        assert_eq!(
            store_session(&a, &"v".repeat(MAX_SESSION_BYTES + 1), 60, &present),
            None
        );
        let all = clear_all(&a, &present);
        assert_eq!(all.len(), 4);
        // A name that is no token is never written back.
        let odd = [("__Host-web.x y", "1"), ("__Host-web.f-a,b", "2")];
        assert!(clear_all(&a, &odd).is_empty());
        assert!(store_session(&a, "v", 1, &odd).unwrap().len() == 1);
        assert_eq!(clear_session(&a, &present).len(), 3);
    }

    #[test]
    fn own_cookies_are_stripped_and_others_kept() {
        let req = Request::new(vec![
            (
                "cookie".into(),
                "a=1; __Host-web=v1.x; __Host-web.f-s=v1.y".into(),
            ),
            (
                "cookie".into(),
                "__Host-web.1-2=z; b=2; __Host-webby=3".into(),
            ),
        ]);
        assert_eq!(request_cookies(&req).len(), 6);
        let mut edits = RequestEdits::default();
        strip(&req, "__Host-web", &mut edits);
        assert_eq!(
            edits.set,
            vec![("cookie".to_string(), "a=1; b=2; __Host-webby=3".to_string())]
        );
        let only_ours = Request::new(vec![("cookie".into(), "__Host-web=v".into())]);
        let mut edits = RequestEdits::default();
        strip(&only_ours, "__Host-web", &mut edits);
        assert_eq!(edits.remove, vec!["cookie".to_string()]);
        // Nothing of ours: the header is left alone.
        let theirs = Request::new(vec![("cookie".into(), "a=1;b=2".into())]);
        let mut edits = RequestEdits::default();
        strip(&theirs, "__Host-web", &mut edits);
        assert!(edits.is_empty());
    }

    #[test]
    fn names_under_the_base_that_are_neither_session_nor_flow_are_stripped_too() {
        let req = Request::new(vec![(
            "cookie".into(),
            "a=1; __Host-web.junk=x; __Host-web.5-2=y; __Host-web.0-99=z".into(),
        )]);
        let mut edits = RequestEdits::default();
        strip_all(&req, &request_cookies(&req), ["__Host-web"], &mut edits);
        assert_eq!(edits.set, vec![("cookie".to_string(), "a=1".to_string())]);
    }

    #[test]
    fn attribute_rules_of_browsers() {
        assert!(check_attrs(&attrs()).is_ok());
        let insecure = CookieAttrs {
            secure: false,
            ..attrs()
        };
        assert!(check_attrs(&insecure).is_err());
        let insecure = CookieAttrs {
            name: "web".into(),
            ..insecure
        };
        assert!(check_attrs(&insecure).is_ok());
        assert!(check_attrs(&CookieAttrs {
            same_site: SameSite::None,
            ..insecure
        })
        .is_err());
    }
}
