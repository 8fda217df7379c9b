//! The plugin configuration JSON (the contract in `shared/plugin-config.md`): its schema,
//! and its compilation into a [`FilterConfig`] that is either whole and valid or refused with
//! one error naming the JSON path. Nothing is half-applied.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

use crate::authz::Authorization;
use crate::cors::CorsPolicy;
use crate::extractor::TokenLocation;
use crate::jwks::{self, KeySet};
use crate::rules::{Requirement, Rule};

/// A refused configuration: the JSON path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A duration in protobuf JSON form: `"5s"`, `"1.5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Millis).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "invalid duration {s:?}, expected seconds like \"5s\" or \"1.5s\""
            ))
        })
    }
}

fn parse_duration(s: &str) -> Option<u64> {
    let num = s.strip_suffix('s')?;
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (num.contains('.') && frac.is_empty())
        || whole.len() > 12
    {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut millis = 0u64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        millis += u64::from(b - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    Some(secs * 1000 + millis)
}

// ---- the schema, as users write it ------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub rules: Option<Vec<RawRule>>,
    #[serde(default)]
    pub cors: Option<RawCors>,
    #[serde(default)]
    pub authorization: Option<RawAuthorization>,
    #[serde(default, alias = "jwksUnavailableStatus")]
    pub jwks_unavailable_status: Option<u32>,
    #[serde(default, alias = "maxTokenSize")]
    pub max_token_size: Option<usize>,
    #[serde(default, alias = "jwtCacheSize")]
    pub jwt_cache_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default, alias = "remoteJwks")]
    pub remote_jwks: Option<RawRemoteJwks>,
    #[serde(default, alias = "localJwks")]
    pub local_jwks: Option<RawLocalJwks>,
    #[serde(default, alias = "fromHeaders")]
    pub from_headers: Option<Vec<RawHeaderLocation>>,
    #[serde(default, alias = "fromParams")]
    pub from_params: Option<Vec<String>>,
    #[serde(default, alias = "fromCookies")]
    pub from_cookies: Option<Vec<String>>,
    #[serde(default)]
    pub forward: bool,
    #[serde(default, alias = "forwardPayloadHeader")]
    pub forward_payload_header: Option<String>,
    #[serde(default, alias = "padForwardPayloadHeader")]
    pub pad_forward_payload_header: bool,
    #[serde(default, alias = "claimToHeaders")]
    pub claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default, alias = "spaceDelimitedClaims")]
    pub space_delimited_claims: Option<Vec<String>>,
    #[serde(default, alias = "clockSkewSeconds")]
    pub clock_skew_seconds: Option<u64>,
    #[serde(default, alias = "requireExpiration")]
    pub require_expiration: bool,
    #[serde(default, alias = "maxLifetime")]
    pub max_lifetime: Option<Millis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    #[serde(alias = "httpUri")]
    pub http_uri: RawHttpUri,
    #[serde(default, alias = "cacheDuration")]
    pub cache_duration: Option<Millis>,
    #[serde(default, alias = "kidRefetchInterval")]
    pub kid_refetch_interval: Option<Millis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    pub uri: String,
    pub cluster: String,
    #[serde(default)]
    pub timeout: Option<Millis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalJwks {
    #[serde(alias = "inlineString")]
    pub inline_string: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderLocation {
    pub name: String,
    #[serde(default, alias = "valuePrefix")]
    pub value_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaimToHeader {
    #[serde(alias = "headerName")]
    pub header_name: String,
    #[serde(alias = "claimName")]
    pub claim_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match")]
    pub route: RawRouteMatch,
    #[serde(default)]
    pub requires: Option<RawRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteMatch {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, alias = "safeRegex")]
    pub safe_regex: Option<RawRegex>,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegex {
    pub regex: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmpty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequirementList {
    pub requirements: Vec<RawRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProviderAndAudiences {
    #[serde(alias = "providerName")]
    pub provider_name: String,
    pub audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawRequirement {
    #[serde(alias = "providerName")]
    ProviderName(String),
    #[serde(alias = "providerAndAudiences")]
    ProviderAndAudiences(RawProviderAndAudiences),
    #[serde(alias = "requiresAny")]
    RequiresAny(RawRequirementList),
    #[serde(alias = "requiresAll")]
    RequiresAll(RawRequirementList),
    #[serde(alias = "allowMissing")]
    AllowMissing(RawEmpty),
    #[serde(alias = "allowMissingOrFailed")]
    AllowMissingOrFailed(RawEmpty),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStringMatcher {
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default, alias = "safeRegex")]
    pub safe_regex: Option<RawRegex>,
    #[serde(default, alias = "ignoreCase")]
    pub ignore_case: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    #[serde(default, alias = "allowOriginStringMatch")]
    pub allow_origin_string_match: Vec<RawStringMatcher>,
    #[serde(default, alias = "allowMethods")]
    pub allow_methods: Option<String>,
    #[serde(default, alias = "allowHeaders")]
    pub allow_headers: Option<String>,
    #[serde(default, alias = "exposeHeaders")]
    pub expose_headers: Option<String>,
    #[serde(default, alias = "maxAge")]
    pub max_age: Option<String>,
    #[serde(default, alias = "allowCredentials")]
    pub allow_credentials: bool,
    #[serde(default, alias = "allowPrivateNetworkAccess")]
    pub allow_private_network_access: bool,
    #[serde(default, alias = "forwardNotMatchingPreflights")]
    pub forward_not_matching_preflights: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    #[serde(default)]
    pub rules: Vec<RawAuthzRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthzRule {
    #[serde(default)]
    pub from: Vec<RawFrom>,
    #[serde(default)]
    pub to: Vec<RawTo>,
    #[serde(default)]
    pub when: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrom {
    pub source: RawSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(default, alias = "requestPrincipals")]
    pub request_principals: Vec<String>,
    #[serde(default, alias = "notRequestPrincipals")]
    pub not_request_principals: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTo {
    pub operation: RawOperation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default, alias = "notMethods")]
    pub not_methods: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default, alias = "notPaths")]
    pub not_paths: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default, alias = "notHosts")]
    pub not_hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default, alias = "notValues")]
    pub not_values: Vec<String>,
}

