//! What a configuration may say that is valid but almost never meant, checked on the raw
//! form before compilation: the checker prints these as `warning:` lines and the filter logs
//! them at load (warn level). Also refuses durations that cannot be meant (zero timeouts,
//! fetch loops), naming the field.

use crate::config::schema::{ConfigError, RawConfig, RawRemoteJwks, RawRequirement};

/// Durations outside these bounds are refused: `(field, lowest ms, highest ms)`. Below them a
/// request hangs (`timeout: 0s`) or keys are fetched in a loop (`cache_duration: 0s` made 139
/// fetches in 5 s); above them nothing sensible is left.
const TIMEOUT_MS: (u64, u64) = (100, 60_000);
const CACHE_DURATION_MS: (u64, u64) = (1_000, 30 * 86_400_000);
const KID_REFETCH_MS: (u64, u64) = (1_000, 86_400_000);

/// The warnings of `raw`, or the error of a duration out of bounds.
#[inline(never)]
pub fn check(raw: &RawConfig) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (name, p) in &raw.providers {
        if let Some(r) = &p.remote_jwks {
            durations(&format!("providers.{name}.remote_jwks"), r)?;
        }
        if p.issuer.as_deref() == Some("") {
            out.push(format!(
                "providers.{name}.issuer is \"\": tokens of every issuer are accepted; set the \
                 IdP's issuer (or leave the field out to say \"any issuer\" on purpose)"
            ));
        }
        let claim_headers = p.claim_to_headers.iter().enumerate().map(|(i, c)| {
            (
                format!("providers.{name}.claim_to_headers[{i}].header_name"),
                &c.header_name,
            )
        });
        let payload = p
            .forward_payload_header
            .iter()
            .map(|h| (format!("providers.{name}.forward_payload_header"), h));
        for (at, h) in claim_headers.chain(payload) {
            if h.eq_ignore_ascii_case("authorization") {
                out.push(format!(
                    "{at} is \"authorization\": the filter removes that header from every \
                     request (clients could spoof it) and overwrites the token the upstream \
                     would see; pick another name such as x-jwt-claim"
                ));
            }
        }
    }
    match &raw.rules {
        Some(rules) if rules.is_empty() => out.push(
            "rules is []: no request needs a token; leave \"rules\" out to require a valid \
             token on every request"
                .into(),
        ),
        Some(rules) => {
            for (i, r) in rules.iter().enumerate() {
                let at = format!("rules[{i}]");
                for (field, v) in [("prefix", &r.route.prefix), ("path", &r.route.path)] {
                    if let Some(v) = v.as_deref().filter(|v| looks_like_template(v)) {
                        out.push(template_warning(&format!("{at}.match.{field}"), v));
                    }
                }
                if let Some(req) = &r.requires {
                    allow_missing_trap(raw, &format!("{at}.requires"), req, &mut out);
                }
            }
        }
        None => {}
    }
    if let Some(a) = &raw.authorization {
        for (i, p) in a.policies.iter().enumerate() {
            for (j, r) in p.rules.iter().enumerate() {
                for (k, t) in r.to.iter().enumerate() {
                    let op = &t.operation;
                    for (field, list) in [("paths", &op.paths), ("not_paths", &op.not_paths)] {
                        for v in list.iter().filter(|v| looks_like_template(v)) {
                            let at = format!(
                                "authorization.policies[{i}].rules[{j}].to[{k}].operation.{field}"
                            );
                            out.push(template_warning(&at, v));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn durations(at: &str, r: &RawRemoteJwks) -> Result<(), ConfigError> {
    let fields = [
        ("http_uri.timeout", r.http_uri.timeout, TIMEOUT_MS),
        ("cache_duration", r.cache_duration, CACHE_DURATION_MS),
        (
            "kid_refetch_interval",
            r.kid_refetch_interval,
            KID_REFETCH_MS,
        ),
    ];
    for (field, value, (low, high)) in fields {
        if let Some(v) = value.filter(|v| v.0 < low || v.0 > high) {
            return Err(ConfigError::at(
                format!("{at}.{field}"),
                format!(
                    "{} is out of bounds: must be between {} and {}",
                    seconds(v.0),
                    seconds(low),
                    seconds(high)
                ),
            ));
        }
    }
    Ok(())
}

/// Milliseconds in the protobuf JSON form users write.
fn seconds(ms: u64) -> String {
    match ms % 1000 {
        0 => format!("\"{}s\"", ms / 1000),
        frac => format!(
            "\"{}.{}s\"",
            ms / 1000,
            format!("{frac:03}").trim_end_matches('0')
        ),
    }
}

/// Istio's `{*}` / `{**}` path templates: a literal `{` and `}` here, so the path never
/// matches what its author meant.
fn looks_like_template(path: &str) -> bool {
    path.contains("{*}") || path.contains("{**}")
}

fn template_warning(at: &str, v: &str) -> String {
    format!(
        "{at} {v:?} looks like an Istio path template, but this field matches it literally \
         ('{{' and '}}' included); use a prefix or safe_regex instead"
    )
}

/// Seed 004: `requires_any [provider_and_audiences(p, A), allow_missing]`. A token with
/// another audience fails the first leg, then passes `allow_missing`, which (as in Envoy)
/// checks only the provider's own `audiences`: it gets in.
fn allow_missing_trap(raw: &RawConfig, at: &str, r: &RawRequirement, out: &mut Vec<String>) {
    let children = match r {
        RawRequirement::RequiresAny(l) | RawRequirement::RequiresAll(l) => &l.requirements,
        _ => return,
    };
    for (i, c) in children.iter().enumerate() {
        let child_at = if matches!(r, RawRequirement::RequiresAny(_)) {
            format!("{at}.requires_any.requirements[{i}]")
        } else {
            format!("{at}.requires_all.requirements[{i}]")
        };
        allow_missing_trap(raw, &child_at, c, out);
    }
    if !matches!(r, RawRequirement::RequiresAny(_))
        || !children
            .iter()
            .any(|c| matches!(c, RawRequirement::AllowMissing(_)))
    {
        return;
    }
    for c in children {
        let RawRequirement::ProviderAndAudiences(pa) = c else {
            continue;
        };
        let own = raw
            .providers
            .get(&pa.provider_name)
            .map(|p| p.audiences.as_slice())
            .unwrap_or_default();
        if pa.audiences.iter().all(|a| own.contains(a)) && !own.is_empty() {
            continue;
        }
        out.push(format!(
            "{at}: allow_missing beside provider_and_audiences {name:?} lets in a token of \
             provider {name:?} minted for another audience: allow_missing checks only the \
             provider's own audiences (as Envoy's jwt_authn does). Fix: set \
             providers.{name}.audiences to {aud:?} and require {{\"provider_name\": \
             {name:?}}} (a provider per audience if several routes need different ones), or \
             drop allow_missing",
            name = pa.provider_name,
            aud = pa.audiences,
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn raw(v: Value) -> RawConfig {
        serde_json::from_value(v).unwrap()
    }

    fn warnings(v: Value) -> Vec<String> {
        check(&raw(v)).unwrap()
    }

    fn provider(extra: Value) -> Value {
        let mut p =
            json!({"issuer": "https://i", "local_jwks": {"inline_string": "{\"keys\":[]}"}});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    #[test]
    fn seed_004_trap_warns_with_the_fix() {
        let trap = json!({"providers": {"svc1": provider(json!({}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_and_audiences": {"provider_name": "svc1", "audiences": ["https://svc1"]}},
                {"allow_missing": {}}]}}}]});
        let w = warnings(trap);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("rules[0].requires: allow_missing beside"),
            "{w:?}"
        );
        assert!(w[0].contains("set providers.svc1.audiences to [\"https://svc1\"]"));
        // The fix itself is quiet: the provider's audiences, which allow_missing checks.
        let fixed = json!({"providers": {"svc1": provider(json!({"audiences": ["https://svc1"]}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "svc1"}, {"allow_missing": {}}]}}}]});
        assert_eq!(warnings(fixed), Vec::<String>::new());
        // Nested under requires_all, and beside allow_missing_or_failed (meant to let all in).
        let nested = json!({"providers": {"p": provider(json!({}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
                {"requires_any": {"requirements": [
                    {"provider_and_audiences": {"provider_name": "p", "audiences": ["a"]}},
                    {"allow_missing": {}}]}}]}}}]});
        assert_eq!(warnings(nested).len(), 1);
        let or_failed = json!({"providers": {"p": provider(json!({}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_and_audiences": {"provider_name": "p", "audiences": ["a"]}},
                {"allow_missing_or_failed": {}}]}}}]});
        assert_eq!(warnings(or_failed), Vec::<String>::new());
    }

    #[test]
    fn other_warnings() {
        let w = warnings(json!({"providers": {"p": provider(json!({"issuer": "",
            "claim_to_headers": [{"header_name": "Authorization", "claim_name": "sub"}]}))},
            "rules": []}));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("providers.p.issuer is \"\""));
        assert!(
            w[1].starts_with("providers.p.claim_to_headers[0].header_name is \"authorization\"")
        );
        assert!(w[2].starts_with("rules is []"));
        let w = warnings(json!({"providers": {"p": provider(json!({}))},
            "rules": [{"match": {"prefix": "/api/{*}/x"}}, {"match": {"path": "/a/{**}"}},
                      {"match": {"prefix": "/{id}"}}],
            "authorization": {"policies": [{"action": "ALLOW", "rules": [{"to": [{"operation":
                {"paths": ["/ok", "/v1/{*}/items"]}}]}]}]}}));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("rules[0].match.prefix \"/api/{*}/x\" looks like an Istio"));
        assert!(w[1].starts_with("rules[1].match.path"));
        assert!(w[2].starts_with("authorization.policies[0].rules[0].to[0].operation.paths"));
        assert_eq!(
            warnings(json!({"providers": {"p": provider(json!({}))}})),
            Vec::<String>::new()
        );
    }

    #[test]
    fn durations_out_of_bounds_are_refused_by_name() {
        let remote = |extra: Value| {
            let mut r = json!({"http_uri": {"uri": "https://i/jwks", "cluster": "c"}});
            for (k, v) in extra.as_object().unwrap() {
                if k == "timeout" {
                    r["http_uri"]["timeout"] = v.clone();
                } else {
                    r[k] = v.clone();
                }
            }
            check(&raw(json!({"providers": {"p": {"remote_jwks": r}}})))
        };
        let err = |extra: Value| remote(extra).unwrap_err().to_string();
        assert_eq!(
            err(json!({"timeout": "0s"})),
            "providers.p.remote_jwks.http_uri.timeout: \"0s\" is out of bounds: must be \
             between \"0.1s\" and \"60s\""
        );
        assert!(err(json!({"timeout": "0.099s"})).contains("\"0.099s\""));
        assert!(err(json!({"cache_duration": "0s"}))
            .starts_with("providers.p.remote_jwks.cache_duration: \"0s\" is out of bounds"));
        assert!(err(json!({"kid_refetch_interval": "0.5s"}))
            .starts_with("providers.p.remote_jwks.kid_refetch_interval: \"0.5s\""));
        assert!(err(json!({"cache_duration": "9999999s"})).contains("cache_duration"));
        for ok in [
            json!({"timeout": "0.1s", "cache_duration": "1s", "kid_refetch_interval": "1s"}),
            json!({"timeout": "60s", "cache_duration": "2592000s"}),
        ] {
            assert!(remote(ok).is_ok());
        }
    }
}
