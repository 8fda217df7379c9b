//! A plain-language account of a loaded configuration, for the `jwt-authz check` command:
//! where tokens are looked for, which requests need which provider, which policies apply.

use crate::config::{FilterConfig, Provider, Routing};
use crate::policy::authz::Action;
use crate::policy::rules::{HostPattern, PathMatch, Requirement, RouteMatch};
use crate::request::extractor::TokenLocation;

fn seconds(ms: u64) -> String {
    format!("{}s", ms / 1000)
}

fn location(l: &TokenLocation) -> String {
    match l {
        TokenLocation::Header { name, prefix } => match prefix {
            Some(p) => format!("header {name} after {p:?}"),
            None => format!("header {name}"),
        },
        TokenLocation::Param(p) => format!("query ?{p}="),
        TokenLocation::Cookie(c) => format!("cookie {c}"),
    }
}

fn provider(p: &Provider) -> Vec<String> {
    let mut out = vec![format!(
        "provider {}: issuer {}, audiences {}",
        p.name,
        p.issuer.as_deref().unwrap_or("(any)"),
        if p.audiences.is_empty() {
            "(any)".to_string()
        } else {
            p.audiences.join(", ")
        }
    )];
    let locations: Vec<String> = p.locations.iter().map(location).collect();
    out.push(format!("  token from: {}", locations.join("; ")));
    let mut keys = Vec::new();
    if !p.local_keys.is_empty() {
        keys.push(format!("{} inline", p.local_keys.keys.len()));
    }
    if let Some(r) = &p.remote {
        keys.push(format!(
            "fetched from {}{} through cluster {} every {} (timeout {}, unknown kid refetch at most every {})",
            r.authority,
            r.path,
            r.cluster,
            seconds(r.cache_duration_ms),
            seconds(r.timeout_ms),
            seconds(r.kid_refetch_interval_ms)
        ));
    }
    out.push(format!("  keys: {}", keys.join("; ")));
    let mut upstream = vec![if p.forward {
        "token forwarded".to_string()
    } else {
        "token removed".to_string()
    }];
    if let Some(h) = &p.forward_payload_header {
        upstream.push(format!("payload in {h}"));
    }
    for c in &p.claim_to_headers {
        upstream.push(format!("claim {} in {}", c.path.join("."), c.header));
    }
    out.push(format!("  upstream gets: {}", upstream.join(", ")));
    out
}

fn route(m: &RouteMatch) -> String {
    let mut s = match &m.path {
        PathMatch::Prefix(p) => format!("path prefix {p}"),
        PathMatch::Exact(p) => format!("path {p}"),
        PathMatch::Regex(r) => format!("path regex {}", r.as_str()),
    };
    if let Some(methods) = &m.methods {
        s.push_str(&format!(", methods {}", methods.join(" ")));
    }
    if let Some(hosts) = &m.hosts {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| match h {
                HostPattern::Exact(h) => h.clone(),
                HostPattern::Suffix(s) => format!("*{s}"),
                HostPattern::Any => "*".to_string(),
            })
            .collect();
        s.push_str(&format!(", hosts {}", hosts.join(" ")));
    }
    s
}

fn requirement(cfg: &FilterConfig, r: &Requirement) -> String {
    let list = |rs: &[Requirement], sep: &str| {
        rs.iter()
            .map(|r| requirement(cfg, r))
            .collect::<Vec<_>>()
            .join(sep)
    };
    match r {
        Requirement::Provider { index, audiences } => {
            let name = cfg.providers.get(*index).map_or("?", |p| p.name.as_str());
            match audiences {
                Some(a) => format!("a token from {name} for audiences {}", a.join(", ")),
                None => format!("a token from {name}"),
            }
        }
        Requirement::Any { children, .. } => format!("any of ({})", list(children, " | ")),
        Requirement::All(rs) => format!("all of ({})", list(rs, " & ")),
        Requirement::AllowMissing => "a valid token if one is sent".into(),
        Requirement::AllowMissingOrFailed => "nothing (tokens verified when valid)".into(),
        Requirement::Oidc(i) => {
            let name = cfg.oidc.get(*i).map_or("?", |o| o.provider.name.as_str());
            format!("a browser session of oidc {name}")
        }
    }
}

