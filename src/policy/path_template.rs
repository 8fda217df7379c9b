//! Istio's path templates in authorization `paths` (Istio 1.22): `{*}` stands for one path
//! segment, `{**}` for any rest of the path. Istio hands them to Envoy's `uri_template`
//! matcher, so they mean what that matcher does: `{*}` is one or more RFC 3986 `pchar`
//! characters (no `/`), `{**}` zero or more `pchar` or `/`, literals match exactly, and the
//! whole path (without its query) must match. Refused as Istio and Envoy refuse them: an
//! operator that is not a whole segment, `{**}` followed by another operator, `{`/`}` or `*`
//! outside an operator, an empty segment (but a trailing `/`), a path not starting with `/`.

/// One segment of a template, between two `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{*}`
    One,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The segments before `{**}` (all of them when there is none).
    head: Vec<Segment>,
    /// After `{**}`: the literal text that must end the path (`""`, `"/"`, `"/a/b"`).
    rest: Option<String>,
    /// The literal text every matching path starts with, for the path index.
    prefix: String,
}

const ONE: &str = "{*}";
const ANY: &str = "{**}";

/// Envoy's `kLiteral`: RFC 3986 `pchar` without `*`.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b)
}

/// Whether a `paths` value is meant as a template (and so must be a valid one).
pub fn looks_like_template(path: &str) -> bool {
    path.contains(['{', '}'])
}

impl PathTemplate {
    pub fn parse(path: &str) -> Result<Self, String> {
        let body = path
            .strip_prefix('/')
            .ok_or_else(|| format!("path template {path:?} must start with \"/\""))?;
        let segments: Vec<&str> = body.split('/').collect();
        let last = segments.len().saturating_sub(1);
        let mut head = Vec::new();
        let mut tail: Option<String> = None;
        let mut prefix = String::from("/");
        let mut literal_so_far = true;
        for (i, seg) in segments.into_iter().enumerate() {
            let refuse = |why: &str| Err(format!("invalid path template {path:?}: {why}"));
            match seg {
                ONE | ANY if tail.is_some() => return refuse("{**} is not the last operator"),
                ONE => {
                    head.push(Segment::One);
                    literal_so_far = false;
                }
                ANY => {
                    tail = Some(String::new());
                    literal_so_far = false;
                }
                "" if i == last => {
                    // A trailing "/": the path must end with it.
                    match tail.as_mut() {
                        Some(t) => t.push('/'),
                        None => head.push(Segment::Literal(String::new())),
                    }
                }
                "" => return refuse("empty segment"),
                _ if seg.contains(['{', '}']) => {
                    return refuse(&format!(
                        "segment {seg:?} has '{{' or '}}' outside {ONE} or {ANY}, which must be whole segments"
                    ))
                }
                _ if !seg.bytes().all(is_pchar) => {
                    return refuse(&format!(
                        "segment {seg:?} is not a literal (RFC 3986 pchar, no '*')"
                    ))
                }
                _ => {
                    match tail.as_mut() {
                        Some(t) => {
                            t.push('/');
                            t.push_str(seg);
                        }
                        None => head.push(Segment::Literal(seg.to_string())),
                    }
                    if literal_so_far {
                        prefix.push_str(seg);
                        prefix.push('/');
                    }
                }
            }
        }
        if literal_so_far {
            return Err(format!(
                "invalid path template {path:?}: no {ONE} or {ANY} operator"
            ));
        }
        Ok(Self {
            head,
            rest: tail,
            prefix,
        })
    }

