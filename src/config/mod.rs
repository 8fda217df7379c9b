//! The plugin configuration JSON (the contract in `shared/plugin-config.md`): its schema
//! (`schema`, a leaf), and its compilation into a [`FilterConfig`] (`model`) that is either
//! whole and valid or refused with one error naming the JSON path. Nothing is half-applied.
//!
//! `provider_index` indexes the compiled providers by issuer and token location.
//!
//! May use: every section's own `compile` (`policy`, `request`, `jwks`). Must not be used by
//! those sections, which read only `schema`: that keeps the compilation free of circles.

mod model;
mod provider_index;
pub mod schema;

pub use model::{
    ClaimToHeader, FilterConfig, Provider, RemoteJwks, Routing, DEFAULT_CACHE_DURATION_MS,
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_JWT_CACHE_SIZE, DEFAULT_KID_REFETCH_MS,
    DEFAULT_MAX_SIGNATURE_CHECKS_PER_REQUEST, DEFAULT_MAX_TOKENS_PER_REQUEST,
    DEFAULT_MAX_TOKEN_SIZE, DEFAULT_TIMEOUT_MS,
};
pub use provider_index::ProviderIndex;

use std::ops::RangeInclusive;

use crate::jwks::key_set::{self as jwks, KeySet};
use crate::jwt::tenant::{self, IssuerPattern, Tenancy};
use crate::policy::rules::{Requirement, RuleSet};
use schema::{header_name, ConfigError, RawConfig, RawProvider, RawRemoteJwks};

/// Parses and validates the whole configuration.
pub fn parse(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string().replace('`', "\"");
        // Drop serde_json's " at line 1 column 42": the path already says where.
        let message = match message.rfind(" at line ") {
            Some(i) => message.get(..i).unwrap_or(&message).to_string(),
            None => message,
        };
        ConfigError::at(
            if path == "." { String::new() } else { path },
            without_aliases(&message),
        )
    })?;
    compile(raw)
}

/// serde lists every accepted spelling of the expected fields; the lowerCamelCase aliases
/// only double that list, so keep the snake_case names.
fn without_aliases(message: &str) -> String {
    const MARK: &str = ", expected one of ";
    match message.split_once(MARK) {
        Some((head, names)) => {
            let kept: Vec<&str> = names
                .split(", ")
                .filter(|n| !n.bytes().any(|b| b.is_ascii_uppercase()))
                .collect();
            format!("{head}{MARK}{}", kept.join(", "))
        }
        None => message.to_string(),
    }
}

