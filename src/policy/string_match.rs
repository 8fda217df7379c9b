//! Envoy's `StringMatcher` (exact, prefix, suffix, contains, safe_regex; optional ignore_case)
//! and full-match regexes, compiled at load.

use regex_lite::{Regex, RegexBuilder};

use crate::config::schema::{ConfigError, RawStringMatcher};

/// The compiled size a regex may have, in NFA states: Envoy refuses RE2 programs over 100
/// instructions by default (`re2.max_program_size.error_level`), and a regex-lite state is
/// at most one RE2 instruction, so whatever Envoy accepts fits. Matching costs at most
/// states x input bytes: a pathological regex at the bound (`/.*a.{50}b`) on a 55 KB path
/// is about 60 ms natively and in V8, against seconds for the unbounded patterns it refuses.
pub const MAX_REGEX_STATES: usize = 100;

/// The bytes regex-lite 0.1 counts per NFA state (`size_limit` is in bytes of its state
/// table): a `Vec`, a `u32` and the tag, padded; 32 natively, 20 in wasm32. Checked against
/// the library by `state_bytes_are_regex_lites`, so the checker and the filter agree.
const STATE_BYTES: usize =
    (std::mem::size_of::<Vec<u32>>() + 4 + 1).next_multiple_of(std::mem::align_of::<usize>());

/// Compiles `pattern` so that it must match the whole input, as Envoy's RE2 `safe_regex` does.
/// Patterns larger than [`MAX_REGEX_STATES`] are refused.
pub fn full_regex(at: &str, pattern: &str) -> Result<Regex, ConfigError> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(MAX_REGEX_STATES * STATE_BYTES)
        .nest_limit(100)
        .build()
        .map_err(|e| {
            let why = e.to_string();
            if why.contains("size limit") {
                ConfigError::at(
                    at,
                    format!(
                        "regex {pattern:?} is too large: over {MAX_REGEX_STATES} states \
                         once compiled (Envoy bounds RE2 programs likewise); split it or \
                         use prefix/suffix matches"
                    ),
                )
            } else {
                ConfigError::at(at, format!("invalid regex {pattern:?}: {why}"))
            }
        })
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

    /// The smallest `size_limit` that compiles `p`.
    fn bytes_of(p: &str) -> usize {
        let (mut lo, mut hi) = (0usize, 1 << 24);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if RegexBuilder::new(p).size_limit(mid).build().is_ok() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    #[test]
    fn state_bytes_are_regex_lites() {
        assert_eq!((bytes_of("a{200}") - bytes_of("a{100}")) / 100, STATE_BYTES);
    }

    #[test]
    fn large_regexes_are_refused_and_a_55_kb_path_stays_cheap() {
        let err = full_regex("r", "/.*a.{100}b").unwrap_err();
        assert!(
            err.message.contains("is too large: over 100 states"),
            "{err}"
        );
        assert!(full_regex("r", "(x+x+)+y{1000}").is_err());
        // Pathological but under the bound: every byte runs about 100 threads.
        let r = full_regex("r", "/.*a.{50}b").unwrap();
        let path = format!("/{}", "a".repeat(55_000));
        let start = std::time::Instant::now();
        assert!(!r.is_match(&path));
        // States x bytes bounds the work; far below a second even in a debug build.
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        for fine in [
            "/api/v[0-9]+/users/[^/]+/orders(/.*)?",
            "https://[a-z]+\\.corp\\.test",
        ] {
            assert!(full_regex("r", fine).is_ok(), "{fine}");
        }
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
