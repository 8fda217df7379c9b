//! Absolute `http(s)` URLs split for `dispatch_http_call` (authority, path and query) and the
//! `application/x-www-form-urlencoded` serializer of authorization URLs and token requests.

/// An absolute `http://` or `https://` URL with no user information and no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    /// Host and optional port, as written (`:authority` of a call).
    pub authority: String,
    /// Path and query, `/` at least (`:path` of a call).
    pub path_and_query: String,
}

impl HttpUrl {
    /// `scheme://authority`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }
}

/// Parses an absolute URL, strictly: printable ASCII only, no backslash, no user information
/// (`user@host` is a classic way to make a URL read as another host), no fragment.
pub fn parse_absolute(url: &str) -> Result<HttpUrl, &'static str> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("is not an http:// or https:// URL");
    };
    if !url.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\') {
        return Err("holds a character a URL may not hold (space, control, non-ASCII, \\)");
    }
    if url.contains('#') {
        return Err("has a fragment");
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or("");
    let tail = rest.get(end..).unwrap_or("");
    if authority.contains('@') {
        return Err("has user information");
    }
    check_authority(authority)?;
    let path_and_query = if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}")
    };
    Ok(HttpUrl {
        https,
        authority: authority.to_string(),
        path_and_query,
    })
}

fn check_authority(authority: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or("has an invalid host")?;
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err("has an invalid host");
        }
        match after {
            "" => (inside, None),
            _ => (
                inside,
                Some(after.strip_prefix(':').ok_or("has an invalid port")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let host_ok = authority.starts_with('[')
        || host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !host_ok {
        return Err("has an invalid host");
    }
    if let Some(p) = port {
        let valid = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535);
        if !valid {
            return Err("has an invalid port");
        }
    }
    Ok(())
}

/// Appends `s` form-encoded (the WHATWG `application/x-www-form-urlencoded` serializer: space
/// becomes `+`, every byte but `*-._` and alphanumerics becomes `%XX`).
pub fn form_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                for nibble in [b >> 4, b & 0x0f] {
                    out.push(HEX.get(usize::from(nibble)).map_or('0', |&h| char::from(h)));
                }
            }
        }
    }
}

pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    form_encode_into(&mut out, s);
    out
}

/// `k1=v1&k2=v2`, each name and value form-encoded.
pub fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        form_encode_into(&mut out, k);
        out.push('=');
        form_encode_into(&mut out, v);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::request::extractor::percent_decode;

    #[test]
    fn splits_absolute_urls() {
        let u = parse_absolute("https://idp.example.com:8443/realms/a?x=1").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "idp.example.com:8443");
        assert_eq!(u.path_and_query, "/realms/a?x=1");
        assert_eq!(u.path(), "/realms/a");
        assert_eq!(u.origin(), "https://idp.example.com:8443");
        let u = parse_absolute("http://127.0.0.1:4010").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path_and_query.as_str()),
            ("127.0.0.1:4010", "/")
        );
        let u = parse_absolute("http://[::1]:80?q").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path_and_query.as_str()),
            ("[::1]:80", "/?q")
        );
    }

    #[test]
    fn refuses_what_could_read_as_another_host() {
        for (bad, why) in [
            ("ftp://a/", "not an http"),
            ("https:/a/", "not an http"),
            ("//a/", "not an http"),
            ("HTTPS://a/", "not an http"),
            ("https://user@evil.example/", "user information"),
            ("https://a.example@evil.example/", "user information"),
            ("https://a\\@evil/", "character"),
            ("https://a/\tb", "character"),
            ("https://a/ b", "character"),
            ("https://a/é", "character"),
            ("https://a/#f", "fragment"),
            ("https:///path", "no host"),
            ("https://:80/", "no host"),
            ("https://a:99999/", "port"),
            ("https://a:8o/", "port"),
            ("https://a:/", "port"),
            ("https://[::1/", "invalid host"),
            ("https://[]/", "invalid host"),
            ("https://[::1]x/", "port"),
            ("https://a%2e/", "invalid host"),
            ("https://a;b/", "invalid host"),
        ] {
            let err = parse_absolute(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn form_encoding_round_trips_through_a_decoder() {
        let nasty = "a b&c=d+e/é?#%\u{0}~";
        let enc = form_encode(nasty);
        assert_eq!(enc, "a+b%26c%3Dd%2Be%2F%C3%A9%3F%23%25%00%7E");
        assert_eq!(percent_decode(&enc), nasty);
        assert_eq!(form([("k", "v 1"), ("x&y", "")]), "k=v+1&x%26y=");
    }
}