fn compile_provider(
    name: &str,
    raw: RawProvider,
    warnings: &mut Vec<String>,
) -> Result<Provider, ConfigError> {
    let at = |field: &str| format!("providers.{name}.{field}");
    if raw.remote_jwks.is_none() && raw.local_jwks.is_none() {
        return Err(ConfigError::at(
            format!("providers.{name}"),
            "needs remote_jwks or local_jwks",
        ));
    }
    let local_keys = match raw.local_jwks {
        None => KeySet::default(),
        Some(local) => {
            let path = at("local_jwks.inline_string");
            let loaded = jwks::parse(local.inline_string.as_bytes(), true)
                .map_err(|e| ConfigError::at(&path, e))?;
            for s in &loaded.skipped {
                warnings.push(format!("{path}: skipped {s}"));
            }
            if loaded.set.is_empty() && raw.remote_jwks.is_none() {
                let why = if loaded.skipped.is_empty() {
                    "the key set is empty".to_string()
                } else {
                    format!("no usable key ({})", loaded.skipped.join("; "))
                };
                return Err(ConfigError::at(path, why));
            }
            loaded.set
        }
    };
    let remote = match raw.remote_jwks {
        None => None,
        Some(r) => Some(compile_remote(&at("remote_jwks"), r)?),
    };
    let locations = crate::request::extractor::compile_locations(
        &at(""),
        raw.from_headers.map(|hs| {
            hs.into_iter()
                .map(|h| (h.name, h.value_prefix))
                .collect::<Vec<_>>()
        }),
        raw.from_params,
        raw.from_cookies,
    )?;
    let forward_payload_header = match raw.forward_payload_header {
        None => None,
        Some(h) => Some(header_name(&at("forward_payload_header"), &h)?),
    };
    let claim_to_headers = schema::claim_to_headers(&at("claim_to_headers"), raw.claim_to_headers)?;
    let max_lifetime_seconds = raw.max_lifetime.map(|m| m.0 / 1000);
    let issuer = raw.issuer.filter(|i| !i.is_empty());
    let tenancy = compile_tenancy(name, issuer.as_deref(), raw.tenants, raw.tenant_claim)?;
    Ok(Provider {
        name: name.to_string(),
        issuer,
        tenancy,
        audiences: raw.audiences,
        locations,
        forward: raw.forward,
        forward_payload_header,
        pad_forward_payload_header: raw.pad_forward_payload_header,
        claim_to_headers,
        space_delimited_claims: raw.space_delimited_claims.unwrap_or_else(|| {
            ["scope", "scp", "permission"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        clock_skew_seconds: raw.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS),
        require_expiration: raw.require_expiration,
        max_lifetime_seconds,
        local_keys,
        remote,
    })
}

/// A `{tenant}` issuer with its `tenants` and `tenant_claim`, which need one.
fn compile_tenancy(
    name: &str,
    issuer: Option<&str>,
    tenants: Option<Vec<String>>,
    claim: Option<String>,
) -> Result<Option<Tenancy>, ConfigError> {
    let at = |field: &str| format!("providers.{name}.{field}");
    let pattern = match issuer.map(IssuerPattern::parse) {
        Some(Err(e)) => return Err(ConfigError::at(at("issuer"), e)),
        Some(Ok(p)) => p,
        None => None,
    };
    let Some(pattern) = pattern else {
        for (field, given) in [
            ("tenants", tenants.is_some()),
            ("tenant_claim", claim.is_some()),
        ] {
            if given {
                return Err(ConfigError::at(
                    at(field),
                    format!("needs an issuer with a {} placeholder", tenant::PLACEHOLDER),
                ));
            }
        }
        return Ok(None);
    };
    let tenants = tenants.unwrap_or_default();
    for (i, t) in tenants.iter().enumerate() {
        if !pattern.is_tenant(t) {
            return Err(ConfigError::at(
                format!("{}[{i}]", at("tenants")),
                format!(
                    "{t:?} cannot stand for {} in the issuer",
                    tenant::PLACEHOLDER
                ),
            ));
        }
    }
    if claim.as_deref() == Some("") {
        return Err(ConfigError::at(at("tenant_claim"), "must not be empty"));
    }
    Ok(Some(Tenancy {
        pattern,
        tenants,
        claim,
    }))
}

fn compile_remote(at: &str, raw: RawRemoteJwks) -> Result<RemoteJwks, ConfigError> {
    let uri = &raw.http_uri.uri;
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| {
            ConfigError::at(
                format!("{at}.http_uri.uri"),
                format!("{uri:?} is not an http:// or https:// URI"),
            )
        })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(ConfigError::at(
            format!("{at}.http_uri.uri"),
            format!("{uri:?} has no host"),
        ));
    }
    if raw.http_uri.cluster.is_empty() {
        return Err(ConfigError::at(
            format!("{at}.http_uri.cluster"),
            "must not be empty",
        ));
    }
    Ok(RemoteJwks {
        cluster: raw.http_uri.cluster,
        authority: authority.to_string(),
        path: path.to_string(),
        timeout_ms: raw.http_uri.timeout.map_or(DEFAULT_TIMEOUT_MS, |m| m.0),
        cache_duration_ms: raw
            .cache_duration
            .map_or(DEFAULT_CACHE_DURATION_MS, |m| m.0),
        kid_refetch_interval_ms: raw
            .kid_refetch_interval
            .map_or(DEFAULT_KID_REFETCH_MS, |m| m.0),
    })
}

