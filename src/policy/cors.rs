//! CORS with Envoy `CorsPolicy` semantics, decided before authentication so that preflights
//! never need a token and every reply to an allowed origin (our own 401/403 included) carries
//! the headers a browser needs to read it.

use crate::config::schema::{ConfigError, RawCors};
use crate::policy::string_match::StringMatcher;
use crate::reply::LocalReply;
use crate::request::view::Request;

#[derive(Debug)]
pub struct CorsPolicy {
    origins: Vec<StringMatcher>,
    allow_methods: Option<String>,
    allow_headers: Option<String>,
    expose_headers: Option<String>,
    max_age: Option<String>,
    allow_credentials: bool,
    allow_private_network_access: bool,
    forward_not_matching_preflights: bool,
}

pub fn compile(at: &str, raw: RawCors) -> Result<CorsPolicy, ConfigError> {
    let mut origins = Vec::with_capacity(raw.allow_origin_string_match.len());
    for (i, m) in raw.allow_origin_string_match.into_iter().enumerate() {
        origins.push(StringMatcher::compile(
            &format!("{at}.allow_origin_string_match[{i}]"),
            m,
        )?);
    }
    if let Some(age) = &raw.max_age {
        if age.is_empty() || !age.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::at(
                format!("{at}.max_age"),
                format!("{age:?} is not a number of seconds"),
            ));
        }
    }
    for (field, v) in [
        ("allow_methods", &raw.allow_methods),
        ("allow_headers", &raw.allow_headers),
        ("expose_headers", &raw.expose_headers),
    ] {
        if v.as_deref()
            .is_some_and(|v| !crate::jwt::claims::is_header_value(v))
        {
            return Err(ConfigError::at(
                format!("{at}.{field}"),
                "is not a valid header value",
            ));
        }
    }
    Ok(CorsPolicy {
        origins,
        allow_methods: raw.allow_methods.filter(|s| !s.is_empty()),
        allow_headers: raw.allow_headers.filter(|s| !s.is_empty()),
        expose_headers: raw.expose_headers.filter(|s| !s.is_empty()),
        max_age: raw.max_age,
        allow_credentials: raw.allow_credentials,
        allow_private_network_access: raw.allow_private_network_access,
        forward_not_matching_preflights: raw.forward_not_matching_preflights.unwrap_or(true),
    })
}

/// OPTIONS with a non-empty `Origin` and `Access-Control-Request-Method`, as Envoy tests.
pub fn is_preflight(req: &Request) -> bool {
    req.method() == "OPTIONS"
        && req.header("origin").is_some_and(|o| !o.is_empty())
        && req
            .header("access-control-request-method")
            .is_some_and(|m| !m.is_empty())
}

/// What CORS decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum CorsDecision {
    /// Not a CORS request: no CORS headers.
    None,
    /// From an origin the policy does not allow: no CORS headers. A preflight is answered
    /// (without `access-control-allow-origin`) only when `forward_not_matching_preflights`
    /// is false; otherwise the request goes on as any other.
    Rejected(Option<LocalReply>),
    /// Answer now (a preflight), without authentication.
    Reply(LocalReply),
    /// A request from an allowed origin: these headers go on whatever response it gets.
    AddToResponse(Vec<(String, String)>),
}

impl CorsPolicy {
    pub fn origin_count(&self) -> usize {
        self.origins.len()
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        // `null` is what sandboxed and file pages send; it never names a real origin. A
        // matcher that accepts "*" (`exact: "*"`) allows every origin, as in Envoy, which
        // still echoes the origin rather than `*`. An origin too long for regexes is not
        // allowed by one (no real origin is over 8 KiB).
        !origin.is_empty()
            && origin != "null"
            && self
                .origins
                .iter()
                .any(|m| m.matches("*") == Some(true) || m.matches(origin) == Some(true))
    }

    pub fn decide(&self, req: &Request) -> CorsDecision {
        let Some(origin) = req.header("origin").filter(|o| !o.is_empty()) else {
            return CorsDecision::None;
        };
        let allowed = self.origin_allowed(origin);
        if is_preflight(req) {
            if allowed {
                return CorsDecision::Reply(self.preflight(req, Some(origin)));
            }
            if !self.forward_not_matching_preflights {
                return CorsDecision::Rejected(Some(self.preflight(req, None)));
            }
            return CorsDecision::Rejected(None);
        }
        if !allowed {
            return CorsDecision::Rejected(None);
        }
        let mut h = vec![(
            "access-control-allow-origin".to_string(),
            origin.to_string(),
        )];
        if self.allow_credentials {
            h.push(("access-control-allow-credentials".into(), "true".into()));
        }
        if let Some(e) = &self.expose_headers {
            h.push(("access-control-expose-headers".into(), e.clone()));
        }
        h.push(("vary".into(), "Origin".into()));
        CorsDecision::AddToResponse(h)
    }

