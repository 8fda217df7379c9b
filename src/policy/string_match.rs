//! Envoy's `StringMatcher` (exact, prefix, suffix, contains, safe_regex; optional ignore_case)
//! and full-match regexes, compiled at load.

use regex_lite::Regex;

use crate::config::schema::{ConfigError, RawStringMatcher};

/// Compiles `pattern` so that it must match the whole input, as Envoy's RE2 `safe_regex` does.
pub fn full_regex(at: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| ConfigError::at(at, format!("invalid regex {pattern:?}: {e}")))
}

#[derive(Debug)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

#[derive(Debug)]
pub struct StringMatcher {
    kind: Kind,
    ignore_case: bool,
}

impl StringMatcher {
    pub fn compile(at: &str, raw: RawStringMatcher) -> Result<Self, ConfigError> {
        let ic = raw.ignore_case;
        let fold = |s: String| if ic { s.to_ascii_lowercase() } else { s };
        let mut kinds = Vec::new();
        if let Some(s) = raw.exact {
            kinds.push(Kind::Exact(fold(s)));
        }
        if let Some(s) = raw.prefix {
            kinds.push(Kind::Prefix(fold(s)));
        }
        if let Some(s) = raw.suffix {
            kinds.push(Kind::Suffix(fold(s)));
        }
        if let Some(s) = raw.contains {
            kinds.push(Kind::Contains(fold(s)));
        }
        if let Some(r) = raw.safe_regex {
            let pattern = if ic {
                format!("(?i:{})", r.regex)
            } else {
                r.regex
            };
            kinds.push(Kind::Regex(full_regex(
                &format!("{at}.safe_regex.regex"),
                &pattern,
            )?));
        }
        if kinds.len() != 1 {
            return Err(ConfigError::at(
                at,
                "exactly one of exact, prefix, suffix, contains, safe_regex is required",
            ));
        }
        let kind = kinds
            .pop()
            .ok_or_else(|| ConfigError::at(at, "empty matcher"))?;
        Ok(Self {
            kind,
            ignore_case: ic,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        let folded;
        let v = if self.ignore_case && !matches!(self.kind, Kind::Regex(_)) {
            folded = value.to_ascii_lowercase();
            folded.as_str()
        } else {
            value
        };
        match &self.kind {
            Kind::Exact(s) => v == s,
            Kind::Prefix(s) => v.starts_with(s.as_str()),
            Kind::Suffix(s) => v.ends_with(s.as_str()),
            Kind::Contains(s) => v.contains(s.as_str()),
            Kind::Regex(r) => r.is_match(v),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn m(json: &str) -> StringMatcher {
        StringMatcher::compile("m", serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn kinds() {
        assert!(m(r#"{"exact":"http://istio.io"}"#).matches("http://istio.io"));
        assert!(!m(r#"{"exact":"http://istio.io"}"#).matches("http://istio.io.evil"));
        assert!(m(r#"{"suffix":".example.com"}"#).matches("https://a.example.com"));
        assert!(m(r#"{"prefix":"https://"}"#).matches("https://x"));
        assert!(m(r#"{"contains":"corp"}"#).matches("https://a.corp.test"));
        let r = m(r#"{"safe_regex":{"regex":"https://[a-z]+\\.corp\\.test"}}"#);
        assert!(r.matches("https://app.corp.test"));
        assert!(!r.matches("https://app.corp.test.evil.com"));
        assert!(m(r#"{"exact":"HTTP://A.COM","ignore_case":true}"#).matches("http://a.com"));
        assert!(
            m(r#"{"safe_regex":{"regex":"http://a\\.com"},"ignore_case":true}"#)
                .matches("HTTP://A.com")
        );
    }

    #[test]
    fn refuses_ambiguous_and_bad() {
        let two: RawStringMatcher = serde_json::from_str(r#"{"exact":"a","prefix":"b"}"#).unwrap();
        assert!(StringMatcher::compile("m", two).is_err());
        let bad: RawStringMatcher =
            serde_json::from_str(r#"{"safe_regex":{"regex":"("}}"#).unwrap();
        let err = StringMatcher::compile("cors.allow_origin_string_match[0]", bad).unwrap_err();
        assert_eq!(
            err.path,
            "cors.allow_origin_string_match[0].safe_regex.regex"
        );
    }
}