/// One line per fact, in the order the filter applies them.
pub fn describe(cfg: &FilterConfig) -> Vec<String> {
    let mut out = Vec::new();
    for p in &cfg.providers {
        if p.remote.as_ref().is_some_and(|r| r.discovery) {
            continue;
        }
        out.extend(provider(p));
    }
    for o in &cfg.oidc {
        let p = &o.provider;
        out.push(format!(
            "oidc {}: browser login at {} (client {}, callback {}), discovery through cluster {}",
            p.name,
            p.issuer,
            p.client_id,
            p.callback_path(),
            p.cluster
        ));
    }
    if let Some(c) = &cfg.cors {
        out.push(format!(
            "cors: {} allowed origin patterns; preflights from them answered before authentication",
            c.origin_count()
        ));
    }
    match &cfg.routing {
        Routing::Everything(r) => out.push(format!(
            "every request needs {} (no rules)",
            requirement(cfg, r)
        )),
        Routing::Rules(rules) => {
            for (i, r) in rules.rules.iter().enumerate() {
                let needs = r
                    .requires
                    .as_ref()
                    .map_or("no token".to_string(), |q| requirement(cfg, q));
                out.push(format!("rules[{i}]: {} needs {needs}", route(&r.route)));
            }
            out.push("requests matching no rule need no token".into());
        }
    }
    if let Some(a) = &cfg.authorization {
        for p in &a.policies {
            out.push(format!(
                "policy {}: {} with {} rules",
                p.name,
                match p.action {
                    Action::Allow => "ALLOW",
                    Action::Deny => "DENY",
                    Action::Audit => "AUDIT",
                },
                p.rule_count()
            ));
        }
        if a.policies.iter().any(|p| p.action == Action::Allow) {
            out.push("a request matching no ALLOW policy is denied".into());
        }
    }
    out.push(format!(
        "tokens up to {} bytes; {} verified tokens cached per worker; key set unavailable -> {}",
        cfg.max_token_size, cfg.jwt_cache_size, cfg.jwks_unavailable_status
    ));
    out.push(format!(
        "per request: at most {} distinct tokens and {} signature checks",
        cfg.max_tokens_per_request, cfg.max_signature_checks_per_request
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn describes_rules_and_policies() {
        let cfg = config::parse(
            br#"{"providers":{"idp":{"issuer":"https://idp","audiences":["api"],
                "from_headers":[{"name":"x-auth","value_prefix":"Bearer "}],
                "forward":false,"claim_to_headers":[{"header_name":"x-org","claim_name":"org.id"}],
                "remote_jwks":{"http_uri":{"uri":"https://idp/jwks","cluster":"c","timeout":"2s"},"cache_duration":"300s"}}},
              "rules":[{"match":{"prefix":"/api","methods":["GET"]},"requires":{"requires_any":{"requirements":[
                  {"provider_name":"idp"},{"allow_missing":{}}]}}},
                {"match":{"path":"/health"}}],
              "authorization":{"policies":[{"name":"p","action":"ALLOW","rules":[{}]}]}}"#,
        )
        .unwrap();
        let text = describe(&cfg).join("\n");
        for want in [
            "provider idp: issuer https://idp, audiences api",
            "token from: header x-auth after \"Bearer \"",
            "fetched from idp/jwks through cluster c every 300s (timeout 2s",
            "upstream gets: token removed, claim org.id in x-org",
            "rules[0]: path prefix /api, methods GET needs any of (a token from idp | a valid token if one is sent)",
            "rules[1]: path /health needs no token",
            "policy p: ALLOW with 1 rules",
            "a request matching no ALLOW policy is denied",
            "per request: at most 4 distinct tokens and 16 signature checks",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }
}