    /// The preflight answer. `origin` is `None` for a disallowed origin that is not forwarded:
    /// Envoy then answers 200 without `access-control-allow-origin`, so the browser refuses.
    fn preflight(&self, req: &Request, origin: Option<&str>) -> LocalReply {
        let mut h = Vec::new();
        if let Some(o) = origin {
            h.push(("access-control-allow-origin".to_string(), o.to_string()));
        }
        if self.allow_credentials {
            h.push(("access-control-allow-credentials".into(), "true".into()));
        }
        let echo = |name: &str| req.header(name).unwrap_or("").to_string();
        match self.allow_methods.as_deref() {
            Some("*") => h.push((
                "access-control-allow-methods".into(),
                echo("access-control-request-method"),
            )),
            Some(m) => h.push(("access-control-allow-methods".into(), m.to_string())),
            None => {}
        }
        match self.allow_headers.as_deref() {
            Some("*") => {
                let asked = echo("access-control-request-headers");
                if !asked.is_empty() {
                    h.push(("access-control-allow-headers".into(), asked));
                }
            }
            Some(v) => h.push(("access-control-allow-headers".into(), v.to_string())),
            None => {}
        }
        if let Some(age) = &self.max_age {
            h.push(("access-control-max-age".into(), age.clone()));
        }
        if origin.is_some()
            && self.allow_private_network_access
            && req
                .header("access-control-request-private-network")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            h.push(("access-control-allow-private-network".into(), "true".into()));
        }
        h.push(("vary".into(), "Origin".into()));
        LocalReply {
            status: 200,
            headers: h,
            body: String::new(),
            details: crate::reply::details("jwt_authz_cors_preflight", None),
        }
    }
}

/// Puts `headers` on a response whose own values of a header name `existing` gives: values
/// the upstream already set are kept, and `Origin` is appended to an existing `Vary` rather
/// than replacing it. Only the names this needs are looked up (allow-origin, then each owed
/// header unless the upstream answers CORS itself), so the host can read them one by one.
pub fn merge_into_response(
    mut existing: impl FnMut(&str) -> Vec<String>,
    headers: Vec<(String, String)>,
) -> Vec<(String, String)> {
    const ALLOW_ORIGIN: &str = "access-control-allow-origin";
    let upstream_cors = !existing(ALLOW_ORIGIN).is_empty();
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if name == "vary" {
            let current = existing("vary");
            let has_origin = current
                .iter()
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case("origin") || t.trim() == "*");
            if current.is_empty() {
                out.push((name, value));
            } else if !has_origin {
                out.push((name, format!("{}, {value}", current.join(", "))));
            }
        } else if !upstream_cors && (name == ALLOW_ORIGIN || existing(&name).is_empty()) {
            out.push((name, value));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::request::header_map::HeaderMap;

    fn values_of(map: &HeaderMap) -> impl FnMut(&str) -> Vec<String> + '_ {
        |name| map.header_values(name).map(String::from).collect()
    }

    fn policy(json: &str) -> CorsPolicy {
        compile("cors", serde_json::from_str(json).unwrap()).unwrap()
    }

    fn req(h: &[(&str, &str)]) -> Request {
        Request::new(
            h.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    const SEED: &str = r#"{"allow_origin_string_match":[{"exact":"http://istio.io"}],
        "allow_methods":"GET","allow_headers":"foo,bar","max_age":"60","allow_credentials":true}"#;

    #[test]
    fn seed_preflight() {
        let p = policy(SEED);
        let r = req(&[
            (":method", "OPTIONS"),
            ("origin", "http://istio.io"),
            ("access-control-request-method", "GET"),
        ]);
        let CorsDecision::Reply(reply) = p.decide(&r) else {
            panic!("not answered")
        };
        assert_eq!(reply.status, 200);
        let names: Vec<_> = reply
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        assert_eq!(
            names,
            vec![
                "access-control-allow-origin: http://istio.io",
                "access-control-allow-credentials: true",
                "access-control-allow-methods: GET",
                "access-control-allow-headers: foo,bar",
                "access-control-max-age: 60",
                "vary: Origin"
            ]
        );
    }

    #[test]
    fn disallowed_origins() {
        let p = policy(SEED);
        let pre = req(&[
            (":method", "OPTIONS"),
            ("origin", "http://evil.io"),
            ("access-control-request-method", "GET"),
        ]);
        assert_eq!(p.decide(&pre), CorsDecision::Rejected(None));
        let strict = policy(
            r#"{"allow_origin_string_match":[{"exact":"http://istio.io"}],"forward_not_matching_preflights":false}"#,
        );
        let CorsDecision::Rejected(Some(r)) = strict.decide(&pre) else {
            panic!("not answered")
        };
        assert!(r
            .headers
            .iter()
            .all(|(n, _)| n != "access-control-allow-origin"));
        let null = req(&[(":method", "GET"), ("origin", "null")]);
        assert_eq!(p.decide(&null), CorsDecision::Rejected(None));
        let plain = req(&[(":method", "GET")]);
        assert_eq!(p.decide(&plain), CorsDecision::None);
    }

    #[test]
    fn vary_is_appended() {
        let add = vec![
            (
                "access-control-allow-origin".to_string(),
                "http://a".to_string(),
            ),
            ("vary".to_string(), "Origin".to_string()),
        ];
        let existing = HeaderMap::new(vec![("vary".into(), "Accept-Encoding".into())]);
        let out = merge_into_response(values_of(&existing), add.clone());
        assert_eq!(
            out,
            vec![
                ("access-control-allow-origin".into(), "http://a".into()),
                ("vary".into(), "Accept-Encoding, Origin".into()),
            ]
        );
        let upstream = HeaderMap::new(vec![
            ("access-control-allow-origin".into(), "*".into()),
            ("vary".into(), "origin".into()),
        ]);
        assert_eq!(
            merge_into_response(values_of(&upstream), add.clone()),
            vec![]
        );
        let bare = HeaderMap::new(vec![("access-control-allow-origin".into(), "*".into())]);
        let out = merge_into_response(values_of(&bare), add);
        assert_eq!(out, vec![("vary".into(), "Origin".into())]);
    }
}
