//! A read-only view of the request headers the host handed over, and the edits the filter
//! asks the host to make to them.

use crate::request::connection::Connection;
use crate::request::header_map::HeaderMap;

/// A request's headers, with the pseudo-headers rules and policies look at, and its
/// connection's attributes.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub headers: HeaderMap,
    pub connection: Connection,
}

impl Request {
    pub fn new(headers: Vec<(String, String)>) -> Self {
        Self {
            headers: HeaderMap::new(headers),
            connection: Connection::default(),
        }
    }

    /// The first value of `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.header(name)
    }

    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.header_values(name)
    }

    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("")
    }

    /// `:path` with its query string.
    pub fn path_and_query(&self) -> &str {
        self.header(":path").unwrap_or("")
    }

    /// `:path` without the query string (and fragment).
    pub fn path(&self) -> &str {
        let p = self.path_and_query();
        p.split(['?', '#']).next().unwrap_or(p)
    }

    /// `:authority` without a port, as rules and policies compare hosts.
    pub fn host_without_port(&self) -> &str {
        strip_port(self.header(":authority").unwrap_or(""))
    }
}

pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep up to and including the closing bracket.
        return match host.find(']') {
            Some(i) => host.get(..=i).unwrap_or(host),
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i)
            if host
                .get(i + 1..)
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            host.get(..i).unwrap_or(host)
        }
        _ => host,
    }
}

/// What the filter asks the host to change before the request goes upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestEdits {
    /// Header names (lowercase) to remove entirely.
    pub remove: Vec<String>,
    /// Headers to set, replacing any value present.
    pub set: Vec<(String, String)>,
}

impl RequestEdits {
    pub fn remove(&mut self, name: &str) {
        self.set.retain(|(n, _)| n != name);
        if !self.remove.iter().any(|n| n == name) {
            self.remove.push(name.to_string());
        }
    }

    pub fn set(&mut self, name: &str, value: String) {
        self.set.retain(|(n, _)| n != name);
        self.set.push((name.to_string(), value));
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_paths() {
        assert_eq!(strip_port("a.example.com:8080"), "a.example.com");
        assert_eq!(strip_port("a.example.com"), "a.example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        let r = Request::new(vec![(":path".into(), "/a/b?x=1#f".into())]);
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.path_and_query(), "/a/b?x=1#f");
    }

    #[test]
    fn edits_keep_last_word() {
        let mut e = RequestEdits::default();
        e.set("x", "1".into());
        e.remove("x");
        assert!(e.set.is_empty());
        e.set("y", "1".into());
        e.set("y", "2".into());
        assert_eq!(e.set, vec![("y".to_string(), "2".to_string())]);
    }
}