// ---- the compiled form the filter runs on ----------------------------------------------

pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
pub const DEFAULT_JWT_CACHE_SIZE: usize = 1000;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_CACHE_DURATION_MS: u64 = 600_000;
pub const DEFAULT_KID_REFETCH_MS: u64 = 30_000;

pub struct RemoteJwks {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub cache_duration_ms: u64,
    pub kid_refetch_interval_ms: u64,
}

pub struct ClaimToHeader {
    /// Lowercased, as HTTP/2 and Envoy carry header names.
    pub header: String,
    /// The dot path, split once at load.
    pub path: Vec<String>,
}

pub struct Provider {
    pub name: String,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub locations: Vec<TokenLocation>,
    pub forward: bool,
    pub forward_payload_header: Option<String>,
    pub pad_forward_payload_header: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub space_delimited_claims: Vec<String>,
    pub clock_skew_seconds: u64,
    pub require_expiration: bool,
    pub max_lifetime_seconds: Option<u64>,
    pub local_keys: KeySet,
    pub remote: Option<RemoteJwks>,
}

/// Where a request's route sends it: the rule list, or the default when `rules` is absent.
pub enum Routing {
    Rules(Vec<Rule>),
    /// No `rules` key: every request needs a valid token from any provider.
    Everything(Requirement),
}

