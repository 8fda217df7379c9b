//! The configuration as users write it (the contract in `shared/plugin-config.md`): the serde
//! types, durations, header names, claim-to-header lists (shared by providers and `oidc`) and
//! the error that names a JSON path. A leaf: every section (`policy`, `request`, `jwks`,
//! `oidc`) compiles its part from these types, and nothing here knows what they compile into.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

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
    #[serde(default, alias = "maxTokensPerRequest")]
    pub max_tokens_per_request: Option<usize>,
    #[serde(default, alias = "maxSignatureChecksPerRequest")]
    pub max_signature_checks_per_request: Option<usize>,
    #[serde(default)]
    pub oidc: BTreeMap<String, RawOidc>,
    /// Counter names start with `<stat_prefix>.` (default `jwt_authz`).
    #[serde(default, alias = "statPrefix")]
    pub stat_prefix: Option<String>,
    /// Set Envoy filter state (`wasm.jwt_authz.*`) on every decided request.
    #[serde(default, alias = "filterState")]
    pub filter_state: bool,
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
    /// With a `{tenant}` issuer: the tenants allowed (absent: any).
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// With a `{tenant}` issuer: a claim that must equal the issuer's tenant.
    #[serde(default, alias = "tenantClaim")]
    pub tenant_claim: Option<String>,
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
    /// Envoy route names (`xds.route_name`), any of.
    #[serde(default, alias = "routeNames")]
    pub route_names: Option<Vec<String>>,
    /// Key -> exact value under the route's metadata filter `envoy-jwt-authz`, all of.
    #[serde(default, alias = "routeMetadata")]
    pub route_metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub headers: Option<Vec<RawKeyMatcher>>,
    #[serde(default, alias = "queryParameters")]
    pub query_parameters: Option<Vec<RawKeyMatcher>>,
}

/// Envoy's `HeaderMatcher` / `QueryParameterMatcher`: a name and one of `string_match`,
/// `present_match`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyMatcher {
    pub name: String,
    #[serde(default, alias = "stringMatch")]
    pub string_match: Option<RawStringMatcher>,
    #[serde(default, alias = "presentMatch")]
    pub present_match: Option<bool>,
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
    /// A browser session of the named `oidc` entry.
    Oidc(String),
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
    /// Evaluated and reported, never enforced.
    #[serde(default, alias = "dryRun")]
    pub dry_run: bool,
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
    /// The mTLS peer: its SPIFFE identity, its namespace; and addresses.
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default, alias = "notPrincipals")]
    pub not_principals: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, alias = "notNamespaces")]
    pub not_namespaces: Vec<String>,
    #[serde(default, alias = "ipBlocks")]
    pub ip_blocks: Vec<String>,
    #[serde(default, alias = "notIpBlocks")]
    pub not_ip_blocks: Vec<String>,
    #[serde(default, alias = "remoteIpBlocks")]
    pub remote_ip_blocks: Vec<String>,
    #[serde(default, alias = "notRemoteIpBlocks")]
    pub not_remote_ip_blocks: Vec<String>,
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
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default, alias = "notPorts")]
    pub not_ports: Vec<String>,
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

/// One `oidc` entry: browser login at the proxy (the contract's `oidc` section). Compiled by
/// `crate::oidc::config::compile`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    pub issuer: String,
    pub cluster: String,
    #[serde(default)]
    pub timeout: Option<Millis>,
    #[serde(alias = "clientId")]
    pub client_id: String,
    #[serde(default, alias = "clientSecret")]
    pub client_secret: Option<RawSecret>,
    #[serde(default, alias = "clientAuth")]
    pub client_auth: Option<String>,
    #[serde(alias = "redirectUri")]
    pub redirect_uri: String,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, alias = "extraAuthParams")]
    pub extra_auth_params: BTreeMap<String, String>,
    pub session: RawOidcSession,
    #[serde(default)]
    pub logout: Option<RawOidcLogout>,
    #[serde(default, alias = "forwardAccessToken")]
    pub forward_access_token: Option<bool>,
    #[serde(default, alias = "claimToHeaders")]
    pub claim_to_headers: Vec<RawClaimToHeader>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcSession {
    #[serde(default, alias = "cookieName")]
    pub cookie_name: Option<String>,
    pub keys: Vec<RawSecret>,
    #[serde(default, alias = "absoluteLifetime")]
    pub absolute_lifetime: Option<Millis>,
    #[serde(default, alias = "idleTimeout")]
    pub idle_timeout: Option<Millis>,
    #[serde(default, alias = "sameSite")]
    pub same_site: Option<String>,
    #[serde(default)]
    pub secure: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcLogout {
    pub path: String,
    #[serde(default, alias = "postLogoutRedirectUri")]
    pub post_logout_redirect_uri: Option<String>,
}

/// `{"env": "NAME"}` or `{"inline": "value"}`. Deserialized by hand so that no error text ever
/// echoes what was written (serde's own messages quote the value they refuse).
pub enum RawSecret {
    Env(String),
    Inline(String),
}

const SECRET_EXPECTED: &str = "expected {\"env\": \"NAME\"} or {\"inline\": \"value\"}";

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

fn refuse_secret<E: serde::de::Error>() -> Result<RawSecret, E> {
    Err(E::custom(SECRET_EXPECTED))
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SECRET_EXPECTED)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<RawSecret, E> {
        refuse_secret()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<RawSecret, A::Error> {
        refuse_secret()
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawSecret, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            // Read as any JSON and matched here: a typed read's error would quote the value.
            let serde_json::Value::String(v) = map.next_value::<serde_json::Value>()? else {
                return refuse_secret();
            };
            let secret = match key.as_str() {
                "env" => RawSecret::Env(v),
                "inline" => RawSecret::Inline(v),
                _ => return refuse_secret(),
            };
            if found.replace(secret).is_some() {
                return refuse_secret();
            }
        }
        found.map_or_else(refuse_secret, Ok)
    }
}

/// An RFC 9110 token: what a header name or (RFC 6265) a cookie name may be.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Turns a header name into the form Envoy gives the filter, refusing what cannot be a name.
pub fn header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::at(
            path,
            format!("invalid header name {name:?}"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// One `claim_to_headers` entry, checked: shared by JWT providers and `oidc` sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Lowercased, as HTTP/2 and Envoy carry header names.
    pub header: String,
    /// The dot path, split once at load.
    pub path: Vec<String>,
}

/// Checks a `claim_to_headers` list; `at` is the path of the list itself.
pub fn claim_to_headers(
    at: &str,
    raw: Vec<RawClaimToHeader>,
) -> Result<Vec<ClaimToHeader>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let header = header_name(&format!("{at}[{i}].header_name"), &c.header_name)?;
        if header.starts_with(':') || header == "host" {
            return Err(ConfigError::at(
                format!("{at}[{i}].header_name"),
                "may not name a pseudo-header or host",
            ));
        }
        if c.claim_name.is_empty() || c.claim_name.split('.').any(str::is_empty) {
            return Err(ConfigError::at(
                format!("{at}[{i}].claim_name"),
                format!("invalid claim path {:?}", c.claim_name),
            ));
        }
        out.push(ClaimToHeader {
            header,
            path: c.claim_name.split('.').map(str::to_owned).collect(),
        });
    }
    Ok(out)
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