/// A numeric field's value, or its default, refused outside `range`.
fn within(
    field: &str,
    value: Option<usize>,
    default: usize,
    range: RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        return Ok(v);
    }
    Err(ConfigError::at(
        field,
        format!("must be between {} and {}", range.start(), range.end()),
    ))
}

fn compile(raw: RawConfig) -> Result<FilterConfig, ConfigError> {
    let mut warnings = Vec::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        providers.push(compile_provider(&name, p, &mut warnings)?);
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let index = ProviderIndex::new(
        providers
            .iter()
            .map(|p| (p.issuer.as_deref(), p.locations.as_slice())),
    );
    let issuer = |i: usize| providers.get(i).and_then(|p| p.issuer.clone());
    let group = |i: usize| index.group_of.get(i).copied().unwrap_or(usize::MAX);
    let mut routing = match raw.rules {
        Some(rules) => {
            let mut out = Vec::with_capacity(rules.len());
            for (i, r) in rules.into_iter().enumerate() {
                out.push(crate::policy::rules::compile_rule(
                    &format!("rules[{i}]"),
                    r,
                    &names,
                )?);
            }
            Routing::Rules(Box::new(RuleSet::new(out)))
        }
        None => {
            if providers.is_empty() {
                return Err(ConfigError::at(
                    "providers",
                    "at least one provider is needed when \"rules\" is absent",
                ));
            }
            Routing::Everything(Requirement::any(
                (0..providers.len())
                    .map(|i| Requirement::Provider {
                        index: i,
                        audiences: None,
                    })
                    .collect(),
            ))
        }
    };
    match &mut routing {
        Routing::Rules(set) => {
            for r in set.rules.iter_mut().filter_map(|r| r.requires.as_mut()) {
                r.index_leaves(&issuer, &group);
            }
        }
        Routing::Everything(r) => r.index_leaves(&issuer, &group),
    }
    let cors = match raw.cors {
        None => None,
        Some(c) => Some(crate::policy::cors::compile("cors", c)?),
    };
    let authorization = match raw.authorization {
        None => None,
        Some(a) => Some(crate::policy::authz::compile("authorization", a)?),
    };
    let jwks_unavailable_status = match raw.jwks_unavailable_status {
        None => 401,
        Some(s @ (401 | 503)) => s,
        Some(s) => {
            return Err(ConfigError::at(
                "jwks_unavailable_status",
                format!("must be 401 or 503, got {s}"),
            ))
        }
    };
    let max_token_size = within(
        "max_token_size",
        raw.max_token_size,
        DEFAULT_MAX_TOKEN_SIZE,
        64..=65536,
    )?;
    let jwt_cache_size = within(
        "jwt_cache_size",
        raw.jwt_cache_size,
        DEFAULT_JWT_CACHE_SIZE,
        0..=100_000,
    )?;
    let max_tokens_per_request = within(
        "max_tokens_per_request",
        raw.max_tokens_per_request,
        DEFAULT_MAX_TOKENS_PER_REQUEST,
        1..=64,
    )?;
    let max_signature_checks_per_request = within(
        "max_signature_checks_per_request",
        raw.max_signature_checks_per_request,
        DEFAULT_MAX_SIGNATURE_CHECKS_PER_REQUEST,
        1..=256,
    )?;
    let mut sanitized_headers: Vec<String> = Vec::new();
    for p in &providers {
        let names = p
            .forward_payload_header
            .iter()
            .chain(p.claim_to_headers.iter().map(|c| &c.header));
        for n in names {
            if !sanitized_headers.contains(n) {
                sanitized_headers.push(n.clone());
            }
        }
    }
    Ok(FilterConfig {
        providers,
        index,
        routing,
        cors,
        authorization,
        jwks_unavailable_status,
        max_token_size,
        jwt_cache_size,
        max_tokens_per_request,
        max_signature_checks_per_request,
        sanitized_headers,
        warnings,
    })
}