pub struct FilterConfig {
    pub providers: Vec<Provider>,
    pub routing: Routing,
    pub cors: Option<CorsPolicy>,
    pub authorization: Option<Authorization>,
    pub jwks_unavailable_status: u32,
    pub max_token_size: usize,
    /// Verified tokens remembered per VM; 0 disables the cache.
    pub jwt_cache_size: usize,
    /// Every header the filter sets from a token, lowercased: removed from every request.
    pub sanitized_headers: Vec<String>,
    /// Lines worth logging at load (keys skipped in local sets).
    pub warnings: Vec<String>,
}

impl FilterConfig {
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}

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

/// Turns a header name into the form Envoy gives the filter, refusing what cannot be a name.
pub fn header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::at(
            path,
            format!("invalid header name {name:?}"),
        ));
    }
    Ok(name.to_ascii_lowercase())
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
    let locations = crate::extractor::compile_locations(
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
    let mut claim_to_headers = Vec::with_capacity(raw.claim_to_headers.len());
    for (i, c) in raw.claim_to_headers.into_iter().enumerate() {
        let header = header_name(
            &at(&format!("claim_to_headers[{i}].header_name")),
            &c.header_name,
        )?;
        if header.starts_with(':') || header == "host" {
            return Err(ConfigError::at(
                at(&format!("claim_to_headers[{i}].header_name")),
                "may not name a pseudo-header or host",
            ));
        }
        if c.claim_name.is_empty() || c.claim_name.split('.').any(str::is_empty) {
            return Err(ConfigError::at(
                at(&format!("claim_to_headers[{i}].claim_name")),
                format!("invalid claim path {:?}", c.claim_name),
            ));
        }
        claim_to_headers.push(ClaimToHeader {
            header,
            path: c.claim_name.split('.').map(str::to_owned).collect(),
        });
    }
    let max_lifetime_seconds = raw.max_lifetime.map(|m| m.0 / 1000);
    Ok(Provider {
        name: name.to_string(),
        issuer: raw.issuer.filter(|i| !i.is_empty()),
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

fn compile(raw: RawConfig) -> Result<FilterConfig, ConfigError> {
    let mut warnings = Vec::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        providers.push(compile_provider(&name, p, &mut warnings)?);
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let routing = match raw.rules {
        Some(rules) => {
            let mut out = Vec::with_capacity(rules.len());
            for (i, r) in rules.into_iter().enumerate() {
                out.push(crate::rules::compile_rule(
                    &format!("rules[{i}]"),
                    r,
                    &names,
                )?);
            }
            Routing::Rules(out)
        }
        None => {
            if providers.is_empty() {
                return Err(ConfigError::at(
                    "providers",
                    "at least one provider is needed when \"rules\" is absent",
                ));
            }
            Routing::Everything(Requirement::Any(
                (0..providers.len())
                    .map(|i| Requirement::Provider {
                        index: i,
                        audiences: None,
                    })
                    .collect(),
            ))
        }
    };
    let cors = match raw.cors {
        None => None,
        Some(c) => Some(crate::cors::compile("cors", c)?),
    };
    let authorization = match raw.authorization {
        None => None,
        Some(a) => Some(crate::authz::compile("authorization", a)?),
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
    let max_token_size = raw.max_token_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    if !(64..=65536).contains(&max_token_size) {
        return Err(ConfigError::at(
            "max_token_size",
            "must be between 64 and 65536 bytes",
        ));
    }
    let jwt_cache_size = raw.jwt_cache_size.unwrap_or(DEFAULT_JWT_CACHE_SIZE);
    if jwt_cache_size > 100_000 {
        return Err(ConfigError::at("jwt_cache_size", "must be at most 100000"));
    }
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
        routing,
        cors,
        authorization,
        jwks_unavailable_status,
        max_token_size,
        jwt_cache_size,
        sanitized_headers,
        warnings,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(5000));
        assert_eq!(parse_duration("1.5s"), Some(1500));
        assert_eq!(parse_duration("0.001s"), Some(1));
        assert_eq!(parse_duration("600s"), Some(600_000));
        for bad in ["5", "s", "-1s", "1.s", ".5s", "5ms", "1e3s", " 5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