    /// The literal start of every path this template matches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `path` (without query) matches the whole template.
    pub fn matches(&self, path: &str) -> bool {
        let mut left = path;
        for seg in &self.head {
            let Some(after_slash) = left.strip_prefix('/') else {
                return false;
            };
            let end = after_slash.find('/').unwrap_or(after_slash.len());
            let (text, next) = after_slash.split_at(end);
            let ok = match seg {
                Segment::Literal(l) => text == l,
                Segment::One => !text.is_empty() && text.bytes().all(is_pchar),
            };
            if !ok {
                return false;
            }
            left = next;
        }
        match &self.rest {
            None => left.is_empty(),
            Some(tail) => {
                let Some(after_slash) = left.strip_prefix('/') else {
                    return false;
                };
                match after_slash.strip_suffix(tail.as_str()) {
                    Some(any) => any.bytes().all(|b| b == b'/' || is_pchar(b)),
                    None => false,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Istio's documented examples (AuthorizationPolicy `Operation.paths`), as the Envoy
    /// `uri_template` matcher that Istio configures answers them, and more at the edges.
    #[test]
    fn istio_examples_match_as_envoy_does() {
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "/foo/{*}",
                &["/foo/bar", "/foo/b%20r", "/foo/a:b@c=d"],
                &[
                    "/foo/bar/baz",
                    "/foo/",
                    "/foo",
                    "/foo/b*r",
                    "/foo/b\"r",
                    "/fo/bar",
                    "/foo/bar/",
                ],
            ),
            // Istio's doc also lists /foo/bar/baz.txt as a match; Envoy's matcher (the
            // regex /foo/[pchar/]*/) needs the trailing "/", and so does this filter.
            (
                "/foo/{**}/",
                &["/foo/bar/", "/foo//", "/foo/bar/baz/", "/foo/a/b/c/"],
                &["/foo/bar", "/foo/bar/baz.txt", "/foo/", "/foo"],
            ),
            (
                "/foo/{*}/bar/{**}",
                &["/foo/buzz/bar/", "/foo/buzz/bar/baz", "/foo/buzz/bar/a/b/c"],
                &[
                    "/foo/buzz/bar",
                    "/foo//bar/x",
                    "/foo/a/b/bar/x",
                    "/foo/buzz/baz/x",
                ],
            ),
            ("/{**}", &["/", "/a", "/a/b/c", "/a//b"], &["", "a"]),
            (
                "/api/{*}/items",
                &["/api/v1/items"],
                &[
                    "/api/v1/items/",
                    "/api/items",
                    "/api/v1/v2/items",
                    "/api/v1/itemsx",
                ],
            ),
            (
                "/files/{**}/raw",
                &["/files//raw", "/files/a/b/raw", "/files/x/raw"],
                &["/files/raw", "/files/a/b/raw/", "/files/a/braw"],
            ),
            ("/{*}/{*}", &["/a/b"], &["/a", "/a/b/c", "/a/"]),
        ];
        for (template, yes, no) in table {
            let t = PathTemplate::parse(template).unwrap();
            for p in *yes {
                assert!(t.matches(p), "{template} should match {p}");
            }
            for p in *no {
                assert!(!t.matches(p), "{template} should not match {p}");
            }
        }
    }

    #[test]
    fn istio_refusals() {
        for (bad, why) in [
            // Istio's documented invalid templates.
            ("/*/baz/{*}", "not a literal"),
            ("/**/baz/{*}", "not a literal"),
            ("/{**}/foo/{*}", "{**} is not the last operator"),
            ("/foo/{*}.txt", "outside {*} or {**}"),
            // And the rest of what Istio and Envoy refuse.
            ("/{**}/{**}", "{**} is not the last operator"),
            ("/a/{id}", "outside {*} or {**}"),
            ("/a/{*", "outside {*} or {**}"),
            ("/a/*}", "outside {*} or {**}"),
            ("/a/x{**}", "outside {*} or {**}"),
            ("/a//{*}", "empty segment"),
            ("/a/{*}//", "empty segment"),
            ("a/{*}", "must start with"),
            ("/a/{*}/b c", "not a literal"),
            ("/a/}", "outside {*} or {**}"),
        ] {
            let e = PathTemplate::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // A literal after {**} is allowed, as in Istio and Envoy.
        assert!(PathTemplate::parse("/a/{**}/b").is_ok());
    }

    #[test]
    fn prefix_is_the_literal_start() {
        assert_eq!(PathTemplate::parse("/api/{*}/x").unwrap().prefix(), "/api/");
        assert_eq!(PathTemplate::parse("/{**}").unwrap().prefix(), "/");
        assert_eq!(PathTemplate::parse("/a/b/{**}").unwrap().prefix(), "/a/b/");
    }
}
