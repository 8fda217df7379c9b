//! Where a login returns to: the original path and query, kept only as a relative reference
//! with exactly one leading `/` on the same host. Anything a browser could read as another
//! host becomes `/`: `//host`, `/\host` (CVE-2020-5233), whitespace or control characters,
//! raw or percent-encoded, between the slashes (CVE-2020-11053), an absolute URL whatever its
//! host (CVE-2021-21291 matched hosts by suffix), a scheme, user information, a backslash.

/// Longer return targets become `/`: the flow cookie carries the value.
pub const MAX_RETURN_URL: usize = 2048;

/// `target` when it is a safe same-host relative reference, else `/`.
pub fn normalize(target: &str) -> &str {
    if is_safe(target) {
        target
    } else {
        "/"
    }
}

fn is_safe(target: &str) -> bool {
    if target.len() > MAX_RETURN_URL {
        return false;
    }
    // Printable ASCII only: no space, tab, CR, LF, NUL, DEL or non-ASCII (browsers drop tabs
    // and newlines from URLs, turning `/\t/host` into `//host`). No backslash anywhere: browsers
    // read `\` as `/` in http(s) URLs.
    if !target
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'\\')
    {
        return false;
    }
    // Undo percent-encoding layer by layer (double encoding included) and check each layer of
    // the path: another decoder on the way (a proxy, a framework's redirect) must not find a
    // control, whitespace, a backslash or a second leading slash either. The query cannot
    // change the host, so `?q=a%20b` stays.
    let path = target.split('?').next().unwrap_or("");
    let mut layer = path.as_bytes().to_vec();
    for _ in 0..4 {
        if !has_one_leading_slash(&layer) {
            return false;
        }
        let decoded = percent_decode(&layer);
        if decoded == layer {
            return true;
        }
        if decoded.iter().any(|&b| b < 0x21 || b == 0x7f || b == b'\\') {
            return false;
        }
        layer = decoded;
    }
    false
}

/// One `/`, then anything but `/` or `\` (a path, not a network-path reference).
fn has_one_leading_slash(s: &[u8]) -> bool {
    match s {
        [b'/'] => true,
        [b'/', second, ..] => *second != b'/' && *second != b'\\',
        _ => false,
    }
}

/// `%XX` decoded, every other byte kept (`+` too: this is a path, not a form).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.extend(u8::try_from(h * 16 + l).ok());
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn keeps_same_host_paths_and_queries() {
        for ok in [
            "/",
            "/a",
            "/a/b?x=1&y=%2F2",
            "/search?q=a+b&lang=en",
            "/a//b",
            "/%E2%82%AC",
            "/a/%2Fb",
            "/path;params?x=%25",
            "/@evil.example",
            "/a:b",
            "/orders?id=7&q=a%20b",
            "/search?q=%09tab%0A&x=%5C",
        ] {
            assert_eq!(normalize(ok), ok, "{ok}");
        }
    }

    #[test]
    fn oauth2_proxy_open_redirect_payloads_become_root() {
        for bad in [
            // CVE-2020-5233: a backslash after the slash reads as `//`.
            "/\\evil.example",
            "/\\\\evil.example",
            "/\\/evil.example",
            // CVE-2020-11053: whitespace between the slashes, raw or encoded.
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%0D/evil.example",
            "/%20/evil.example",
            "/ /evil.example",
            "/\n/evil.example",
            "/%2509/evil.example",
            "/%5C/evil.example",
            "/%5cevil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%252F/evil.example",
            // CVE-2021-21291: a host chosen to match an allow-list by suffix; absolute URLs
            // never pass here, whatever their host.
            "https://badexample.com/",
            "https://evil.example/.example.com",
            "https://app.example.com/ok",
            // Network-path references and schemes.
            "//evil.example",
            "///evil.example",
            "//evil.example/%2F..",
            "\\\\evil.example",
            "\\/evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "http:evil.example",
            "https:/evil.example",
            // User information.
            "//user@evil.example/",
            "https://user:pass@app.example.com/",
            // Not a path at all, controls, non-ASCII.
            "",
            "evil.example",
            "a/b",
            "?x=1",
            "/a\u{0}b",
            "/a%00b",
            "/a%7Fb",
            "/a\u{7f}b",
            "/é",
            "/a b",
            "/a\\b",
        ] {
            assert_eq!(normalize(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn long_targets_and_deep_encoding_become_root() {
        let long = format!("/{}", "a".repeat(MAX_RETURN_URL));
        assert_eq!(normalize(&long), "/");
        let fits = format!("/{}", "a".repeat(MAX_RETURN_URL - 1));
        assert_eq!(normalize(&fits), fits);
        // Five layers of encoding are more than any honest link carries.
        assert_eq!(normalize("/%2525252541"), "/");
        assert_eq!(normalize("/%252541"), "/%252541");
    }
}
