//! Envoy's `StringMatcher` (exact, prefix, suffix, contains, safe_regex; optional ignore_case)
//! and full-match regexes, compiled at load.

use regex_lite::{Regex, RegexBuilder};

use crate::config::schema::{ConfigError, RawStringMatcher};

/// The compiled size a regex may have, in NFA states: Envoy refuses RE2 programs over 100
/// instructions by default (`re2.max_program_size.error_level`), and a regex-lite state is
/// at most one RE2 instruction, so whatever Envoy accepts fits. Matching costs at most
/// states x input bytes, the input being bounded too ([`MAX_REGEX_INPUT`]): a pathological
/// regex at the bound (`/.*a.{50}b`) costs about 55 ms on a 55 KB path natively, which is why
/// such paths are not run, against seconds for the unbounded patterns it refuses.
pub const MAX_REGEX_STATES: usize = 100;

/// The longest input a regex is run on, in bytes. Matching costs up to states x input bytes
/// (regex-lite has no DFA): at [`MAX_REGEX_STATES`] that is about 7 ms for 8 KiB natively
/// against 55 ms for a 55 KB path (Envoy's headers may reach 60 KiB by default). 8 KiB is
/// Apache's and nginx's default request-line bound (both answer 414 beyond it), far above any
/// real route or origin. Longer inputs are never run: each caller decides what that means
/// ([`bounded_match`]).
pub const MAX_REGEX_INPUT: usize = 8 * 1024;

/// `r` run on `input`, or `None` when the input is over [`MAX_REGEX_INPUT`] and the regex
/// was not run: the caller must fail closed (refuse, or not grant).
pub fn bounded_match(r: &Regex, input: &str) -> Option<bool> {
    (input.len() <= MAX_REGEX_INPUT).then(|| r.is_match(input))
}

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

    /// Whether `value` matches; `None` when a regex was not run because `value` is over
    /// [`MAX_REGEX_INPUT`], so that each caller decides what failing closed means for it.
    pub fn matches(&self, value: &str) -> Option<bool> {
        let folded;
        let v = if self.ignore_case && !matches!(self.kind, Kind::Regex(_)) {
            folded = value.to_ascii_lowercase();
            folded.as_str()
        } else {
            value
        };
        Some(match &self.kind {
            Kind::Exact(s) => v == s,
            Kind::Prefix(s) => v.starts_with(s.as_str()),
            Kind::Suffix(s) => v.ends_with(s.as_str()),
            Kind::Contains(s) => v.contains(s.as_str()),
            Kind::Regex(r) => return bounded_match(r, v),
        })
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
        let yes = |json: &str, v: &str| m(json).matches(v) == Some(true);
        assert!(yes(r#"{"exact":"http://istio.io"}"#, "http://istio.io"));
        assert!(!yes(
            r#"{"exact":"http://istio.io"}"#,
            "http://istio.io.evil"
        ));
        assert!(yes(r#"{"suffix":".example.com"}"#, "https://a.example.com"));
        assert!(yes(r#"{"prefix":"https://"}"#, "https://x"));
        assert!(yes(r#"{"contains":"corp"}"#, "https://a.corp.test"));
        let r = r#"{"safe_regex":{"regex":"https://[a-z]+\\.corp\\.test"}}"#;
        assert!(yes(r, "https://app.corp.test"));
        assert!(!yes(r, "https://app.corp.test.evil.com"));
        assert!(yes(
            r#"{"exact":"HTTP://A.COM","ignore_case":true}"#,
            "http://a.com"
        ));
        assert!(yes(
            r#"{"safe_regex":{"regex":"http://a\\.com"},"ignore_case":true}"#,
            "HTTP://A.com"
        ));
    }

    #[test]
    fn regexes_are_not_run_on_inputs_over_the_bound() {
        let r = m(r#"{"safe_regex":{"regex":"/a*"}}"#);
        let at = format!("/{}", "a".repeat(MAX_REGEX_INPUT - 1));
        assert_eq!(r.matches(&at), Some(true));
        assert_eq!(r.matches(&format!("{at}a")), None);
        // Other kinds have no bound: they cost one pass over the input.
        let long = "a".repeat(60_000);
        assert_eq!(m(r#"{"prefix":"a"}"#).matches(&long), Some(true));
        assert_eq!(m(r#"{"suffix":"b"}"#).matches(&long), Some(false));
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
    fn large_regexes_are_refused_and_long_inputs_are_not_run() {
        let err = full_regex("r", "/.*a.{100}b").unwrap_err();
        assert!(
            err.message.contains("is too large: over 100 states"),
            "{err}"
        );
        assert!(full_regex("r", "(x+x+)+y{1000}").is_err());
        // Pathological but under the bound: every byte runs about 100 threads, so a 55 KB
        // path is never given to it; 8 KiB is.
        let r = full_regex("r", "/.*a.{50}b").unwrap();
        assert_eq!(bounded_match(&r, &format!("/{}", "a".repeat(55_000))), None);
        let path = format!("/{}", "a".repeat(MAX_REGEX_INPUT - 1));
        assert_eq!(bounded_match(&r, &path), Some(false));
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
