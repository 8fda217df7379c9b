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
pub mod warnings;

pub use model::{
    ClaimToHeader, FilterConfig, OidcLogin, Provider, RemoteJwks, Routing,
    DEFAULT_CACHE_DURATION_MS, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_JWT_CACHE_SIZE,
    DEFAULT_KID_REFETCH_MS, DEFAULT_MAX_SIGNATURE_CHECKS_PER_REQUEST,
    DEFAULT_MAX_TOKENS_PER_REQUEST, DEFAULT_MAX_TOKEN_SIZE, DEFAULT_TIMEOUT_MS, MAX_MAX_TOKEN_SIZE,
};
pub use provider_index::ProviderIndex;

use std::ops::RangeInclusive;

use crate::jwks::key_set::{self as jwks, KeySet};
use crate::jwt::tenant::{self, IssuerPattern, Tenancy};
use crate::policy::rules::{Names, Requirement, RuleSet};
use schema::{header_name, ConfigError, RawConfig, RawProvider, RawRemoteJwks};

/// Parses and validates the whole configuration, `{"env": ...}` secrets read from the process
/// environment (in Envoy, the VM's `environment_variables`).
pub fn parse(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
    parse_with_env(bytes, &|var| std::env::var(var).ok())
}

/// For the checker, away from the VM: a secret variable that is not set here is a warning
/// (the filter refuses to start where it is not set), checked with a stand-in value.
pub fn parse_for_check(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
    let missing = std::cell::RefCell::new(Vec::new());
    let env = |var: &str| {
        Some(std::env::var(var).unwrap_or_else(|_| {
            missing.borrow_mut().push(var.to_string());
            "stand-in value for a secret not set here (32+ bytes)".to_string()
        }))
    };
    let mut cfg = parse_with_env(bytes, &env)?;
    for var in missing.into_inner() {
        cfg.warnings.push(format!(
            "environment variable {var} is not set here: the filter refuses to start where it \
             is not set in the VM's environment"
        ));
    }
    Ok(cfg)
}

#[inline(never)]
fn parse_with_env(
    bytes: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FilterConfig, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string().replace('`', "\"");
        // Drop serde_json's " at line 1 column 42" when the path already says where; keep
        // it for a syntax error, which has no path.
        let syntax = matches!(
            err.inner().classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let message = match message.rfind(" at line ").filter(|_| !syntax) {
            Some(i) => message.get(..i).unwrap_or(&message).to_string(),
            None => message,
        };
        ConfigError::at(
            if path == "." { String::new() } else { path },
            without_aliases(&message),
        )
    })?;
    compile(raw, env)
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

#[inline(never)]
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
#[inline(never)]
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

#[inline(never)]
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
        discovery: false,
    })
}

/// The provider that verifies an `oidc` entry's ID tokens: its issuer, its client as the
/// audience (OIDC Core 3.1.3.7), keys from discovery, and no token locations (it never reads
/// a request).
#[inline(never)]
fn oidc_keys(o: &crate::oidc::config::OidcProvider) -> Provider {
    Provider {
        name: format!("oidc.{}", o.name),
        issuer: Some(o.issuer.clone()),
        tenancy: None,
        audiences: vec![o.client_id.clone()],
        locations: Vec::new(),
        forward: true,
        forward_payload_header: None,
        pad_forward_payload_header: false,
        claim_to_headers: Vec::new(),
        space_delimited_claims: Vec::new(),
        clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        // OIDC Core 2: an ID token always carries `exp`.
        require_expiration: true,
        max_lifetime_seconds: None,
        local_keys: KeySet::default(),
        remote: Some(RemoteJwks {
            cluster: o.cluster.clone(),
            authority: o.discovery.authority.clone(),
            path: o.discovery.path_and_query.clone(),
            timeout_ms: o.timeout_ms,
            cache_duration_ms: DEFAULT_CACHE_DURATION_MS,
            kid_refetch_interval_ms: DEFAULT_KID_REFETCH_MS,
            discovery: true,
        }),
    }
}

/// A numeric field's value, or its default, refused outside `range`.
/// Distinct `route_metadata` keys over all rules (each one a property read when used).
const MAX_ROUTE_METADATA_KEYS: usize = 64;

/// `stat_prefix`: what Envoy accepts in a stat name segment, without dots at the ends.
fn stat_prefix(raw: Option<String>) -> Result<String, ConfigError> {
    let p = raw.unwrap_or_else(|| crate::stats::DEFAULT_PREFIX.to_string());
    let ok = !p.is_empty()
        && p.len() <= 64
        && !p.starts_with('.')
        && !p.ends_with('.')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(p)
    } else {
        Err(ConfigError::at(
            "stat_prefix",
            format!("{p:?}: 1-64 of [A-Za-z0-9_.-], not starting or ending with a dot"),
        ))
    }
}

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

/// Compiles the sections. This function and the helpers marked `#[inline(never)]` run once per
/// VM, at configuration: kept apart, each is a smaller function for V8, which compiles every
/// function of the module with TurboFan at load, and the compiler's peak memory, which
/// tcmalloc keeps after it is freed, grows with the largest functions: a 20 KB `compile` with
/// its helpers inlined cost about 3 MB of idle RSS (`scripts/idle-rss`). No request runs it.
#[inline(never)]
fn compile(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FilterConfig, ConfigError> {
    let mut warnings = warnings::check(&raw)?;
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        providers.push(compile_provider(&name, p, &mut warnings)?);
    }
    let mut oidc = Vec::with_capacity(raw.oidc.len());
    for (name, o) in raw.oidc {
        let inline = |s: &schema::RawSecret| matches!(s, schema::RawSecret::Inline(_));
        let mut inlined: Vec<String> = Vec::new();
        if o.client_secret.as_ref().is_some_and(inline) {
            inlined.push(format!("oidc.{name}.client_secret"));
        }
        for (i, k) in o.session.keys.iter().enumerate() {
            if inline(k) {
                inlined.push(format!("oidc.{name}.session.keys[{i}]"));
            }
        }
        for at in inlined {
            warnings.push(format!(
                "{at}: an inline secret sits in the configuration (and in every dump of it); \
                 prefer {{\"env\": \"NAME\"}} from vm_config.environment_variables"
            ));
        }
        oidc.push(crate::oidc::config::compile("oidc", &name, o, env)?);
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let oidc_names: Vec<&str> = oidc.iter().map(|o| o.name.as_str()).collect();
    let names = Names {
        providers: &names,
        oidc: &oidc_names,
    };
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
            let set = RuleSet::new(out);
            if set.route_metadata_keys.len() > MAX_ROUTE_METADATA_KEYS {
                return Err(ConfigError::at(
                    "rules",
                    format!("more than {MAX_ROUTE_METADATA_KEYS} distinct route_metadata keys"),
                ));
            }
            Routing::Rules(Box::new(set))
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
        64..=MAX_MAX_TOKEN_SIZE,
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
        for n in names.chain(
            oidc.iter()
                .flat_map(|o| o.claim_to_headers.iter().map(|c| &c.header)),
        ) {
            if !sanitized_headers.contains(n) {
                sanitized_headers.push(n.clone());
            }
        }
    }
    let oidc = oidc
        .into_iter()
        .map(|o| {
            providers.push(oidc_keys(&o));
            OidcLogin {
                provider: o,
                keys: providers.len() - 1,
            }
        })
        .collect();
    Ok(FilterConfig {
        stat_prefix: stat_prefix(raw.stat_prefix)?,
        filter_state: raw.filter_state,
        providers,
        oidc,
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
